//! The Redis store: standalone, Sentinel and Cluster, every call under a deadline and a breaker.
//!
//! One round trip per call: init → `SET key value EX ttl`, init without context → `DEL key`,
//! session route → `GET key`, each on a multiplexed connection (concurrent calls are pipelined).
//! A call that does not finish within its deadline, or that the open breaker of the key's node
//! refuses, returns an error at once; the proxy goes on without stored context. Recovery is
//! automatic: the breaker lets a probe through after a short cool-down and the connection is
//! remade on demand. A logout whose `DEL` fails is not forgotten (see `pending`).
//!
//! - [`url`] — the `--redis` URL forms;
//! - `settings` — what the store is built from, and what can be wrong with it;
//! - [`codec`] — key layout (Cluster hash tag) and the compact value encoding;
//! - `connector` — what a connection is per topology, and how one is made;
//! - `link` — the store's one connection, made lazily and remade when lost;
//! - `nodes` — one breaker per node, so one failing node never stops calls to the others;
//! - `slots` — which master serves a key in Cluster mode;
//! - `classify` — what kind of failure a client error is;
//! - `pending` — logouts whose `DEL` has not landed, and the reads they hold back;
//! - `bound` — `sessions.bind: key`: the init's write checked against the stored key hash;
//! - `background` — the slot-map refresh and the pending-delete drain;
//! - `metrics` — the store's Prometheus metrics;
//! - `replay` — one-time token ids (`SET NX` with the token's lifetime);
//! - `erase` — a site purge (`SCAN` on every master, `UNLINK` in bounded batches).

mod background;
mod bound;
mod classify;
pub mod codec;
mod connector;
mod erase;
pub(crate) mod link;
pub(crate) mod metrics;
mod nodes;
mod pending;
mod replay;
mod settings;
mod slots;
pub mod url;

pub use settings::{RedisConfigError, RedisSettings, SettingsError};

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::{Cmd, FromRedisValue};

use self::link::{Link, LinkTimeouts};
use self::metrics::{Command, metrics};
use self::nodes::{NodeState, Nodes};
use self::pending::{Added, PendingDeletes, ReadGate};
use self::slots::SlotMap;
use self::url::{RedisUrl, Topology};
use crate::store::breaker::{BreakerState, Outcome};
use crate::store::{
    FailureKind, KeyHash, PurgeCounts, PurgeProgress, SessionEntry, SessionKey, SessionStore,
    StoreError, StoreHealth, Write,
};

/// A snapshot for `/healthz`: Redis being down degrades flowgate, it does not kill it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisHealth {
    /// The URL without credentials.
    pub endpoint: String,
    /// Every node whose breaker is not closed: address, breaker state, last failure.
    pub troubled: Vec<(String, BreakerState, FailureKind)>,
}

impl RedisHealth {
    /// Whether every node answers (all breakers closed).
    pub fn is_ok(&self) -> bool {
        self.troubled.is_empty()
    }
}

/// The Redis session store.
pub struct RedisStore {
    core: Arc<Core>,
}

/// What the store's calls and background tasks share.
struct Core {
    link: Arc<Link>,
    nodes: Nodes,
    /// Cluster only: which master serves a key.
    slots: Option<SlotMap>,
    pending: PendingDeletes,
    /// The pending-delete drain runs.
    draining: AtomicBool,
    /// The node name used before the topology names one (the configured address or seeds).
    default_node: String,
    sentinel: bool,
    prefix: String,
    /// `("EX", seconds)` or `("PX", milliseconds)`.
    expiry: (&'static str, u64),
    timeout: Duration,
    backend: &'static str,
    endpoint: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("endpoint", &self.core.endpoint)
            .field("prefix", &self.core.prefix)
            .field("expiry", &self.core.expiry)
            .field("timeout", &self.core.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Builds the store without connecting (connections are made on first use, inside the
    /// runtime); reads `tls_ca_file` if set.
    pub fn new(settings: &RedisSettings) -> Result<Self, RedisConfigError> {
        let problems = settings.check();
        if !problems.is_empty() {
            return Err(RedisConfigError(problems));
        }
        let fail = |e: SettingsError| RedisConfigError(vec![e]);
        let url: RedisUrl = url::parse(&settings.url).map_err(|e| fail(SettingsError::Url(e)))?;
        let root_cert = match &settings.tls_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                fail(SettingsError::CaFileRead {
                    path: path.clone(),
                    why: e.to_string(),
                })
            })?),
            None => None,
        };
        let timeouts = LinkTimeouts {
            connect: settings.connect_timeout,
            response: settings
                .timeout
                .max(Duration::from_millis(250))
                .saturating_mul(4),
        };
        let link = Link::new(&url, root_cert.as_deref(), timeouts).map_err(|e| {
            fail(SettingsError::Client {
                endpoint: url.describe(),
                why: e.to_string(),
            })
        })?;
        let expiry = if settings.ttl.subsec_nanos() == 0 {
            ("EX", settings.ttl.as_secs())
        } else {
            (
                "PX",
                u64::try_from(settings.ttl.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            )
        };
        let (backend, default_node) = match &url.topology {
            Topology::Standalone(node) => ("redis", node.to_string()),
            Topology::Cluster(_) => ("redis-cluster", url.describe()),
            Topology::Sentinel { .. } => ("redis-sentinel", url.describe()),
        };
        let cluster = matches!(url.topology, Topology::Cluster(_));
        let sentinel = matches!(url.topology, Topology::Sentinel { .. });
        Ok(RedisStore {
            core: Arc::new(Core {
                link: Arc::new(link),
                nodes: Nodes::new(settings.breaker_failures, settings.breaker_cool_down),
                slots: cluster.then(SlotMap::new),
                pending: PendingDeletes::new(settings.ttl),
                draining: AtomicBool::new(false),
                default_node,
                sentinel,
                prefix: settings.key_prefix.clone(),
                expiry,
                timeout: settings.timeout,
                backend,
                endpoint: url.describe(),
            }),
        })
    }

    /// The Redis key of a session (for operators and tests).
    pub fn key(&self, key: SessionKey<'_>) -> String {
        codec::session_key(&self.core.prefix, key)
    }

    /// The current health snapshot.
    pub fn redis_health(&self) -> RedisHealth {
        RedisHealth {
            endpoint: self.core.endpoint.clone(),
            troubled: self
                .core
                .nodes
                .troubled()
                .into_iter()
                .map(|(name, state, kind)| (name.to_string(), state, kind))
                .collect(),
        }
    }
}

impl Core {
    /// The breaker state of the node that serves `key` now.
    fn node_for(self: &Arc<Self>, key: &str) -> Arc<NodeState> {
        let name = match &self.slots {
            Some(slots) => {
                if slots.claim_refresh() {
                    background::refresh_slots(Arc::clone(self));
                }
                slots.master_of(key.as_bytes())
            }
            None if self.sentinel => self.link.current_node(),
            None => None,
        };
        self.nodes
            .get(name.as_deref().unwrap_or(&self.default_node))
    }

    /// One command for `key` under its node's breaker and the deadline, with metrics.
    async fn call<T: FromRedisValue>(
        self: &Arc<Self>,
        command: Command,
        key: &str,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        let m = metrics();
        let node = self.node_for(key);
        let Some(permit) = node.breaker.try_acquire() else {
            m.rejected(command, &node.name);
            m.breaker(&node.name, node.breaker.state(), false);
            return Err(StoreError::CircuitOpen(node.last_failure()));
        };
        let start = Instant::now();
        let attempt = async {
            let (mut conn, generation) = self.link.get().await?;
            let reply = conn.query::<T>(cmd).await;
            if let Err(e) = &reply {
                self.link.failed(generation, e);
            }
            reply
        };
        let (result, outcome) = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(value)) => {
                m.observe(command, start.elapsed());
                (Ok(value), Outcome::Success)
            }
            Ok(Err(e)) => {
                m.observe(command, start.elapsed());
                let kind = classify::classify(&e);
                (Err(kind), Outcome::Failure)
            }
            Err(_) => (Err(FailureKind::Timeout), Outcome::Failure),
        };
        let result = result.map_err(|kind| {
            node.failed(kind);
            m.error(command, kind, &node.name);
            tracing::debug!(backend = self.backend, node = %node.name,
                command = command.as_str(), kind = kind.as_str(), "redis call failed");
            StoreError::Failed(kind)
        });
        let opened = permit.finish(outcome);
        if opened {
            let kind = node.last_failure();
            tracing::warn!(backend = self.backend, node = %node.name, kind = kind.as_str(),
                "redis at {} {}: circuit breaker open, serving keys of this node without \
                 stored context", node.name, kind.describe());
        }
        m.breaker(&node.name, node.breaker.state(), opened);
        result
    }

    /// Remembers a logout of `key` before its call (see `pending`); past the bound it is
    /// dropped, counted and failed closed.
    fn queue_delete(&self, key: &str, guard: Option<&KeyHash>) {
        if self.pending.add(key, guard) == Added::Dropped {
            metrics().pending_dropped();
            tracing::warn!(
                backend = self.backend,
                "redis: too many logouts wait for Redis; reads of the dropped session are refused \
                 until the store TTL has passed"
            );
        }
    }

    /// `DEL key` once; a success ends the key's pending logout.
    async fn delete(self: &Arc<Self>, key: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        self.call::<()>(Command::Del, key, &cmd).await?;
        self.pending.done(key);
        metrics().pending(self.pending.len());
        Ok(())
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn put(&self, key: SessionKey<'_>, entry: &SessionEntry) -> Result<(), StoreError> {
        let key = self.key(key);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key)
            .arg(codec::encode(entry))
            .arg(self.core.expiry.0)
            .arg(self.core.expiry.1);
        self.core.call::<()>(Command::Set, &key, &cmd).await?;
        // The new value replaced whatever a waiting logout was to remove.
        self.core.pending.done(&key);
        Ok(())
    }

    async fn get(&self, key: SessionKey<'_>) -> Result<Option<SessionEntry>, StoreError> {
        let key = self.key(key);
        match self.core.pending.gate(&key) {
            ReadGate::Open => {}
            // The logout lands first; then there is nothing to read.
            ReadGate::DeleteFirst => {
                return match self.core.settle(&key).await {
                    Ok(()) => Ok(None),
                    Err(_) => Err(StoreError::PendingDelete),
                };
            }
            ReadGate::Refuse => return Err(StoreError::PendingDelete),
        }
        let mut cmd = redis::cmd("GET");
        cmd.arg(&key);
        match self
            .core
            .call::<Option<Vec<u8>>>(Command::Get, &key, &cmd)
            .await?
        {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes).map(Some).inspect_err(|_| {
                metrics().error(Command::Get, FailureKind::Corrupt, &self.core.default_node);
            }),
        }
    }

    async fn delete(&self, key: SessionKey<'_>) -> Result<(), StoreError> {
        let key = self.key(key);
        // Recorded before the call, so a call cut short by the caller's deadline is not lost.
        self.core.queue_delete(&key, None);
        let result = self.core.delete(&key).await;
        if result.is_err() {
            metrics().pending(self.core.pending.len());
            background::start_drain(&self.core);
        }
        result
    }

    async fn write_bound(
        &self,
        key: SessionKey<'_>,
        write: Write<'_>,
        presented: &KeyHash,
    ) -> Result<bool, StoreError> {
        self.bound(key, write, presented).await
    }

    async fn claim_once(&self, site: &str, id: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.claim(site, id, ttl).await
    }

    async fn purge_site(
        &self,
        site: &str,
        progress: &PurgeProgress,
    ) -> Result<PurgeCounts, StoreError> {
        self.purge(site, progress).await
    }

    fn backend(&self) -> &'static str {
        self.core.backend
    }

    fn health(&self) -> StoreHealth {
        let health = self.redis_health();
        if health.is_ok() {
            return StoreHealth::Ok;
        }
        // One clause per troubled node; open and half-open (probing) read the same to an
        // operator: calls to that node go without stored context.
        let each: Vec<String> = health
            .troubled
            .iter()
            .map(|(node, _, kind)| format!("redis {} at {node}", kind.describe()))
            .collect();
        StoreHealth::Degraded(each.join("; "))
    }
}
