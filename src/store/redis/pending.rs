//! Logouts that could not be stored yet, so a logged-out identity never comes back.
//!
//! When a `DEL` fails (Redis stalled, breaker open), its key is remembered here: reads of that
//! session are refused (served without stored context) until a later `DEL` lands — retried by
//! every read of the session and by a background drain while any wait — or a new `SET` for the
//! session replaces the old value. At most [`MAX_PENDING`] keys wait; a delete past the bound
//! is dropped and counted, and fails closed: its key's hash marks a fixed bit set, and reads of
//! every session whose hash hits a marked bit are refused until one store TTL has passed since
//! the last mark (by then the forgotten value has expired in Redis).
//!
//! With `sessions.bind: key` a logout is a bound delete: it lands only when the stored entry is
//! not bound to another key. A waiting bound delete keeps the key hash it presented, so whoever
//! knows a session id cannot turn a stalled attempt into an unconditional `DEL` later. Up to
//! [`MAX_GUARDS`] different hashes wait per session (the visitor's own among an attacker's);
//! past that the session fails closed through the filter like an overflow.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::store::KeyHash;

/// Most logouts that wait for their `DEL`.
pub(crate) const MAX_PENDING: usize = 10_000;
/// Bits in the overflow filter (128 KiB).
const FILTER_BITS: usize = 1 << 20;
/// Most different key hashes of bound deletes that wait for one session.
pub(crate) const MAX_GUARDS: usize = 4;

/// What waits for one session: an unconditional `DEL`, or bound deletes, one per key hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// `DEL`, whatever is stored.
    Any,
    /// A bound delete for each of these key hashes.
    Bound(Vec<KeyHash>),
}

/// What a read of a session must do first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadGate {
    /// No logout waits for this session: read.
    Open,
    /// Its logout waits: `DEL` first, read nothing.
    DeleteFirst,
    /// Its logout was dropped for the bound: refuse the read.
    Refuse,
}

/// Keys whose `DEL` has not landed yet, plus the overflow filter.
#[derive(Debug)]
pub(crate) struct PendingDeletes {
    ttl: Duration,
    state: Mutex<State>,
    hasher: RandomState,
}

#[derive(Debug)]
struct State {
    keys: HashMap<String, Waiting>,
    /// Allocated on the first overflow only.
    filter: Option<Vec<u64>>,
    /// When the filter was last marked; it is cleared one TTL later.
    marked: Option<Instant>,
}

/// What [`PendingDeletes::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    /// The key waits for its `DEL`.
    Queued,
    /// The bound was reached: the key only marks the filter.
    Dropped,
}

impl PendingDeletes {
    /// An empty set for a store whose values live `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        PendingDeletes {
            ttl,
            state: Mutex::new(State {
                keys: HashMap::new(),
                filter: None,
                marked: None,
            }),
            hasher: RandomState::new(),
        }
    }

    fn bit(&self, key: &str) -> (usize, u64) {
        let h = usize::try_from(self.hasher.hash_one(key) % FILTER_BITS as u64).unwrap_or(0);
        (h / 64, 1u64 << (h % 64))
    }

    /// Remembers a delete of `key` that did not land: unconditional (`guard` `None`), or bound
    /// to the key hash `guard`.
    pub(crate) fn add(&self, key: &str, guard: Option<&KeyHash>) -> Added {
        let (word, mask) = self.bit(key);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting = match guard {
            None => Waiting::Any,
            Some(h) => Waiting::Bound(vec![*h]),
        };
        let full = state.keys.len() >= MAX_PENDING;
        let queued = match (state.keys.get_mut(key), waiting) {
            (Some(Waiting::Any), _) => true,
            (Some(current), Waiting::Any) => {
                *current = Waiting::Any;
                true
            }
            (Some(Waiting::Bound(list)), Waiting::Bound(new)) => new.into_iter().all(|h| {
                if list.contains(&h) {
                    true
                } else if list.len() < MAX_GUARDS {
                    list.push(h);
                    true
                } else {
                    false
                }
            }),
            (None, _) if full => false,
            (None, waiting) => {
                state.keys.insert(key.to_owned(), waiting);
                true
            }
        };
        if queued {
            return Added::Queued;
        }
        self.overflow(&mut state, word, mask)
    }

    /// Marks the filter for a delete that cannot wait: reads of its session are refused.
    fn overflow(&self, state: &mut State, word: usize, mask: u64) -> Added {
        let filter = state
            .filter
            .get_or_insert_with(|| vec![0; FILTER_BITS / 64]);
        if let Some(w) = filter.get_mut(word) {
            *w |= mask;
        }
        state.marked = Some(Instant::now());
        Added::Dropped
    }

    /// The `DEL` of `key` landed, or a `SET` replaced its value.
    pub(crate) fn done(&self, key: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.keys.remove(key);
    }

    /// The bound delete of `key` for `guard` reached Redis (whether it removed the entry or
    /// found it bound to another key); the session waits while others remain.
    pub(crate) fn landed(&self, key: &str, guard: &KeyHash) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(Waiting::Bound(list)) = state.keys.get_mut(key) {
            list.retain(|h| h != guard);
            if list.is_empty() {
                state.keys.remove(key);
            }
        }
    }

    /// What waits for `key`, if anything.
    pub(crate) fn waiting(&self, key: &str) -> Option<Waiting> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.keys.get(key).cloned()
    }

    /// What a read of `key` must do first.
    pub(crate) fn gate(&self, key: &str) -> ReadGate {
        let (word, mask) = self.bit(key);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.keys.contains_key(key) {
            return ReadGate::DeleteFirst;
        }
        if state.marked.is_some_and(|at| at.elapsed() >= self.ttl) {
            state.filter = None;
            state.marked = None;
        }
        match &state.filter {
            Some(filter) if filter.get(word).is_some_and(|w| w & mask != 0) => ReadGate::Refuse,
            _ => ReadGate::Open,
        }
    }

    /// Up to `n` waiting keys, for the background drain.
    pub(crate) fn some(&self, n: usize) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.keys.keys().take(n).cloned().collect()
    }

    /// How many keys wait.
    pub(crate) fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_delete_gates_reads_until_done() {
        let p = PendingDeletes::new(Duration::from_secs(60));
        assert_eq!(p.gate("k"), ReadGate::Open);
        assert_eq!(p.add("k", None), Added::Queued);
        assert_eq!(p.gate("k"), ReadGate::DeleteFirst);
        assert_eq!(p.gate("other"), ReadGate::Open);
        p.done("k");
        assert_eq!(p.gate("k"), ReadGate::Open);
    }

    #[test]
    fn bound_deletes_wait_per_key_hash() {
        let p = PendingDeletes::new(Duration::from_secs(60));
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(p.add("k", Some(&a)), Added::Queued);
        assert_eq!(p.add("k", Some(&b)), Added::Queued);
        assert_eq!(p.add("k", Some(&a)), Added::Queued);
        assert_eq!(p.waiting("k"), Some(Waiting::Bound(vec![a, b])));
        p.landed("k", &a);
        assert_eq!(p.gate("k"), ReadGate::DeleteFirst);
        p.landed("k", &b);
        assert_eq!(p.gate("k"), ReadGate::Open);
        // An unconditional delete covers every bound one.
        p.add("k", Some(&a));
        p.add("k", None);
        assert_eq!(p.waiting("k"), Some(Waiting::Any));
        p.done("k");
        // Past MAX_GUARDS different hashes the session fails closed.
        for i in 0..MAX_GUARDS {
            assert_eq!(p.add("m", Some(&[i as u8; 32])), Added::Queued);
        }
        assert_eq!(p.add("m", Some(&[9; 32])), Added::Dropped);
        p.done("m");
        assert_eq!(p.gate("m"), ReadGate::Refuse);
    }

    #[test]
    fn past_the_bound_reads_are_refused_until_a_ttl_has_passed() {
        let p = PendingDeletes::new(Duration::from_millis(50));
        for i in 0..MAX_PENDING {
            assert_eq!(p.add(&format!("k{i}"), None), Added::Queued);
        }
        assert_eq!(p.add("late", None), Added::Dropped);
        assert_eq!(p.len(), MAX_PENDING);
        assert_eq!(p.gate("late"), ReadGate::Refuse);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(p.gate("late"), ReadGate::Open);
    }
}
