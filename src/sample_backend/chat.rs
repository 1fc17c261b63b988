//! The sample backend's chat sessions: the reference workflow engine driven by the trusted
//! `Prefill` header, a transcript per session, node analytics, and the operator's view.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::workflow::{Analytics, AnswerError, Conversation, Prefill, Workflow};

/// Most chat sessions kept at once; the oldest is forgotten first.
pub(crate) const MAX_CHATS: usize = 10_000;

/// (site, session), as the edge validated them.
pub(crate) type ChatKey = (String, String);

/// One line of the transcript the widget shows.
#[derive(Debug, Clone, Serialize)]
struct Line {
    from: &'static str,
    text: String,
}

#[derive(Debug)]
struct Chat {
    conversation: Conversation,
    transcript: Vec<Line>,
}

/// Why an answer was not taken; the body is the unchanged state with an `error`.
#[derive(Debug)]
pub(crate) enum Refused {
    /// No chat for this session (no init yet, or it was forgotten).
    NoChat,
    /// The answer was for another step than the one being asked (a stale page).
    Stale(Value),
    /// The answer was incomplete, or the chat has ended.
    Invalid(Value),
}

/// Every chat session of the sample backend.
#[derive(Debug)]
pub(crate) struct Chats {
    workflow: Arc<Workflow>,
    chats: HashMap<ChatKey, Chat>,
    order: VecDeque<ChatKey>,
    analytics: Analytics,
}

impl Chats {
    /// No chats yet, for `workflow`.
    pub(crate) fn new(workflow: Arc<Workflow>) -> Self {
        Chats {
            workflow,
            chats: HashMap::new(),
            order: VecDeque::new(),
            analytics: Analytics::new(),
        }
    }

    /// (Re)starts the session's chat with the pre-fill the edge sent; returns the state.
    ///
    /// An init after a login or logout starts over, so the new identity (or none) applies.
    pub(crate) fn start(&mut self, key: ChatKey, prefill: Prefill) -> Value {
        let name = prefill.get("visitor_name").map(str::to_owned);
        let known = !prefill.is_empty();
        let conversation = Conversation::start(Arc::clone(&self.workflow), prefill);
        self.analytics.record(conversation.steps());
        let mut chat = Chat {
            conversation,
            transcript: Vec::new(),
        };
        if known {
            let text = match name {
                Some(name) => format!("Welcome back, {name}!"),
                None => "Welcome back!".to_owned(),
            };
            chat.transcript.push(Line { from: "bot", text });
        }
        chat.ask_next();
        let state = chat.state(None);
        if !self.chats.contains_key(&key) {
            while self.chats.len() >= MAX_CHATS {
                match self.order.pop_front() {
                    Some(oldest) => {
                        self.chats.remove(&oldest);
                    }
                    None => break,
                }
            }
            self.order.push_back(key.clone());
        }
        self.chats.insert(key, chat);
        state
    }

    /// Takes the visitor's answer to step `node`; returns the new state.
    pub(crate) fn answer(
        &mut self,
        key: &ChatKey,
        node: &str,
        values: &[(String, String)],
    ) -> Result<Value, Refused> {
        let chat = self.chats.get_mut(key).ok_or(Refused::NoChat)?;
        let current = chat.conversation.prompt().map(|p| p.node.to_owned());
        if current.is_some() && current.as_deref() != Some(node) {
            return Err(Refused::Stale(
                chat.state(Some("This step was already answered.")),
            ));
        }
        let shown: Vec<String> = chat
            .conversation
            .prompt()
            .map(|p| p.fields.iter().map(|f| f.field_name.clone()).collect())
            .unwrap_or_default();
        let before = chat.conversation.steps().len();
        let pairs = values.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        match chat.conversation.answer(pairs) {
            Ok(()) => {}
            Err(e) => {
                let message = match e {
                    AnswerError::Finished => "This chat has ended.".to_owned(),
                    AnswerError::Missing(_) => "Please fill in every field.".to_owned(),
                };
                return Err(Refused::Invalid(chat.state(Some(&message))));
            }
        }
        self.analytics.record(&chat.conversation.steps()[before..]);
        let typed: Vec<&str> = shown
            .iter()
            .filter_map(|f| chat.conversation.value(f))
            .collect();
        chat.transcript.push(Line {
            from: "visitor",
            text: typed.join(", "),
        });
        chat.ask_next();
        Ok(chat.state(None))
    }

    /// The operator's view of one session: the stored visitor context (as the edge re-attached
    /// it), the captured data, the steps, and the workflow's node analytics.
    pub(crate) fn operator_view(
        &self,
        key: &ChatKey,
        status: Option<&str>,
        context: &[(String, String)],
    ) -> Value {
        let chat = self.chats.get(key);
        let analytics: Vec<Value> = self
            .workflow
            .nodes()
            .iter()
            .map(|n| {
                let s = self.analytics.node(&n.id);
                json!({"node": n.id, "completed": s.completed, "skipped": s.skipped})
            })
            .collect();
        json!({
            "site": key.0,
            "session": key.1,
            "status": status.unwrap_or("absent"),
            "context": context,
            "captured": chat.map(|c| c.conversation.captured()).unwrap_or_default(),
            "steps": chat.map(|c| c.conversation.steps()).unwrap_or_default(),
            "analytics": analytics,
        })
    }
}

impl Chat {
    /// Adds the bot's next line: the current question, or the closing line.
    fn ask_next(&mut self) {
        let text = match self.conversation.prompt() {
            Some(prompt) => prompt.label.to_owned(),
            None => match self.conversation.value("visitor_name") {
                Some(name) => format!("Thanks, {name}! That is all we need."),
                None => "Thanks! That is all we need.".to_owned(),
            },
        };
        self.transcript.push(Line { from: "bot", text });
    }

    /// What the widget renders.
    fn state(&self, error: Option<&str>) -> Value {
        let prompt = self.conversation.prompt().map(|p| {
            json!({
                "node": p.node,
                "label": p.label,
                "fields": p.fields.iter().map(|f| json!({
                    "field_name": f.field_name,
                    "label": f.label,
                })).collect::<Vec<_>>(),
            })
        });
        json!({
            "transcript": self.transcript,
            "prompt": prompt,
            "finished": self.conversation.is_finished(),
            "error": error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chats() -> Chats {
        let wf = Workflow::from_json(include_str!("../../widget/demo/workflow.json")).unwrap();
        Chats::new(Arc::new(wf))
    }

    fn key(s: &str) -> ChatKey {
        ("demo-site".to_owned(), s.to_owned())
    }

    #[test]
    fn known_visitor_starts_at_the_first_unanswered_step() {
        let mut c = chats();
        let prefill = Prefill::from_pairs([
            ("visitor_name", "Jane Smith"),
            ("visitor_email", "jane@example.com"),
        ]);
        let state = c.start(key("a"), prefill);
        assert_eq!(state["prompt"]["node"], "contact");
        assert_eq!(state["transcript"][0]["text"], "Welcome back, Jane Smith!");
        assert_eq!(state["transcript"][1]["text"], "How can we reach you?");
        let view = c.operator_view(&key("a"), Some("accepted"), &[]);
        assert_eq!(view["captured"][0]["source"], "prefill");
        assert_eq!(
            view["analytics"][0],
            json!({"node": "ask_name", "completed": 1, "skipped": 1})
        );
    }

    #[test]
    fn answers_advance_and_stale_answers_are_refused() {
        let mut c = chats();
        let state = c.start(key("b"), Prefill::none());
        assert_eq!(state["prompt"]["node"], "ask_name");
        let answer = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        let state = c
            .answer(&key("b"), "ask_name", &answer("visitor_name", "Ann"))
            .unwrap();
        assert_eq!(state["prompt"]["node"], "ask_email");
        assert_eq!(
            state["transcript"][1],
            json!({"from": "visitor", "text": "Ann"})
        );
        assert!(matches!(
            c.answer(&key("b"), "ask_name", &answer("visitor_name", "Ann")),
            Err(Refused::Stale(_))
        ));
        assert!(matches!(
            c.answer(&key("b"), "ask_email", &answer("visitor_email", " ")),
            Err(Refused::Invalid(_))
        ));
        assert!(matches!(
            c.answer(&key("nobody"), "ask_name", &[]),
            Err(Refused::NoChat)
        ));
    }

    #[test]
    fn chats_are_bounded() {
        let mut c = chats();
        for i in 0..MAX_CHATS + 5 {
            c.start(key(&i.to_string()), Prefill::none());
        }
        assert_eq!(c.chats.len(), MAX_CHATS);
        assert!(!c.chats.contains_key(&key("0")));
        assert!(c.chats.contains_key(&key(&(MAX_CHATS + 4).to_string())));
    }
}
