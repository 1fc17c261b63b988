//! The thin Pingora `ProxyHttp`: each phase moves data between the pieces below; none decides
//! anything itself.
//!
//! ```text
//!  client request
//!       │
//!  new_ctx ─────────── take the current Runtime (one Arc for the whole request)
//!       │
//!  request_filter ──── 1. spoof.strip_request (every route, before anything else)
//!       │              2. route.classify(path) → init | session | other
//!       │              3. plan::plan(route, query, runtime)   (pure: runs the context pipeline,
//!       │                                                      says what it found)
//!       │              4. execute::execute(plan, store)       (put / delete / get under the
//!       │                                                      deadline; a report, timed once)
//!       │              5. record::decision(report)             (the one place that counts)
//!       ▼
//!  upstream_peer ───── upstreams.pick() (round robin over healthy upstreams)
//!       │
//!  upstream_request_filter ── trusted::apply(headers decided in 4) + Signature (when a
//!       │                      signing secret is set: every proxied request, every route)
//!       │
//!       ▼  … upstream …
//!  response_filter ─── strip prefixed headers from the upstream response (counted)
//!       │
//!  logging ─────────── request count and duration + one access-log line (access.rs)
//!
//!  fail_to_connect ─── mark the connect failure; retry on another upstream when there are several
//!  fail_to_proxy ───── failure::classify → 502 with a short plain-text body, or Pingora's page
//! ```
//!
//! The per-request [`RequestCtx`] carries the runtime and the decisions from `request_filter`
//! to the later phases. What the proxy runs with — routes, parameter names, trusted names, the
//! trust policy, the signer, the upstream pool — is one [`Runtime`], replaced whole through a
//! [`RuntimeHandle`]; the store and the metrics live beside it and survive a swap.

mod access;
mod execute;
mod failure;
mod params;
mod plan;
mod record;
mod route;
mod runtime;
mod trusted;
mod upstreams;
mod visitor;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

pub use runtime::{Runtime, RuntimeHandle};
pub use trusted::TrustedHeaders;
pub use upstreams::{HealthCheck, Upstreams};

use crate::metrics::{Metrics, RouteKind};
use crate::store::SessionStore;
use execute::Report;
use failure::UpstreamState;

/// Per-request state, carried from phase to phase.
#[derive(Debug)]
pub struct RequestCtx {
    runtime: Arc<Runtime>,
    started: Instant,
    route: RouteKind,
    trusted: TrustedHeaders,
    report: Report,
    spoofed: usize,
    upstream: UpstreamState,
}

impl RequestCtx {
    fn new(runtime: Arc<Runtime>) -> RequestCtx {
        RequestCtx {
            runtime,
            started: Instant::now(),
            route: RouteKind::Other,
            trusted: TrustedHeaders::default(),
            report: Report::untouched(),
            spoofed: 0,
            upstream: UpstreamState::default(),
        }
    }

    /// The trusted headers decided for this request.
    pub fn trusted(&self) -> &TrustedHeaders {
        &self.trusted
    }

    /// The route kind of this request.
    pub fn route(&self) -> RouteKind {
        self.route
    }
}

/// The flowgate proxy.
pub struct Flowgate {
    runtime: RuntimeHandle,
    store: Arc<dyn SessionStore>,
    metrics: Arc<Metrics>,
}

impl Flowgate {
    /// The proxy running `runtime`, with the session store and the metrics that outlive it.
    pub fn new(runtime: Runtime, store: Arc<dyn SessionStore>, metrics: Arc<Metrics>) -> Flowgate {
        Flowgate {
            runtime: RuntimeHandle::new(runtime),
            store,
            metrics,
        }
    }

    /// The handle that replaces the runtime for new requests.
    pub fn runtime(&self) -> RuntimeHandle {
        self.runtime.clone()
    }
}

#[async_trait]
impl ProxyHttp for Flowgate {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.runtime.load())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let rt = &ctx.runtime;
        ctx.spoofed = rt.spoof.strip_request(session.req_header_mut());
        let plan = {
            let uri = &session.req_header().uri;
            ctx.route = rt.routes.classify(uri.path());
            plan::plan(ctx.route, uri.query().unwrap_or(""), rt)
        };
        let (store, deadline) = (self.store.as_ref(), rt.store_deadline);
        ctx.report = execute::execute(plan, store, deadline, &mut ctx.trusted).await;
        record::decision(&self.metrics, ctx.spoofed, &ctx.report);
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let peer = ctx.runtime.upstreams.pick();
        ctx.upstream.no_upstream = peer.is_none();
        peer.ok_or_else(|| Error::explain(ErrorType::ConnectNoRoute, "no healthy upstream"))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.upstream.connect_failed = true;
        // With several upstreams, one more try may reach a healthy one; nothing was sent yet.
        if ctx.runtime.upstreams.len() > 1 {
            e.set_retry(true);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let rt = &ctx.runtime;
        trusted::apply(&rt.names, &ctx.trusted, upstream_request)?;
        if let Some(signer) = &rt.signer {
            let now = trusted::unix_now();
            trusted::sign(&rt.names, &ctx.trusted, signer, now, upstream_request)?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let stripped = ctx.runtime.spoof.strip_response(upstream_response);
        record::response_stripped(&self.metrics, stripped);
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let (code, upstream_error) = failure::classify(e, ctx.upstream);
        if let Some(kind) = upstream_error {
            record::upstream_failed(&self.metrics, kind);
        }
        failure::answer(session, code).await;
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        failure::is_client_fault(e)
    }

    fn request_summary(&self, session: &Session, _ctx: &RequestCtx) -> String {
        // Pingora's default summary includes the query, which carries the visitor context.
        let req = session.req_header();
        format!("{} {}", req.method, req.uri.path())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let elapsed = ctx.started.elapsed();
        record::finished(&self.metrics, ctx.route, elapsed);
        if ctx.runtime.access_log {
            access::log(session, e, ctx, elapsed);
        }
    }
}
