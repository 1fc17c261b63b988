//! Prometheus metrics of the Redis store, in the default registry (served by `/metrics`).
//!
//! - `flowgate_redis_command_duration_seconds{command}` — latency of calls that reached Redis
//!   (answered or failed), not of calls cut by the deadline or refused by the breaker;
//! - `flowgate_redis_errors_total{command,kind}` — `kind` is `timeout` (deadline passed),
//!   `error` (connection or server error) or `corrupt` (undecodable value);
//! - `flowgate_redis_rejected_total{command}` — calls not made because the breaker was open;
//! - `flowgate_redis_breaker_state` — 0 closed, 1 open, 2 half-open (updated on every call);
//! - `flowgate_redis_breaker_opened_total` — how often the breaker opened.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, core::Collector,
};

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
}

impl Command {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Command::Get => "get",
            Command::Set => "set",
            Command::Del => "del",
        }
    }
}

/// How a call failed, as labelled in `flowgate_redis_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The deadline passed.
    Timeout,
    /// Connection or server error.
    Error,
    /// The stored value could not be decoded.
    Corrupt,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Error => "error",
            ErrorKind::Corrupt => "corrupt",
        }
    }
}

/// The store's metric handles.
pub(crate) struct Metrics {
    duration: HistogramVec,
    errors: IntCounterVec,
    rejected: IntCounterVec,
    breaker_state: IntGauge,
    breaker_opened: IntCounter,
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
                    "Redis store calls that failed, by command and kind (timeout, error, corrupt).",
                ),
                &["command", "kind"],
            )
            .expect("valid metric definition"),
            rejected: IntCounterVec::new(
                Opts::new(
                    "flowgate_redis_rejected_total",
                    "Redis store calls not made because the circuit breaker was open.",
                ),
                &["command"],
            )
            .expect("valid metric definition"),
            breaker_state: IntGauge::new(
                "flowgate_redis_breaker_state",
                "Redis circuit breaker: 0 closed, 1 open, 2 half-open.",
            )
            .expect("valid metric definition"),
            breaker_opened: IntCounter::new(
                "flowgate_redis_breaker_opened_total",
                "Times the Redis circuit breaker opened.",
            )
            .expect("valid metric definition"),
        };
        let collectors: [Box<dyn Collector>; 5] = [
            Box::new(m.duration.clone()),
            Box::new(m.errors.clone()),
            Box::new(m.rejected.clone()),
            Box::new(m.breaker_state.clone()),
            Box::new(m.breaker_opened.clone()),
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

    /// A call failed.
    pub(crate) fn error(&self, command: Command, kind: ErrorKind) {
        self.errors
            .with_label_values(&[command.as_str(), kind.as_str()])
            .inc();
    }

    /// A call was refused by the open breaker.
    pub(crate) fn rejected(&self, command: Command) {
        self.rejected.with_label_values(&[command.as_str()]).inc();
    }

    /// The breaker is now in `state`; `opened` when this call opened it.
    pub(crate) fn breaker(&self, state: BreakerState, opened: bool) {
        self.breaker_state.set(state.as_gauge());
        if opened {
            self.breaker_opened.inc();
        }
    }
}
