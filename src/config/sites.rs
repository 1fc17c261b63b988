//! The `signing:` and `sites:` sections → [`TrustConfig`], through the same walker as the rest
//! of the file. Secrets are only named here; `secrets.rs` reads them.

use yaml_serde::Value;

use super::defaults::{MAX_LEEWAY_SECS, MAX_MAX_TOKEN_AGE_SECS, MAX_TOKEN_AGE_SECS};
use super::secrets::SIGNING_SECRET_ENV;
use super::site_rules::{RulesConfig, read_key_policy, read_rules, read_sites_default};
use super::table::Table;
use super::{KeyConfig, Problems, SecretSource, SiteConfig, TrustConfig};
use crate::headers::signature::{Version, Versions};
use crate::secret::{MIN_SECRET_BYTES, Secret};
use crate::trust::{DEFAULT_LEEWAY_SECS, Mode, is_valid_site_id};

/// The `signing` and `sites` sections.
pub(super) fn read_trust(top: &mut Table<'_>, problems: &mut Problems) -> TrustConfig {
    let mut out = TrustConfig::default();
    let mut t = top.table("signing", problems);
    if let Some(v) = t.field::<String>("secret_file", "a file path", problems) {
        if v.is_empty() {
            problems.push(t.key_path("secret_file"), "must be a file path");
        } else {
            out.signing_secret_file = Some(v.into());
        }
    }
    const VERSIONS: &str =
        "a list of signature versions: [v2] (default), or [v1, v2] while backends move to v2";
    if let Some(list) = t.field::<Vec<String>>("versions", VERSIONS, problems) {
        let parsed: Option<Vec<Version>> = list.iter().map(|v| Version::parse(v)).collect();
        match parsed.as_deref().and_then(Versions::new) {
            Some(v) => out.signing_versions = v,
            None => problems.push(t.key_path("versions"), format!("must be {VERSIONS}")),
        }
    }
    t.finish_with(
        &format!("secrets go in {SIGNING_SECRET_ENV} or the file"),
        problems,
    );

    out.sites_default = read_sites_default(top, problems);
    let sites = match top.raw("sites") {
        None => return out,
        Some(Value::Mapping(m)) => m,
        Some(_) => {
            problems.push("sites", "must be a mapping of keys");
            return out;
        }
    };
    for (k, v) in sites {
        let id = match k {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.as_u64().is_some() => n.to_string(),
            _ => {
                problems.push(
                    format!("sites.{}", key_text(k)),
                    "a site id must be a string; quote it",
                );
                continue;
            }
        };
        let path = format!("sites.{id}");
        if !is_valid_site_id(&id) {
            problems.push(
                path.clone(),
                "a site id is 1–128 characters of A-Z a-z 0-9 . _ -",
            );
        }
        if let Some(site) = read_site(v, path, problems) {
            out.sites.insert(id, site);
        }
    }
    out
}

fn key_text(k: &Value) -> String {
    k.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{k:?}"))
}

/// One site's entry: `mode`, `keys`, `leeway_seconds`, `max_token_age_seconds`.
fn read_site(value: &Value, path: String, problems: &mut Problems) -> Option<SiteConfig> {
    match value {
        Value::Mapping(_) => {}
        Value::Null => {
            problems.push(
                path,
                "empty site entry; give it at least `mode:` and `keys:`",
            );
            return None;
        }
        _ => {
            problems.push(
                path,
                "must be a mapping (mode, keys, leeway_seconds, max_token_age_seconds, bind_session)",
            );
            return None;
        }
    }
    let mut t = Table::nested(path.clone(), Some(value), "", problems);
    let mut site = SiteConfig {
        mode: Mode::Off,
        leeway_secs: DEFAULT_LEEWAY_SECS,
        max_token_age_secs: MAX_TOKEN_AGE_SECS,
        keys: Vec::new(),
        rules: RulesConfig::default(),
        bind_session: false,
    };
    if let Some(v) = t.field::<String>("mode", "off, optional or required", problems) {
        match Mode::parse(&v) {
            Some(m) => site.mode = m,
            None => problems.push(t.key_path("mode"), "must be off, optional or required"),
        }
    }
    // `keys` is either the token keys' list, or the key policy mapping with them under `verify`.
    let (items, items_path) = match t.raw("keys") {
        None => (None, String::new()),
        Some(Value::Sequence(items)) => (Some(items), format!("{path}.keys")),
        Some(v @ Value::Mapping(_)) => {
            let kp = format!("{path}.keys");
            let verify = read_key_policy(kp.clone(), v, true, &mut site.rules, problems);
            (verify, format!("{kp}.verify"))
        }
        Some(_) => {
            problems.push(
                format!("{path}.keys"),
                "must be a list of {kid, secret_env|secret_file|secret}, or a mapping {allow, signed_only, verify}",
            );
            (None, String::new())
        }
    };
    for (i, item) in items.into_iter().flatten().enumerate() {
        if let Some(key) = read_key(item, format!("{items_path}[{i}]"), problems) {
            site.keys.push(key);
        }
    }
    read_rules(&mut t, &mut site.rules, problems);
    let leeway = format!(
        "a whole number of seconds from 0 to {MAX_LEEWAY_SECS} (default {DEFAULT_LEEWAY_SECS})"
    );
    if let Some(v) = t.field::<u64>("leeway_seconds", &leeway, problems) {
        if v <= MAX_LEEWAY_SECS {
            site.leeway_secs = v;
        } else {
            problems.push(t.key_path("leeway_seconds"), format!("must be {leeway}"));
        }
    }
    let age = format!(
        "a whole number of seconds from 1 to {MAX_MAX_TOKEN_AGE_SECS} (default {MAX_TOKEN_AGE_SECS})"
    );
    if let Some(v) = t.field::<u64>("max_token_age_seconds", &age, problems) {
        if (1..=MAX_MAX_TOKEN_AGE_SECS).contains(&v) {
            site.max_token_age_secs = v;
        } else {
            problems.push(
                t.key_path("max_token_age_seconds"),
                format!("must be {age}"),
            );
        }
    }
    if let Some(v) = t.field::<bool>("bind_session", "true or false (default false)", problems) {
        site.bind_session = v;
    }
    t.finish(problems);
    let mut seen = Vec::new();
    for (i, key) in site.keys.iter().enumerate() {
        if seen.contains(&key.kid.as_str()) {
            problems.push(
                format!("{path}.keys[{i}].kid"),
                format!(
                    "kid {:?} is listed twice; each key needs its own kid",
                    key.kid
                ),
            );
        }
        seen.push(&key.kid);
    }
    if site.mode == Mode::Off
        && site
            .rules
            .signed_only
            .as_ref()
            .is_some_and(|l| !l.is_empty())
    {
        problems.push(
            format!("{path}.keys.signed_only"),
            "signed_only keys are kept only from a verified token, and mode off ignores tokens; set mode: optional or required",
        );
    }
    if site.mode != Mode::Off && site.keys.is_empty() {
        problems.push(
            format!("{path}.keys"),
            format!(
                "mode {} needs at least one key; add {{kid, secret_env}} or set mode: off",
                site.mode
            ),
        );
    }
    if site.bind_session && (site.mode == Mode::Off || site.keys.is_empty()) {
        problems.push(
            format!("{path}.bind_session"),
            "binds signed tokens to the chat session, so the site needs signed context: set \
             mode: optional or required and list its keys, or remove bind_session",
        );
    }
    Some(site)
}

/// One entry of a site's `keys`: `kid` and exactly one secret source.
fn read_key(value: &Value, path: String, problems: &mut Problems) -> Option<KeyConfig> {
    if !value.is_mapping() {
        problems.push(
            path,
            "must be a mapping {kid, secret_env|secret_file|secret}",
        );
        return None;
    }
    let mut t = Table::nested(path.clone(), Some(value), "", problems);
    const KID: &str = "a key id of 1–256 characters";
    let kid = t.field::<String>("kid", KID, problems);
    let kid = match kid {
        Some(kid) if !kid.is_empty() && kid.len() <= 256 => Some(kid),
        Some(_) => {
            problems.push(t.key_path("kid"), format!("must be {KID}"));
            None
        }
        None => None,
    };
    type Make = fn(String) -> SecretSource;
    let kinds: [(&str, Make); 3] = [
        ("secret_env", SecretSource::Env),
        ("secret_file", |v| SecretSource::File(v.into())),
        ("secret", |v| SecretSource::Inline(Secret::new(v))),
    ];
    let mut sources = Vec::new();
    for (key, source) in kinds {
        match t.field::<String>(key, "a non-empty string", problems) {
            Some(v) if v.is_empty() => problems.push(t.key_path(key), "must be a non-empty string"),
            Some(v) => sources.push(source(v)),
            None => {}
        }
    }
    t.finish(problems);
    let Some(kid) = kid else {
        problems.push(
            format!("{path}.kid"),
            "missing; every key needs the kid tokens name it by",
        );
        return None;
    };
    if sources.len() != 1 {
        problems.push(
            path,
            "give exactly one of secret_env (recommended), secret_file or secret",
        );
        return None;
    }
    let secret = sources.pop()?;
    if let SecretSource::Inline(s) = &secret
        && s.expose().len() < MIN_SECRET_BYTES
    {
        problems.push(
            format!("{path}.secret"),
            format!(
                "shorter than {MIN_SECRET_BYTES} bytes; use a longer one (e.g. `openssl rand -hex 32`)"
            ),
        );
    }
    Some(KeyConfig { kid, secret })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use yaml_serde::Value;

    use super::*;
    use crate::config::Problems;
    use crate::trust::Mode;

    /// The problems as `(key, message)` pairs.
    fn pairs(problems: Problems) -> Vec<(String, String)> {
        problems.0.into_iter().map(|p| (p.key, p.message)).collect()
    }

    fn parse(yaml: &str) -> (TrustConfig, Vec<(String, String)>) {
        let root: Value = yaml_serde::from_str(yaml).unwrap();
        let mut problems = Problems::default();
        let mut top = Table::root(&root, &mut problems);
        let c = read_trust(&mut top, &mut problems);
        (c, pairs(problems))
    }

    #[test]
    fn a_full_site_entry() {
        let (c, p) = parse(
            "signing: {secret_file: /etc/s, versions: [v1, v2]}\nsites:\n  site1:\n    mode: required\n    leeway_seconds: 5\n    max_token_age_seconds: 600\n    keys:\n      - {kid: a, secret_env: FLOWGATE_TEST_NOPE}\n      - {kid: b, secret: \"0123456789abcdef0123456789abcdef\"}\n  12345: {mode: off}\n",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.signing_secret_file.as_deref(), Some(Path::new("/etc/s")));
        let s = &c.sites["site1"];
        assert_eq!(
            (s.mode, s.leeway_secs, s.keys.len()),
            (Mode::Required, 5, 2)
        );
        assert_eq!(c.sites["12345"].mode, Mode::Off);
        assert_eq!(c.sites["site1"].max_token_age_secs, 600);
        assert_eq!(c.sites["12345"].max_token_age_secs, 3600);
        assert!(
            c.signing_versions.contains(Version::V1) && c.signing_versions.contains(Version::V2)
        );
        // The env var is not set: the policy lists the problem with its key.
        let err = pairs(c.policy().unwrap_err());
        assert_eq!(err[0].0, "sites.site1.keys[0].secret_env");
        assert!(err[0].1.contains("FLOWGATE_TEST_NOPE"));
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn every_problem_is_named() {
        let (_, p) = parse(
            "signing: {secret: x, versions: [v3]}\nsites:\n  \"bad id!\": {mode: off}\n  s1: {mode: sometimes, leeway: 5, keys: [{kid: a}]}\n  s2: {mode: optional, max_token_age_seconds: 0}\n  s3: {keys: [{kid: a, secret: short}, {kid: a, secret_env: X, secret_file: /y}]}\n",
        );
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        for k in [
            "signing.secret",
            "signing.versions",
            "sites.s2.max_token_age_seconds",
            "sites.bad id!",
            "sites.s1.mode",
            "sites.s1.leeway",
            "sites.s1.keys[0]",
            "sites.s2.keys",
            "sites.s3.keys[0].secret",
            "sites.s3.keys[1]",
        ] {
            assert!(keys.contains(&k), "{k} missing in {p:?}");
        }
        assert!(
            p.iter()
                .any(|(_, m)| m.contains("did you mean `leeway_seconds`"))
        );
        assert!(!p.iter().any(|(_, m)| m.contains("short,")));
    }
}
