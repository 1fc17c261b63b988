//! The thin Pingora `ProxyHttp`: each phase moves data between the pieces below; none decides
//! anything itself.
//!
//! ```text
//!  client request
//!       │
//!  new_ctx ─────────── take the current Runtime (one Arc for the whole request)
//!       │
//!  request_filter ──── 1. spoof.strip_request (every route, before anything else); the
//!                         session key read, hashed and removed (session_key::take)
//!       │              2. identity::resolve — client address, request id; every client
//!       │                 spelling of X-Forwarded-*/X-Real-IP/X-Request-Id/Forwarded removed
//!       │              3. one Content-Length (framing.rs); target::normalize — origin-form,
//!       │                 dot segments, `//`; or 400
//!       │              4. route.classify(path) → init | session | other; a Content-Length
//!       │                 over the class's limits.max_body_bytes → 413 (limits.rs); the
//!       │                 class's read timeout (timeouts.rs)
//!       │              5. plan::plan(route, query, client, runtime) (pure: the init rate
//!       │                 limits (limits.rs), then the context pipeline; says what it found);
//!       │                 over a limit in reject mode → 429
//!       │              6. params::strip_raw — context and token out of the query (unless
//!       │                                       params.forward_raw)
//!       │              7. execute::execute(plan, store, binding) (put / delete / get under
//!       │                                                      the deadline, checked against the
//!       │                                                      session key with bind: key; a
//!       │                                                      report, timed once)
//!       │              8. record::decision(report)             (the one place that counts)
//!       ▼
//!  upstream_peer ───── upstreams.pick(): the one upstream, or among healthy ones by session
//!       │              (affinity.rs: ids, else client address) or in turn; counted. The route
//!       │              class's upstream timeout, or the tunnel's for an upgrade (timeouts.rs)
//!       │
//!  request_body_filter ── body bytes (not a tunnel's) counted against the class's limit;
//!       │                   past it the transfer ends (body.rs): 413, or an abort if started
//!       │
//!  upstream_request_filter ── identity::apply + trusted::apply(headers decided in 7) +
//!       │                      Signature over the request as sent (when a signing secret is
//!       │                      set: every proxied request, every route)
//!       │
//!       ▼  … upstream …
//!  response_filter ─── strip prefixed headers from the upstream response (counted); a 101
//!       │              marks the connection a tunnel (idle timeout, drain); no chunked framing
//!       │              to an HTTP/1.0 client
//!       │
//!  logging ─────────── request count and duration + one access-log line (access.rs)
//!
//!  fail_to_connect ─── mark the connect failure; retry on another upstream when there are several
//!                      (the failed one is skipped by the next pick)
//!  fail_to_proxy ───── failure::classify → abort a started response; 413 for a body past its
//!                      limit, 504 on an upstream timeout, 502 when it failed (short
//!                      plain-text bodies), or Pingora's page;
//!                      one value-free log line (Pingora's own are suppressed: they carry bytes)
//! ```
//!
//! The per-request [`RequestCtx`] carries the runtime and the decisions from `request_filter`
//! to the later phases. What the proxy runs with — routes, parameter names, trusted names, the
//! trust policy, the signer, the upstream pool — is one [`Runtime`], replaced whole through a
//! [`RuntimeHandle`]; the store and the metrics live beside it and survive a swap.

mod access;
mod affinity;
mod body;
mod calls;
mod cors;
mod ctx;
mod execute;
mod failure;
mod framing;
mod identity;
mod limit_answer;
mod limits;
mod params;
mod plan;
mod record;
mod replay;
mod route;
mod runtime;
mod target;
mod timeouts;
mod trusted;
mod upstreams;
mod visitor;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, ProxyWarnLogContext, Session};

pub use ctx::RequestCtx;
pub use runtime::{Runtime, RuntimeHandle};
pub use trusted::TrustedHeaders;
pub use upstreams::{HealthCheck, PoolHealth, Upstreams};

use crate::config::SessionBind;
use crate::front::Connections;
use crate::headers::session_key;
use crate::metrics::{Metrics, RouteKind};
use crate::store::SessionStore;
use crate::trust::PageHeaders;

/// The flowgate proxy.
pub struct Flowgate {
    runtime: RuntimeHandle,
    store: Arc<dyn SessionStore>,
    metrics: Arc<Metrics>,
    connections: Arc<Connections>,
}

impl Flowgate {
    /// The proxy running `runtime`, with the session store and the metrics that outlive it.
    pub fn new(runtime: Runtime, store: Arc<dyn SessionStore>, metrics: Arc<Metrics>) -> Flowgate {
        record::signing(&metrics, runtime.signer.is_some());
        let connections = Connections::new(metrics.clone());
        Flowgate {
            runtime: RuntimeHandle::new(runtime),
            store,
            metrics,
            connections,
        }
    }

    /// The proxy marking tunnels in `connections` (shared with the connection front).
    pub fn with_connections(mut self, connections: Arc<Connections>) -> Flowgate {
        self.connections = connections;
        self
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
        // The session key is read once and gone before anything could forward or log it.
        let presented = session_key::take(session.req_header_mut());
        ctx.identity = identity::resolve(session, &rt.client_ip);
        framing::normalise_content_length(session.req_header_mut())?;
        ctx.upgrade = session.is_upgrade_req();
        if let Err(why) = target::normalize(session.req_header_mut()) {
            tracing::debug!(reason = why.as_str(), "request target refused");
            record::target_refused(&self.metrics, why);
            record::decision(&self.metrics, ctx.spoofed, &ctx.report);
            target::refuse(session).await;
            return Ok(true);
        }
        let req = session.req_header();
        ctx.route = rt.routes.classify(req.uri.path());
        if rt.limits.body(ctx.route, framing::declared_length(req)) == limits::BodyVerdict::TooLarge
        {
            record::body_too_large(&self.metrics, ctx.route, true);
            limit_answer::too_large(session).await;
            return Ok(true);
        }
        let req = session.req_header();
        let query = req.uri.query().unwrap_or("");
        // The widget's parameters, found once for the CORS decision and the plan.
        let raw = match ctx.route {
            RouteKind::Other => params::RawParams::default(),
            _ => params::find(query, &rt.params),
        };
        ctx.cors = cors::decide(req, ctx.route, &raw, &rt.trust);
        if ctx.cors != cors::Cors::Untouched && cors::is_preflight(req) {
            record::decision(&self.metrics, ctx.spoofed, &ctx.report);
            cors::answer_preflight(session, &ctx.cors).await?;
            return Ok(true);
        }
        let page = PageHeaders {
            origin: req.headers.get(http::header::ORIGIN).map(|v| v.as_bytes()),
            referer: req.headers.get(http::header::REFERER).map(|v| v.as_bytes()),
        };
        let plan = plan::plan(ctx.route, &raw, ctx.identity.client, page, rt);
        if matches!(plan, plan::Plan::InitLimited(..)) && rt.limits.rejects() {
            ctx.report = execute::limited_report(&plan);
            record::decision(&self.metrics, ctx.spoofed, &ctx.report);
            limit_answer::too_many(session).await;
            return Ok(true);
        }
        if !rt.params.forward_raw {
            params::strip_raw(session.req_header_mut(), &rt.params);
        }
        rt.timeouts.on_request(ctx.route, session);
        let (store, deadline) = (self.store.as_ref(), rt.store_deadline);
        let binding = execute::Binding {
            required: rt.bind == SessionBind::Key,
            presented,
        };
        ctx.report = execute::execute(plan, store, deadline, binding, &mut ctx.trusted).await;
        record::decision(&self.metrics, ctx.spoofed, &ctx.report);
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let query = session.req_header().uri.query();
        let upstreams = &ctx.runtime.upstreams;
        let (mut peer, how) = upstreams.pick(ctx.route, query, ctx.identity.client, &ctx.failed);
        record::upstream_pick(&self.metrics, how);
        ctx.upstream.no_upstream = peer.is_none();
        if let Some(peer) = peer.as_deref_mut() {
            ctx.runtime.timeouts.on_peer(ctx.route, ctx.upgrade, peer);
        }
        peer.ok_or_else(|| Error::explain(ErrorType::ConnectNoRoute, "no healthy upstream"))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.upstream.connect_failed = true;
        // With several upstreams, one more try may reach a healthy one; nothing was sent yet.
        if ctx.runtime.upstreams.len() > 1 {
            ctx.failed.push(upstreams::failed_address(peer));
            e.set_retry(true);
        }
        e
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(chunk) = body.as_ref().filter(|_| !session.was_upgraded()) else {
            return Ok(());
        };
        ctx.body.count(&ctx.runtime.limits, ctx.route, chunk.len())
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let rt = &ctx.runtime;
        let real_ip = ctx.identity.real_ip();
        identity::apply(&rt.client_ip, &ctx.identity, real_ip, upstream_request)?;
        trusted::apply(&rt.names, &ctx.trusted, upstream_request)?;
        if let Some(signer) = &rt.signer {
            let signed = trusted::Identity {
                request_id: &ctx.identity.request_id,
                client_ip: real_ip.unwrap_or(""),
            };
            let now = trusted::unix_now();
            trusted::sign(
                &rt.names,
                &ctx.trusted,
                signed,
                signer,
                now,
                upstream_request,
            )?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let stripped = ctx.runtime.spoof.strip_response(upstream_response);
        record::response_stripped(&self.metrics, stripped);
        if upstream_response.status == 101 {
            ctx.runtime.timeouts.on_tunnel(session);
            if let Some(stream) = session.stream() {
                self.connections.mark_tunnel(stream.id());
            }
        }
        framing::for_http10_client(session.req_header().version, upstream_response);
        cors::apply(&ctx.cors, upstream_response)?;
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let started = session.response_written().map(|r| r.status.as_u16());
        let (answer, upstream_error) = failure::classify(e, ctx.upstream, started);
        if let Some(kind) = upstream_error {
            record::upstream_failed(&self.metrics, kind);
        }
        record::body_failed(&self.metrics, e, answer, ctx.route);
        failure::log(e, answer, upstream_error, ctx.route);
        failure::answer(session, answer).await;
        FailToProxy {
            error_code: answer.code(),
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _e: &Error) -> bool {
        // Pingora's line prints the error's context (raw upstream bytes, the request summary);
        // fail_to_proxy writes a value-free one instead.
        true
    }

    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        _ctx: &RequestCtx,
        _e: &Error,
        _context: ProxyWarnLogContext,
    ) -> bool {
        true
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
