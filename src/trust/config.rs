//! The `signing:` and `sites:` sections of the configuration file → [`TrustConfig`], and the
//! secrets they name → a [`TrustPolicy`] and the header-signing secrets.
//!
//! ```yaml
//! signing:
//!   # One secret per line, newest first. FLOWGATE_SIGNING_SECRET (comma-separated) wins when set.
//!   secret_file: /etc/flowgate/signing.secrets
//! sites:
//!   "site1":
//!     mode: required            # off | optional | required (default off)
//!     leeway_seconds: 60        # clock skew allowed for exp / nbf / iat (default 60)
//!     keys:
//!       - kid: key-2026-11
//!         secret_env: FLOWGATE_SITE1_KEY_2026_11   # or secret_file: /path, or secret: "…"
//! ```
//!
//! A key's secret comes from an environment variable (`secret_env`), a file (`secret_file`,
//! its first non-comment line) or, for tests and demos, inline (`secret`); inline secrets end up
//! in version control, so production configs should use one of the other two. Secrets are
//! read when the proxy starts (and by `flowgate check`), never logged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_serde::{Mapping, Value};

use crate::secret::{self, MIN_SECRET_BYTES, Secret};
use super::{DEFAULT_LEEWAY_SECS, Mode, SiteKey, SitePolicy, TrustPolicy};

/// The environment variable holding the header-signing secrets (comma-separated).
pub const SIGNING_SECRET_ENV: &str = "FLOWGATE_SIGNING_SECRET";
/// Largest `leeway_seconds` accepted (a day would make `exp` meaningless).
pub const MAX_LEEWAY_SECS: u64 = 3_600;

/// The trust settings of the configuration file, before secrets are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustConfig {
    /// `signing.secret_file`.
    pub signing_secret_file: Option<PathBuf>,
    /// `sites`, by site id.
    pub sites: BTreeMap<String, SiteConfig>,
}

/// One site's entry under `sites:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// `mode`.
    pub mode: Mode,
    /// `leeway_seconds`.
    pub leeway_secs: u64,
    /// `keys`.
    pub keys: Vec<KeyConfig>,
}

/// One entry of a site's `keys:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConfig {
    /// `kid`.
    pub kid: String,
    /// Where the secret comes from.
    pub secret: SecretSource,
}

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `secret_env: NAME`.
    Env(String),
    /// `secret_file: PATH` (first non-comment line).
    File(PathBuf),
    /// `secret: "…"`.
    Inline(Secret),
}

/// `(key path, message)` for each problem; the message says how to fix it.
pub type Problems = Vec<(String, String)>;

fn push(problems: &mut Problems, key: impl Into<String>, message: impl Into<String>) {
    problems.push((key.into(), message.into()));
}

/// Site ids follow the widget's rule: 1–128 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_site_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl TrustConfig {
    /// Reads the `signing` and `sites` values of the file's top-level mapping (either may be
    /// `None`), recording every problem.
    pub fn from_yaml(
        signing: Option<&Value>,
        sites: Option<&Value>,
        problems: &mut Problems,
    ) -> TrustConfig {
        let mut out = TrustConfig::default();
        if let Some(map) = mapping(signing, "signing", problems) {
            for (k, v) in map {
                match k.as_str() {
                    Some("secret_file") if !v.is_null() => match v.as_str() {
                        Some(p) if !p.is_empty() => out.signing_secret_file = Some(p.into()),
                        _ => push(problems, "signing.secret_file", "must be a file path"),
                    },
                    Some("secret_file") => {}
                    _ => push(
                        problems,
                        format!("signing.{}", key_text(k)),
                        format!(
                            "unknown key (known here: secret_file); secrets go in {SIGNING_SECRET_ENV} or the file"
                        ),
                    ),
                }
            }
        }
        if let Some(map) = mapping(sites, "sites", problems) {
            for (k, v) in map {
                let id = match k {
                    Value::String(s) => s.clone(),
                    Value::Number(n) if n.as_u64().is_some() => n.to_string(),
                    _ => {
                        push(
                            problems,
                            format!("sites.{}", key_text(k)),
                            "a site id must be a string; quote it",
                        );
                        continue;
                    }
                };
                let path = format!("sites.{id}");
                if !is_valid_site_id(&id) {
                    push(
                        problems,
                        path.clone(),
                        "a site id is 1–128 characters of A-Z a-z 0-9 . _ -",
                    );
                }
                if let Some(site) = read_site(v, &path, problems) {
                    out.sites.insert(id, site);
                }
            }
        }
        out
    }

    /// Reads every site's secrets and builds the policy; every problem is listed.
    pub fn policy(&self) -> Result<TrustPolicy, Problems> {
        let mut problems = Problems::new();
        let mut policy = TrustPolicy::new();
        for (id, site) in &self.sites {
            let mut keys = Vec::with_capacity(site.keys.len());
            for (i, key) in site.keys.iter().enumerate() {
                let path = format!("sites.{id}.keys[{i}]");
                match resolve(&key.secret, &path) {
                    Ok(secret) => keys.push(SiteKey::new(key.kid.clone(), &secret)),
                    Err((k, m)) => push(&mut problems, k, m),
                }
            }
            policy.insert(
                id.clone(),
                SitePolicy {
                    mode: site.mode,
                    keys,
                    leeway_secs: site.leeway_secs,
                },
            );
        }
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems)
        }
    }

    /// The header-signing secrets: `FLOWGATE_SIGNING_SECRET` when set, else
    /// `signing.secret_file`, else `None` (requests go out unsigned; the proxy warns).
    pub fn signing_secrets(&self) -> Result<Option<Vec<Secret>>, (String, String)> {
        if let Some(list) = secret::from_env(SIGNING_SECRET_ENV)
            .map_err(|e| (SIGNING_SECRET_ENV.to_owned(), e.to_string()))?
        {
            return Ok(Some(list));
        }
        match &self.signing_secret_file {
            Some(path) => secret::from_file(path)
                .map(Some)
                .map_err(|e| ("signing.secret_file".to_owned(), e.to_string())),
            None => Ok(None),
        }
    }

    /// Every problem with the secrets the file names (for `flowgate check`).
    pub fn check_secrets(&self) -> Problems {
        let mut problems = self.policy().err().unwrap_or_default();
        if let Err(p) = self.signing_secrets() {
            problems.push(p);
        }
        problems
    }
}

fn key_text(k: &Value) -> String {
    k.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{k:?}"))
}

fn mapping<'v>(v: Option<&'v Value>, path: &str, problems: &mut Problems) -> Option<&'v Mapping> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::Mapping(m)) => Some(m),
        Some(_) => {
            push(problems, path, "must be a mapping of keys");
            None
        }
    }
}

fn read_site(v: &Value, path: &str, problems: &mut Problems) -> Option<SiteConfig> {
    let map = match v {
        Value::Mapping(m) => m,
        Value::Null => {
            push(
                problems,
                path,
                "empty site entry; give it at least `mode:` and `keys:`",
            );
            return None;
        }
        _ => {
            push(
                problems,
                path,
                "must be a mapping (mode, keys, leeway_seconds)",
            );
            return None;
        }
    };
    let mut site = SiteConfig {
        mode: Mode::Off,
        leeway_secs: DEFAULT_LEEWAY_SECS,
        keys: Vec::new(),
    };
    for (k, v) in map {
        let key = key_text(k);
        let at = format!("{path}.{key}");
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "mode" => match v.as_str().and_then(Mode::parse) {
                Some(m) => site.mode = m,
                None => push(problems, at, "must be off, optional or required"),
            },
            "leeway_seconds" => match v.as_u64() {
                Some(s) if s <= MAX_LEEWAY_SECS => site.leeway_secs = s,
                _ => push(
                    problems,
                    at,
                    format!(
                        "must be a whole number of seconds from 0 to {MAX_LEEWAY_SECS} (default {DEFAULT_LEEWAY_SECS})"
                    ),
                ),
            },
            "keys" => match v.as_sequence() {
                Some(seq) => {
                    for (i, item) in seq.iter().enumerate() {
                        if let Some(key) = read_key(item, &format!("{path}.keys[{i}]"), problems) {
                            site.keys.push(key);
                        }
                    }
                }
                None => push(
                    problems,
                    at,
                    "must be a list of {kid, secret_env|secret_file|secret}",
                ),
            },
            _ => {
                let hint = if key == "leeway" {
                    "; did you mean `leeway_seconds`?"
                } else {
                    ""
                };
                push(
                    problems,
                    at,
                    format!(
                        "unknown key{hint} (known here: mode, keys, leeway_seconds); remove or rename it"
                    ),
                );
            }
        }
    }
    let mut seen = Vec::new();
    for (i, key) in site.keys.iter().enumerate() {
        if seen.contains(&key.kid.as_str()) {
            push(
                problems,
                format!("{path}.keys[{i}].kid"),
                format!(
                    "kid {:?} is listed twice; each key needs its own kid",
                    key.kid
                ),
            );
        }
        seen.push(&key.kid);
    }
    if site.mode != Mode::Off && site.keys.is_empty() {
        push(
            problems,
            format!("{path}.keys"),
            format!(
                "mode {} needs at least one key; add {{kid, secret_env}} or set mode: off",
                site.mode
            ),
        );
    }
    Some(site)
}

fn read_key(v: &Value, path: &str, problems: &mut Problems) -> Option<KeyConfig> {
    let Some(map) = v.as_mapping() else {
        push(
            problems,
            path,
            "must be a mapping {kid, secret_env|secret_file|secret}",
        );
        return None;
    };
    let mut kid = None;
    let mut sources = Vec::new();
    for (k, v) in map {
        let key = key_text(k);
        let at = format!("{path}.{key}");
        let text = v.as_str().filter(|s| !s.is_empty());
        match (key.as_str(), text) {
            ("kid", Some(s)) if s.len() <= 256 => kid = Some(s.to_owned()),
            ("kid", _) => push(problems, at, "must be a key id of 1–256 characters"),
            ("secret_env", Some(s)) => sources.push(SecretSource::Env(s.to_owned())),
            ("secret_file", Some(s)) => sources.push(SecretSource::File(s.into())),
            ("secret", Some(s)) => sources.push(SecretSource::Inline(Secret::new(s))),
            ("secret_env" | "secret_file" | "secret", None) => {
                push(problems, at, "must be a non-empty string")
            }
            _ => push(
                problems,
                at,
                "unknown key (known here: kid, secret_env, secret_file, secret); remove or rename it",
            ),
        }
    }
    let Some(kid) = kid else {
        push(
            problems,
            format!("{path}.kid"),
            "missing; every key needs the kid tokens name it by",
        );
        return None;
    };
    if sources.len() != 1 {
        push(
            problems,
            path,
            "give exactly one of secret_env (recommended), secret_file or secret",
        );
        return None;
    }
    let secret = sources.pop()?;
    if let SecretSource::Inline(s) = &secret
        && s.expose().len() < MIN_SECRET_BYTES
    {
        push(
            problems,
            format!("{path}.secret"),
            format!(
                "shorter than {MIN_SECRET_BYTES} bytes; use a longer one (e.g. `openssl rand -hex 32`)"
            ),
        );
    }
    Some(KeyConfig { kid, secret })
}

fn resolve(source: &SecretSource, path: &str) -> Result<Secret, (String, String)> {
    let short = |key: String| {
        (
            key,
            format!(
                "the secret is shorter than {MIN_SECRET_BYTES} bytes; use a longer one (e.g. `openssl rand -hex 32`)"
            ),
        )
    };
    match source {
        SecretSource::Inline(s) => Ok(s.clone()),
        SecretSource::Env(name) => {
            let key = format!("{path}.secret_env");
            match std::env::var(name) {
                Ok(v) if v.trim().len() >= MIN_SECRET_BYTES => Ok(Secret::new(v.trim())),
                Ok(v) if v.trim().is_empty() => {
                    Err((key, format!("environment variable {name} is empty; set it")))
                }
                Ok(_) => Err(short(key)),
                Err(_) => Err((
                    key,
                    format!("environment variable {name} is not set (or not UTF-8); set it"),
                )),
            }
        }
        SecretSource::File(file) => {
            let key = format!("{path}.secret_file");
            first_line(file).map_err(|e| (key, e))
        }
    }
}

fn first_line(file: &Path) -> Result<Secret, String> {
    let list = secret::from_file(file).map_err(|e| e.to_string())?;
    list.into_iter()
        .next()
        .ok_or_else(|| format!("file {}: no secret found", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> (TrustConfig, Problems) {
        let root: Value = yaml_serde::from_str(yaml).unwrap();
        let mut problems = Problems::new();
        let c = TrustConfig::from_yaml(root.get("signing"), root.get("sites"), &mut problems);
        (c, problems)
    }

    #[test]
    fn a_full_site_entry() {
        let (c, p) = parse(
            "signing: {secret_file: /etc/s}\nsites:\n  site1:\n    mode: required\n    leeway_seconds: 5\n    keys:\n      - {kid: a, secret_env: FLOWGATE_TEST_NOPE}\n      - {kid: b, secret: \"0123456789abcdef0123456789abcdef\"}\n  12345: {mode: off}\n",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.signing_secret_file.as_deref(), Some(Path::new("/etc/s")));
        let s = &c.sites["site1"];
        assert_eq!(
            (s.mode, s.leeway_secs, s.keys.len()),
            (Mode::Required, 5, 2)
        );
        assert_eq!(c.sites["12345"].mode, Mode::Off);
        // The env var is not set: the policy lists the problem with its key.
        let err = c.policy().unwrap_err();
        assert_eq!(err[0].0, "sites.site1.keys[0].secret_env");
        assert!(err[0].1.contains("FLOWGATE_TEST_NOPE"));
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn every_problem_is_named() {
        let (_, p) = parse(
            "signing: {secret: x}\nsites:\n  \"bad id!\": {mode: off}\n  s1: {mode: sometimes, leeway: 5, keys: [{kid: a}]}\n  s2: {mode: optional}\n  s3: {keys: [{kid: a, secret: short}, {kid: a, secret_env: X, secret_file: /y}]}\n",
        );
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        for k in [
            "signing.secret",
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

    #[test]
    fn secrets_from_a_file() {
        let dir = std::env::temp_dir().join(format!("flowgate-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("k");
        std::fs::write(&f, "# site1 current\nabcdefghijabcdefghijabcdefghij12\n").unwrap();
        let c = TrustConfig {
            signing_secret_file: Some(f.clone()),
            sites: BTreeMap::from([(
                "s".to_owned(),
                SiteConfig {
                    mode: Mode::Optional,
                    leeway_secs: 1,
                    keys: vec![KeyConfig {
                        kid: "k".into(),
                        secret: SecretSource::File(f.clone()),
                    }],
                },
            )]),
        };
        let policy = c.policy().unwrap();
        assert_eq!(policy.mode("s"), Mode::Optional);
        assert_eq!(policy.site("s").unwrap().keys[0].kid(), "k");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
