//! One circuit breaker per Redis node, so one failing node never stops calls to the others.
//!
//! A node is named by its address (`host:port`): the configured node in standalone mode, the
//! master serving the key's slot in Cluster mode, the master the sentinels name in Sentinel
//! mode. The set is bounded by [`MAX_NODES`]; nodes past it share one breaker named
//! [`OVERFLOW_NODE`], so the metric labels stay bounded too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::store::FailureKind;
use crate::store::breaker::{Breaker, BreakerState};

/// Most nodes tracked one by one (a cluster of 64 masters and their replicas fits).
pub(crate) const MAX_NODES: usize = 128;
/// The shared name of nodes past [`MAX_NODES`].
pub(crate) const OVERFLOW_NODE: &str = "other";

/// One node's breaker and the last way a call to it failed.
#[derive(Debug)]
pub(crate) struct NodeState {
    /// The node's address, as labelled in metrics.
    pub(crate) name: Arc<str>,
    /// Paces calls to this node.
    pub(crate) breaker: Breaker,
    /// Index into [`FailureKind::ALL`] of the last failure, `u8::MAX` before any.
    last_failure: AtomicU8,
}

impl NodeState {
    /// Remembers how the last failed call failed.
    pub(crate) fn failed(&self, kind: FailureKind) {
        let index = FailureKind::ALL
            .iter()
            .position(|k| *k == kind)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(u8::MAX);
        self.last_failure.store(index, Ordering::Relaxed);
    }

    /// How the last failed call failed (`Timeout` before any: the breaker can only open on one).
    pub(crate) fn last_failure(&self) -> FailureKind {
        FailureKind::ALL
            .get(usize::from(self.last_failure.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or(FailureKind::Timeout)
    }
}

/// The breakers of every node met so far.
#[derive(Debug)]
pub(crate) struct Nodes {
    threshold: u32,
    cool_down: Duration,
    map: RwLock<HashMap<Arc<str>, Arc<NodeState>>>,
}

impl Nodes {
    /// No node yet; each gets a breaker of `threshold` failures and `cool_down` when first met.
    pub(crate) fn new(threshold: u32, cool_down: Duration) -> Self {
        Nodes {
            threshold,
            cool_down,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// The state of node `name`, created on first use.
    pub(crate) fn get(&self, name: &str) -> Arc<NodeState> {
        if let Some(state) = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return Arc::clone(state);
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let name = if map.len() >= MAX_NODES && !map.contains_key(name) {
            OVERFLOW_NODE
        } else {
            name
        };
        let state = map.entry(Arc::from(name)).or_insert_with(|| {
            Arc::new(NodeState {
                name: Arc::from(name),
                breaker: Breaker::new(self.threshold, self.cool_down),
                last_failure: AtomicU8::new(u8::MAX),
            })
        });
        Arc::clone(state)
    }

    /// Every node whose breaker is not closed, with its state and last failure, by name.
    pub(crate) fn troubled(&self) -> Vec<(Arc<str>, BreakerState, FailureKind)> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<_> = map
            .values()
            .filter_map(|n| {
                let state = n.breaker.state();
                (state != BreakerState::Closed)
                    .then(|| (Arc::clone(&n.name), state, n.last_failure()))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Keeps only the nodes the topology names now, so a node that left (a dead master replaced
    /// by its replica) stops degrading `/healthz`; returns the names dropped.
    pub(crate) fn retain(&self, current: &[String]) -> Vec<Arc<str>> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let mut gone = Vec::new();
        map.retain(|name, _| {
            let keep = &**name == OVERFLOW_NODE || current.iter().any(|c| c.as_str() == &**name);
            if !keep {
                gone.push(Arc::clone(name));
            }
            keep
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::breaker::Outcome;

    #[test]
    fn one_node_failing_leaves_the_others_closed() {
        let nodes = Nodes::new(1, Duration::from_secs(60));
        let a = nodes.get("127.0.0.1:7000");
        a.breaker
            .try_acquire()
            .expect("closed")
            .finish(Outcome::Failure);
        a.failed(FailureKind::WrongPass);
        assert!(nodes.get("127.0.0.1:7000").breaker.try_acquire().is_none());
        let other = nodes.get("127.0.0.1:7001");
        let permit = other
            .breaker
            .try_acquire()
            .expect("another node's breaker is closed");
        permit.finish(Outcome::Success);
        let troubled = nodes.troubled();
        assert_eq!(troubled.len(), 1);
        assert_eq!(&*troubled[0].0, "127.0.0.1:7000");
        assert_eq!(troubled[0].2, FailureKind::WrongPass);
    }

    #[test]
    fn the_label_set_is_bounded() {
        let nodes = Nodes::new(1, Duration::from_secs(1));
        for port in 0..(MAX_NODES + 50) {
            nodes.get(&format!("10.0.0.1:{port}"));
        }
        let map = nodes.map.read().unwrap();
        assert_eq!(map.len(), MAX_NODES + 1);
        assert!(map.contains_key(OVERFLOW_NODE));
    }
}
