//! Shutdown with open WebSockets: after SIGTERM (or SIGQUIT, the upgrade hand-over) plain HTTP
//! connections get `server.grace_period_seconds`, WebSocket tunnels
//! `server.websocket_drain_seconds`, and the process exits as soon as the last connection is
//! gone rather than at the ceiling.
//!
//! Pingora itself sleeps its grace period unconditionally and then cancels every task, so the
//! deadlines are enforced here, per connection: Pingora's grace period is only the ceiling
//! (the longer of the two, plus a second). Which connections are tunnels is known to the proxy
//! (it sees the `101`), which marks them in [`Connections`] by connection id.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pingora::protocols::UniqueIDType;
use pingora::server::{ExecutionPhase, ShutdownWatch};

use super::head::shutting_down;
use crate::metrics::Metrics;

/// How often the exit watcher looks at the open-connection count during a shutdown.
const POLL: Duration = Duration::from_millis(50);

/// The drain deadlines, counted from the shutdown signal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drain {
    /// Plain HTTP connections (and h2 connections) are closed this long after the signal.
    pub(crate) http: Duration,
    /// WebSocket tunnels are closed this long after the signal.
    pub(crate) websocket: Duration,
}

impl Drain {
    /// Pingora's own grace period: a ceiling above both deadlines, reached only if a connection
    /// somehow outlives its deadline.
    pub(crate) fn ceiling_seconds(&self) -> u64 {
        self.http.max(self.websocket).as_secs() + 1
    }

    /// Resolves when connection `id` must close: its class's deadline after the signal.
    pub(super) async fn deadline(
        &self,
        id: UniqueIDType,
        connections: &Connections,
        shutdown: &ShutdownWatch,
    ) {
        let mut shutdown = shutdown.clone();
        shutting_down(&mut shutdown).await;
        tokio::time::sleep(self.http).await;
        if connections.is_tunnel(id) {
            tokio::time::sleep(self.websocket.saturating_sub(self.http)).await;
        }
    }
}

/// The client connections open on the proxy listener, and which of them are WebSocket tunnels.
pub struct Connections {
    open: AtomicUsize,
    /// Connection ids (the socket's fd) of tunnels; an entry goes when its connection closes.
    tunnels: Mutex<HashSet<UniqueIDType>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.open())
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// No connection open yet; the open count is also exported as `flowgate_connections_open`.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Connections> {
        Arc::new(Connections {
            open: AtomicUsize::new(0),
            tunnels: Mutex::default(),
            metrics,
        })
    }

    /// Counts connection `id` open until the returned guard drops.
    pub(super) fn opened(self: &Arc<Self>, id: UniqueIDType) -> OpenGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.metrics.connections_open.inc();
        OpenGuard {
            connections: self.clone(),
            id,
        }
    }

    /// Marks connection `id` as a WebSocket tunnel (its request was answered `101`).
    pub(crate) fn mark_tunnel(&self, id: UniqueIDType) {
        self.tunnel_set().insert(id);
    }

    fn is_tunnel(&self, id: UniqueIDType) -> bool {
        self.tunnel_set().contains(&id)
    }

    /// Client connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn tunnel_set(&self) -> std::sync::MutexGuard<'_, HashSet<UniqueIDType>> {
        // A panic while holding this lock leaves a plain set behind: still usable.
        self.tunnels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One open connection; dropping it counts the connection closed.
pub(super) struct OpenGuard {
    connections: Arc<Connections>,
    id: UniqueIDType,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let c = &self.connections;
        // The socket is already closed here, so its fd may be reused by a new connection that
        // is only as far as its request head: it cannot have been marked yet.
        c.tunnel_set().remove(&self.id);
        c.open.fetch_sub(1, Ordering::AcqRel);
        c.metrics.connections_open.dec();
    }
}

/// Watches the server's phases from a thread of its own and ends the process once a graceful
/// shutdown has begun and every client connection has closed, instead of waiting out Pingora's
/// ceiling. Log lines are written unbuffered, so nothing is lost by exiting here.
pub(crate) fn exit_when_drained(
    mut phases: tokio::sync::broadcast::Receiver<ExecutionPhase>,
    connections: Arc<Connections>,
) {
    std::thread::spawn(move || {
        loop {
            match phases.blocking_recv() {
                Ok(ExecutionPhase::ShutdownGracePeriod) => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
        // Two empty looks in a row: a connection accepted just before the listener closed may
        // not have reached the front yet at the first one.
        let mut empty = 0;
        while empty < 2 {
            std::thread::sleep(POLL);
            empty = if connections.open() == 0 {
                empty + 1
            } else {
                0
            };
        }
        tracing::info!("every connection closed; exiting");
        std::process::exit(0);
    });
}
