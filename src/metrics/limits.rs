//! Counters of the limits: inits over a rate limit by scope, bodies over the size limit by
//! route class and by what the client got.

use prometheus::{IntCounter, Registry};

use super::registry::counter_vec;
use super::{Metrics, RouteKind};

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

/// What a request over the body limit got (`flowgate_request_body_too_large_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyOutcome {
    /// Answered `413` (nothing of the upstream's answer had been sent).
    Rejected,
    /// The response had started: the transfer was aborted.
    Aborted,
}

impl BodyOutcome {
    const ALL: [BodyOutcome; 2] = [BodyOutcome::Rejected, BodyOutcome::Aborted];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyOutcome::Rejected => "rejected",
            BodyOutcome::Aborted => "aborted",
        }
    }
}

/// The counters of this file, resolved once.
pub(super) struct LimitCounters {
    rate_limited: [IntCounter; LimitScope::ALL.len()],
    /// By route class, then by outcome.
    too_large: [[IntCounter; BodyOutcome::ALL.len()]; RouteKind::ALL.len()],
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
            "Requests answered 413, or aborted once their response had started, because their body exceeds limits.max_body_bytes, by route class.",
            &["route", "outcome"],
        );
        LimitCounters {
            rate_limited: LimitScope::ALL.map(|s| rate_limited.with_label_values(&[s.as_str()])),
            too_large: RouteKind::ALL.map(|r| {
                BodyOutcome::ALL.map(|o| too_large.with_label_values(&[r.as_str(), o.as_str()]))
            }),
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

    /// Counts one request of `route` refused for its body size, and what it got.
    pub(crate) fn body_too_large(&self, route: RouteKind, outcome: BodyOutcome) {
        let r = RouteKind::ALL.iter().position(|k| *k == route).unwrap_or(0);
        let o = BodyOutcome::ALL
            .iter()
            .position(|k| *k == outcome)
            .unwrap_or(0);
        self.limits.too_large[r][o].inc();
    }
}
