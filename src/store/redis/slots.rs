//! Which master serves a key in Cluster mode, so a call is paced by that master's breaker.
//!
//! The map is read from `CLUSTER SLOTS` and refreshed in the background at most every
//! [`REFRESH_INTERVAL`] while calls arrive; a failover shows up as a new master address for the
//! dead one's slots, which gets a fresh breaker. Until the first refresh every key maps to the
//! seed list.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::Value;

/// How often the slot map is re-read while calls arrive.
pub(crate) const REFRESH_INTERVAL: Duration = Duration::from_millis(500);
/// Number of hash slots in a Redis Cluster.
const SLOTS: u16 = 16384;

/// The hash slot of a key (CRC16/XMODEM of its hash tag, or of the whole key without one).
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16(tagged) % SLOTS
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Slot ranges and the address of the master serving each.
#[derive(Debug)]
pub(crate) struct SlotMap {
    ranges: RwLock<Vec<(u16, u16, String)>>,
    refreshing: AtomicBool,
    /// Milliseconds since `epoch` of the last refresh start.
    last: AtomicU64,
    epoch: Instant,
}

impl SlotMap {
    /// An empty map (every key maps to the seed list until the first refresh).
    pub(crate) fn new() -> Self {
        SlotMap {
            ranges: RwLock::new(Vec::new()),
            refreshing: AtomicBool::new(false),
            last: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// The master serving `key`, if known.
    pub(crate) fn master_of(&self, key: &[u8]) -> Option<String> {
        let slot = slot(key);
        let ranges = self.ranges.read().unwrap_or_else(PoisonError::into_inner);
        ranges
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, addr)| addr.clone())
    }

    /// Claims the next refresh when one is due and none runs; the claimer must call
    /// [`SlotMap::refreshed`] when done.
    pub(crate) fn claim_refresh(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let interval = u64::try_from(REFRESH_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        let last = self.last.load(Ordering::Relaxed);
        let never = last == 0 && self.ranges_empty();
        if !never && now.saturating_sub(last) < interval {
            return false;
        }
        if self
            .refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.last.store(now.max(1), Ordering::Relaxed);
        true
    }

    fn ranges_empty(&self) -> bool {
        self.ranges
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Ends a refresh; a parsed `CLUSTER SLOTS` reply replaces the map. Returns the masters now
    /// named, when the map was replaced.
    pub(crate) fn refreshed(&self, reply: Option<Value>) -> Option<Vec<String>> {
        let parsed = reply.and_then(|v| parse(&v)).filter(|r| !r.is_empty());
        let masters = parsed.map(|ranges| {
            let mut masters: Vec<String> = ranges.iter().map(|r| r.2.clone()).collect();
            masters.sort();
            masters.dedup();
            *self.ranges.write().unwrap_or_else(PoisonError::into_inner) = ranges;
            masters
        });
        self.refreshing.store(false, Ordering::Release);
        masters
    }
}

/// `CLUSTER SLOTS`: `[[start, end, [host, port, id, …], replica…], …]`.
fn parse(v: &Value) -> Option<Vec<(u16, u16, String)>> {
    let Value::Array(entries) = v else {
        return None;
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(fields) = entry else {
            return None;
        };
        let int = |v: Option<&Value>| match v {
            Some(Value::Int(n)) => u16::try_from(*n).ok(),
            _ => None,
        };
        let start = int(fields.first())?;
        let end = int(fields.get(1))?;
        let Some(Value::Array(master)) = fields.get(2) else {
            return None;
        };
        let host = match master.first()? {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let port = int(master.get(1))?;
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        out.push((start, end, addr));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"123456789"), 12739);
        assert_eq!(slot(b"flowgate:{site:s1}"), slot(b"site:s1"));
        assert_eq!(slot(b"a{}b"), slot(b"a{}b"));
    }

    #[test]
    fn cluster_slots_reply_maps_keys_to_masters() {
        let node = |port: i64| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(8191),
                node(7000),
                node(7003),
            ]),
            Value::Array(vec![Value::Int(8192), Value::Int(16383), node(7001)]),
        ]);
        let map = SlotMap::new();
        assert!(map.claim_refresh());
        assert!(!map.claim_refresh(), "one refresh at a time");
        let masters = map.refreshed(Some(reply)).expect("parsed");
        assert_eq!(masters, ["127.0.0.1:7000", "127.0.0.1:7001"]);
        assert_eq!(map.master_of(b"foo").as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(map.master_of(b"x{b}").as_deref(), Some("127.0.0.1:7000")); // slot 3300
    }
}
