//! The `limits:` section → [`LimitsConfig`]: how fast inits may come, per client address and
//! per site, what happens to the ones over the limit, and the largest request body accepted.
//! Every limit is off by default (`0` or unset).

use super::table::Table;
use super::{LimitMode, LimitsConfig, Problems};

/// Largest rate accepted for either scope: a sanity bound on typos.
const MAX_PER_SECOND: u32 = 1_000_000;

/// Reads `limits:` into `out`.
pub(super) fn read_limits(out: &mut LimitsConfig, top: &mut Table<'_>, problems: &mut Problems) {
    let mut t = top.table("limits", problems);
    let whole = "a whole number (0: off)";
    let mut rates = t.table("init_per_second", problems);
    for (key, slot) in [
        ("per_client", &mut out.per_client),
        ("per_site", &mut out.per_site),
    ] {
        if let Some(v) = rates.field::<u32>(key, whole, problems) {
            *slot = v;
        }
    }
    rates.finish(problems);
    if let Some(v) = t.field::<u32>("burst", "a whole number of extra inits", problems) {
        out.burst = v;
    }
    if let Some(v) = t.field::<String>("mode", "discard or reject", problems) {
        match v.as_str() {
            "discard" => out.mode = LimitMode::Discard,
            "reject" => out.mode = LimitMode::Reject,
            other => problems.push(
                t.key_path("mode"),
                format!(
                    "{other:?} is not a mode; write discard (proxy without context) or reject (429)"
                ),
            ),
        }
    }
    if let Some(v) = t.field::<u64>("max_body_bytes", whole, problems) {
        out.max_body_bytes = v;
    }
    t.finish(problems);
    for (key, value) in [
        ("limits.init_per_second.per_client", out.per_client),
        ("limits.init_per_second.per_site", out.per_site),
        ("limits.burst", out.burst),
    ] {
        if value > MAX_PER_SECOND {
            problems.push(
                key,
                format!("must be at most {MAX_PER_SECOND} (default 0: off)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, LimitMode};

    #[test]
    fn reads_every_key_and_names_every_mistake() {
        let c = Config::from_yaml(
            "limits:\n  init_per_second: {per_client: 5, per_site: 100}\n  burst: 2\n  mode: reject\n  max_body_bytes: 65536\n",
        )
        .unwrap();
        assert_eq!((c.limits.per_client, c.limits.per_site), (5, 100));
        assert_eq!(c.limits.burst, 2);
        assert_eq!(c.limits.mode, LimitMode::Reject);
        assert_eq!(c.limits.max_body_bytes, 65536);
        assert_eq!(Config::default().limits, Default::default());
        let err = Config::from_yaml(
            "limits:\n  init_per_second: {per_clients: 5, per_site: -1}\n  mode: drop\n",
        )
        .unwrap_err()
        .to_string();
        for key in [
            "limits.init_per_second.per_clients",
            "limits.init_per_second.per_site",
            "limits.mode",
        ] {
            assert!(err.contains(key), "{key} missing in {err}");
        }
    }
}
