//! The store's two background tasks, both started by calls and ending on their own: the Cluster
//! slot-map refresh, and the drain that retries logouts whose `DEL` did not land.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Core;
use super::metrics::metrics;

/// Bound on one `CLUSTER SLOTS` round trip.
const REFRESH_DEADLINE: Duration = Duration::from_secs(1);
/// Pause between drain rounds.
const DRAIN_INTERVAL: Duration = Duration::from_millis(200);
/// Logouts retried per drain round.
const DRAIN_BATCH: usize = 64;

/// Re-reads the Cluster slot map in a task of its own (the caller claimed the refresh).
pub(super) fn refresh_slots(core: Arc<Core>) {
    tokio::spawn(async move {
        let Some(slots) = &core.slots else { return };
        let query = async {
            let (mut conn, _) = core.link.get().await.ok()?;
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("SLOTS");
            conn.query::<redis::Value>(&cmd).await.ok()
        };
        let reply = tokio::time::timeout(REFRESH_DEADLINE, query)
            .await
            .ok()
            .flatten();
        if let Some(mut masters) = slots.refreshed(reply) {
            masters.push(core.default_node.clone());
            for gone in core.nodes.retain(&masters) {
                metrics().forget(&gone);
            }
        }
    });
}

/// Starts the drain unless it runs: every [`DRAIN_INTERVAL`] it retries a batch of waiting
/// logouts (each under its node's breaker) until none waits. Ends when the store is dropped.
pub(super) fn start_drain(core: &Arc<Core>) {
    if core.draining.swap(true, Ordering::AcqRel) {
        return;
    }
    let weak = Arc::downgrade(core);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(DRAIN_INTERVAL).await;
            let Some(core) = weak.upgrade() else { return };
            let keys = core.pending.some(DRAIN_BATCH);
            if keys.is_empty() {
                core.draining.store(false, Ordering::Release);
                // A logout added after the look above would otherwise wait for the next one.
                if core.pending.len() == 0 || core.draining.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            }
            for key in keys {
                // Failures stay pending; the node's breaker paces the retries.
                let _ = core.settle(&key).await;
            }
            metrics().pending(core.pending.len());
        }
    });
}
