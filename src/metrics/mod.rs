//! Prometheus counters by outcome and reason.
//!
//! Every metric lives in one [`Metrics`] value with its own registry, built once at start-up
//! and shared by the proxy and the admin listener (which serves it; see `admin.rs`). Labelled
//! children are resolved when the value is built, so counting on the hot path is one atomic add
//! with no label lookup. The label values are in `labels`.

mod labels;
mod limits;
mod policy;
mod registry;
mod runtime;
mod upstream;

use std::time::Duration;

use prometheus::{Encoder, Histogram, IntCounter, IntGauge, Registry, TextEncoder};

pub use labels::{ConnectionClose, RouteKind, SessionOutcome, StoreOp, StoreResult, UpstreamError};
pub use limits::{BodyOutcome, LimitScope};
pub use runtime::ReloadResult;
pub use upstream::UpstreamPick;

use limits::LimitCounters;
use registry::{counter_vec, histogram_vec};
use runtime::RuntimeCounters;

use crate::context::{Discard, DropReason};
use crate::trust::{TokenError, TokenOutcome};

/// Every metric flowgate exports.
pub struct Metrics {
    registry: Registry,
    requests: [IntCounter; 3],
    request_seconds: [Histogram; 3],
    init_accepted: IntCounter,
    init_absent: IntCounter,
    init_discarded: [IntCounter; Discard::ALL.len()],
    init_bad_session: IntCounter,
    session: [IntCounter; SessionOutcome::ALL.len()],
    pairs_dropped: [IntCounter; DropReason::ALL.len()],
    spoofed_request: IntCounter,
    spoofed_response: IntCounter,
    store_calls: [[IntCounter; 5]; 3],
    store_seconds: [Histogram; 3],
    /// Entries the in-process store evicted to respect its byte bound.
    pub(crate) store_evictions: IntCounter,
    upstream_errors: [IntCounter; UpstreamError::ALL.len()],
    connections_closed: [IntCounter; ConnectionClose::ALL.len()],
    /// Client connections currently open on the proxy listener.
    pub(crate) connections_open: IntGauge,
    /// Signed-context tokens: verified, ignored (site off), then one per [`TokenError`].
    tokens: [IntCounter; 2 + TokenError::ALL.len()],
    /// Accepted contexts on sites with signed context: verified, unverified.
    verification: [IntCounter; 2],
    /// 1 when requests are signed, 0 when they go upstream unsigned.
    signing_enabled: IntGauge,
    /// Request targets refused with 400, by reason (`TARGET_REFUSALS` order).
    targets_refused: [IntCounter; TARGET_REFUSALS.len()],
    /// Configuration reloads by result.
    runtime: RuntimeCounters,
    /// Rate and body limits.
    limits: LimitCounters,
    /// What `enforce: report` policies let through.
    pub(crate) policy_would_drop: policy::PolicyCounters,
    /// How requests chose their upstream.
    pub(crate) upstream_picks: upstream::PickCounters,
}

/// The reasons a request target is refused (labels of `flowgate_request_targets_refused_total`;
/// the proxy's normalisation names them in the same order).
pub(crate) const TARGET_REFUSALS: [&str; 3] = ["ambiguous_path", "bad_target", "bad_host"];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Builds and registers every metric. Panics only on a programming error in the names.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = counter_vec(
            &registry,
            "flowgate_requests_total",
            "Requests by route kind.",
            &["route"],
        );
        let request_seconds = histogram_vec(
            &registry,
            "flowgate_request_duration_seconds",
            "Time from request headers to the end of the response, by route kind.",
            "route",
            prometheus::exponential_buckets(0.000_25, 2.0, 16).unwrap_or_default(),
        );
        let init = counter_vec(
            &registry,
            "flowgate_init_total",
            "Init requests by context outcome (accepted, absent, discarded) and discard reason.",
            &["outcome", "reason"],
        );
        let session = counter_vec(
            &registry,
            "flowgate_session_requests_total",
            "Session-route requests by outcome of the stored-context look-up.",
            &["outcome"],
        );
        let dropped = counter_vec(
            &registry,
            "flowgate_context_pairs_dropped_total",
            "Context pairs dropped while the rest of the context was kept, by reason.",
            &["reason"],
        );
        let spoofed = counter_vec(
            &registry,
            "flowgate_spoofed_headers_stripped_total",
            "Header values removed because their name carries the trusted prefix.",
            &["direction"],
        );
        let store_calls = counter_vec(
            &registry,
            "flowgate_store_calls_total",
            "Session-store calls by operation and result.",
            &["op", "result"],
        );
        let store_seconds = histogram_vec(
            &registry,
            "flowgate_store_call_duration_seconds",
            "Session-store call latency by operation (deadline-bounded).",
            "op",
            prometheus::exponential_buckets(0.000_05, 2.0, 14).unwrap_or_default(),
        );
        let evictions = counter_vec(
            &registry,
            "flowgate_store_evictions_total",
            "Sessions the in-process store evicted to stay within its byte bound.",
            &[],
        )
        .with_label_values::<&str>(&[]);
        let upstream = counter_vec(
            &registry,
            "flowgate_upstream_errors_total",
            "Requests that failed towards the upstream, by kind.",
            &["kind"],
        );
        let closed = counter_vec(
            &registry,
            "flowgate_connections_closed_total",
            "Client connections the edge closed before a request was proxied, by reason.",
            &["reason"],
        );
        let open = IntGauge::new(
            "flowgate_connections_open",
            "Client connections currently open on the proxy listener.",
        )
        .unwrap_or_else(|e| panic!("metric flowgate_connections_open: {e}"));
        registry
            .register(Box::new(open.clone()))
            .unwrap_or_else(|e| panic!("metric flowgate_connections_open: {e}"));

        let tokens = counter_vec(
            &registry,
            "flowgate_context_tokens_total",
            "Signed-context tokens by result: verified, ignored (site mode off) or the refusal reason.",
            &["result"],
        );
        let verification = counter_vec(
            &registry,
            "flowgate_init_verification_total",
            "Accepted init contexts on sites with signed context, verified or not.",
            &["result"],
        );
        let signing_enabled = IntGauge::new(
            "flowgate_signing_enabled",
            "1 when a header-signing secret is configured, 0 when requests go to the backend unsigned.",
        )
        .unwrap_or_else(|e| panic!("metric flowgate_signing_enabled: {e}"));
        registry
            .register(Box::new(signing_enabled.clone()))
            .unwrap_or_else(|e| panic!("metric flowgate_signing_enabled: {e}"));
        let refused = counter_vec(
            &registry,
            "flowgate_request_targets_refused_total",
            "Requests answered 400 because their target cannot be normalised unambiguously, by reason.",
            &["reason"],
        );
        let mut token_counters = Vec::with_capacity(2 + TokenError::ALL.len());
        for result in ["verified", "ignored"]
            .into_iter()
            .chain(TokenError::ALL.iter().map(|e| e.as_str()))
        {
            token_counters.push(tokens.with_label_values(&[result]));
        }
        let tokens: [IntCounter; 2 + TokenError::ALL.len()] = token_counters
            .try_into()
            .unwrap_or_else(|_| panic!("metric flowgate_context_tokens_total: label count"));

        Metrics {
            runtime: RuntimeCounters::new(&registry),
            limits: LimitCounters::new(&registry),
            policy_would_drop: policy::PolicyCounters::new(&registry),
            upstream_picks: upstream::PickCounters::new(&registry),
            signing_enabled,
            targets_refused: TARGET_REFUSALS.map(|r| refused.with_label_values(&[r])),
            tokens,
            verification: ["verified", "unverified"].map(|r| verification.with_label_values(&[r])),
            requests: RouteKind::ALL.map(|r| requests.with_label_values(&[r.as_str()])),
            request_seconds: RouteKind::ALL
                .map(|r| request_seconds.with_label_values(&[r.as_str()])),
            init_accepted: init.with_label_values(&["accepted", ""]),
            init_absent: init.with_label_values(&["absent", ""]),
            init_discarded: Discard::ALL
                .map(|d| init.with_label_values(&["discarded", d.as_str()])),
            init_bad_session: init.with_label_values(&["discarded", "bad_session"]),
            session: SessionOutcome::ALL.map(|o| session.with_label_values(&[o.as_str()])),
            pairs_dropped: DropReason::ALL.map(|r| dropped.with_label_values(&[r.as_str()])),
            spoofed_request: spoofed.with_label_values(&["request"]),
            spoofed_response: spoofed.with_label_values(&["response"]),
            store_calls: StoreOp::ALL.map(|op| {
                StoreResult::ALL.map(|r| store_calls.with_label_values(&[op.as_str(), r.as_str()]))
            }),
            store_seconds: StoreOp::ALL.map(|op| store_seconds.with_label_values(&[op.as_str()])),
            store_evictions: evictions,
            upstream_errors: UpstreamError::ALL.map(|k| upstream.with_label_values(&[k.as_str()])),
            connections_closed: ConnectionClose::ALL
                .map(|r| closed.with_label_values(&[r.as_str()])),
            connections_open: open,
            registry,
        }
    }

    /// Counts a finished request and its duration.
    pub(crate) fn request(&self, route: RouteKind, elapsed: Duration) {
        let i = RouteKind::ALL.iter().position(|r| *r == route).unwrap_or(0);
        self.requests[i].inc();
        self.request_seconds[i].observe(elapsed.as_secs_f64());
    }

    /// Counts an init whose context was accepted.
    pub(crate) fn init_accepted(&self) {
        self.init_accepted.inc();
    }

    /// Counts an init without a context.
    pub(crate) fn init_absent(&self) {
        self.init_absent.inc();
    }

    /// Counts an init whose context was discarded.
    pub(crate) fn init_discarded(&self, why: Discard) {
        let i = Discard::ALL.iter().position(|d| *d == why).unwrap_or(0);
        self.init_discarded[i].inc();
    }

    /// Counts an init whose site or session id was missing or invalid.
    pub(crate) fn init_bad_session(&self) {
        self.init_bad_session.inc();
    }

    /// Counts a session-route request by outcome.
    pub(crate) fn session(&self, outcome: SessionOutcome) {
        let i = SessionOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.session[i].inc();
    }

    /// Counts `n` pairs dropped for the same reason.
    pub(crate) fn pairs_dropped(&self, why: DropReason, n: u64) {
        let i = DropReason::ALL.iter().position(|d| *d == why).unwrap_or(0);
        self.pairs_dropped[i].inc_by(n);
    }

    /// Counts header values stripped from a client request.
    pub(crate) fn spoofed_request(&self, n: usize) {
        self.spoofed_request.inc_by(n as u64);
    }

    /// Counts header values stripped from an upstream response.
    pub(crate) fn spoofed_response(&self, n: usize) {
        self.spoofed_response.inc_by(n as u64);
    }

    /// Counts one store call and its latency.
    pub(crate) fn store_call(&self, op: StoreOp, result: StoreResult, elapsed: Duration) {
        let o = StoreOp::ALL.iter().position(|x| *x == op).unwrap_or(0);
        let r = StoreResult::ALL
            .iter()
            .position(|x| *x == result)
            .unwrap_or(0);
        self.store_calls[o][r].inc();
        self.store_seconds[o].observe(elapsed.as_secs_f64());
    }

    /// Counts one failed upstream request.
    pub(crate) fn upstream_error(&self, kind: UpstreamError) {
        let i = UpstreamError::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        self.upstream_errors[i].inc();
    }

    /// Counts a client connection the connection front closed.
    pub(crate) fn connection_closed(&self, why: ConnectionClose) {
        let i = ConnectionClose::ALL
            .iter()
            .position(|r| *r == why)
            .unwrap_or(0);
        self.connections_closed[i].inc();
    }

    /// Counts what happened to an init's signed-context token (nothing when none was sent).
    pub(crate) fn context_token(&self, outcome: &TokenOutcome) {
        let i = match outcome {
            TokenOutcome::Absent => return,
            TokenOutcome::Verified { .. } => 0,
            TokenOutcome::Ignored => 1,
            TokenOutcome::Rejected(e) => {
                2 + TokenError::ALL.iter().position(|x| x == e).unwrap_or(0)
            }
        };
        self.tokens[i].inc();
    }

    /// Counts an accepted context on a site with signed context.
    pub(crate) fn init_verification(&self, verified: bool) {
        self.verification[usize::from(!verified)].inc();
    }

    /// Sets whether requests are signed.
    pub(crate) fn signing_enabled(&self, enabled: bool) {
        self.signing_enabled.set(i64::from(enabled));
    }

    /// Counts a request target refused for reason number `reason` of [`TARGET_REFUSALS`].
    pub(crate) fn target_refused(&self, reason: usize) {
        if let Some(c) = self.targets_refused.get(reason) {
            c.inc();
        }
    }

    /// Every metric in the Prometheus text format (this registry, then the process default).
    pub fn encode(&self) -> Vec<u8> {
        let mut families = self.registry.gather();
        families.extend(prometheus::gather());
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec only fails on inconsistent metric families, which we never build.
        let _ = TextEncoder::new().encode(&families, &mut buf);
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exported_with_its_labels() {
        let m = Metrics::new();
        m.init_discarded(Discard::Json);
        m.pairs_dropped(DropReason::OverCap, 1);
        m.store_call(
            StoreOp::Get,
            StoreResult::Timeout,
            Duration::from_millis(50),
        );
        m.request(RouteKind::Init, Duration::from_millis(1));
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(r#"flowgate_init_total{outcome="discarded",reason="json"} 1"#));
        assert!(text.contains(r#"flowgate_context_pairs_dropped_total{reason="over_cap"} 1"#));
        assert!(text.contains(r#"flowgate_store_calls_total{op="get",result="timeout"} 1"#));
        assert!(text.contains("flowgate_store_evictions_total 0"));
        assert!(text.contains(r#"flowgate_upstream_errors_total{kind="connect"} 0"#));
        assert!(text.contains(r#"flowgate_upstream_errors_total{kind="aborted_midstream"} 0"#));
        assert!(text.contains(r#"flowgate_connections_closed_total{reason="uri_too_long"} 0"#));
        assert!(text.contains("flowgate_connections_open 0"));
        assert!(text.contains(r#"flowgate_requests_total{route="init"} 1"#));
        m.context_token(&TokenOutcome::Rejected(TokenError::UnknownKid));
        m.init_verification(false);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(r#"flowgate_context_tokens_total{result="unknown_kid"} 1"#));
        assert!(text.contains(r#"flowgate_context_tokens_total{result="verified"} 0"#));
        assert!(text.contains(r#"flowgate_init_verification_total{result="unverified"} 1"#));
        assert!(text.contains("flowgate_signing_enabled 0"));
        m.signing_enabled(true);
        m.target_refused(2);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains("flowgate_signing_enabled 1"));
        assert!(text.contains(r#"flowgate_request_targets_refused_total{reason="bad_host"} 1"#));
    }
}
