//! `flowgate_upstream_picks_total{how}`: how each request chose its upstream, so an operator
//! sees whether affinity runs on session ids or falls back to client addresses.

use prometheus::{IntCounter, Registry};

use super::registry::counter_vec;

/// How a request chose its upstream (`flowgate_upstream_picks_total{how}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamPick {
    /// Hashed on the site and session ids of a widget route (`balance: session`).
    Session,
    /// Hashed on the client address: no ids on the request (`balance: session`).
    ClientAddress,
    /// The next upstream in turn (`balance: round_robin`).
    RoundRobin,
    /// The only upstream configured: nothing to choose.
    Single,
}

impl UpstreamPick {
    const ALL: [UpstreamPick; 4] = [
        UpstreamPick::Session,
        UpstreamPick::ClientAddress,
        UpstreamPick::RoundRobin,
        UpstreamPick::Single,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamPick::Session => "session",
            UpstreamPick::ClientAddress => "client_address",
            UpstreamPick::RoundRobin => "round_robin",
            UpstreamPick::Single => "single",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The pick counters, one per label value, resolved once.
pub(crate) struct PickCounters([IntCounter; UpstreamPick::ALL.len()]);

impl PickCounters {
    /// Builds and registers the counter in `registry`.
    pub(crate) fn new(registry: &Registry) -> PickCounters {
        let picks = counter_vec(
            registry,
            "flowgate_upstream_picks_total",
            "Upstream choices by how they were made: session ids, client address, round robin, or the single upstream. A retry on another upstream counts again.",
            &["how"],
        );
        PickCounters(UpstreamPick::ALL.map(|h| picks.with_label_values(&[h.as_str()])))
    }

    /// Counts one pick made `how`.
    pub(crate) fn count(&self, how: UpstreamPick) {
        self.0[how.index()].inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_exported_and_counted_apart() {
        let registry = Registry::new();
        let picks = PickCounters::new(&registry);
        picks.count(UpstreamPick::ClientAddress);
        picks.count(UpstreamPick::ClientAddress);
        picks.count(UpstreamPick::Single);
        let mut text = Vec::new();
        let families = registry.gather();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &families, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        for (how, n) in [
            ("session", 0),
            ("client_address", 2),
            ("round_robin", 0),
            ("single", 1),
        ] {
            let line = format!("flowgate_upstream_picks_total{{how=\"{how}\"}} {n}");
            assert!(text.contains(&line), "{line} in {text}");
        }
    }
}
