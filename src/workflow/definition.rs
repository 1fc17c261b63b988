//! A workflow document (JSON) → a validated [`Workflow`]: unique ids, known targets, no cycles,
//! so walking one always ends.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;

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
    pub(super) fn holds(&self, value: Option<&str>) -> bool {
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
    pub(super) nodes: Vec<Node>,
    pub(super) start: usize,
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
