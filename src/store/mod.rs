//! Session storage: one small trait, an in-process backend and a Redis backend.
//!
//! An init with an accepted context `put`s the precomputed header values for its
//! (site, session); an init without one `delete`s them; session routes `get` and re-attach them.
//! The time-to-live is a property of the store, set when it is built. Two more calls serve
//! signed tokens and erasure: `claim_once` makes a token with a `jti` single-use, `purge_site`
//! removes a site's every stored context. With `sessions.bind: key` an init writes through
//! `write_bound`: the put or delete happens only when the stored entry is not bound to another
//! session key, checked and written in one atomic step.
//!
//! The store knows nothing of the configuration file or of metrics: it is built from its own
//! [`StoreSettings`], and reports what the operator should see through a callback and its own
//! Redis metrics.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use self::failure::FailureKind;
use self::redis::RedisSettings;

pub mod breaker;
pub mod failure;
pub mod memory;
pub mod redis;

/// Identifies one chat session; keys are always scoped by site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey<'a> {
    /// The widget's `siteid`, already validated.
    pub site: &'a str,
    /// The widget's `jsSessionId`, already validated.
    pub session: &'a str,
}

/// The SHA-256 of a session's key (the widget's `Flowgate-Session-Key`); the key itself is
/// never stored.
pub type KeyHash = [u8; 32];

/// What session routes re-attach: the exact trusted header values, computed once at init.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionEntry {
    /// Value of the `Context` header.
    pub context: String,
    /// Value of the `Prefill` header.
    pub prefill: String,
    /// Value of the `Status` header.
    pub status: String,
    /// The hash of the key the init presented; `None`: the entry is not bound to a key.
    pub key_hash: Option<KeyHash>,
}

/// The write an init makes: store its context, or forget the session (logout).
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    /// Store this entry, replacing what was there.
    Put(&'a SessionEntry),
    /// Remove the stored entry.
    Delete,
}

/// Whether a stored entry may be replaced or removed by a request presenting `presented`: when
/// it is not bound to a key, or bound to this one (compared in constant time).
pub fn may_write(stored: Option<&KeyHash>, presented: &KeyHash) -> bool {
    use subtle::ConstantTimeEq as _;
    stored.is_none_or(|h| bool::from(h.ct_eq(presented)))
}

/// Why a store call did not complete; the proxy goes on without stored context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The call did not finish within its deadline.
    Timeout,
    /// The store could not be built or used (configuration, client); the text names why.
    Unavailable(String),
    /// The backend failed the call for this reason.
    Failed(FailureKind),
    /// The circuit breaker is open: the backend is not being called for a cool-down; the kind
    /// is the failure that opened it.
    CircuitOpen(FailureKind),
    /// A stored value could not be decoded.
    Corrupt,
    /// The session's logout could not be stored yet: its stored context is withheld until the
    /// delete lands (or, past the bound on waiting deletes, until the store's TTL has passed).
    PendingDelete,
}

impl StoreError {
    /// A short label for the access log's `store_error` field (never a backend message).
    pub fn label(&self) -> &'static str {
        match self {
            StoreError::Timeout => "timeout",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Failed(kind) => kind.as_str(),
            StoreError::CircuitOpen(_) => "breaker_open",
            StoreError::Corrupt => "corrupt",
            StoreError::PendingDelete => "pending_delete",
        }
    }

    /// The failure kind behind the error, when the backend named one.
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            StoreError::Failed(kind) | StoreError::CircuitOpen(kind) => Some(*kind),
            StoreError::Corrupt => Some(FailureKind::Corrupt),
            StoreError::Timeout => Some(FailureKind::Timeout),
            StoreError::Unavailable(_) | StoreError::PendingDelete => None,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Timeout => f.write_str("store call timed out"),
            StoreError::Unavailable(why) => write!(f, "store unavailable: {why}"),
            StoreError::Failed(kind) => write!(f, "store failed: {}", kind.as_str()),
            StoreError::CircuitOpen(kind) => {
                write!(f, "store circuit open after {}", kind.as_str())
            }
            StoreError::Corrupt => f.write_str("stored value is corrupt"),
            StoreError::PendingDelete => f.write_str("session delete pending"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A session store backend.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores `entry` for `key`, replacing what was there, with the store's TTL.
    async fn put(&self, key: SessionKey<'_>, entry: &SessionEntry) -> Result<(), StoreError>;
    /// Returns the entry for `key`, if one is stored and not expired.
    async fn get(&self, key: SessionKey<'_>) -> Result<Option<SessionEntry>, StoreError>;
    /// Removes the entry for `key`; removing a missing entry is not an error.
    async fn delete(&self, key: SessionKey<'_>) -> Result<(), StoreError>;
    /// Makes `write` for `key` in one atomic step unless the stored entry is bound to a key
    /// other than `presented` (see [`may_write`]): `Ok(false)`, nothing written, when it is.
    async fn write_bound(
        &self,
        key: SessionKey<'_>,
        write: Write<'_>,
        presented: &KeyHash,
    ) -> Result<bool, StoreError>;
    /// Records the one use of the one-time token id `id` of `site`, remembered for `ttl`:
    /// `true` for the first use, `false` when it was used before (atomically, across every
    /// instance sharing the store).
    async fn claim_once(&self, site: &str, id: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Removes every stored context of `site` (not its one-time token records, which must
    /// outlive an erasure); `progress` is called after each batch with the counts so far.
    async fn purge_site(
        &self,
        site: &str,
        progress: &PurgeProgress,
    ) -> Result<PurgeCounts, StoreError>;
    /// A short backend name for metrics and logs (`memory`, `redis`, …).
    fn backend(&self) -> &'static str;
    /// Whether the backend answers right now, for `/healthz`. A degraded store means requests
    /// run without stored context, not that the proxy is down.
    fn health(&self) -> StoreHealth {
        StoreHealth::Ok
    }
}

/// What a site purge did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    /// Storage nodes walked to the end (1 for the in-process store and standalone Redis, every
    /// master of a Cluster).
    pub nodes: u32,
    /// Keys looked at (`SCAN` replies; every entry for the in-process store).
    pub scanned: u64,
    /// Contexts removed.
    pub removed: u64,
    /// Batches done.
    pub batches: u64,
}

/// Called after each batch of a site purge with the counts so far.
pub type PurgeProgress = dyn Fn(&PurgeCounts) + Send + Sync;

/// The key under which a one-time token id is remembered: a SHA-256 of the id (ids are up to
/// 256 bytes of anything), hex. Shared by the backends so both remember the same thing.
pub(crate) fn one_time_digest(id: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// What `/healthz` says about the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    /// The store answers.
    Ok,
    /// The store is not answering; the message says which and why (no credentials).
    Degraded(String),
}

/// Everything a store is built from (the `store` and `redis` sections of the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// How long a stored session lives after its init.
    pub ttl: Duration,
    /// Deadline of one store call; past it the request goes on without the store.
    pub deadline: Duration,
    /// Byte bound of the in-process store.
    pub memory_max_bytes: u64,
    /// A non-empty `url` selects the Redis store. Its `ttl` and `timeout` are taken from `ttl`
    /// and `deadline` above when the store is built.
    pub redis: RedisSettings,
}

impl StoreSettings {
    /// The Redis settings with the store-wide TTL and deadline filled in.
    pub fn redis_settings(&self) -> RedisSettings {
        RedisSettings {
            ttl: self.ttl,
            timeout: self.deadline,
            ..self.redis.clone()
        }
    }
}

/// Called once per session the in-process store evicts to respect its byte bound.
pub type EvictionCallback = Arc<dyn Fn() + Send + Sync>;

/// Builds the configured store: the one place that picks a backend.
///
/// A Redis URL in the settings selects the Redis backend (nothing connects yet: the first call
/// does, inside the running server); otherwise the in-process store, which calls `on_evict`
/// for every session its byte bound pushes out.
pub fn build(
    settings: &StoreSettings,
    on_evict: Option<EvictionCallback>,
) -> Result<Arc<dyn SessionStore>, StoreError> {
    if !settings.redis.url.is_empty() {
        let store = redis::RedisStore::new(&settings.redis_settings())
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        return Ok(Arc::new(store));
    }
    let store = memory::MemoryStore::new(settings.ttl, settings.memory_max_bytes, on_evict);
    Ok(Arc::new(store))
}
