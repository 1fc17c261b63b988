//! The `limits:` section → [`LimitsConfig`]: how fast inits may come, per client address and
//! per site, what happens to the ones over the limit, and the largest request body accepted per
//! route class.
//! Every limit is off by default (`0` or unset).

use yaml_serde::Value;

use super::table::Table;
use super::{BodyLimits, LimitMode, LimitsConfig, Problems};

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
    read_body_limits(&mut out.max_body_bytes, &mut t, problems);
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

/// Reads `max_body_bytes`: a number for every route class, or a mapping with a `default` and
/// a number per class (the class names of `timeouts:`).
fn read_body_limits(out: &mut BodyLimits, t: &mut Table<'_>, problems: &mut Problems) {
    const KEY: &str = "max_body_bytes";
    let whole = "a whole number of bytes (0: no limit)";
    match t.raw(KEY) {
        None => {}
        Some(v @ Value::Mapping(_)) => {
            let mut c = Table::nested(t.key_path(KEY), Some(v), "", problems);
            if let Some(v) = c.field::<u64>("default", whole, problems) {
                out.default = v;
            }
            for (class, slot) in [
                ("init", &mut out.init),
                ("session", &mut out.session),
                ("other", &mut out.other),
            ] {
                if let Some(v) = c.field::<u64>(class, whole, problems) {
                    *slot = Some(v);
                }
            }
            c.finish(problems);
        }
        Some(_) => {
            if let Some(v) = t.field::<u64>(
                KEY,
                "a whole number of bytes (0: no limit), or {default, init, session, other}",
                problems,
            ) {
                out.default = v;
            }
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
        assert_eq!(c.limits.max_body_bytes.default, 65536);
        assert_eq!(c.limits.max_body_bytes.init, None);
        assert_eq!(Config::default().limits, Default::default());
        let c = Config::from_yaml(
            "limits:\n  max_body_bytes: {default: 1048576, init: 4096, session: 0}\n",
        )
        .unwrap();
        let b = c.limits.max_body_bytes;
        assert_eq!(
            (b.default, b.init, b.session, b.other),
            (1048576, Some(4096), Some(0), None)
        );
        let err = Config::from_yaml(
            "limits:\n  init_per_second: {per_clients: 5, per_site: -1}\n  mode: drop\n  \
             max_body_bytes: {sesion: 1, other: -1}\n",
        )
        .unwrap_err()
        .to_string();
        for key in [
            "limits.init_per_second.per_clients",
            "limits.init_per_second.per_site",
            "limits.mode",
            "limits.max_body_bytes.sesion",
            "limits.max_body_bytes.other",
        ] {
            assert!(err.contains(key), "{key} missing in {err}");
        }
        assert!(err.contains("did you mean `session`"), "{err}");
        let err = Config::from_yaml("limits: {max_body_bytes: lots}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.max_body_bytes"), "{err}");
    }
}
