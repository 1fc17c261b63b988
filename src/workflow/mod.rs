//! The reference workflow engine: `form_field`, `collect_info` and `conditional` nodes with pre-fill.
//!
//! This is the backend half of the visitor-context feature, written to the product's rules so the
//! demo (and anyone integrating flowgate) can see exactly what the trusted `Prefill` header does:
//!
//! - a `form_field` node whose `field_name` has a pre-fill value is skipped, and the value is
//!   submitted to `workflow_data_captured` exactly as if the visitor had typed it;
//! - a `collect_info` node checks its fields one by one: pre-filled ones are captured, the rest
//!   are still asked, and the node is skipped only when every field is pre-filled;
//! - skipped steps count as completed in the node analytics;
//! - a `conditional` node evaluates captured fields, pre-filled ones included;
//! - only the documented slot names pre-fill: a custom field name (`full_name`, `company`) is
//!   never mapped to an `ims_*` key.
//!
//! Pure: no I/O, no clock. Workflows are validated when loaded (unique ids, known targets, no
//! cycles), so walking one always ends.
//!
//! - `definition` — a workflow document → a validated [`Workflow`];
//! - `prefill` — the `Prefill` header → slot values;
//! - `conversation` — one visitor's walk, skipping what the pre-fill answers;
//! - `analytics` — completions (skips included) by node.

mod analytics;
mod conversation;
mod definition;
mod prefill;

pub use analytics::{Analytics, NodeStats};
pub use conversation::{AnswerError, Captured, Conversation, Outcome, Prompt, Source, Step};
pub use definition::{Condition, Field, Node, NodeKind, Workflow, WorkflowError};
pub use prefill::{Prefill, PrefillError};

/// The pre-fill slots a workflow field may be named after, in the fixed order of SPEC §1.6.
pub const PREFILL_SLOTS: [&str; 8] = crate::prefill::ALL_SLOTS;

/// Longest answer kept from a visitor, in Unicode code points (the context's value cap).
pub const MAX_ANSWER_CHARS: usize = 500;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine as _;

    use super::*;

    const SUPPORT: &str = r#"{
      "start": "ask_name",
      "nodes": [
        {"id": "ask_name", "type": "form_field", "field_name": "visitor_name",
         "label": "What is your name?", "next": "ask_email"},
        {"id": "ask_email", "type": "form_field", "field_name": "visitor_email",
         "label": "What is your email address?", "next": "contact"},
        {"id": "contact", "type": "collect_info", "label": "How can we reach you?",
         "fields": [{"field_name": "visitor_phone", "label": "Phone"},
                    {"field_name": "company", "label": "Company"}],
         "next": "route"},
        {"id": "route", "type": "conditional", "field": "visitor_email",
         "op": "ends_with", "value": "@example.com", "then": "ask_order", "else": "ask_question"},
        {"id": "ask_order", "type": "form_field", "field_name": "order_number",
         "label": "Which order is it about?"},
        {"id": "ask_question", "type": "form_field", "field_name": "question",
         "label": "How can we help?"}
      ]
    }"#;

    fn support() -> Arc<Workflow> {
        Arc::new(Workflow::from_json(SUPPORT).unwrap())
    }

    fn prompt_fields(c: &Conversation) -> Vec<&str> {
        c.prompt()
            .unwrap()
            .fields
            .iter()
            .map(|f| f.field_name.as_str())
            .collect()
    }

    fn jane() -> Prefill {
        Prefill::from_pairs([
            ("visitor_name", "Jane Smith"),
            ("username", "Jane Smith"),
            ("name", "Jane Smith"),
            ("visitor_email", "jane@example.com"),
            ("email", "jane@example.com"),
        ])
    }

    #[test]
    fn the_demo_workflow_is_valid() {
        let wf = Workflow::from_json(include_str!("../../widget/demo/workflow.json")).unwrap();
        assert_eq!(wf.start_id(), "ask_name");
        assert_eq!(wf.nodes().len(), 6);
    }

    #[test]
    fn anonymous_visitor_sees_every_step() {
        let mut c = Conversation::start(support(), Prefill::none());
        assert_eq!(c.prompt().unwrap().node, "ask_name");
        assert_eq!(c.prompt().unwrap().label, "What is your name?");
        c.answer([("visitor_name", "Ann")]).unwrap();
        assert_eq!(c.prompt().unwrap().node, "ask_email");
        c.answer([("visitor_email", "ann@elsewhere.org")]).unwrap();
        assert_eq!(prompt_fields(&c), ["visitor_phone", "company"]);
        c.answer([("visitor_phone", "555"), ("company", "Acme")])
            .unwrap();
        assert_eq!(c.prompt().unwrap().node, "ask_question");
        c.answer([("question", "Where is my parcel?")]).unwrap();
        assert!(c.is_finished());
        assert!(c.captured().iter().all(|x| x.source == Source::Visitor));
        assert_eq!(c.captured().len(), 5);
    }

    #[test]
    fn prefilled_form_fields_are_skipped_and_captured_as_if_typed() {
        let c = Conversation::start(support(), jane());
        // The conversation starts at the first unanswered step.
        assert_eq!(c.prompt().unwrap().node, "contact");
        assert_eq!(
            c.captured(),
            [
                Captured {
                    field: "visitor_name".into(),
                    value: "Jane Smith".into(),
                    source: Source::Prefill
                },
                Captured {
                    field: "visitor_email".into(),
                    value: "jane@example.com".into(),
                    source: Source::Prefill
                },
            ]
        );
        assert_eq!(
            c.steps(),
            [
                Step {
                    node: "ask_name".into(),
                    outcome: Outcome::Skipped
                },
                Step {
                    node: "ask_email".into(),
                    outcome: Outcome::Skipped
                },
            ]
        );
    }

    #[test]
    fn collect_info_fields_are_checked_one_by_one() {
        let mut prefill: Vec<(&str, &str)> = vec![("visitor_phone", "+44 20 7946 0000")];
        prefill.push(("visitor_name", "Jane"));
        let mut c = Conversation::start(support(), Prefill::from_pairs(prefill));
        assert_eq!(c.prompt().unwrap().node, "ask_email");
        c.answer([("visitor_email", "jane@example.com")]).unwrap();
        // Phone is pre-filled, company is a custom field: only company is asked.
        assert_eq!(prompt_fields(&c), ["company"]);
        assert_eq!(c.value("visitor_phone"), Some("+44 20 7946 0000"));
        c.answer([("company", "Acme")]).unwrap();
        assert_eq!(
            c.steps().last(),
            Some(&Step {
                node: "route".into(),
                outcome: Outcome::Branched { held: true }
            })
        );
        assert!(c.steps().contains(&Step {
            node: "contact".into(),
            outcome: Outcome::PartlyPrefilled
        }));
    }

    #[test]
    fn collect_info_is_skipped_only_when_every_field_is_prefilled() {
        let wf = Arc::new(
            Workflow::from_json(
                r#"{"nodes":[{"id":"who","type":"collect_info","fields":[
                    {"field_name":"name"},{"field_name":"email"},{"field_name":"phone"}]}]}"#,
            )
            .unwrap(),
        );
        let two = Prefill::from_pairs([("name", "Jane"), ("email", "j@x.io")]);
        let c = Conversation::start(Arc::clone(&wf), two);
        assert_eq!(prompt_fields(&c), ["phone"]);
        // Pre-filled fields are submitted on arrival.
        assert_eq!(c.captured().len(), 2);

        let three = Prefill::from_pairs([("name", "Jane"), ("email", "j@x.io"), ("phone", "1")]);
        let c = Conversation::start(wf, three);
        assert!(c.is_finished());
        assert_eq!(c.steps()[0].outcome, Outcome::Skipped);
    }

    #[test]
    fn custom_field_names_are_not_mapped() {
        let wf = Arc::new(
            Workflow::from_json(
                r#"{"nodes":[
                  {"id":"a","type":"form_field","field_name":"full_name","next":"b"},
                  {"id":"b","type":"form_field","field_name":"ims_username"}]}"#,
            )
            .unwrap(),
        );
        let mut c = Conversation::start(wf, jane());
        assert_eq!(c.prompt().unwrap().node, "a");
        c.answer([("full_name", "J. Smith")]).unwrap();
        assert_eq!(c.prompt().unwrap().node, "b");
        // Slots outside the documented list are ignored even if a header carried them.
        assert!(Prefill::from_pairs([("full_name", "x"), ("ims_username", "y")]).is_empty());
    }

    #[test]
    fn conditional_sees_prefilled_fields() {
        let c = Conversation::start(support(), jane());
        let mut c = c;
        c.answer([("visitor_phone", "1"), ("company", "Acme")])
            .unwrap();
        // jane@example.com came from pre-fill and routes to the order question.
        assert_eq!(c.prompt().unwrap().node, "ask_order");

        let other = Prefill::from_pairs([("visitor_email", "zoe@elsewhere.jp")]);
        let mut c = Conversation::start(support(), other);
        c.answer([("visitor_name", "Zoë")]).unwrap();
        c.answer([("visitor_phone", "1"), ("company", "Acme")])
            .unwrap();
        assert_eq!(c.prompt().unwrap().node, "ask_question");
    }

    #[test]
    fn conditions() {
        use Condition::*;
        assert!(IsSet.holds(Some("x")));
        assert!(!IsSet.holds(Some("")));
        assert!(!IsSet.holds(None));
        assert!(IsNotSet.holds(None));
        assert!(IsNotSet.holds(Some("")));
        assert!(Equals("a".into()).holds(Some("a")));
        assert!(!Equals("a".into()).holds(None));
        assert!(NotEquals("a".into()).holds(None));
        assert!(!NotEquals("a".into()).holds(Some("a")));
        assert!(Contains("@".into()).holds(Some("a@b")));
        assert!(StartsWith("+44".into()).holds(Some("+44 1")));
        assert!(!EndsWith(".com".into()).holds(Some("a.org")));
    }

    #[test]
    fn skipped_steps_count_as_completed_in_analytics() {
        let wf = support();
        let mut analytics = Analytics::new();

        let mut known = Conversation::start(Arc::clone(&wf), jane());
        let mut seen = 0;
        analytics.record(&known.steps()[seen..]);
        seen = known.steps().len();
        known
            .answer([("visitor_phone", "1"), ("company", "Acme")])
            .unwrap();
        analytics.record(&known.steps()[seen..]);

        let mut anon = Conversation::start(wf, Prefill::none());
        anon.answer([("visitor_name", "Ann")]).unwrap();
        analytics.record(anon.steps());

        assert_eq!(
            analytics.node("ask_name"),
            NodeStats {
                completed: 2,
                skipped: 1
            }
        );
        assert_eq!(
            analytics.node("ask_email"),
            NodeStats {
                completed: 1,
                skipped: 1
            }
        );
        assert_eq!(
            analytics.node("contact"),
            NodeStats {
                completed: 1,
                skipped: 0
            }
        );
        assert_eq!(analytics.node("route").completed, 1);
        assert_eq!(analytics.node("ask_order"), NodeStats::default());
    }

    #[test]
    fn answers_are_validated_trimmed_and_bounded() {
        let mut c = Conversation::start(support(), Prefill::none());
        assert_eq!(
            c.answer([("visitor_name", "   ")]),
            Err(AnswerError::Missing("visitor_name".into()))
        );
        assert_eq!(
            c.answer([("other", "x")]),
            Err(AnswerError::Missing("visitor_name".into()))
        );
        assert_eq!(c.prompt().unwrap().node, "ask_name");
        let long = "é".repeat(MAX_ANSWER_CHARS + 10);
        c.answer([("visitor_name", long.as_str())]).unwrap();
        assert_eq!(
            c.value("visitor_name").unwrap().chars().count(),
            MAX_ANSWER_CHARS
        );
        c.answer([("visitor_email", " a@b.c ")]).unwrap();
        assert_eq!(c.value("visitor_email"), Some("a@b.c"));

        // Answers for pre-filled fields cannot overwrite them.
        let mut c = Conversation::start(support(), jane());
        c.answer([
            ("visitor_name", "Mallory"),
            ("visitor_phone", "1"),
            ("company", "Acme"),
        ])
        .unwrap();
        assert_eq!(c.value("visitor_name"), Some("Jane Smith"));
    }

    #[test]
    fn finished_conversation_refuses_answers() {
        let wf = Arc::new(
            Workflow::from_json(
                r#"{"nodes":[{"id":"a","type":"form_field","field_name":"name"}]}"#,
            )
            .unwrap(),
        );
        let mut c = Conversation::start(wf, Prefill::from_pairs([("name", "Jane")]));
        assert!(c.is_finished());
        assert!(c.prompt().is_none());
        assert_eq!(c.answer([("name", "x")]), Err(AnswerError::Finished));
    }

    #[test]
    fn prefill_header_is_read() {
        let header = base64::engine::general_purpose::STANDARD.encode(
            r#"{"visitor_name":"Zoë 山田 👩‍💻","username":"Zoë 山田 👩‍💻","custom1":"","x":"y","phone":7}"#,
        );
        let p = Prefill::from_header(&header).unwrap();
        assert_eq!(
            p.slots().collect::<Vec<_>>(),
            [("visitor_name", "Zoë 山田 👩‍💻"), ("username", "Zoë 山田 👩‍💻")]
        );
        assert_eq!(Prefill::from_header(""), Ok(Prefill::none()));
        assert_eq!(Prefill::from_header("%%%"), Err(PrefillError::Base64));
        let array = base64::engine::general_purpose::STANDARD.encode("[1]");
        assert_eq!(Prefill::from_header(&array), Err(PrefillError::Json));
    }

    #[test]
    fn invalid_workflows_are_refused_with_the_reason() {
        let err = |s: &str| Workflow::from_json(s).unwrap_err();
        assert_eq!(err(r#"{"nodes":[]}"#), WorkflowError::Empty);
        assert!(matches!(err("{"), WorkflowError::Json(_)));
        assert!(matches!(
            err(r#"{"nodes":[{"id":"a","type":"menu"}]}"#),
            WorkflowError::Json(_)
        ));
        assert_eq!(
            err(
                r#"{"nodes":[{"id":"a","type":"form_field","field_name":"x"},
                            {"id":"a","type":"form_field","field_name":"y"}]}"#
            ),
            WorkflowError::DuplicateId("a".into())
        );
        assert_eq!(
            err(r#"{"nodes":[{"id":"a","type":"form_field","field_name":"x","next":"zz"}]}"#),
            WorkflowError::UnknownTarget {
                from: "a".into(),
                to: "zz".into()
            }
        );
        assert_eq!(
            err(r#"{"start":"q","nodes":[{"id":"a","type":"form_field","field_name":"x"}]}"#),
            WorkflowError::UnknownTarget {
                from: "start".into(),
                to: "q".into()
            }
        );
        assert!(matches!(
            err(r#"{"nodes":[{"id":"a","type":"collect_info","fields":[]}]}"#),
            WorkflowError::Invalid { .. }
        ));
        assert!(matches!(
            err(r#"{"nodes":[{"id":"a","type":"conditional","field":"x","op":"equals"}]}"#),
            WorkflowError::Invalid { .. }
        ));
        assert_eq!(
            err(r#"{"nodes":[
                {"id":"a","type":"form_field","field_name":"x","next":"b"},
                {"id":"b","type":"conditional","field":"x","op":"is_set","then":"c","else":"a"},
                {"id":"c","type":"form_field","field_name":"y"}]}"#),
            WorkflowError::Cycle("a".into())
        );
        let msg = err(r#"{"nodes":[{"id":"a","type":"form_field","field_name":"x","next":"zz"}]}"#)
            .to_string();
        assert_eq!(msg, "`a` points at `zz`, which is not a node id");
    }

    #[test]
    fn a_long_chain_of_skipped_nodes_is_walked_without_recursion() {
        let n = 20_000;
        let mut nodes = Vec::new();
        for i in 0..n {
            let next = if i + 1 < n {
                format!(r#","next":"n{}""#, i + 1)
            } else {
                String::new()
            };
            nodes.push(format!(
                r#"{{"id":"n{i}","type":"form_field","field_name":"name"{next}}}"#
            ));
        }
        let doc = format!(r#"{{"nodes":[{}]}}"#, nodes.join(","));
        let wf = Arc::new(Workflow::from_json(&doc).unwrap());
        let c = Conversation::start(wf, Prefill::from_pairs([("name", "Jane")]));
        assert!(c.is_finished());
        assert_eq!(c.steps().len(), n);
    }
}
