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
use moka::Expiry;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::sync::Cache;

use super::{
    EvictionCallback, KeyHash, PurgeCounts, PurgeProgress, SessionEntry, SessionKey, SessionStore,
    StoreError, Write, may_write, one_time_digest,
};

/// Most one-time token ids remembered at once. Past it moka evicts the least useful; a token
/// whose id was evicted before it expired could be used again, so the bound is far above any
/// plausible rate × token lifetime (about 30 MB at the bound).
const ONE_TIME_MAX_ENTRIES: u64 = 200_000;

/// Contexts removed per batch of a site purge (between progress reports).
const PURGE_BATCH: usize = 1_000;

/// Bytes charged per entry on top of its strings: moka's node, the `Arc`s and string headers.
const ENTRY_OVERHEAD_BYTES: usize = 160;

/// The in-process session store.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<String, Arc<SessionEntry>>,
    /// Used one-time token ids (`site/sha256`), each kept for its token's lifetime.
    used: Cache<String, Duration>,
}

/// Each used one-time token id expires after the lifetime stored with it.
struct UntilTokenExpires;

impl Expiry<String, Duration> for UntilTokenExpires {
    fn expire_after_create(
        &self,
        _key: &String,
        ttl: &Duration,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(*ttl)
    }
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
            used: Cache::builder()
                .name("flowgate-one-time-tokens")
                .max_capacity(ONE_TIME_MAX_ENTRIES)
                .expire_after(UntilTokenExpires)
                .build(),
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
        + entry.status.len()
        + entry.key_hash.map_or(0, |h| h.len());
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

    async fn write_bound(
        &self,
        key: SessionKey<'_>,
        write: Write<'_>,
        presented: &KeyHash,
    ) -> Result<bool, StoreError> {
        let mut allowed = true;
        // moka runs the closure under the key's lock: no other write lands between the check
        // and the write.
        self.cache
            .entry(cache_key(key))
            .and_compute_with(|current| {
                let stored = current.as_ref().and_then(|e| e.value().key_hash.as_ref());
                if !may_write(stored, presented) {
                    allowed = false;
                    return Op::Nop;
                }
                match write {
                    Write::Put(entry) => Op::Put(Arc::new(entry.clone())),
                    Write::Delete => Op::Remove,
                }
            });
        Ok(allowed)
    }

    async fn claim_once(&self, site: &str, id: &str, ttl: Duration) -> Result<bool, StoreError> {
        let key = format!("{site}/{}", one_time_digest(id));
        Ok(self.used.entry(key).or_insert(ttl).is_fresh())
    }

    async fn purge_site(
        &self,
        site: &str,
        progress: &PurgeProgress,
    ) -> Result<PurgeCounts, StoreError> {
        let prefix = format!("{site}/");
        let mut counts = PurgeCounts::default();
        let mut batch = Vec::with_capacity(PURGE_BATCH);
        for (key, _) in self.cache.iter() {
            counts.scanned += 1;
            if key.starts_with(&prefix) {
                batch.push(key);
            }
            if batch.len() == PURGE_BATCH {
                self.remove(&mut batch, &mut counts);
                progress(&counts);
            }
        }
        self.remove(&mut batch, &mut counts);
        counts.nodes = 1;
        progress(&counts);
        Ok(counts)
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

impl MemoryStore {
    /// Removes one batch of a purge; an entry that expired meanwhile is not counted.
    fn remove(&self, batch: &mut Vec<Arc<String>>, counts: &mut PurgeCounts) {
        for key in batch.drain(..) {
            if self.cache.remove(key.as_str()).is_some() {
                counts.removed += 1;
            }
        }
        counts.batches += 1;
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
            key_hash: None,
        }
    }

    #[tokio::test]
    async fn a_bound_entry_is_written_only_with_its_key() {
        let s = MemoryStore::new(Duration::from_secs(60), 1 << 20, None);
        let (mine, theirs) = ([1u8; 32], [2u8; 32]);
        let bound = SessionEntry {
            key_hash: Some(mine),
            ..entry("mine")
        };
        // Nothing stored, then an unbound entry: both may be written by anyone.
        assert!(
            s.write_bound(key("a", "1"), Write::Put(&entry("old")), &theirs)
                .await
                .unwrap()
        );
        assert!(
            s.write_bound(key("a", "1"), Write::Put(&bound), &mine)
                .await
                .unwrap()
        );
        let other = SessionEntry {
            key_hash: Some(theirs),
            ..entry("theirs")
        };
        assert!(
            !s.write_bound(key("a", "1"), Write::Put(&other), &theirs)
                .await
                .unwrap()
        );
        assert!(
            !s.write_bound(key("a", "1"), Write::Delete, &theirs)
                .await
                .unwrap()
        );
        assert_eq!(s.get(key("a", "1")).await.unwrap(), Some(bound.clone()));
        assert!(
            s.write_bound(key("a", "1"), Write::Delete, &mine)
                .await
                .unwrap()
        );
        assert_eq!(s.get(key("a", "1")).await.unwrap(), None);
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
    async fn one_time_ids_are_claimed_once_per_site_until_they_expire() {
        let s = MemoryStore::new(Duration::from_secs(60), 1 << 20, None);
        let ttl = Duration::from_millis(100);
        assert!(s.claim_once("a", "t1", ttl).await.unwrap());
        assert!(!s.claim_once("a", "t1", ttl).await.unwrap());
        assert!(s.claim_once("b", "t1", ttl).await.unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !s.claim_once("a", "t1", ttl).await.unwrap() {
            assert!(std::time::Instant::now() < deadline, "never expired");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn purge_removes_one_site_only() {
        let s = MemoryStore::new(Duration::from_secs(60), 1 << 24, None);
        for i in 0..2_500 {
            s.put(key("a", &i.to_string()), &entry("x")).await.unwrap();
        }
        s.put(key("ab", "1"), &entry("y")).await.unwrap();
        s.put(key("b", "1"), &entry("z")).await.unwrap();
        let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = reports.clone();
        let counts = s
            .purge_site("a", &move |c| seen.lock().unwrap().push(*c))
            .await
            .unwrap();
        assert_eq!(
            (counts.removed, counts.scanned, counts.nodes),
            (2_500, 2_502, 1)
        );
        assert_eq!(reports.lock().unwrap().len(), 3);
        assert_eq!(s.get(key("a", "7")).await.unwrap(), None);
        assert_eq!(s.get(key("ab", "1")).await.unwrap(), Some(entry("y")));
        assert_eq!(s.get(key("b", "1")).await.unwrap(), Some(entry("z")));
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
