//! The one place the proxy counts: every metric a request moves is recorded here, from the
//! data the phases hand over (the report of its decision, the headers stripped, the upstream
//! failure, the time it took). Planning and executing never touch [`Metrics`].

use std::time::Duration;

use super::execute::{Found, Report};
use super::target::Refusal;
use crate::context::Discard;
use crate::headers::Status;
use crate::metrics::{Metrics, RouteKind, UpstreamError, UpstreamPick};

/// Counts what `request_filter` decided: the client headers stripped (`spoofed`), the init or
/// session outcome, and the store call. Called once per request.
pub(crate) fn decision(metrics: &Metrics, spoofed: usize, report: &Report) {
    if spoofed > 0 {
        metrics.spoofed_request(spoofed);
    }
    match &report.found {
        Found::Untouched => {}
        Found::InitBadSession => metrics.init_bad_session(),
        Found::InitLimited(scope) => {
            metrics.init_discarded(Discard::RateLimited);
            metrics.rate_limited(*scope);
        }
        Found::Init(findings) => {
            for (reason, n) in findings.dropped.iter() {
                metrics.pairs_dropped(reason, u64::from(n));
            }
            metrics.context_token(&findings.token);
            for (reason, n) in findings.would_drop.iter() {
                metrics
                    .policy_would_drop
                    .add(&findings.site_policy, reason, u64::from(n));
            }
            match findings.status {
                Status::Absent => metrics.init_absent(),
                Status::Discarded(why) => metrics.init_discarded(why),
                status => {
                    metrics.init_accepted();
                    if status != Status::Accepted {
                        metrics.init_verification(status == Status::Verified);
                    }
                }
            }
        }
        Found::Session(outcome) => metrics.session(*outcome),
    }
    if let Some(call) = report.store {
        metrics.store_call(call.op, call.result, call.elapsed);
    }
}

/// Counts upstream response headers stripped because they carry the trusted prefix.
pub(crate) fn response_stripped(metrics: &Metrics, stripped: usize) {
    if stripped > 0 {
        metrics.spoofed_response(stripped);
    }
}

/// Counts a request that failed towards the upstream.
pub(crate) fn upstream_failed(metrics: &Metrics, kind: UpstreamError) {
    metrics.upstream_error(kind);
}

/// Counts how a request chose its upstream (once per pick: a retry picks again).
pub(crate) fn upstream_pick(metrics: &Metrics, how: UpstreamPick) {
    metrics.upstream_picks.count(how);
}

/// Counts a finished request and its duration.
pub(crate) fn finished(metrics: &Metrics, route: RouteKind, elapsed: Duration) {
    metrics.request(route, elapsed);
}

/// Counts a request whose target was refused with 400.
pub(crate) fn target_refused(metrics: &Metrics, why: Refusal) {
    let i = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
    metrics.target_refused(i);
}

/// Sets the signing gauge from the runtime in force.
pub(crate) fn signing(metrics: &Metrics, signed: bool) {
    metrics.signing_enabled(signed);
}

/// Counts a request refused (or aborted) for its body size.
pub(crate) fn body_too_large(metrics: &Metrics) {
    metrics.body_too_large();
}
