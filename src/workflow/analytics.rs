//! Node analytics: completions by node, skipped ones counted as completed (and as skipped).

use std::collections::BTreeMap;

use super::{Outcome, Step};

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
