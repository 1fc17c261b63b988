//! The per-request state the proxy's phases pass along: the runtime the request started on and
//! every decision taken so far.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::execute::Report;
use super::failure::UpstreamState;
use super::identity::ClientIdentity;
use super::{Runtime, TrustedHeaders, body, cors, upstreams};
use crate::metrics::RouteKind;

/// Per-request state, carried from phase to phase.
#[derive(Debug)]
pub struct RequestCtx {
    pub(super) runtime: Arc<Runtime>,
    pub(super) started: Instant,
    pub(super) route: RouteKind,
    pub(super) trusted: TrustedHeaders,
    pub(super) identity: ClientIdentity,
    pub(super) report: Report,
    pub(super) spoofed: usize,
    pub(super) upstream: UpstreamState,
    /// Upstreams this request failed to connect to (at most one per retry).
    pub(super) failed: Vec<upstreams::PeerAddr>,
    /// The request asks for a protocol upgrade (WebSocket).
    pub(super) upgrade: bool,
    /// What flowgate does about CORS on the response.
    pub(super) cors: cors::Cors,
    /// The request body bytes read so far, against the body limit.
    pub(super) body: body::BodyCount,
}

impl RequestCtx {
    pub(super) fn new(runtime: Arc<Runtime>) -> RequestCtx {
        RequestCtx {
            runtime,
            started: Instant::now(),
            route: RouteKind::Other,
            trusted: TrustedHeaders::default(),
            identity: ClientIdentity::default(),
            report: Report::untouched(),
            spoofed: 0,
            upstream: UpstreamState::default(),
            failed: Vec::new(),
            upgrade: false,
            cors: cors::Cors::Untouched,
            body: body::BodyCount::default(),
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

    /// The real client address of this request: the peer (or PROXY-protocol source), or, when
    /// the peer is a trusted proxy, the right-most untrusted address of its chain. Known from
    /// step 2 of `request_filter` on; `None` before that and on a Unix socket.
    pub fn client_addr(&self) -> Option<IpAddr> {
        self.identity.client
    }

    /// The request id sent upstream and logged (known from step 2 of `request_filter` on).
    pub fn request_id(&self) -> &str {
        &self.identity.request_id
    }
}
