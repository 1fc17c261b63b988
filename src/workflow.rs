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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use crate::prefill::{EMAIL_SLOTS, NAME_SLOTS, PHONE_SLOTS};

/// The pre-fill slots a workflow field may be named after, in the fixed order of SPEC §1.6.
pub const PREFILL_SLOTS: [&str; 8] = [
    NAME_SLOTS[0],
    NAME_SLOTS[1],
    NAME_SLOTS[2],
    EMAIL_SLOTS[0],
    EMAIL_SLOTS[1],
    PHONE_SLOTS[0],
    PHONE_SLOTS[1],
    PHONE_SLOTS[2],
];

/// Longest answer kept from a visitor, in Unicode code points (the context's value cap).
pub const MAX_ANSWER_CHARS: usize = 500;

/// Why a workflow definition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowError {
    /// The text is not a workflow document; the parser's message says where.
    Json(String),
    /// The workflow has no nodes.
    Empty,
    /// Two nodes share an id.
    DuplicateId(String),
    /// A node (or `start`) points at an id no node has.
    UnknownTarget {
        /// The node holding the reference (`start` for the workflow's entry).
        from: String,
        /// The id that does not exist.
        to: String,
    },
    /// Following `next`/`then`/`else` from this node leads back to it.
    Cycle(String),
    /// A node is missing something it needs (an empty `field_name`, a `collect_info` without fields,
    /// a comparison without `value`).
    Invalid {
        /// The node's id.
        node: String,
        /// What is wrong, for the workflow's author.
        problem: &'static str,
    },
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkflowError::Json(msg) => {
                write!(f, "workflow is not valid JSON for a workflow: {msg}")
            }
            WorkflowError::Empty => f.write_str("workflow has no nodes"),
            WorkflowError::DuplicateId(id) => write!(f, "node id `{id}` is used twice"),
            WorkflowError::UnknownTarget { from, to } => {
                write!(f, "`{from}` points at `{to}`, which is not a node id")
            }
            WorkflowError::Cycle(id) => write!(f, "node `{id}` can be reached from itself"),
            WorkflowError::Invalid { node, problem } => write!(f, "node `{node}`: {problem}"),
        }
    }
}

impl std::error::Error for WorkflowError {}

/// One field a node asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Field {
    /// The name the answer is captured under; pre-fill matches on it.
    pub field_name: String,
    /// What the visitor is shown.
    #[serde(default)]
    pub label: String,
}

/// How a `conditional` node tests a captured field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The field was captured with a non-empty value.
    IsSet,
    /// The field was not captured, or is empty.
    IsNotSet,
    /// Exactly equal.
    Equals(String),
    /// Not exactly equal (an absent field is not equal).
    NotEquals(String),
    /// Contains the text.
    Contains(String),
    /// Starts with the text.
    StartsWith(String),
    /// Ends with the text.
    EndsWith(String),
}

impl Condition {
    fn holds(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (Condition::IsSet, v) => v.is_some_and(|v| !v.is_empty()),
            (Condition::IsNotSet, v) => v.is_none_or(str::is_empty),
            (Condition::NotEquals(want), v) => v != Some(want.as_str()),
            (_, None) => false,
            (Condition::Equals(want), Some(v)) => v == want,
            (Condition::Contains(want), Some(v)) => v.contains(want.as_str()),
            (Condition::StartsWith(want), Some(v)) => v.starts_with(want.as_str()),
            (Condition::EndsWith(want), Some(v)) => v.ends_with(want.as_str()),
        }
    }
}

/// What a node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// Asks one field.
    FormField {
        /// The field asked.
        field: Field,
        /// The node after this one; `None` ends the workflow.
        next: Option<usize>,
    },
    /// Asks several fields at once.
    CollectInfo {
        /// The fields asked, in order.
        fields: Vec<Field>,
        /// The node after this one; `None` ends the workflow.
        next: Option<usize>,
    },
    /// Branches on a captured field.
    Conditional {
        /// The captured field tested.
        field: String,
        /// The test.
        condition: Condition,
        /// Where to go when the test holds; `None` ends the workflow.
        then: Option<usize>,
        /// Where to go otherwise; `None` ends the workflow.
        otherwise: Option<usize>,
    },
}

/// One node of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's id, unique in its workflow.
    pub id: String,
    /// Shown above the node's fields (the question, for a `form_field`).
    pub label: String,
    /// What the node does.
    pub kind: NodeKind,
}

/// A validated workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    nodes: Vec<Node>,
    start: usize,
}

/// The JSON shape of a workflow document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    #[serde(default)]
    start: Option<String>,
    nodes: Vec<RawNode>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawNode {
    FormField {
        id: String,
        field_name: String,
        #[serde(default)]
        label: String,
        #[serde(default)]
        next: Option<String>,
    },
    CollectInfo {
        id: String,
        #[serde(default)]
        label: String,
        fields: Vec<Field>,
        #[serde(default)]
        next: Option<String>,
    },
    Conditional {
        id: String,
        #[serde(default)]
        label: String,
        field: String,
        op: RawOp,
        #[serde(default)]
        value: Option<String>,
        #[serde(default)]
        then: Option<String>,
        #[serde(default, rename = "else")]
        otherwise: Option<String>,
    },
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawOp {
    IsSet,
    IsNotSet,
    Equals,
    NotEquals,
    Contains,
    StartsWith,
    EndsWith,
}

impl RawNode {
    fn id(&self) -> &str {
        match self {
            RawNode::FormField { id, .. }
            | RawNode::CollectInfo { id, .. }
            | RawNode::Conditional { id, .. } => id,
        }
    }
}

impl Workflow {
    /// Parses and validates a workflow document (see `widget/demo/workflow.json` for the shape).
    pub fn from_json(text: &str) -> Result<Self, WorkflowError> {
        let raw: RawWorkflow =
            serde_json::from_str(text).map_err(|e| WorkflowError::Json(e.to_string()))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawWorkflow) -> Result<Self, WorkflowError> {
        if raw.nodes.is_empty() {
            return Err(WorkflowError::Empty);
        }
        let mut index = HashMap::with_capacity(raw.nodes.len());
        for (i, node) in raw.nodes.iter().enumerate() {
            if node.id().is_empty() {
                return Err(WorkflowError::Invalid {
                    node: String::new(),
                    problem: "every node needs a non-empty `id`",
                });
            }
            if index.insert(node.id().to_owned(), i).is_some() {
                return Err(WorkflowError::DuplicateId(node.id().to_owned()));
            }
        }
        let resolve = |from: &str, to: Option<String>| -> Result<Option<usize>, WorkflowError> {
            match to {
                None => Ok(None),
                Some(to) => match index.get(&to) {
                    Some(&i) => Ok(Some(i)),
                    None => Err(WorkflowError::UnknownTarget {
                        from: from.to_owned(),
                        to,
                    }),
                },
            }
        };
        let start = resolve("start", raw.start)?.unwrap_or(0);

        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for node in raw.nodes {
            let invalid = |id: &str, problem| WorkflowError::Invalid {
                node: id.to_owned(),
                problem,
            };
            let node = match node {
                RawNode::FormField {
                    id,
                    field_name,
                    label,
                    next,
                } => {
                    if field_name.is_empty() {
                        return Err(invalid(&id, "`field_name` must not be empty"));
                    }
                    let next = resolve(&id, next)?;
                    Node {
                        kind: NodeKind::FormField {
                            field: Field {
                                field_name,
                                label: label.clone(),
                            },
                            next,
                        },
                        id,
                        label,
                    }
                }
                RawNode::CollectInfo {
                    id,
                    label,
                    fields,
                    next,
                } => {
                    if fields.is_empty() {
                        return Err(invalid(&id, "`fields` must list at least one field"));
                    }
                    if fields.iter().any(|f| f.field_name.is_empty()) {
                        return Err(invalid(&id, "every field needs a non-empty `field_name`"));
                    }
                    let next = resolve(&id, next)?;
                    Node {
                        kind: NodeKind::CollectInfo { fields, next },
                        id,
                        label,
                    }
                }
                RawNode::Conditional {
                    id,
                    label,
                    field,
                    op,
                    value,
                    then,
                    otherwise,
                } => {
                    if field.is_empty() {
                        return Err(invalid(&id, "`field` must not be empty"));
                    }
                    let condition = match (op, value) {
                        (RawOp::IsSet, _) => Condition::IsSet,
                        (RawOp::IsNotSet, _) => Condition::IsNotSet,
                        (_, None) => return Err(invalid(&id, "this `op` needs a `value`")),
                        (RawOp::Equals, Some(v)) => Condition::Equals(v),
                        (RawOp::NotEquals, Some(v)) => Condition::NotEquals(v),
                        (RawOp::Contains, Some(v)) => Condition::Contains(v),
                        (RawOp::StartsWith, Some(v)) => Condition::StartsWith(v),
                        (RawOp::EndsWith, Some(v)) => Condition::EndsWith(v),
                    };
                    let then = resolve(&id, then)?;
                    let otherwise = resolve(&id, otherwise)?;
                    Node {
                        kind: NodeKind::Conditional {
                            field,
                            condition,
                            then,
                            otherwise,
                        },
                        id,
                        label,
                    }
                }
            };
            nodes.push(node);
        }
        let workflow = Workflow { nodes, start };
        workflow.check_acyclic()?;
        Ok(workflow)
    }

    /// Rejects any cycle, so that walking past skipped nodes always ends.
    fn check_acyclic(&self) -> Result<(), WorkflowError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut marks = vec![Mark::New; self.nodes.len()];
        for root in 0..self.nodes.len() {
            if marks[root] != Mark::New {
                continue;
            }
            // Iterative depth-first search: (node, index of the next successor to visit).
            let mut stack = vec![(root, 0usize)];
            marks[root] = Mark::Open;
            while let Some(top) = stack.last_mut() {
                let (node, cursor) = *top;
                top.1 += 1;
                if let Some(next) = self.successors(node).get(cursor).copied().flatten() {
                    match marks[next] {
                        Mark::Open => {
                            return Err(WorkflowError::Cycle(self.nodes[next].id.clone()));
                        }
                        Mark::New => {
                            marks[next] = Mark::Open;
                            stack.push((next, 0));
                        }
                        Mark::Done => {}
                    }
                } else if cursor >= 2 {
                    marks[node] = Mark::Done;
                    stack.pop();
                }
            }
        }
        Ok(())
    }

    /// Up to two successors; `None` marks an end of the workflow (or no second branch).
    fn successors(&self, node: usize) -> [Option<usize>; 2] {
        match &self.nodes[node].kind {
            NodeKind::FormField { next, .. } | NodeKind::CollectInfo { next, .. } => [*next, None],
            NodeKind::Conditional {
                then, otherwise, ..
            } => [*then, *otherwise],
        }
    }

    /// The nodes, in document order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The entry node's id.
    pub fn start_id(&self) -> &str {
        &self.nodes[self.start].id
    }
}

/// Pre-fill values by slot, as carried by the trusted `Prefill` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefill {
    slots: Vec<(&'static str, String)>,
}

/// Why a `Prefill` header value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefillError {
    /// Not standard padded base64.
    Base64,
    /// Not a JSON object.
    Json,
}

impl fmt::Display for PrefillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrefillError::Base64 => "pre-fill header is not base64",
            PrefillError::Json => "pre-fill header is not a JSON object",
        })
    }
}

impl std::error::Error for PrefillError {}

impl Prefill {
    /// No pre-fill at all (an anonymous visitor).
    pub fn none() -> Self {
        Self::default()
    }

    /// Builds pre-fill from (slot, value) pairs; unknown slots and empty values are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut slots: Vec<(&'static str, String)> = Vec::new();
        for (slot, value) in pairs {
            let Some(known) = PREFILL_SLOTS.iter().find(|s| **s == slot) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            match slots.iter_mut().find(|(s, _)| s == known) {
                Some(existing) => existing.1 = value.to_owned(),
                None => slots.push((known, value.to_owned())),
            }
        }
        slots.sort_by_key(|(s, _)| PREFILL_SLOTS.iter().position(|k| k == s));
        Prefill { slots }
    }

    /// Reads the `Prefill` header value: standard base64 of a JSON object slot → string value.
    /// An empty header value is no pre-fill.
    pub fn from_header(value: &str) -> Result<Self, PrefillError> {
        if value.is_empty() {
            return Ok(Self::none());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| PrefillError::Base64)?;
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes).map_err(|_| PrefillError::Json)?;
        Ok(Self::from_pairs(
            object
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v))),
        ))
    }

    /// The value for a field name, when that name is a pre-fill slot with a value.
    pub fn get(&self, field_name: &str) -> Option<&str> {
        self.slots
            .iter()
            .find(|(s, _)| *s == field_name)
            .map(|(_, v)| v.as_str())
    }

    /// Slot → value, in the fixed slot order.
    pub fn slots(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.slots.iter().map(|(s, v)| (*s, v.as_str()))
    }

    /// True when no slot has a value.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

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

/// Per-node counters across conversations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeStats {
    /// Times the node was completed, skipped ones included.
    pub completed: u64,
    /// Of those, times it was skipped entirely by pre-fill.
    pub skipped: u64,
}

/// Node analytics for one workflow: completions by node id.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Analytics {
    by_node: BTreeMap<String, NodeStats>,
}

impl Analytics {
    /// Empty analytics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts completed steps (pass each step once: e.g. `&conversation.steps()[seen..]`).
    pub fn record(&mut self, steps: &[Step]) {
        for step in steps {
            let stats = self.by_node.entry(step.node.clone()).or_default();
            stats.completed += 1;
            if step.outcome == Outcome::Skipped {
                stats.skipped += 1;
            }
        }
    }

    /// The counters of one node (zero when it was never completed).
    pub fn node(&self, id: &str) -> NodeStats {
        self.by_node.get(id).copied().unwrap_or_default()
    }

    /// All counters, by node id.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, NodeStats)> {
        self.by_node.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

#[cfg(test)]
mod tests {
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
        let wf = Workflow::from_json(include_str!("../widget/demo/workflow.json")).unwrap();
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
