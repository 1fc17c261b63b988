//! `flowgate_policy_would_drop_total{site_policy, reason}`: what a site's page policy refused
//! while it only reports (`enforce: report`). `site_policy` is a site id only for sites the
//! operator gave rules of their own; every other site counts as `default`, so visitors cannot
//! grow the label set.

use prometheus::{IntCounterVec, Registry};

use crate::trust::PolicyReason;

/// The would-drop counter.
#[derive(Clone)]
pub(crate) struct PolicyCounters(IntCounterVec);

impl PolicyCounters {
    /// Builds and registers the counter in `registry`.
    pub(crate) fn new(registry: &Registry) -> PolicyCounters {
        PolicyCounters(super::counter_vec(
            registry,
            "flowgate_policy_would_drop_total",
            "What site policies in `enforce: report` would have dropped, by site policy (a site id the operator configured, or `default`) and reason.",
            &["site_policy", "reason"],
        ))
    }

    /// Counts `n` refusals for `reason` under `site_policy`.
    pub(crate) fn add(&self, site_policy: &str, reason: PolicyReason, n: u64) {
        self.0
            .with_label_values(&[site_policy, reason.as_str()])
            .inc_by(n);
    }
}
