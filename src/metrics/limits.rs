//! Counters of the limits: inits over a rate limit by scope, bodies over the size limit.

use prometheus::{IntCounter, Registry};

use super::Metrics;
use super::registry::counter_vec;

/// Which init rate limit a request went over (`flowgate_rate_limited_total{scope}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// `limits.init_per_second.per_client`.
    Client,
    /// `limits.init_per_second.per_site`.
    Site,
}

impl LimitScope {
    const ALL: [LimitScope; 2] = [LimitScope::Client, LimitScope::Site];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Client => "client",
            LimitScope::Site => "site",
        }
    }
}

/// The counters of this file, resolved once.
pub(super) struct LimitCounters {
    rate_limited: [IntCounter; LimitScope::ALL.len()],
    too_large: IntCounter,
}

impl LimitCounters {
    pub(super) fn new(registry: &Registry) -> LimitCounters {
        let rate_limited = counter_vec(
            registry,
            "flowgate_rate_limited_total",
            "Inits over a rate limit (proxied without context, or 429), by scope.",
            &["scope"],
        );
        let too_large = counter_vec(
            registry,
            "flowgate_request_body_too_large_total",
            "Requests answered 413 (or aborted) because their body exceeds limits.max_body_bytes.",
            &[],
        );
        LimitCounters {
            rate_limited: LimitScope::ALL.map(|s| rate_limited.with_label_values(&[s.as_str()])),
            too_large: too_large.with_label_values::<&str>(&[]),
        }
    }
}

impl Metrics {
    /// Counts one init over the rate limit of `scope`.
    pub(crate) fn rate_limited(&self, scope: LimitScope) {
        let i = LimitScope::ALL
            .iter()
            .position(|s| *s == scope)
            .unwrap_or(0);
        self.limits.rate_limited[i].inc();
    }

    /// Counts one request refused for its body size.
    pub(crate) fn body_too_large(&self) {
        self.limits.too_large.inc();
    }
}
