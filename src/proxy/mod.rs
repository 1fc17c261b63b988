//! The thin Pingora `ProxyHttp`: each phase moves data between the core, the store and headers.
//!
//! ```text
//!  client request
//!       │
//!  request_filter ──── 1. strip spoofed headers (every route, before anything else)
//!       │              2. route::classify(path) → init | session | other
//!       │              3. sessions::plan(route, query)      (pure; runs the context pipeline)
//!       │              4. sessions::execute(plan, store)    (put / delete / get, deadline-bounded)
//!       ▼
//!  upstream_peer ───── upstreams::pick() (round robin over healthy upstreams)
//!       │
//!  upstream_request_filter ── trusted::apply(headers decided in 4) + Signature (when a
//!       │                      signing secret is set: every proxied request, every route)
//!       │
//!       ▼  … upstream …
//!  response_filter ─── strip prefixed headers from the upstream response
//!       │
//!  logging ─────────── metrics + one access-log line (route, status, outcome, timings)
//!
//!  fail_to_connect / fail_to_proxy ── upstream down → 502 with a short plain-text body
//! ```
//!
//! The per-request [`RequestCtx`] carries the decisions from `request_filter` to the later
//! phases; every decision lives in a named submodule, and this file only wires them together.

pub mod params;
pub mod route;
pub mod sessions;
pub mod store_call;
pub mod trusted;
pub mod upstreams;
pub mod visitor;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{ErrorSource, ErrorType};

use crate::config::Config;
use crate::headers::signature::Signer;
use crate::headers::spoof::SpoofMatcher;
use crate::metrics::{Metrics, RouteKind, StoreResult, UpstreamError};
use crate::store::SessionStore;
use crate::trust::TrustPolicy;

use route::Routes;
use sessions::Done;
use store_call::DeadlineStore;
use trusted::{TrustedHeaders, TrustedNames};
use upstreams::Upstreams;

/// Body of the 502 sent when no upstream answers.
const UPSTREAM_DOWN_BODY: &[u8] = b"flowgate: the chat backend is unavailable, please retry\n";

/// Per-request state, carried from phase to phase.
#[derive(Debug)]
pub struct RequestCtx {
    started: Instant,
    route: RouteKind,
    trusted: TrustedHeaders,
    done: Done,
    spoofed: usize,
    store_time: Duration,
    connect_failed: bool,
    no_upstream: bool,
}

impl RequestCtx {
    fn new() -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            route: RouteKind::Other,
            trusted: TrustedHeaders::default(),
            done: Done {
                outcome: "-",
                reason: None,
                store: None,
            },
            spoofed: 0,
            store_time: Duration::ZERO,
            connect_failed: false,
            no_upstream: false,
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
    routes: Routes,
    params: crate::config::ParamNames,
    spoof: SpoofMatcher,
    names: TrustedNames,
    store: DeadlineStore,
    upstreams: Upstreams,
    metrics: Arc<Metrics>,
    access_log: bool,
    trust: TrustPolicy,
    signer: Option<Signer>,
}

impl Flowgate {
    /// Builds the proxy from a validated configuration and its parts.
    pub fn new(
        config: &Config,
        store: Arc<dyn SessionStore>,
        upstreams: Upstreams,
        metrics: Arc<Metrics>,
    ) -> Flowgate {
        Flowgate {
            routes: Routes::new(&config.routes),
            params: config.params.clone(),
            spoof: SpoofMatcher::new(&config.headers.prefix),
            names: TrustedNames::new(&config.headers.prefix),
            store: DeadlineStore::new(store, config.store.deadline, metrics.clone()),
            upstreams,
            metrics,
            access_log: config.log.access,
            trust: TrustPolicy::new(),
            signer: None,
        }
    }

    /// Sets the per-site signed-context policy and the header signer (`None`: unsigned).
    pub fn with_trust(mut self, trust: TrustPolicy, signer: Option<Signer>) -> Flowgate {
        self.trust = trust;
        self.signer = signer;
        self
    }
}

/// The client went away: there is nobody to answer.
fn is_client_gone(e: &Error) -> bool {
    *e.esource() == ErrorSource::Downstream
        && matches!(
            e.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        )
}

/// Client-side failures, including a client too slow to send or read: not an operator's error.
fn is_client_fault(e: &Error) -> bool {
    is_client_gone(e)
        || (*e.esource() == ErrorSource::Downstream
            && matches!(
                e.etype(),
                ErrorType::ReadTimedout | ErrorType::WriteTimedout
            ))
}

#[async_trait]
impl ProxyHttp for Flowgate {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.spoofed = self.spoof.strip_request(session.req_header_mut());
        if ctx.spoofed > 0 {
            self.metrics.spoofed_request(ctx.spoofed);
        }
        let plan = {
            let uri = &session.req_header().uri;
            ctx.route = self.routes.classify(uri.path());
            sessions::plan(
                ctx.route,
                uri.query().unwrap_or(""),
                &self.params,
                &self.trust,
                &self.metrics,
            )
        };
        let store_started = Instant::now();
        ctx.done = sessions::execute(plan, &self.store, &self.metrics, &mut ctx.trusted).await;
        if ctx.done.store.is_some() {
            ctx.store_time = store_started.elapsed();
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        match self.upstreams.pick() {
            Some(peer) => Ok(peer),
            None => {
                ctx.no_upstream = true;
                Err(Error::explain(
                    ErrorType::ConnectNoRoute,
                    "no healthy upstream",
                ))
            }
        }
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.connect_failed = true;
        // With several upstreams, one more try may reach a healthy one; nothing was sent yet.
        if self.upstreams.len() > 1 {
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
        trusted::apply(&self.names, &ctx.trusted, upstream_request)?;
        if let Some(signer) = &self.signer {
            trusted::sign(
                &self.names,
                &ctx.trusted,
                signer,
                trusted::unix_now(),
                upstream_request,
            )?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        let stripped = self.spoof.strip_response(upstream_response);
        if stripped > 0 {
            self.metrics.spoofed_response(stripped);
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream if is_client_gone(e) => 0,
                ErrorSource::Downstream => 400,
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if ctx.no_upstream {
            self.metrics.upstream_error(UpstreamError::NoneHealthy);
        } else if *e.esource() == ErrorSource::Upstream {
            self.metrics.upstream_error(if ctx.connect_failed {
                UpstreamError::Connect
            } else {
                UpstreamError::Proxy
            });
        }
        let code = if ctx.no_upstream { 502 } else { code };
        if code == 502 {
            let _ = write_upstream_down(session).await;
        } else if code > 0 {
            let _ = session.respond_error(code).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        is_client_fault(e)
    }

    fn request_summary(&self, session: &Session, _ctx: &RequestCtx) -> String {
        // Pingora's default summary includes the query, which carries the visitor context.
        let req = session.req_header();
        format!("{} {}", req.method, req.uri.path())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let elapsed = ctx.started.elapsed();
        self.metrics.request(ctx.route, elapsed);
        if !self.access_log {
            return;
        }
        let req = session.req_header();
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        tracing::info!(
            target: "flowgate::access",
            method = %req.method,
            path = req.uri.path(),
            route = ctx.route.as_str(),
            status,
            outcome = ctx.done.outcome,
            reason = ctx.done.reason.unwrap_or("-"),
            store = ctx.done.store.map_or("-", StoreResult::as_str),
            store_ms = %format_args!("{:.3}", ctx.store_time.as_secs_f64() * 1000.0),
            spoofed = ctx.spoofed,
            duration_ms = %format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
            error = e.map(|e| e.etype().as_str()).unwrap_or("-"),
        );
    }
}

async fn write_upstream_down(session: &mut Session) -> Result<()> {
    let mut resp = ResponseHeader::build(502, Some(4))?;
    resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
    resp.insert_header("Content-Length", UPSTREAM_DOWN_BODY.len().to_string())?;
    resp.insert_header("Cache-Control", "no-store")?;
    session.set_keepalive(None);
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(UPSTREAM_DOWN_BODY)), true)
        .await
}
