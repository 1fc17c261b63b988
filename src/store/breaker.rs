//! A small lock-free circuit breaker for store calls.
//!
//! Closed: every call goes through; `threshold` consecutive failures open it. Open: calls are
//! refused without touching the backend until the cool-down has passed. Half-open: exactly one
//! call (the probe) goes through; its success closes the breaker, its failure opens it for another
//! cool-down. A probe that is dropped before it reports (its request was cancelled) counts as a
//! failure, so the breaker can never stay half-open with nobody probing.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the breaker is doing right now, for metrics and health reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down has passed.
    Open,
    /// The cool-down has passed; one probe call decides.
    HalfOpen,
}

impl BreakerState {
    /// The gauge value exported in metrics: 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }

    /// A lower-case name for health reports.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Tells the breaker how a permitted call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend answered.
    Success,
    /// The call failed or timed out.
    Failure,
}

/// The circuit breaker; share it behind an `Arc` or a field of a shared store.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cool_down: Duration,
    /// Consecutive failures; `>= threshold` means open or half-open.
    failures: AtomicU32,
    /// Nanoseconds since `epoch` until which the breaker stays open.
    open_until: AtomicU64,
    /// A half-open probe is in flight.
    probing: AtomicBool,
    epoch: Instant,
}

/// Permission for one call; report its end with [`Permit::finish`]. Dropping it unreported
/// counts as a failure.
#[derive(Debug)]
#[must_use = "report the call's outcome with Permit::finish"]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    done: bool,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures (at least 1) and stays
    /// open for `cool_down` before probing.
    pub(crate) fn new(threshold: u32, cool_down: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cool_down,
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            epoch: Instant::now(),
        }
    }

    /// Asks to make one call now; `None` means the breaker is open (or another probe is running).
    pub(crate) fn try_acquire(&self) -> Option<Permit<'_>> {
        self.try_acquire_at(Instant::now())
    }

    /// [`Breaker::try_acquire`] at a given instant.
    pub(crate) fn try_acquire_at(&self, now: Instant) -> Option<Permit<'_>> {
        if self.failures.load(Ordering::Acquire) < self.threshold {
            return Some(Permit {
                breaker: self,
                probe: false,
                done: false,
            });
        }
        if self.nanos(now) < self.open_until.load(Ordering::Acquire) {
            return None;
        }
        // Half-open: only the caller that flips `probing` gets to call.
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Permit {
                breaker: self,
                probe: true,
                done: false,
            })
    }

    /// The state at this instant.
    pub(crate) fn state(&self) -> BreakerState {
        self.state_at(Instant::now())
    }

    /// The state at a given instant.
    pub(crate) fn state_at(&self, now: Instant) -> BreakerState {
        if self.failures.load(Ordering::Acquire) < self.threshold {
            BreakerState::Closed
        } else if self.nanos(now) < self.open_until.load(Ordering::Acquire) {
            BreakerState::Open
        } else {
            BreakerState::HalfOpen
        }
    }

    fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn open(&self, now: Instant) {
        let until = self
            .nanos(now)
            .saturating_add(u64::try_from(self.cool_down.as_nanos()).unwrap_or(u64::MAX));
        self.open_until.store(until, Ordering::Release);
    }

    /// Records an outcome; returns `true` when this call opened the breaker.
    fn record(&self, probe: bool, outcome: Outcome, now: Instant) -> bool {
        let opened = match outcome {
            Outcome::Success => {
                self.failures.store(0, Ordering::Release);
                false
            }
            Outcome::Failure if probe => {
                self.open(now);
                true
            }
            Outcome::Failure => {
                let before = self.failures.fetch_add(1, Ordering::AcqRel);
                if before.saturating_add(1) == self.threshold {
                    self.open(now);
                    true
                } else {
                    // Keep the counter from wrapping under a long outage.
                    if before > self.threshold {
                        self.failures.store(self.threshold, Ordering::Release);
                    }
                    false
                }
            }
        };
        if probe {
            self.probing.store(false, Ordering::Release);
        }
        opened
    }
}

impl Permit<'_> {
    /// Whether this call is the half-open probe.
    #[cfg(test)]
    pub(crate) fn is_probe(&self) -> bool {
        self.probe
    }

    /// Reports how the call ended; returns `true` when this report opened the breaker.
    pub(crate) fn finish(self, outcome: Outcome) -> bool {
        self.finish_at(outcome, Instant::now())
    }

    /// [`Permit::finish`] at a given instant.
    pub(crate) fn finish_at(mut self, outcome: Outcome, now: Instant) -> bool {
        self.done = true;
        self.breaker.record(self.probe, outcome, now)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker
                .record(self.probe, Outcome::Failure, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_millis(200);

    fn fail(b: &Breaker, now: Instant) -> bool {
        match b.try_acquire_at(now) {
            Some(p) => p.finish_at(Outcome::Failure, now),
            None => panic!("call refused"),
        }
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let b = Breaker::new(3, COOL);
        let t = Instant::now();
        assert!(!fail(&b, t));
        assert!(!fail(&b, t));
        assert_eq!(b.state_at(t), BreakerState::Closed);
        assert!(fail(&b, t));
        assert_eq!(b.state_at(t), BreakerState::Open);
        assert!(b.try_acquire_at(t).is_none());
    }

    #[test]
    fn success_resets_the_count() {
        let b = Breaker::new(2, COOL);
        let t = Instant::now();
        fail(&b, t);
        let p = b.try_acquire_at(t).expect("closed");
        assert!(!p.finish_at(Outcome::Success, t));
        fail(&b, t);
        assert_eq!(b.state_at(t), BreakerState::Closed);
    }

    #[test]
    fn half_open_allows_exactly_one_probe() {
        let b = Breaker::new(1, COOL);
        let t = Instant::now();
        fail(&b, t);
        let later = t + COOL;
        assert_eq!(b.state_at(later), BreakerState::HalfOpen);
        let probe = b.try_acquire_at(later).expect("probe");
        assert!(probe.is_probe());
        assert!(
            b.try_acquire_at(later).is_none(),
            "second caller during the probe"
        );
        probe.finish_at(Outcome::Success, later);
        assert_eq!(b.state_at(later), BreakerState::Closed);
        assert!(b.try_acquire_at(later).is_some());
    }

    #[test]
    fn failed_probe_reopens_for_another_cool_down() {
        let b = Breaker::new(1, COOL);
        let t = Instant::now();
        fail(&b, t);
        let later = t + COOL;
        let probe = b.try_acquire_at(later).expect("probe");
        assert!(probe.finish_at(Outcome::Failure, later));
        assert_eq!(b.state_at(later), BreakerState::Open);
        assert!(b.try_acquire_at(later + COOL / 2).is_none());
        assert!(b.try_acquire_at(later + COOL).is_some());
    }

    #[test]
    fn dropped_probe_counts_as_failure() {
        let b = Breaker::new(1, COOL);
        let t = Instant::now();
        fail(&b, t);
        let probe = b.try_acquire_at(t + COOL).expect("probe");
        drop(probe);
        assert_eq!(b.state(), BreakerState::Open);
        // Not stuck half-open: the next cool-down gives a new probe.
        assert!(b.try_acquire_at(Instant::now() + COOL).is_some());
    }

    #[test]
    fn long_outage_does_not_wrap_the_counter() {
        let b = Breaker::new(2, Duration::ZERO);
        let t = Instant::now();
        for _ in 0..10_000 {
            if let Some(p) = b.try_acquire_at(t) {
                p.finish_at(Outcome::Failure, t);
            }
        }
        assert_ne!(b.state_at(t), BreakerState::Closed);
    }
}
