//! The one YAML walker: file text → [`Config`], every problem with its key.
//!
//! Reading is tolerant on purpose: each key is read on its own, so one run of
//! [`Config::from_yaml`] reports every problem in the file, not just the first one. Every
//! section goes through the same [`Table`] — `signing:`, `sites:` and `redis:` included — so an
//! unknown key anywhere gets the same message, with a "did you mean" computed against the keys
//! of its own table.

use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use yaml_serde::{Mapping, Value};

use super::defaults::MAX_LEEWAY_SECS;
use super::secrets::SIGNING_SECRET_ENV;
use super::{
    Config, KeyConfig, LogFormat, PathMatch, Problems, SecretSource, SiteConfig, TrustConfig,
};
use crate::secret::{MIN_SECRET_BYTES, Secret};
use crate::store::redis::RedisSettings;
use crate::trust::{DEFAULT_LEEWAY_SECS, Mode, is_valid_site_id};

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        Config::from_yaml(&read_file(path)?)
    }

    /// Parses and validates YAML text, reporting every problem at once.
    pub fn from_yaml(text: &str) -> Result<Config, Problems> {
        let mut problems = Problems::default();
        let root = parse(text)?;
        let mut config = Config::default();
        let mut top = Table::root(&root, &mut problems);
        read_into(&mut config, &mut top, &mut problems);
        top.finish(&mut problems);
        config.check(&mut problems);
        problems.or(config)
    }
}

impl TrustConfig {
    /// Reads only the `signing:` and `sites:` sections of a configuration file (for
    /// `flowgate inspect --site`, which needs the site's keys and nothing else).
    pub fn load(path: &Path) -> Result<TrustConfig, Problems> {
        let text = read_file(path)?;
        let root = parse(&text)?;
        let mut problems = Problems::default();
        let mut top = Table::root(&root, &mut problems);
        let trust = read_trust(&mut top, &mut problems);
        problems.or(trust)
    }
}

fn read_file(path: &Path) -> Result<String, Problems> {
    std::fs::read_to_string(path).map_err(|e| {
        Problems::from(super::Problem::new(
            path.display().to_string(),
            format!("cannot read the file ({e}); check the path given to -c"),
        ))
    })
}

fn parse(text: &str) -> Result<Value, Problems> {
    yaml_serde::from_str(text).map_err(|e| {
        let key = e
            .location()
            .map(|l| format!("line {}", l.line()))
            .unwrap_or_else(|| "file".to_owned());
        Problems::from(super::Problem::new(
            key,
            format!("not valid YAML ({e}); fix the syntax"),
        ))
    })
}

/// Reads every known key into `config`; unknown keys are reported by [`Table::finish`].
fn read_into(config: &mut Config, top: &mut Table<'_>, problems: &mut Problems) {
    if let Some(v) = top.field::<String>("listen", "an address such as 0.0.0.0:8080", problems) {
        match v.parse() {
            Ok(a) => config.listen = a,
            Err(_) => problems.push(
                "listen",
                format!("{v:?} is not an IP address with a port; write e.g. 0.0.0.0:8080"),
            ),
        }
    }
    if let Some(v) = top.field::<String>(
        "admin",
        "an address such as 127.0.0.1:9464, or \"\" to turn the admin listener off",
        problems,
    ) {
        if v.is_empty() {
            config.admin = None;
        } else {
            match v.parse() {
                Ok(a) => config.admin = Some(a),
                Err(_) => problems.push(
                    "admin",
                    format!(
                        "{v:?} is not an IP address with a port; write e.g. 127.0.0.1:9464, or \"\" to turn it off"
                    ),
                ),
            }
        }
    }
    if let Some(v) = top.field::<Vec<String>>(
        "upstreams",
        "a list of host:port addresses of the chat backend",
        problems,
    ) {
        config.upstreams = v;
    }

    let mut t = top.table("upstream", problems);
    if let Some(v) = t.field::<u64>(
        "connect_timeout_ms",
        "a whole number of milliseconds",
        problems,
    ) {
        config.upstream.connect_timeout = Duration::from_millis(v);
    }
    if let Some(v) = t.field::<u64>(
        "read_timeout_ms",
        "a whole number of milliseconds",
        problems,
    ) {
        config.upstream.read_timeout = Duration::from_millis(v);
    }
    if let Some(v) = t.field::<u64>(
        "health_check_interval_ms",
        "a whole number of milliseconds",
        problems,
    ) {
        config.upstream.health_check_interval = Duration::from_millis(v);
    }
    t.finish(problems);

    let mut t = top.table("routes", problems);
    if let Some(v) = t.field::<String>(
        "init_path",
        "a path such as /public_FlowWidget/init",
        problems,
    ) {
        config.routes.init_path = v;
    }
    if let Some(v) = t.field::<String>("init_match", "exact or prefix", problems) {
        match v.as_str() {
            "exact" => config.routes.init_match = PathMatch::Exact,
            "prefix" => config.routes.init_match = PathMatch::Prefix,
            _ => problems.push(
                "routes.init_match",
                format!("{v:?} is not a match mode; use exact or prefix"),
            ),
        }
    }
    if let Some(v) = t.field::<Vec<String>>(
        "session_prefixes",
        "a list of path prefixes such as /public_FlowWidget/",
        problems,
    ) {
        config.routes.session_prefixes = v;
    }
    t.finish(problems);

    let mut t = top.table("params", problems);
    for (key, slot) in [
        ("site", &mut config.params.site),
        ("session", &mut config.params.session),
        ("context", &mut config.params.context),
        ("token", &mut config.params.token),
    ] {
        if let Some(v) = t.field::<String>(key, "a query parameter name", problems) {
            *slot = v;
        }
    }
    t.finish(problems);

    let mut t = top.table("headers", problems);
    if let Some(v) = t.field::<String>(
        "prefix",
        "a header name prefix such as X-Flowgate-",
        problems,
    ) {
        config.headers.prefix = v;
    }
    t.finish(problems);

    let mut t = top.table("store", problems);
    if let Some(v) = t.field::<u64>("ttl_seconds", "a whole number of seconds", problems) {
        config.store.ttl = Duration::from_secs(v);
    }
    if let Some(v) = t.field::<u64>("deadline_ms", "a whole number of milliseconds", problems) {
        config.store.deadline = Duration::from_millis(v);
    }
    if let Some(v) = t.field::<u64>("memory_max_bytes", "a whole number of bytes", problems) {
        config.store.memory_max_bytes = v;
    }
    t.finish(problems);

    read_redis(&mut config.store.redis, top, problems);

    let mut t = top.table("log", problems);
    if let Some(v) = t.field::<String>("format", "text or json", problems) {
        match v.as_str() {
            "text" => config.log.format = LogFormat::Text,
            "json" => config.log.format = LogFormat::Json,
            _ => problems.push(
                "log.format",
                format!("{v:?} is not a log format; use text or json"),
            ),
        }
    }
    if let Some(v) = t.field::<String>("level", "a level such as info", problems) {
        config.log.level = v;
    }
    if let Some(v) = t.field::<bool>("access", "true or false", problems) {
        config.log.access = v;
    }
    t.finish(problems);

    let mut t = top.table("server", problems);
    let s = &mut config.server;
    if let Some(v) = t.field::<usize>("threads", "a whole number", problems) {
        s.threads = v;
    }
    if let Some(v) = t.field::<bool>("work_stealing", "true or false", problems) {
        s.work_stealing = v;
    }
    if let Some(v) = t.field::<u64>(
        "grace_period_seconds",
        "a whole number of seconds",
        problems,
    ) {
        s.grace_period_seconds = v;
    }
    if let Some(v) = t.field::<u64>(
        "graceful_shutdown_timeout_seconds",
        "a whole number of seconds",
        problems,
    ) {
        s.graceful_shutdown_timeout_seconds = v;
    }
    if let Some(v) = t.field::<String>("pid_file", "a file path", problems) {
        s.pid_file = v;
    }
    if let Some(v) = t.field::<String>("upgrade_sock", "a socket path", problems) {
        s.upgrade_sock = v;
    }
    if let Some(v) = t.field::<bool>("daemon", "true or false", problems) {
        s.daemon = v;
    }
    if let Some(v) = t.field::<String>("error_log", "a file path", problems) {
        s.error_log = Some(v);
    }
    if let Some(v) = t.field::<String>("user", "a user name", problems) {
        s.user = Some(v);
    }
    if let Some(v) = t.field::<String>("group", "a group name", problems) {
        s.group = Some(v);
    }
    if let Some(v) = t.field::<bool>("h2c", "true or false", problems) {
        s.h2c = v;
    }
    if let Some(v) = t.field::<usize>("upstream_keepalive_pool_size", "a whole number", problems) {
        s.upstream_keepalive_pool_size = v;
    }
    t.finish(problems);

    config.trust = read_trust(top, problems);
}

/// The `redis` section; see `store::redis` for the URL forms and what each key does.
fn read_redis(redis: &mut RedisSettings, top: &mut Table<'_>, problems: &mut Problems) {
    let mut t = top.table("redis", problems);
    if let Some(v) = t.field::<String>(
        "url",
        "a Redis URL such as redis://127.0.0.1:6379, redis+cluster://h:p,h:p or \
         redis+sentinel://h:p/master-name",
        problems,
    ) {
        redis.url = v;
    }
    if let Some(v) = t.field::<String>("key_prefix", "a string such as \"flowgate:\"", problems) {
        redis.key_prefix = v;
    }
    if let Some(v) = t.field::<u64>(
        "connect_timeout_ms",
        "a whole number of milliseconds",
        problems,
    ) {
        redis.connect_timeout = Duration::from_millis(v);
    }
    if let Some(v) = t.field::<u32>("breaker_failures", "a whole number", problems) {
        redis.breaker_failures = v;
    }
    if let Some(v) = t.field::<u64>(
        "breaker_cool_down_ms",
        "a whole number of milliseconds",
        problems,
    ) {
        redis.breaker_cool_down = Duration::from_millis(v);
    }
    if let Some(v) = t.field::<String>("tls_ca_file", "a file path", problems) {
        redis.tls_ca_file = Some(v.into());
    }
    t.finish(problems);
}

/// The `signing` and `sites` sections.
fn read_trust(top: &mut Table<'_>, problems: &mut Problems) -> TrustConfig {
    let mut out = TrustConfig::default();
    let mut t = top.table("signing", problems);
    if let Some(v) = t.field::<String>("secret_file", "a file path", problems) {
        if v.is_empty() {
            problems.push(t.key_path("secret_file"), "must be a file path");
        } else {
            out.signing_secret_file = Some(v.into());
        }
    }
    t.finish_with(
        &format!("secrets go in {SIGNING_SECRET_ENV} or the file"),
        problems,
    );

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

/// One site's entry: `mode`, `keys`, `leeway_seconds`.
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
            problems.push(path, "must be a mapping (mode, keys, leeway_seconds)");
            return None;
        }
    }
    let mut t = Table::nested(path.clone(), Some(value), "", problems);
    let mut site = SiteConfig {
        mode: Mode::Off,
        leeway_secs: DEFAULT_LEEWAY_SECS,
        keys: Vec::new(),
    };
    if let Some(v) = t.field::<String>("mode", "off, optional or required", problems) {
        match Mode::parse(&v) {
            Some(m) => site.mode = m,
            None => problems.push(t.key_path("mode"), "must be off, optional or required"),
        }
    }
    if let Some(items) = t.list(
        "keys",
        "a list of {kid, secret_env|secret_file|secret}",
        problems,
    ) {
        for (i, item) in items.iter().enumerate() {
            if let Some(key) = read_key(item, format!("{path}.keys[{i}]"), problems) {
                site.keys.push(key);
            }
        }
    }
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
    if site.mode != Mode::Off && site.keys.is_empty() {
        problems.push(
            format!("{path}.keys"),
            format!(
                "mode {} needs at least one key; add {{kid, secret_env}} or set mode: off",
                site.mode
            ),
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
    let mut sources = Vec::new();
    for key in ["secret_env", "secret_file", "secret"] {
        let Some(v) = t.field::<String>(key, "a non-empty string", problems) else {
            continue;
        };
        if v.is_empty() {
            problems.push(t.key_path(key), "must be a non-empty string");
            continue;
        }
        sources.push(match key {
            "secret_env" => SecretSource::Env(v),
            "secret_file" => SecretSource::File(v.into()),
            _ => SecretSource::Inline(Secret::new(v)),
        });
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

/// One YAML mapping being read: remembers which keys were asked for, to report the rest.
struct Table<'v> {
    path: String,
    map: Option<&'v Mapping>,
    seen: Vec<&'static str>,
}

impl<'v> Table<'v> {
    /// The file's top-level mapping.
    fn root(value: &'v Value, problems: &mut Problems) -> Table<'v> {
        let map = match value {
            Value::Mapping(m) => Some(m),
            Value::Null => None,
            _ => {
                problems.push(
                    "file",
                    "the top level must be a mapping of keys (listen:, upstreams:, …)",
                );
                None
            }
        };
        Table {
            path: String::new(),
            map,
            seen: Vec::new(),
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn raw(&mut self, key: &'static str) -> Option<&'v Value> {
        self.seen.push(key);
        self.map?.get(key).filter(|v| !v.is_null())
    }

    /// Reads one key; `None` when absent, `null`, or invalid (then a problem is recorded).
    fn field<T: DeserializeOwned>(
        &mut self,
        key: &'static str,
        expected: &str,
        problems: &mut Problems,
    ) -> Option<T> {
        let v = self.raw(key)?;
        match yaml_serde::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(_) => {
                problems.push(self.key_path(key), format!("must be {expected}"));
                None
            }
        }
    }

    /// Opens a nested mapping; an absent or `null` one reads as empty.
    fn table(&mut self, key: &'static str, problems: &mut Problems) -> Table<'v> {
        let path = self.key_path(key);
        let value = self.raw(key);
        Table::nested(path, value, "must be a mapping of keys", problems)
    }

    /// A mapping at `path` (a list item, a site); an absent or `null` one reads as empty, any
    /// other value is a problem worded `not_a_mapping`.
    fn nested(
        path: String,
        value: Option<&'v Value>,
        not_a_mapping: &str,
        problems: &mut Problems,
    ) -> Table<'v> {
        let map = match value {
            None | Some(Value::Null) => None,
            Some(Value::Mapping(m)) => Some(m),
            Some(_) => {
                problems.push(path.clone(), not_a_mapping);
                None
            }
        };
        Table {
            path,
            map,
            seen: Vec::new(),
        }
    }

    /// Reads a list; `None` when absent, `null`, or not a list (then a problem is recorded).
    fn list(
        &mut self,
        key: &'static str,
        expected: &str,
        problems: &mut Problems,
    ) -> Option<&'v Vec<Value>> {
        let v = self.raw(key)?;
        match v.as_sequence() {
            Some(seq) => Some(seq),
            None => {
                problems.push(self.key_path(key), format!("must be {expected}"));
                None
            }
        }
    }

    /// Reports every key of this mapping that was not read.
    fn finish(self, problems: &mut Problems) {
        self.finish_with("remove or rename it", problems);
    }

    /// [`Table::finish`] with the fix its messages suggest.
    fn finish_with(self, fix: &str, problems: &mut Problems) {
        let Some(map) = self.map else { return };
        for k in map.keys() {
            let name = match k.as_str() {
                Some(s) => s.to_owned(),
                None => format!("{k:?}"),
            };
            if self.seen.iter().any(|s| *s == name) {
                continue;
            }
            let hint = closest(&name, &self.seen)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            let known = self.seen.join(", ");
            problems.push(
                self.key_path(&name),
                format!("unknown key{hint} (known here: {known}); {fix}"),
            );
        }
    }
}

/// The known key nearest to a misspelt one, if it is close enough to be a likely typo: a few
/// edits away, or the key without its unit suffix (`leeway` for `leeway_seconds`).
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let suffix_dropped = |k: &str| {
        k.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('_'))
    };
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) || suffix_dropped(k))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::from_yaml("").unwrap(), Config::default());
        assert_eq!(Config::from_yaml("{}").unwrap(), Config::default());
    }

    #[test]
    fn keys_override_defaults() {
        let c = Config::from_yaml(
            "listen: 127.0.0.1:9000\nadmin: \"\"\nupstreams: [a.example:80, b:81]\n\
             routes: {init_match: prefix}\nstore: {ttl_seconds: 5}\nserver: {threads: 2}\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.admin, None);
        assert_eq!(c.upstreams, ["a.example:80", "b:81"]);
        assert_eq!(c.routes.init_match, PathMatch::Prefix);
        assert_eq!(c.store.ttl, Duration::from_secs(5));
        assert_eq!(c.server.threads, 2);
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let err = Config::from_yaml(
            "listen: nowhere\nupstreams: [\"no-port\"]\nstore:\n  ttl_seconds: 0\n  ttl_second: 1\n\
             log: {format: xml}\nbogus: 1\nserver: {threads: many}\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "listen",
            "upstreams[0]",
            "store.ttl_seconds",
            "store.ttl_second",
            "log.format",
            "bogus",
            "server.threads",
        ] {
            assert!(keys.contains(&k), "{k} missing in {err}");
        }
        assert!(
            err.to_string().contains("did you mean `ttl_seconds`"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = Config::from_yaml("listen: [\n").unwrap_err();
        assert!(err.0[0].key.starts_with("line"), "{err}");
    }

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
        let err = pairs(c.policy().unwrap_err());
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
}
