//! Connections to Redis, created lazily inside the running runtime.
//!
//! Nothing connects when the store is built: Pingora may fork when daemonising, and Redis may
//! not be up yet. The first call starts one connection attempt in a spawned task (so it finishes
//! even when that call's deadline cuts it off); calls during the attempt wait on it under their
//! own deadline; a failed attempt leaves the slot empty and the next call the breaker lets
//! through starts another.
//!
//! - standalone: a `ConnectionManager`, which reconnects by itself after a lost connection;
//! - Cluster: the async cluster connection, which follows slot moves and node failures;
//! - Sentinel: a multiplexed connection to the master the sentinels name. A background task asks
//!   the sentinels every [`SENTINEL_CHECK_INTERVAL`] which node is master; when that changes — or
//!   a call meets a lost connection or a `READONLY` reply (the node was demoted) — the slot is
//!   emptied, so the next call asks the sentinels again and follows the failover. (After a
//!   failover the old master keeps accepting writes until Sentinel demotes it, which can take
//!   seconds; without the check, writes would go on landing there and be lost.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};

pub(crate) use super::connector::Conn;
use super::connector::Connector;
use super::url::RedisUrl;

/// How often the sentinels are asked which node is master.
pub(crate) const SENTINEL_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// `(host, port)` of a Sentinel-named master.
pub(super) type MasterAddr = (String, u16);

/// Timeouts the connections are built with; every call also has its own deadline on top.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkTimeouts {
    /// Bound on one connection attempt (TCP, TLS, handshake, sentinel lookup).
    pub(crate) connect: Duration,
    /// Bound on an unanswered command inside the client, so abandoned calls do not pile up.
    pub(crate) response: Duration,
}

type Connecting = Shared<BoxFuture<'static, Result<(Conn, u64, Option<MasterAddr>), RedisError>>>;

enum State {
    Idle,
    Connecting(Connecting),
    Ready(Conn, u64, Option<MasterAddr>),
}

/// The store's one connection (of any topology), made on first use and remade when lost.
pub(crate) struct Link {
    connector: Arc<Connector>,
    timeouts: LinkTimeouts,
    state: Mutex<State>,
    generation: AtomicU64,
    /// The Sentinel watcher has been started.
    watching: std::sync::atomic::AtomicBool,
}

impl Link {
    /// Prepares the connection without any I/O.
    pub(crate) fn new(
        url: &RedisUrl,
        root_cert: Option<&[u8]>,
        timeouts: LinkTimeouts,
    ) -> RedisResult<Self> {
        Ok(Link {
            connector: Arc::new(Connector::new(url, root_cert, timeouts)?),
            timeouts,
            state: Mutex::new(State::Idle),
            generation: AtomicU64::new(0),
            watching: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The current connection and its generation, connecting first when there is none.
    /// Must run inside a Tokio runtime.
    pub(crate) async fn get(self: &Arc<Self>) -> RedisResult<(Conn, u64)> {
        let pending = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match &*state {
                State::Ready(conn, generation, _) => return Ok((conn.clone(), *generation)),
                State::Connecting(pending) => pending.clone(),
                State::Idle => {
                    let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                    let connector = Arc::clone(&self.connector);
                    let limit = self.timeouts.connect.saturating_mul(2);
                    let pending: Connecting = async move {
                        match tokio::time::timeout(limit, connector.connect()).await {
                            Ok(Ok((conn, master))) => Ok((conn, generation, master)),
                            Ok(Err(e)) => Err(e),
                            Err(_) => Err(RedisError::from(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "connecting to Redis timed out",
                            ))),
                        }
                    }
                    .boxed()
                    .shared();
                    *state = State::Connecting(pending.clone());
                    // Settle the slot even if every waiting call gives up first.
                    let this = Arc::clone(self);
                    let settle = pending.clone();
                    tokio::spawn(async move {
                        let outcome = settle.await;
                        let connected = outcome.is_ok();
                        {
                            let mut state =
                                this.state.lock().unwrap_or_else(PoisonError::into_inner);
                            if matches!(&*state, State::Connecting(_)) {
                                *state = match outcome {
                                    Ok((conn, generation, master)) => {
                                        State::Ready(conn, generation, master)
                                    }
                                    Err(_) => State::Idle,
                                };
                            }
                        }
                        if connected {
                            this.start_sentinel_watch();
                        }
                    });
                    pending
                }
            }
        };
        pending
            .await
            .map(|(conn, generation, _)| (conn, generation))
    }

    /// Starts (once) the task that follows Sentinel's choice of master.
    fn start_sentinel_watch(self: &Arc<Self>) {
        let Connector::Sentinel {
            sentinels,
            master,
            timeouts,
            ..
        } = &*self.connector
        else {
            return;
        };
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(watch_sentinel(
            Arc::downgrade(self),
            sentinels.clone(),
            master.clone(),
            *timeouts,
        ));
    }

    /// The address of the current Sentinel master connection, if connected.
    fn current_master(&self) -> Option<(u64, MasterAddr)> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &*state {
            State::Ready(_, generation, Some(addr)) => Some((*generation, addr.clone())),
            _ => None,
        }
    }

    /// `host:port` of the master the current Sentinel connection goes to, if connected.
    pub(crate) fn current_node(&self) -> Option<String> {
        self.current_master().map(|(_, (host, port))| {
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        })
    }

    /// Drops the connection of `generation` if it is still the current one.
    fn drop_connection(&self, generation: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(&*state, State::Ready(_, g, _) if *g == generation) {
            *state = State::Idle;
        }
    }

    /// Reports a failed command on the connection of `generation`; drops that connection when
    /// the error means it is unusable (and it is still the current one).
    pub(crate) fn failed(&self, generation: u64, e: &RedisError) {
        if self.connector.must_reconnect(e) {
            self.drop_connection(generation);
        }
    }
}

/// Asks the sentinels which node is master every [`SENTINEL_CHECK_INTERVAL`]; when it is not the
/// one connected to, drops that connection. Ends when the store is dropped.
async fn watch_sentinel(
    link: Weak<Link>,
    sentinels: Vec<Client>,
    master: String,
    timeouts: LinkTimeouts,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut next = 0usize;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response));
    loop {
        tokio::time::sleep(SENTINEL_CHECK_INTERVAL).await;
        let Some((generation, current)) = (match link.upgrade() {
            Some(link) => link.current_master(),
            None => return,
        }) else {
            continue;
        };
        if conn.is_none() {
            // Try the sentinels in turn, one per round, so a dead one does not stall the check.
            let Some(client) = sentinels.get(next % sentinels.len().max(1)) else {
                return;
            };
            next = next.wrapping_add(1);
            conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("GET-MASTER-ADDR-BY-NAME").arg(&master);
        match cmd.query_async::<Option<(String, u16)>>(c).await {
            Ok(Some(named)) if named != current => {
                tracing::info!(
                    master = %master,
                    from = %format!("{}:{}", current.0, current.1),
                    to = %format!("{}:{}", named.0, named.1),
                    "sentinel names a new master; reconnecting"
                );
                if let Some(link) = link.upgrade() {
                    link.drop_connection(generation);
                }
            }
            Ok(_) => {}
            Err(_) => conn = None,
        }
    }
}
