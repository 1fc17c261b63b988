//! The Redis store: standalone, Sentinel and Cluster, every call under a deadline and a breaker.
//!
//! One round trip per call: init → `SET key value EX ttl`, init without context → `DEL key`,
//! session route → `GET key`, each on a multiplexed connection (concurrent calls are pipelined).
//! A call that does not finish within its deadline, or that the open breaker refuses, returns an
//! error at once; the proxy goes on without stored context. Recovery is automatic: the breaker
//! lets a probe through after a short cool-down and the connection is remade on demand.
//!
//! - [`url`] — the `--redis` URL forms;
//! - `settings` — what the store is built from, and what can be wrong with it;
//! - [`codec`] — key layout (Cluster hash tag) and the compact value encoding;
//! - `connector` — what a connection is per topology, and how one is made;
//! - `link` — the store's one connection, made lazily and remade when lost;
//! - `metrics` — the store's Prometheus metrics;
//! - `replay` — one-time token ids (`SET NX` with the token's lifetime);
//! - `erase` — a site purge (`SCAN` on every master, `UNLINK` in bounded batches).

pub mod codec;
mod connector;
mod erase;
pub(crate) mod link;
pub(crate) mod metrics;
mod replay;
mod settings;
pub mod url;

pub use settings::{RedisConfigError, RedisSettings, SettingsError};

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::{Cmd, FromRedisValue};

use self::link::{Link, LinkTimeouts};
use self::metrics::{Command, ErrorKind, metrics};
use self::url::{RedisUrl, Topology};
use crate::store::breaker::{Breaker, BreakerState, Outcome};
use crate::store::{
    PurgeCounts, PurgeProgress, SessionEntry, SessionKey, SessionStore, StoreError, StoreHealth,
};

/// A snapshot for `/healthz`: Redis being down degrades flowgate, it does not kill it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisHealth {
    /// The URL without credentials.
    pub endpoint: String,
    /// The breaker's state; anything but closed means requests run without stored context.
    pub breaker: BreakerState,
}

impl RedisHealth {
    /// Whether Redis currently answers (breaker closed).
    pub fn is_ok(&self) -> bool {
        self.breaker == BreakerState::Closed
    }
}

/// The Redis session store.
pub struct RedisStore {
    link: Arc<Link>,
    breaker: Breaker,
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
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("expiry", &self.expiry)
            .field("timeout", &self.timeout)
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
        let backend = match url.topology {
            Topology::Standalone(_) => "redis",
            Topology::Cluster(_) => "redis-cluster",
            Topology::Sentinel { .. } => "redis-sentinel",
        };
        Ok(RedisStore {
            link: Arc::new(link),
            breaker: Breaker::new(settings.breaker_failures, settings.breaker_cool_down),
            prefix: settings.key_prefix.clone(),
            expiry,
            timeout: settings.timeout,
            backend,
            endpoint: url.describe(),
        })
    }

    /// The Redis key of a session (for operators and tests).
    pub fn key(&self, key: SessionKey<'_>) -> String {
        codec::session_key(&self.prefix, key)
    }

    /// The current health snapshot.
    pub fn redis_health(&self) -> RedisHealth {
        RedisHealth {
            endpoint: self.endpoint.clone(),
            breaker: self.breaker.state(),
        }
    }

    /// One command under the breaker and the deadline, with metrics.
    async fn call<T: FromRedisValue>(&self, command: Command, cmd: &Cmd) -> Result<T, StoreError> {
        let m = metrics();
        let Some(permit) = self.breaker.try_acquire() else {
            m.rejected(command);
            m.breaker(self.breaker.state(), false);
            return Err(StoreError::CircuitOpen);
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
                m.error(command, ErrorKind::Error);
                tracing::debug!(
                    backend = self.backend,
                    command = command.as_str(),
                    error = e.category(),
                    "redis call failed"
                );
                (
                    Err(StoreError::Unavailable(e.category().to_string())),
                    Outcome::Failure,
                )
            }
            Err(_) => {
                m.error(command, ErrorKind::Timeout);
                tracing::debug!(
                    backend = self.backend,
                    command = command.as_str(),
                    "redis call timed out"
                );
                (Err(StoreError::Timeout), Outcome::Failure)
            }
        };
        let opened = permit.finish(outcome);
        if opened {
            tracing::warn!(backend = self.backend, endpoint = %self.endpoint,
                "redis unavailable: circuit breaker open, serving without stored context");
        }
        m.breaker(self.breaker.state(), opened);
        result
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn put(&self, key: SessionKey<'_>, entry: &SessionEntry) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(codec::encode(entry))
            .arg(self.expiry.0)
            .arg(self.expiry.1);
        self.call::<()>(Command::Set, &cmd).await
    }

    async fn get(&self, key: SessionKey<'_>) -> Result<Option<SessionEntry>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        match self.call::<Option<Vec<u8>>>(Command::Get, &cmd).await? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes).map(Some).inspect_err(|_| {
                metrics().error(Command::Get, ErrorKind::Corrupt);
            }),
        }
    }

    async fn delete(&self, key: SessionKey<'_>) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(key));
        self.call::<()>(Command::Del, &cmd).await
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
        self.backend
    }

    fn health(&self) -> StoreHealth {
        let health = self.redis_health();
        if health.is_ok() {
            StoreHealth::Ok
        } else {
            StoreHealth::Degraded(format!(
                "{} {}: not answering (circuit breaker {})",
                self.backend,
                health.endpoint,
                health.breaker.as_str()
            ))
        }
    }
}
