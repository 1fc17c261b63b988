//! Counters of the runtime's own life: configuration reloads.

use prometheus::{IntCounter, Registry};

use super::Metrics;
use super::registry::counter_vec;

/// How a configuration reload ended (`flowgate_config_reloads_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new configuration is in force for new requests.
    Ok,
    /// The file has problems; nothing changed.
    Invalid,
    /// The file is valid but what it names could not be built (secrets, upstream names);
    /// nothing changed.
    Failed,
}

impl ReloadResult {
    const ALL: [ReloadResult; 3] = [
        ReloadResult::Ok,
        ReloadResult::Invalid,
        ReloadResult::Failed,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Ok => "ok",
            ReloadResult::Invalid => "invalid",
            ReloadResult::Failed => "failed",
        }
    }
}

/// The counters of this file, resolved once.
pub(super) struct RuntimeCounters {
    reloads: [IntCounter; ReloadResult::ALL.len()],
}

impl RuntimeCounters {
    pub(super) fn new(registry: &Registry) -> RuntimeCounters {
        let reloads = counter_vec(
            registry,
            "flowgate_config_reloads_total",
            "Configuration reloads (SIGHUP, flowgate reload) by result.",
            &["result"],
        );
        RuntimeCounters {
            reloads: ReloadResult::ALL.map(|r| reloads.with_label_values(&[r.as_str()])),
        }
    }
}

impl Metrics {
    /// Counts one configuration reload.
    pub(crate) fn config_reload(&self, result: ReloadResult) {
        let i = ReloadResult::ALL
            .iter()
            .position(|r| *r == result)
            .unwrap_or(0);
        self.runtime.reloads[i].inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_families_are_exported() {
        let m = Metrics::new();
        m.config_reload(ReloadResult::Invalid);
        let text = String::from_utf8(m.encode()).unwrap_or_default();
        assert!(text.contains(r#"flowgate_config_reloads_total{result="invalid"} 1"#));
        assert!(text.contains(r#"flowgate_config_reloads_total{result="ok"} 0"#));
    }
}
