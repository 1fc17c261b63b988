//! The in-process store (moka): bounded by bytes and TTL; the default for a single instance.
//!
//! Every entry lives for the store's TTL after its last `put` (one global TTL rather than
//! per-entry expiry, which has known latency spikes in moka). The byte bound counts keys and
//! header values plus a fixed per-entry overhead; when it is reached moka evicts by its
//! TinyLFU policy and each eviction is counted.
//!
//! moka's synchronous cache, not its async one: every call here is a short in-memory operation
//! that never waits on I/O, and the async cache's state machines and async key lock cost about
//! 1,000 more instructions per `put` on the proxy's init path (callgrind).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moka::notification::RemovalCause;
use moka::sync::Cache;

use super::{EvictionCallback, SessionEntry, SessionKey, SessionStore, StoreError};

/// Bytes charged per entry on top of its strings: moka's node, the `Arc`s and string headers.
const ENTRY_OVERHEAD_BYTES: usize = 160;

/// The in-process session store.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<String, Arc<SessionEntry>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
            .field("bytes", &self.cache.weighted_size())
            .finish()
    }
}

impl MemoryStore {
    /// A store whose entries expire `ttl` after their `put`, holding at most `max_bytes`;
    /// `on_evict` is called once per entry evicted by the byte bound.
    pub fn new(ttl: Duration, max_bytes: u64, on_evict: Option<EvictionCallback>) -> MemoryStore {
        let mut builder = Cache::builder()
            .name("flowgate-sessions")
            .max_capacity(max_bytes)
            .time_to_live(ttl)
            .weigher(|key: &String, entry: &Arc<SessionEntry>| weight(key, entry));
        if let Some(count) = on_evict {
            builder = builder.eviction_listener(move |_key, _value, cause| {
                if cause == RemovalCause::Size {
                    count();
                }
            });
        }
        MemoryStore {
            cache: builder.build(),
        }
    }

    /// Number of entries (approximate until pending maintenance has run).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Bytes charged against the bound (approximate until pending maintenance has run).
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Runs moka's pending maintenance (evictions, expirations) now.
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }
}

fn weight(key: &str, entry: &SessionEntry) -> u32 {
    let bytes = ENTRY_OVERHEAD_BYTES
        + key.len()
        + entry.context.len()
        + entry.prefill.len()
        + entry.status.len();
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The cache key: site and session ids cannot contain `/` (validated before the store).
fn cache_key(key: SessionKey<'_>) -> String {
    let mut s = String::with_capacity(key.site.len() + 1 + key.session.len());
    s.push_str(key.site);
    s.push('/');
    s.push_str(key.session);
    s
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn put(&self, key: SessionKey<'_>, entry: &SessionEntry) -> Result<(), StoreError> {
        self.cache.insert(cache_key(key), Arc::new(entry.clone()));
        Ok(())
    }

    async fn get(&self, key: SessionKey<'_>) -> Result<Option<SessionEntry>, StoreError> {
        Ok(self
            .cache
            .get(cache_key(key).as_str())
            .map(|e| SessionEntry::clone(&e)))
    }

    async fn delete(&self, key: SessionKey<'_>) -> Result<(), StoreError> {
        self.cache.invalidate(cache_key(key).as_str());
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn key<'a>(site: &'a str, session: &'a str) -> SessionKey<'a> {
        SessionKey { site, session }
    }

    fn entry(context: &str) -> SessionEntry {
        SessionEntry {
            context: context.to_owned(),
            prefill: "e30=".to_owned(),
            status: "accepted".to_owned(),
        }
    }

    #[tokio::test]
    async fn put_get_replace_delete() {
        let s = MemoryStore::new(Duration::from_secs(60), 1 << 20, None);
        assert_eq!(s.get(key("a", "1")).await.unwrap(), None);
        s.put(key("a", "1"), &entry("one")).await.unwrap();
        assert_eq!(s.get(key("a", "1")).await.unwrap(), Some(entry("one")));
        s.put(key("a", "1"), &entry("two")).await.unwrap();
        assert_eq!(s.get(key("a", "1")).await.unwrap(), Some(entry("two")));
        s.delete(key("a", "1")).await.unwrap();
        assert_eq!(s.get(key("a", "1")).await.unwrap(), None);
        s.delete(key("a", "1")).await.unwrap();
    }

    #[tokio::test]
    async fn keys_are_scoped_by_site() {
        let s = MemoryStore::new(Duration::from_secs(60), 1 << 20, None);
        s.put(key("a", "1"), &entry("one")).await.unwrap();
        assert_eq!(s.get(key("b", "1")).await.unwrap(), None);
        // No concatenation ambiguity: ids cannot contain the separator.
        assert_eq!(s.get(key("a/1", "")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let s = MemoryStore::new(Duration::from_millis(50), 1 << 20, None);
        s.put(key("a", "1"), &entry("one")).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while s.get(key("a", "1")).await.unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "never expired");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn byte_bound_evicts_and_counts() {
        let evicted = Arc::new(AtomicU64::new(0));
        let counter = evicted.clone();
        let s = MemoryStore::new(
            Duration::from_secs(60),
            64 * 1024,
            Some(Arc::new(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            })),
        );
        let big = "x".repeat(1000);
        for i in 0..500 {
            s.put(key("site", &i.to_string()), &entry(&big))
                .await
                .unwrap();
        }
        s.run_pending_tasks().await;
        assert!(s.weighted_size() <= 64 * 1024, "{}", s.weighted_size());
        assert!(evicted.load(Ordering::Relaxed) > 0);
    }
}
