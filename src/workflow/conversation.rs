//! One visitor's walk through a workflow: steps the pre-fill answers are skipped and captured
//! as if typed; the rest are asked.

use std::fmt;
use std::sync::Arc;

use super::{Field, MAX_ANSWER_CHARS, NodeKind, Prefill, Workflow};

/// Where a captured value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The visitor typed it.
    Visitor,
    /// The host page's context pre-filled it.
    Prefill,
}

/// One entry of `workflow_data_captured`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Captured {
    /// The field name.
    pub field: String,
    /// The value, as if typed.
    pub value: String,
    /// Typed or pre-filled (operators see both alike; this is for analytics and the demo).
    pub source: Source,
}

/// How a node was completed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// The visitor answered every field shown.
    Answered,
    /// Every field was pre-filled: the node was skipped (and counts as completed).
    Skipped,
    /// Some fields were pre-filled, the visitor answered the rest.
    PartlyPrefilled,
    /// A conditional node chose a branch (`then` when its test held).
    Branched {
        /// Whether the test held.
        held: bool,
    },
}

/// One completed node, in the order the conversation passed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// The node's id.
    pub node: String,
    /// How it was completed.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What the visitor is being asked now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt<'a> {
    /// The node's id.
    pub node: &'a str,
    /// The node's label (the question, for a `form_field`).
    pub label: &'a str,
    /// The fields still to answer, in order (pre-filled ones left out).
    pub fields: Vec<&'a Field>,
}

/// Why an answer was refused; the conversation is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// The workflow has already ended.
    Finished,
    /// A field shown to the visitor got no (or a blank) value.
    Missing(String),
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::Finished => f.write_str("the workflow has ended"),
            AnswerError::Missing(field) => write!(f, "`{field}` needs an answer"),
        }
    }
}

impl std::error::Error for AnswerError {}

/// One visitor's walk through a workflow.
#[derive(Debug, Clone)]
pub struct Conversation {
    workflow: Arc<Workflow>,
    prefill: Prefill,
    current: Option<usize>,
    captured: Vec<Captured>,
    steps: Vec<Step>,
}

impl Conversation {
    /// Starts at the workflow's entry and moves past every step the pre-fill answers, so the
    /// conversation begins at the first unanswered step.
    pub fn start(workflow: Arc<Workflow>, prefill: Prefill) -> Self {
        let start = workflow.start;
        let mut conversation = Conversation {
            workflow,
            prefill,
            current: None,
            captured: Vec::new(),
            steps: Vec::new(),
        };
        conversation.advance(Some(start));
        conversation
    }

    /// What the visitor is asked now; `None` once the workflow has ended.
    pub fn prompt(&self) -> Option<Prompt<'_>> {
        let node = &self.workflow.nodes[self.current?];
        let fields = match &node.kind {
            NodeKind::FormField { field, .. } => vec![field],
            NodeKind::CollectInfo { fields, .. } => fields
                .iter()
                .filter(|f| self.prefill.get(&f.field_name).is_none())
                .collect(),
            // `advance` never stops on a conditional node.
            NodeKind::Conditional { .. } => Vec::new(),
        };
        Some(Prompt {
            node: &node.id,
            label: &node.label,
            fields,
        })
    }

    /// True once the workflow has ended.
    pub fn is_finished(&self) -> bool {
        self.current.is_none()
    }

    /// Answers the current prompt with (field name, value) pairs; every shown field needs a
    /// non-blank value, values for fields not shown are ignored. Answers are trimmed and cut to
    /// [`MAX_ANSWER_CHARS`].
    pub fn answer<'v>(
        &mut self,
        values: impl IntoIterator<Item = (&'v str, &'v str)>,
    ) -> Result<(), AnswerError> {
        let Some(current) = self.current else {
            return Err(AnswerError::Finished);
        };
        let values: Vec<(&str, &str)> = values.into_iter().collect();
        let lookup = |name: &str| {
            values
                .iter()
                .rev()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let workflow = Arc::clone(&self.workflow);
        let node = &workflow.nodes[current];
        let (shown, next, partly): (Vec<&Field>, Option<usize>, bool) = match &node.kind {
            NodeKind::FormField { field, next } => (vec![field], *next, false),
            NodeKind::CollectInfo { fields, next } => {
                let shown: Vec<&Field> = fields
                    .iter()
                    .filter(|f| self.prefill.get(&f.field_name).is_none())
                    .collect();
                let partly = shown.len() < fields.len();
                (shown, *next, partly)
            }
            NodeKind::Conditional { .. } => (Vec::new(), None, false),
        };
        let mut answers = Vec::with_capacity(shown.len());
        for field in shown {
            match lookup(&field.field_name) {
                Some(v) => answers.push((field.field_name.as_str(), v)),
                None => return Err(AnswerError::Missing(field.field_name.clone())),
            }
        }
        for (field, value) in answers {
            let value: String = value.chars().take(MAX_ANSWER_CHARS).collect();
            self.capture(field, value, Source::Visitor);
        }
        self.steps.push(Step {
            node: node.id.clone(),
            outcome: if partly {
                Outcome::PartlyPrefilled
            } else {
                Outcome::Answered
            },
        });
        self.advance(next);
        Ok(())
    }

    /// `workflow_data_captured`: every field answered so far, typed or pre-filled, in order.
    pub fn captured(&self) -> &[Captured] {
        &self.captured
    }

    /// The captured value of a field.
    pub fn value(&self, field: &str) -> Option<&str> {
        self.captured
            .iter()
            .find(|c| c.field == field)
            .map(|c| c.value.as_str())
    }

    /// The nodes completed so far, skipped ones included.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The workflow this conversation walks.
    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    fn capture(&mut self, field: &str, value: String, source: Source) {
        match self.captured.iter_mut().find(|c| c.field == field) {
            Some(existing) => {
                existing.value = value;
                existing.source = source;
            }
            None => self.captured.push(Captured {
                field: field.to_owned(),
                value,
                source,
            }),
        }
    }

    /// Walks from `next` past every node that needs nothing from the visitor; stops at the first
    /// node that does, or at the end. Terminates because workflows are acyclic.
    fn advance(&mut self, mut next: Option<usize>) {
        let workflow = Arc::clone(&self.workflow);
        while let Some(i) = next {
            let node = &workflow.nodes[i];
            match &node.kind {
                NodeKind::FormField { field, next: after } => {
                    let Some(value) = self.prefill.get(&field.field_name) else {
                        self.current = Some(i);
                        return;
                    };
                    let value = value.to_owned();
                    self.capture(&field.field_name, value, Source::Prefill);
                    self.steps.push(Step {
                        node: node.id.clone(),
                        outcome: Outcome::Skipped,
                    });
                    next = *after;
                }
                NodeKind::CollectInfo {
                    fields,
                    next: after,
                } => {
                    // Pre-filled fields are submitted on arrival, as if typed; the rest are asked.
                    let mut missing = false;
                    for field in fields {
                        match self.prefill.get(&field.field_name) {
                            Some(value) => {
                                let value = value.to_owned();
                                self.capture(&field.field_name, value, Source::Prefill);
                            }
                            None => missing = true,
                        }
                    }
                    if missing {
                        self.current = Some(i);
                        return;
                    }
                    self.steps.push(Step {
                        node: node.id.clone(),
                        outcome: Outcome::Skipped,
                    });
                    next = *after;
                }
                NodeKind::Conditional {
                    field,
                    condition,
                    then,
                    otherwise,
                } => {
                    let held = condition.holds(self.value(field));
                    self.steps.push(Step {
                        node: node.id.clone(),
                        outcome: Outcome::Branched { held },
                    });
                    next = if held { *then } else { *otherwise };
                }
            }
        }
        self.current = None;
    }
}
