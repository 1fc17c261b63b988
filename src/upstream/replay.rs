//! Replay protection: a request id flowgate signed may be used once within the time window.
//!
//! A captured request (headers and signature) verifies again until its `t` leaves the
//! tolerance. A backend that opts in hands [`super::Options::replay`] a cache; the kit then
//! refuses a second request with the same signed request id as `replayed`. One process:
//! [`MemoryReplayCache`]. Several backend processes: implement [`ReplayCache`] over a shared
//! store (Redis `SET id 1 NX EX <2 × tolerance>` has exactly the semantics).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Remembers signed request ids.
pub trait ReplayCache: Send + Sync {
    /// Atomically remembers `request_id` (signed at unix time `t`) and says whether it was
    /// already remembered. Called only for requests whose signature and time verified.
    fn seen(&self, request_id: &str, t: u64) -> bool;
}

/// An in-process [`ReplayCache`], bounded twice: an entry is forgotten once no signature with
/// its `t` can verify any more (`t` more than 2 × tolerance older than the newest `t` seen),
/// and past `max_entries` the oldest entry goes. Size `max_entries` above the requests one
/// backend process verifies in 2 × tolerance (600 s by default): ids beyond the cap can
/// replay. Each entry costs about 200 bytes.
#[derive(Debug)]
pub struct MemoryReplayCache {
    window: u64,
    max_entries: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ids: HashSet<Box<str>>,
    /// Insertion order: (t, id).
    order: VecDeque<(u64, Box<str>)>,
    newest: u64,
}

impl Inner {
    fn pop_oldest(&mut self) {
        if let Some((_, id)) = self.order.pop_front() {
            self.ids.remove(&id);
        }
    }
}

/// Default entry bound of [`MemoryReplayCache::with_tolerance`].
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

impl MemoryReplayCache {
    /// A cache for verifiers with `tolerance`, holding at most `max_entries` ids (at least 1).
    pub fn new(tolerance: Duration, max_entries: usize) -> MemoryReplayCache {
        MemoryReplayCache {
            window: tolerance.as_secs().saturating_mul(2),
            max_entries: max_entries.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// A cache for verifiers with `tolerance`, holding at most [`DEFAULT_MAX_ENTRIES`].
    pub fn with_tolerance(tolerance: Duration) -> MemoryReplayCache {
        MemoryReplayCache::new(tolerance, DEFAULT_MAX_ENTRIES)
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.lock().ids.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the sets consistent (each step is complete).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ReplayCache for MemoryReplayCache {
    fn seen(&self, request_id: &str, t: u64) -> bool {
        let mut inner = self.lock();
        inner.newest = inner.newest.max(t);
        let horizon = inner.newest.saturating_sub(self.window);
        while inner
            .order
            .front()
            .is_some_and(|(old_t, _)| *old_t < horizon)
        {
            inner.pop_oldest();
        }
        if inner.ids.contains(request_id) {
            return true;
        }
        while inner.order.len() >= self.max_entries {
            inner.pop_oldest();
        }
        let id: Box<str> = request_id.into();
        inner.ids.insert(id.clone());
        inner.order.push_back((t, id));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_once_within_the_window_and_stays_bounded() {
        let c = MemoryReplayCache::new(Duration::from_secs(300), 3);
        assert!(!c.seen("a", 1000));
        assert!(c.seen("a", 1000));
        assert!(c.seen("a", 1200));
        assert!(!c.seen("b", 1000));
        assert!(!c.seen("c", 1000));
        // The cap: "a" (oldest) goes to make room.
        assert!(!c.seen("d", 1000));
        assert_eq!(c.len(), 3);
        // A full cache still refuses what it holds.
        assert!(c.seen("b", 1000));
        assert!(!c.seen("a", 1000));
        // Past 2 × tolerance after the newest t, old entries are forgotten.
        assert!(!c.seen("e", 1601));
        assert_eq!(c.len(), 1);
    }
}
