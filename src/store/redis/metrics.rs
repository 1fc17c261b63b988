//! Prometheus metrics of the Redis store, in the default registry (served by `/metrics`).
//!
//! - `flowgate_redis_command_duration_seconds{command}` — latency of calls that reached Redis
//!   (answered or failed), not of calls cut by the deadline or refused by the breaker;
//! - `flowgate_redis_errors_total{command,kind,node}` — `kind` is a [`FailureKind`] label
//!   (`timeout`, `connection_refused`, `wrongpass`, `readonly`, …);
//! - `flowgate_redis_rejected_total{command,node}` — calls not made because that node's breaker
//!   was open;
//! - `flowgate_redis_breaker_state{node}` — 0 closed, 1 open, 2 half-open (updated on every
//!   call to the node);
//! - `flowgate_redis_breaker_opened_total{node}` — how often the node's breaker opened;
//! - `flowgate_redis_pending_deletes` — logouts whose `DEL` waits for Redis;
//! - `flowgate_redis_pending_deletes_dropped_total` — logouts past the bound (their sessions'
//!   reads are refused instead).
//!
//! `node` is a node address from the bounded set kept by the store (see `nodes`).

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    core::Collector,
};

use crate::store::FailureKind;
use crate::store::breaker::BreakerState;

/// The command a store call sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// `GET` (session routes).
    Get,
    /// `SET … EX` (init with an accepted context).
    Set,
    /// `DEL` (init without one).
    Del,
    /// `EVAL` of the bound write (`sessions.bind: key`: an init's checked `SET` or `DEL`).
    Eval,
}

impl Command {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Command::Get => "get",
            Command::Set => "set",
            Command::Del => "del",
            Command::Eval => "eval",
        }
    }
}

/// The store's metric handles.
pub(crate) struct Metrics {
    duration: HistogramVec,
    errors: IntCounterVec,
    rejected: IntCounterVec,
    breaker_state: IntGaugeVec,
    breaker_opened: IntCounterVec,
    pending: IntGauge,
    pending_dropped: IntCounter,
}

/// Latency buckets: a local Redis answers in ~100 µs; the default deadline is 50 ms.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];

/// The process-wide metrics, registered on first use.
pub(crate) fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let m = Metrics {
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "flowgate_redis_command_duration_seconds",
                    "Latency of Redis store commands that reached Redis.",
                )
                .buckets(BUCKETS.to_vec()),
                &["command"],
            )
            .expect("valid metric definition"),
            errors: IntCounterVec::new(
                Opts::new(
                    "flowgate_redis_errors_total",
                    "Redis store calls that failed, by command, kind and node.",
                ),
                &["command", "kind", "node"],
            )
            .expect("valid metric definition"),
            rejected: IntCounterVec::new(
                Opts::new(
                    "flowgate_redis_rejected_total",
                    "Redis store calls not made because the node's circuit breaker was open.",
                ),
                &["command", "node"],
            )
            .expect("valid metric definition"),
            breaker_state: IntGaugeVec::new(
                Opts::new(
                    "flowgate_redis_breaker_state",
                    "Redis circuit breaker per node: 0 closed, 1 open, 2 half-open.",
                ),
                &["node"],
            )
            .expect("valid metric definition"),
            breaker_opened: IntCounterVec::new(
                Opts::new(
                    "flowgate_redis_breaker_opened_total",
                    "Times a Redis node's circuit breaker opened.",
                ),
                &["node"],
            )
            .expect("valid metric definition"),
            pending: IntGauge::new(
                "flowgate_redis_pending_deletes",
                "Logouts whose DEL waits for Redis; their sessions' reads are refused meanwhile.",
            )
            .expect("valid metric definition"),
            pending_dropped: IntCounter::new(
                "flowgate_redis_pending_deletes_dropped_total",
                "Logouts past the pending bound; reads of their sessions are refused for a TTL.",
            )
            .expect("valid metric definition"),
        };
        let collectors: [Box<dyn Collector>; 7] = [
            Box::new(m.duration.clone()),
            Box::new(m.errors.clone()),
            Box::new(m.rejected.clone()),
            Box::new(m.breaker_state.clone()),
            Box::new(m.breaker_opened.clone()),
            Box::new(m.pending.clone()),
            Box::new(m.pending_dropped.clone()),
        ];
        for c in collectors {
            // Registration only fails on a name clash; the handles still count, unexported.
            if let Err(e) = prometheus::register(c) {
                tracing::warn!(error = %e, "redis store metric not registered");
            }
        }
        m
    })
}

impl Metrics {
    /// A call that reached Redis took `elapsed`.
    pub(crate) fn observe(&self, command: Command, elapsed: Duration) {
        self.duration
            .with_label_values(&[command.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    /// A call to `node` failed.
    pub(crate) fn error(&self, command: Command, kind: FailureKind, node: &str) {
        self.errors
            .with_label_values(&[command.as_str(), kind.as_str(), node])
            .inc();
    }

    /// A call to `node` was refused by its open breaker.
    pub(crate) fn rejected(&self, command: Command, node: &str) {
        self.rejected
            .with_label_values(&[command.as_str(), node])
            .inc();
    }

    /// `node`'s breaker is now in `state`; `opened` when this call opened it.
    pub(crate) fn breaker(&self, node: &str, state: BreakerState, opened: bool) {
        self.breaker_state
            .with_label_values(&[node])
            .set(state.as_gauge());
        if opened {
            self.breaker_opened.with_label_values(&[node]).inc();
        }
    }

    /// Forgets the series of a node that left the topology.
    pub(crate) fn forget(&self, node: &str) {
        let _ = self.breaker_state.remove_label_values(&[node]);
    }

    /// `n` logouts wait for their `DEL`.
    pub(crate) fn pending(&self, n: usize) {
        self.pending.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A logout was past the pending bound.
    pub(crate) fn pending_dropped(&self) {
        self.pending_dropped.inc();
    }
}
