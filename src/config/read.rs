//! The configuration file → [`Config`], section by section, every problem with its key.
//!
//! Reading is tolerant on purpose: each key is read on its own, so one run of
//! [`Config::from_yaml`] reports every problem in the file, not just the first one. Every
//! section goes through the same [`Table`] walker — `signing:` and `sites:` (in `sites.rs`),
//! `client_ip:` (in `client_ip.rs`) and `redis:` included — so an unknown key anywhere gets the same message, with a "did you mean"
//! computed against the keys of its own table.

use std::path::Path;
use std::time::Duration;

use yaml_serde::Value;

use super::balance::read_balance;
use super::client_ip::read_client_ip;
use super::edge::{read_edge, read_server_edge};
use super::erasure::read_erasure;
use super::limits::read_limits;
use super::sessions::read_sessions;
use super::sites::read_trust;
use super::table::Table;
use super::tls::{read_tls, read_upstream_ca};
use super::{Config, LogFormat, PathMatch, Problem, Problems, TrustConfig};
use crate::store::redis::RedisSettings;

impl Config {
    /// Reads and validates a configuration file.
    pub(crate) fn load(path: &Path) -> Result<Config, Problems> {
        Config::from_yaml(&read_file(path)?)
    }

    /// The bytes of a configuration file, for [`Config::from_yaml`] and a hash of what was read.
    pub(crate) fn read_text(path: &Path) -> Result<String, Problems> {
        read_file(path)
    }

    /// Parses and validates YAML text, reporting every problem at once.
    pub(crate) fn from_yaml(text: &str) -> Result<Config, Problems> {
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
    pub(crate) fn load(path: &Path) -> Result<TrustConfig, Problems> {
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
        Problems::from(Problem::new(
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
        Problems::from(Problem::new(
            key,
            format!("not valid YAML ({e}); fix the syntax"),
        ))
    })
}

/// Reads every known key into `config`; unknown keys are reported by [`Table::finish`].
fn read_into(config: &mut Config, top: &mut Table<'_>, problems: &mut Problems) {
    if let Some(v) = top.field::<String>(
        "listen",
        "an address such as 0.0.0.0:8080, or \"\" for HTTPS only",
        problems,
    ) {
        match v.parse() {
            Ok(a) => config.listen = Some(a),
            Err(_) if v.is_empty() => config.listen = None,
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
    read_balance(config, &mut t, problems);
    read_upstream_ca(config, &mut t, problems);
    t.finish(problems);
    read_tls(config, top, problems);

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
    if let Some(v) = t.field::<bool>("forward_raw", "true or false", problems) {
        config.params.forward_raw = v;
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

    read_client_ip(&mut config.client_ip, top, problems);
    read_erasure(&mut config.erasure, top, problems);

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
    read_server_edge(s, &mut t, problems);
    t.finish(problems);

    read_edge(config, top, problems);
    read_limits(&mut config.limits, top, problems);
    read_sessions(&mut config.sessions, top, problems);
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
        assert_eq!(c.listen.map(|a| a.port()), Some(9000));
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
    fn the_shipped_file_is_the_defaults() {
        let shipped = include_str!("../../conf/flowgate.yaml");
        assert_eq!(Config::from_yaml(shipped).unwrap(), Config::default());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = Config::from_yaml("listen: [\n").unwrap_err();
        assert!(err.0[0].key.starts_with("line"), "{err}");
    }
}
