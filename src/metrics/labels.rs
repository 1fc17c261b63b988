//! The label values of flowgate's metrics, each a small enum with its Prometheus spelling.

/// Which kind of route a request took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// The widget's init request.
    Init,
    /// A request on a session route.
    Session,
    /// Anything else (proxied untouched, anti-spoofing aside).
    Other,
}

impl RouteKind {
    pub(super) const ALL: [RouteKind; 3] = [RouteKind::Init, RouteKind::Session, RouteKind::Other];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Init => "init",
            RouteKind::Session => "session",
            RouteKind::Other => "other",
        }
    }
}

/// A session-store operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Look-up on a session route.
    Get,
    /// Store an accepted context at init.
    Put,
    /// Forget a session at an init without (valid) context.
    Delete,
}

impl StoreOp {
    pub(super) const ALL: [StoreOp; 3] = [StoreOp::Get, StoreOp::Put, StoreOp::Delete];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreOp::Get => "get",
            StoreOp::Put => "put",
            StoreOp::Delete => "delete",
        }
    }
}

/// How a store operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreResult {
    /// A put or delete completed.
    Ok,
    /// A get found an entry.
    Hit,
    /// A get found nothing.
    Miss,
    /// The backend answered with an error (or is unreachable).
    Error,
    /// The deadline passed first; the request went on without the store.
    Timeout,
}

impl StoreResult {
    pub(super) const ALL: [StoreResult; 5] = [
        StoreResult::Ok,
        StoreResult::Hit,
        StoreResult::Miss,
        StoreResult::Error,
        StoreResult::Timeout,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreResult::Ok => "ok",
            StoreResult::Hit => "hit",
            StoreResult::Miss => "miss",
            StoreResult::Error => "error",
            StoreResult::Timeout => "timeout",
        }
    }
}

/// Why a request to the upstream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    /// No healthy upstream to pick.
    NoneHealthy,
    /// Connecting failed.
    Connect,
    /// The upstream failed after the connection was made (reset, bad response) before its
    /// response started.
    Proxy,
    /// The upstream did not answer, or stopped answering, within its read timeout (`504`).
    Timeout,
    /// The upstream failed after the response had started: the client's transfer was aborted.
    AbortedMidstream,
}

impl UpstreamError {
    pub(super) const ALL: [UpstreamError; 5] = [
        UpstreamError::NoneHealthy,
        UpstreamError::Connect,
        UpstreamError::Proxy,
        UpstreamError::Timeout,
        UpstreamError::AbortedMidstream,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamError::NoneHealthy => "none_healthy",
            UpstreamError::Connect => "connect",
            UpstreamError::Proxy => "proxy",
            UpstreamError::Timeout => "timeout",
            UpstreamError::AbortedMidstream => "aborted_midstream",
        }
    }
}

/// Why the connection front closed a client connection before Pingora read a request from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionClose {
    /// Nothing arrived within `server.idle_timeout_seconds` (new or kept-alive connection).
    Idle,
    /// A request head did not complete within `server.header_timeout_seconds`.
    HeaderTimeout,
    /// The request target was over `server.max_request_target_bytes`: answered `414`.
    UriTooLong,
    /// `listen_proxy_protocol` is on and the connection did not start with a valid header.
    ProxyProtocol,
    /// Closed at its drain deadline after SIGTERM/SIGQUIT.
    Drain,
    /// The TLS handshake failed (no common version or cipher, a client refusing the
    /// certificate, not TLS at all).
    TlsHandshake,
}

impl ConnectionClose {
    pub(super) const ALL: [ConnectionClose; 6] = [
        ConnectionClose::Idle,
        ConnectionClose::HeaderTimeout,
        ConnectionClose::UriTooLong,
        ConnectionClose::ProxyProtocol,
        ConnectionClose::Drain,
        ConnectionClose::TlsHandshake,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionClose::Idle => "idle",
            ConnectionClose::HeaderTimeout => "header_timeout",
            ConnectionClose::UriTooLong => "uri_too_long",
            ConnectionClose::ProxyProtocol => "proxy_protocol",
            ConnectionClose::Drain => "drain",
            ConnectionClose::TlsHandshake => "tls_handshake",
        }
    }
}

/// What a session route did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOutcome {
    /// Stored headers were re-attached.
    Hit,
    /// Nothing stored for this session.
    Miss,
    /// The store did not answer in time or failed; the request went on without it.
    Unavailable,
    /// Site or session id invalid, or only one of them present: no look-up.
    BadSession,
    /// Neither id present (assets and the like): nothing to look up.
    NoIds,
    /// `sessions.bind: key`: no valid session key, or not the one the stored context is bound
    /// to; nothing attached.
    SessionKey,
}

impl SessionOutcome {
    pub(super) const ALL: [SessionOutcome; 6] = [
        SessionOutcome::Hit,
        SessionOutcome::Miss,
        SessionOutcome::Unavailable,
        SessionOutcome::BadSession,
        SessionOutcome::NoIds,
        SessionOutcome::SessionKey,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionOutcome::Hit => "hit",
            SessionOutcome::Miss => "miss",
            SessionOutcome::Unavailable => "unavailable",
            SessionOutcome::BadSession => "bad_session",
            SessionOutcome::NoIds => "no_ids",
            SessionOutcome::SessionKey => "session_key",
        }
    }
}
