//! The connection front: every client connection on the proxy listener passes through here
//! before Pingora's HTTP code sees a byte of it.
//!
//! Pingora bounds a request head only per read (a client trickling one byte at a time is never
//! cut off), waits forever between keep-alive requests, and peeks for the h2c preface with no
//! timeout at all. The front closes those gaps, then hands the connection to Pingora's
//! `HttpProxy` exactly as Pingora's own accept path would:
//!
//! ```text
//!  accept ─ PROXY header (listen_proxy_protocol: once per connection, source → client_addr)
//!     │
//!     ├─ loop, one request at a time:
//!     │    read the head: first byte within idle_timeout, the rest within header_timeout,
//!     │                   target ≤ max_request_target_bytes (else 414 and close)
//!     │    h2c preface (first request only) ──▶ Pingora's h2 server (h2_idle_timeout = idle)
//!     │    put the bytes back, HttpProxy::process_new_http(session) … keep-alive → loop
//!     │
//!     └─ shutdown: idle connections close at once; the rest at their drain deadline (drain.rs)
//! ```
//!
//! On the HTTPS listener (`tls:`) the front reads the PROXY header, then performs the TLS
//! handshake itself, within `server.header_timeout_seconds` (Pingora's own TLS accept has no
//! deadline). ALPN `h2` goes to Pingora's h2 server (`h2_idle_timeout` = idle); HTTP/1.1 runs
//! request by request, each head read under the same bounds as a plaintext one and put back
//! in front of the TLS stream ([`Rewound`]).
//! A TLS endpoint added to the service by other means is handed to Pingora as it is; its
//! PROXY header is read before the handshake ([`ProxyHeaderBeforeTls`]).

mod drain;
mod head;
mod proxy_protocol;
mod rewound;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::listeners::tls::Acceptor;
use pingora::protocols::ALPN;
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::tls::TlsStream;
use pingora::protocols::{GetSocketDigest, Shutdown, Ssl as _, Stream};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use drain::Connections;
pub(crate) use drain::{Drain, exit_when_drained};
pub(crate) use head::HeadLimits;
pub(crate) use proxy_protocol::ProxyHeaderBeforeTls;
use proxy_protocol::ProxyHeaderError;

use crate::config::Config;
use crate::metrics::{ConnectionClose, Metrics};
use head::HeadEnd;
use rewound::Rewound;

/// Body of the `414` the front answers an over-long request target with.
const TARGET_TOO_LONG_BODY: &str = "flowgate: the request target is too long\n";
/// After a `414`, how long the rest of the client's request is read and discarded, so the
/// answer is not destroyed by a reset before the client reads it.
const LINGER: Duration = Duration::from_secs(2);
/// At most this much of the rest is discarded while lingering.
const LINGER_BYTES: usize = 1 << 20;

/// How the front treats connections, from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrontSettings {
    /// Bounds on each request head.
    pub(crate) limits: HeadLimits,
    /// Whether a plaintext connection may start with the h2c preface.
    pub(crate) h2c: bool,
    /// Whether every connection must start with a PROXY protocol header.
    pub(crate) proxy_protocol: bool,
    /// Deadlines after a shutdown signal.
    pub(crate) drain: Drain,
}

impl FrontSettings {
    /// The front's settings for `config`.
    pub(crate) fn new(config: &Config) -> FrontSettings {
        let s = &config.server;
        FrontSettings {
            limits: HeadLimits {
                idle: Duration::from_secs(s.idle_timeout_seconds),
                head: Duration::from_secs(s.header_timeout_seconds),
                max_target: s.max_request_target_bytes,
            },
            h2c: s.h2c,
            proxy_protocol: config.listen_proxy_protocol,
            drain: Drain {
                http: Duration::from_secs(s.grace_period_seconds),
                websocket: Duration::from_secs(s.websocket_drain_seconds),
            },
        }
    }

    /// The idle timeout in Pingora's keep-alive unit (whole seconds, at least one).
    fn idle_seconds(&self) -> u64 {
        self.limits.idle.as_secs().max(1)
    }
}

/// The connection front around an HTTP app (flowgate's `HttpProxy`).
pub(crate) struct Front<A> {
    app: Arc<A>,
    settings: FrontSettings,
    connections: Arc<Connections>,
    metrics: Arc<Metrics>,
    /// Set on the HTTPS listener: every connection starts with a TLS handshake.
    tls: Option<Arc<Acceptor>>,
}

impl<A> Front<A> {
    /// A front handing connections to `app`.
    pub(crate) fn new(
        app: A,
        settings: FrontSettings,
        connections: Arc<Connections>,
        metrics: Arc<Metrics>,
    ) -> Front<A> {
        Front::sharing(Arc::new(app), settings, connections, metrics)
    }

    /// A front handing connections to an app another front (another listener) shares.
    pub(crate) fn sharing(
        app: Arc<A>,
        settings: FrontSettings,
        connections: Arc<Connections>,
        metrics: Arc<Metrics>,
    ) -> Front<A> {
        Front {
            app,
            settings,
            connections,
            metrics,
            tls: None,
        }
    }

    /// The same front performing a TLS handshake with `acceptor` on every connection.
    pub(crate) fn with_tls(mut self, acceptor: Arc<Acceptor>) -> Front<A> {
        self.tls = Some(acceptor);
        self
    }

    /// The app this front hands connections to.
    pub(crate) fn app(&self) -> Arc<A> {
        self.app.clone()
    }

    fn closed(&self, why: ConnectionClose) {
        self.metrics.connection_closed(why);
        tracing::debug!(target: "flowgate::front", reason = why.as_str(), "connection closed");
    }
}

#[async_trait]
impl<A> ServerApp for Front<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let id = stream.id();
        let _open = self.connections.opened(id);
        let deadline = self
            .settings
            .drain
            .deadline(id, &self.connections, shutdown);
        tokio::select! {
            () = deadline => {
                // Dropping the connection's future closes it (a tunnel: both sockets).
                self.closed(ConnectionClose::Drain);
                None
            }
            reused = self.serve(stream, shutdown) => reused,
        }
    }

    async fn cleanup(&self) {
        // Wakes the proxy's keep-alive readers and marks it shutting down, as Pingora's own
        // accept path would.
        self.app.http_cleanup().await;
    }
}

impl<A> Front<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn serve(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        if stream.get_ssl_digest().is_some() {
            // A TLS stream cannot be read ahead and put back; ALPN decides h1 or h2.
            return self.app.process_new(stream, shutdown).await;
        }
        // Every plaintext stream Pingora accepts is its L4 stream (TCP or Unix socket).
        let mut l4 = stream.into_any().downcast::<L4Stream>().ok()?;
        if self.settings.proxy_protocol {
            let header =
                tokio::time::timeout(self.settings.limits.idle, proxy_protocol::accept(&mut l4));
            match header.await {
                Ok(Ok(())) => {}
                // Closed before a byte (a load balancer's TCP check): nothing was refused.
                Ok(Err(ProxyHeaderError::Closed)) => return None,
                Ok(Err(ProxyHeaderError::Invalid)) | Err(_) => {
                    self.closed(ConnectionClose::ProxyProtocol);
                    return None;
                }
            }
        }
        if let Some(acceptor) = &self.tls {
            // Boxed: the TLS handshake's state is large, and inline it would size the future
            // every plaintext connection holds for as long as it is open (idle included).
            return Box::pin(self.serve_tls(acceptor, l4, shutdown)).await;
        }
        let mut persistent: Option<HttpPersistentSettings> = None;
        let mut first = true;
        loop {
            let mut buf = BytesMut::with_capacity(4096);
            let h2c = first && self.settings.h2c;
            let limits = &self.settings.limits;
            let end = head::read_head(&mut *l4, &mut buf, limits, (first, h2c), shutdown).await;
            if end == HeadEnd::H2Preface {
                l4.rewind(&buf);
                return self.app.process_new(l4, shutdown).await;
            }
            if !self.head_read(end) {
                if end == HeadEnd::TargetTooLong {
                    // Boxed for the same reason: rare, and not to be carried by every connection.
                    Box::pin(self.target_too_long(*l4)).await;
                }
                return None;
            }
            l4.rewind(&buf);
            let mut session = ServerSession::new_http1(l4);
            if let Some(p) = persistent.take() {
                p.apply_to_session(&mut session);
            }
            // Pingora would wait forever for the next head (an HTTP/1.1 session's keep-alive
            // is "infinite" once a request was read); the front bounds that wait itself, and
            // this bounds Pingora's own per-read wait as well.
            let keepalive = (!*shutdown.borrow()).then(|| self.settings.idle_seconds());
            session.set_keepalive(keepalive);
            let reused = self.app.process_new_http(session, shutdown).await?;
            let (stream, settings) = reused.consume();
            persistent = settings;
            l4 = stream.into_any().downcast::<L4Stream>().ok()?;
            first = false;
        }
    }

    /// The HTTPS listener: the handshake within the head deadline, then h2 (by ALPN) or
    /// HTTP/1.1 request by request.
    async fn serve_tls(
        self: &Arc<Self>,
        acceptor: &Acceptor,
        l4: Box<L4Stream>,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let handshake =
            tokio::time::timeout(self.settings.limits.head, acceptor.tls_handshake(*l4));
        let tls = match handshake.await {
            Ok(Ok(tls)) => tls,
            Ok(Err(_)) => {
                self.closed(ConnectionClose::TlsHandshake);
                return None;
            }
            Err(_) => {
                self.closed(ConnectionClose::HeaderTimeout);
                return None;
            }
        };
        if matches!(tls.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.app.process_new(Box::new(tls), shutdown).await;
        }
        let mut stream = Rewound::new(tls);
        let mut persistent: Option<HttpPersistentSettings> = None;
        let mut first = true;
        loop {
            let mut buf = BytesMut::with_capacity(4096);
            let limits = &self.settings.limits;
            let end =
                head::read_head(&mut stream, &mut buf, limits, (first, false), shutdown).await;
            if !self.head_read(end) {
                if end == HeadEnd::TargetTooLong {
                    self.target_too_long(stream).await;
                }
                return None;
            }
            stream.rewind(buf);
            let mut session = ServerSession::new_http1(Box::new(stream));
            if let Some(p) = persistent.take() {
                p.apply_to_session(&mut session);
            }
            let keepalive = (!*shutdown.borrow()).then(|| self.settings.idle_seconds());
            session.set_keepalive(keepalive);
            let reused = self.app.process_new_http(session, shutdown).await?;
            let (next, settings) = reused.consume();
            persistent = settings;
            stream = *next
                .into_any()
                .downcast::<Rewound<TlsStream<L4Stream>>>()
                .ok()?;
            first = false;
        }
    }

    /// Whether a request head was read whole (`Ready`); otherwise counts why the connection
    /// closes. The h2c preface is only looked for where the caller handles it.
    fn head_read(&self, end: HeadEnd) -> bool {
        match end {
            HeadEnd::Ready => return true,
            HeadEnd::Idle => self.closed(ConnectionClose::Idle),
            HeadEnd::Deadline => self.closed(ConnectionClose::HeaderTimeout),
            HeadEnd::TargetTooLong | HeadEnd::Closed | HeadEnd::Shutdown | HeadEnd::H2Preface => {}
        }
        false
    }

    /// Answers `414` itself (Pingora would answer a silent `400`), counts and logs it without
    /// the target, and closes after a bounded linger.
    async fn target_too_long<S>(&self, mut l4: S)
    where
        S: AsyncRead + AsyncWrite + Shutdown + GetSocketDigest + Unpin,
    {
        self.closed(ConnectionClose::UriTooLong);
        tracing::info!(
            target: "flowgate::front",
            status = 414,
            limit = self.settings.limits.max_target,
            client = %client_addr(&l4),
            "request target too long",
        );
        let answer = format!(
            "HTTP/1.1 414 URI Too Long\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{}",
            TARGET_TOO_LONG_BODY.len(),
            TARGET_TOO_LONG_BODY
        );
        if l4.write_all(answer.as_bytes()).await.is_err() || l4.flush().await.is_err() {
            return;
        }
        Shutdown::shutdown(&mut l4).await;
        let mut sink = vec![0u8; 16 * 1024];
        let mut discarded = 0;
        let _ = tokio::time::timeout(LINGER, async {
            while discarded < LINGER_BYTES {
                match l4.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => discarded += n,
                }
            }
        })
        .await;
    }
}

/// The connection's client address as the access log shows it (the PROXY source, if any).
fn client_addr(l4: &impl GetSocketDigest) -> String {
    l4.get_socket_digest()
        .and_then(|d| d.peer_addr().map(ToString::to_string))
        .unwrap_or_else(|| "-".to_owned())
}
