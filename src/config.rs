//! Configuration file → validated [`Config`]; every problem is reported with its key and a fix.
//!
//! The file is YAML. Every key is optional; a missing key (or an explicit `null`) takes the
//! default of the behaviour contract, so an empty file — or no file at all — is a valid
//! configuration. Unknown keys are errors, because a misspelt key silently falling back to a
//! default is the kind of mistake an operator only finds in production.
//!
//! Reading is tolerant on purpose: each key is read on its own, so one run of
//! [`Config::from_yaml`] reports every problem in the file, not just the first one.
//! The layout of the file is documented in `conf/flowgate.yaml` and the README.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use yaml_serde::{Mapping, Value};

/// The defaults of the behaviour contract, in one place.
pub mod defaults {
    /// Address the proxy listens on.
    pub const LISTEN: &str = "0.0.0.0:8080";
    /// Address of the admin listener (`/metrics`, `/healthz`).
    pub const ADMIN: &str = "127.0.0.1:9464";
    /// The chat backend.
    pub const UPSTREAM: &str = "127.0.0.1:8000";
    /// Upstream connect timeout, milliseconds.
    pub const UPSTREAM_CONNECT_TIMEOUT_MS: u64 = 1_000;
    /// Upstream read timeout (time to first byte and between reads), milliseconds.
    pub const UPSTREAM_READ_TIMEOUT_MS: u64 = 60_000;
    /// How often several upstreams are health-checked, milliseconds.
    pub const UPSTREAM_HEALTH_CHECK_INTERVAL_MS: u64 = 5_000;
    /// Path of the widget's init request.
    pub const INIT_PATH: &str = "/public_FlowWidget/init";
    /// Paths under these prefixes (other than the init path) are session routes.
    pub const SESSION_PREFIX: &str = "/public_FlowWidget/";
    /// Query parameter carrying the site id.
    pub const PARAM_SITE: &str = "siteid";
    /// Query parameter carrying the chat session id.
    pub const PARAM_SESSION: &str = "jsSessionId";
    /// Query parameter carrying the base64 visitor context.
    pub const PARAM_CONTEXT: &str = "visitor_context";
    /// Query parameter carrying the host site's signed-context token (JWT).
    pub const PARAM_TOKEN: &str = "visitor_context_token";
    /// Time a stored session lives after its init, seconds (24 h).
    pub const STORE_TTL_SECONDS: u64 = 86_400;
    /// Deadline of one store call before the request goes on without it, milliseconds.
    pub const STORE_DEADLINE_MS: u64 = 50;
    /// Byte bound of the in-process store (64 MiB).
    pub const STORE_MEMORY_MAX_BYTES: u64 = 64 * 1024 * 1024;
    /// Worker threads of the proxy service.
    pub const THREADS: usize = 1;
    /// Seconds SIGTERM waits for in-flight requests before the runtimes stop.
    pub const GRACE_PERIOD_SECONDS: u64 = 5;
    /// Seconds the runtimes get to stop after the grace period.
    pub const GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;
    /// Pid file written by the server.
    pub const PID_FILE: &str = "/tmp/flowgate.pid";
    /// Socket used to hand listeners over during a zero-downtime upgrade (`-u`).
    pub const UPGRADE_SOCK: &str = "/tmp/flowgate_upgrade.sock";
    /// Idle upstream connections kept for reuse.
    pub const UPSTREAM_KEEPALIVE_POOL_SIZE: usize = 128;
}

/// Longest init path, session prefix or header prefix accepted (a sanity bound, not a policy).
const MAX_PATH_LEN: usize = 1024;

/// A validated configuration: what the proxy runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address the proxy listens on.
    pub listen: SocketAddr,
    /// Address of the admin listener; `None` turns it off.
    pub admin: Option<SocketAddr>,
    /// The chat backends (`host:port`); round robin with health checks when there are several.
    pub upstreams: Vec<String>,
    /// Timeouts and health checks towards the upstreams.
    pub upstream: UpstreamConfig,
    /// Which paths are init and session routes.
    pub routes: RoutesConfig,
    /// Names of the query parameters the widget sends.
    pub params: ParamNames,
    /// Trusted header settings.
    pub headers: HeadersConfig,
    /// Session store settings.
    pub store: StoreConfig,
    /// Logging settings.
    pub log: LogConfig,
    /// Pingora server settings.
    pub server: ServerSettings,
    /// Header signing and signed visitor context (`signing:`, `sites:`; see [`crate::trust`]).
    pub trust: crate::trust::config::TrustConfig,
}

/// Timeouts and health checks towards the upstreams.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout (to the first byte of the response and between reads).
    pub read_timeout: Duration,
    /// Health-check interval when there are several upstreams.
    pub health_check_interval: Duration,
}

/// How the init path is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatch {
    /// The request path equals the init path.
    Exact,
    /// The request path starts with the init path.
    Prefix,
}

/// Which paths are init and session routes.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutesConfig {
    /// Path of the widget's init request.
    pub init_path: String,
    /// How `init_path` is matched.
    pub init_match: PathMatch,
    /// Paths starting with one of these (other than init paths) are session routes.
    pub session_prefixes: Vec<String>,
}

/// Names of the query parameters the widget sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamNames {
    /// The site id parameter.
    pub site: String,
    /// The chat session id parameter.
    pub session: String,
    /// The visitor context parameter.
    pub context: String,
    /// The signed-context token parameter.
    pub token: String,
}

/// Trusted header settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadersConfig {
    /// Prefix of every trusted header name (`X-Flowgate-`).
    pub prefix: String,
}

/// Session store settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// How long a stored session lives after its init.
    pub ttl: Duration,
    /// Deadline of one store call; past it the request goes on without the store.
    pub deadline: Duration,
    /// Byte bound of the in-process store.
    pub memory_max_bytes: u64,
    /// The `redis` section and `--redis`: a non-empty `url` selects the Redis store. Its `ttl`
    /// and `timeout` are taken from `ttl` and `deadline` above when the store is built.
    pub redis: crate::store::redis::RedisSettings,
}

/// Format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object a line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Format of every log line.
    pub format: LogFormat,
    /// Default level filter (`RUST_LOG` overrides it).
    pub level: String,
    /// Whether one access-log line is written per request.
    pub access: bool,
}

/// Pingora server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Worker threads of the proxy service.
    pub threads: usize,
    /// Whether the worker threads steal work from each other.
    pub work_stealing: bool,
    /// Seconds SIGTERM waits for in-flight requests.
    pub grace_period_seconds: u64,
    /// Seconds the runtimes get to stop after the grace period.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Pid file.
    pub pid_file: String,
    /// Upgrade socket for `-u`.
    pub upgrade_sock: String,
    /// Run in the background.
    pub daemon: bool,
    /// Where stderr goes when running as a daemon.
    pub error_log: Option<String>,
    /// User to switch to when running as a daemon.
    pub user: Option<String>,
    /// Group to switch to when running as a daemon.
    pub group: Option<String>,
    /// Accept HTTP/2 over plaintext (h2c) from clients.
    pub h2c: bool,
    /// Idle upstream connections kept for reuse.
    pub upstream_keepalive_pool_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: parse_addr(defaults::LISTEN),
            admin: Some(parse_addr(defaults::ADMIN)),
            upstreams: vec![defaults::UPSTREAM.to_owned()],
            upstream: UpstreamConfig {
                connect_timeout: Duration::from_millis(defaults::UPSTREAM_CONNECT_TIMEOUT_MS),
                read_timeout: Duration::from_millis(defaults::UPSTREAM_READ_TIMEOUT_MS),
                health_check_interval: Duration::from_millis(
                    defaults::UPSTREAM_HEALTH_CHECK_INTERVAL_MS,
                ),
            },
            routes: RoutesConfig {
                init_path: defaults::INIT_PATH.to_owned(),
                init_match: PathMatch::Exact,
                session_prefixes: vec![defaults::SESSION_PREFIX.to_owned()],
            },
            params: ParamNames {
                site: defaults::PARAM_SITE.to_owned(),
                session: defaults::PARAM_SESSION.to_owned(),
                context: defaults::PARAM_CONTEXT.to_owned(),
                token: defaults::PARAM_TOKEN.to_owned(),
            },
            headers: HeadersConfig {
                prefix: crate::headers::DEFAULT_PREFIX.to_owned(),
            },
            store: StoreConfig {
                ttl: Duration::from_secs(defaults::STORE_TTL_SECONDS),
                deadline: Duration::from_millis(defaults::STORE_DEADLINE_MS),
                memory_max_bytes: defaults::STORE_MEMORY_MAX_BYTES,
                redis: crate::store::redis::RedisSettings::new(""),
            },
            log: LogConfig {
                format: LogFormat::Text,
                level: "info".to_owned(),
                access: true,
            },
            server: ServerSettings {
                threads: defaults::THREADS,
                work_stealing: true,
                grace_period_seconds: defaults::GRACE_PERIOD_SECONDS,
                graceful_shutdown_timeout_seconds: defaults::GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS,
                pid_file: defaults::PID_FILE.to_owned(),
                upgrade_sock: defaults::UPGRADE_SOCK.to_owned(),
                daemon: false,
                error_log: None,
                user: None,
                group: None,
                h2c: true,
                upstream_keepalive_pool_size: defaults::UPSTREAM_KEEPALIVE_POOL_SIZE,
            },
            trust: crate::trust::config::TrustConfig::default(),
        }
    }
}

fn parse_addr(s: &str) -> SocketAddr {
    // Only called on the constants above, which are valid addresses.
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// One thing wrong with a configuration: the key it is about and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the key (`store.ttl_seconds`), or the flag (`--listen`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem {
                key: path.display().to_string(),
                message: format!("cannot read the file ({e}); check the path given to -c"),
            }])
        })?;
        Config::from_yaml(&text)
    }

    /// Parses and validates YAML text, reporting every problem at once.
    pub fn from_yaml(text: &str) -> Result<Config, Problems> {
        let mut problems = Problems(Vec::new());
        let root: Value = match yaml_serde::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let key = e
                    .location()
                    .map(|l| format!("line {}", l.line()))
                    .unwrap_or_else(|| "file".to_owned());
                problems.push(key, format!("not valid YAML ({e}); fix the syntax"));
                return Err(problems);
            }
        };
        let mut config = Config::default();
        let mut top = Table::root(&root, &mut problems);
        read_into(&mut config, &mut top, &mut problems);
        top.finish(&mut problems);
        config.check(&mut problems);
        if problems.0.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Re-validates after command-line overrides; `flag` names the flags for messages.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut problems = Problems(Vec::new());
        self.check(&mut problems);
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Semantic checks that do not depend on how a value was written.
    fn check(&self, problems: &mut Problems) {
        if self.upstreams.is_empty() {
            problems.push(
                "upstreams",
                "no upstream configured; list at least one chat backend as host:port",
            );
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            if let Err(why) = check_host_port(u) {
                problems.push(
                    format!("upstreams[{i}]"),
                    format!("{why}; write it as host:port, e.g. 127.0.0.1:8000"),
                );
            }
        }
        if let Some(admin) = self.admin
            && admin == self.listen
        {
            problems.push(
                "admin",
                format!("same address as listen ({admin}); give the admin listener its own port"),
            );
        }
        check_path(&self.routes.init_path, "routes.init_path", problems);
        for (i, p) in self.routes.session_prefixes.iter().enumerate() {
            check_path(p, &format!("routes.session_prefixes[{i}]"), problems);
        }
        for (key, name) in [
            ("params.site", &self.params.site),
            ("params.session", &self.params.session),
            ("params.context", &self.params.context),
            ("params.token", &self.params.token),
        ] {
            if name.is_empty() || name.len() > 128 || !name.bytes().all(is_param_byte) {
                problems.push(
                    key,
                    "must be 1–128 characters of A-Z a-z 0-9 . _ - [ ]; use the name the widget sends",
                );
            }
        }
        let p = &self.params;
        if p.site == p.session || p.site == p.context || p.session == p.context {
            problems.push(
                "params",
                "site, session and context parameters must have three different names",
            );
        }
        if [&p.site, &p.session, &p.context].contains(&&p.token) {
            problems.push(
                "params.token",
                "must differ from the site, session and context parameter names",
            );
        }
        let prefix = &self.headers.prefix;
        if prefix.is_empty()
            || prefix.len() > MAX_PATH_LEN
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            problems.push(
                "headers.prefix",
                format!(
                    "must be letters, digits and '-' (default {}); pick a prefix no client header legitimately uses",
                    crate::headers::DEFAULT_PREFIX
                ),
            );
        }
        if self.store.ttl.is_zero() {
            problems.push("store.ttl_seconds", "must be at least 1 (default 86400)");
        }
        if self.store.deadline.is_zero() || self.store.deadline > Duration::from_secs(10) {
            problems.push(
                "store.deadline_ms",
                "must be between 1 and 10000 milliseconds (default 50)",
            );
        }
        if !self.store.redis.url.is_empty() {
            let redis = crate::store::redis::RedisSettings {
                ttl: self.store.ttl,
                timeout: self.store.deadline,
                ..self.store.redis.clone()
            };
            // `store.*` keys are checked above; report the `redis.*` ones.
            for (key, message) in redis.problems() {
                if key.starts_with("redis.") {
                    problems.push(key, message);
                }
            }
        }
        if self.store.memory_max_bytes < 1024 * 1024 {
            problems.push(
                "store.memory_max_bytes",
                "must be at least 1048576 (1 MiB; default 67108864 = 64 MiB)",
            );
        }
        if self.upstream.connect_timeout.is_zero() {
            problems.push(
                "upstream.connect_timeout_ms",
                "must be at least 1 (default 1000)",
            );
        }
        if self.upstream.read_timeout.is_zero() {
            problems.push(
                "upstream.read_timeout_ms",
                "must be at least 1 (default 60000)",
            );
        }
        if self.upstream.health_check_interval < Duration::from_millis(100) {
            problems.push(
                "upstream.health_check_interval_ms",
                "must be at least 100 (default 5000)",
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(
                "log.level",
                "not a level filter; use error, warn, info, debug or trace (or target=level pairs)",
            );
        }
        if self.server.threads == 0 || self.server.threads > 1024 {
            problems.push("server.threads", "must be between 1 and 1024 (default 1)");
        }
        if self.server.pid_file.is_empty() {
            problems.push(
                "server.pid_file",
                format!("must not be empty (default {})", defaults::PID_FILE),
            );
        }
        if self.server.upgrade_sock.is_empty() {
            problems.push(
                "server.upgrade_sock",
                format!("must not be empty (default {})", defaults::UPGRADE_SOCK),
            );
        }
        if self.server.upstream_keepalive_pool_size == 0 {
            problems.push(
                "server.upstream_keepalive_pool_size",
                "must be at least 1 (default 128)",
            );
        }
    }

    /// Pingora's own server configuration, derived from [`ServerSettings`].
    pub fn server_conf(&self) -> pingora::server::configuration::ServerConf {
        let s = &self.server;
        let mut conf = pingora::server::configuration::ServerConf {
            threads: s.threads,
            work_stealing: s.work_stealing,
            grace_period_seconds: Some(s.grace_period_seconds),
            graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout_seconds),
            pid_file: s.pid_file.clone(),
            upgrade_sock: s.upgrade_sock.clone(),
            daemon: s.daemon,
            error_log: s.error_log.clone(),
            user: s.user.clone(),
            group: s.group.clone(),
            upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
            ..Default::default()
        };
        // A failed connection is retried on another upstream (see `fail_to_connect`): one
        // retry per other upstream is enough to find a healthy one.
        conf.max_retries = self.upstreams.len().max(1);
        conf
    }
}

fn is_param_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'[' | b']')
}

fn check_path(path: &str, key: &str, problems: &mut Problems) {
    if !path.starts_with('/') || path.len() > MAX_PATH_LEN {
        problems.push(key, "must be a path starting with '/'");
    } else if path.contains(['?', '#', ' ', '%']) {
        problems.push(
            key,
            "must be a plain path without '?', '#', '%' or spaces; the query is matched separately",
        );
    }
}

fn check_host_port(s: &str) -> Result<(), String> {
    if s.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} has no port"));
    };
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("{s:?} has no valid port"));
    }
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if host_ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a host name or IP address with a port"
        ))
    }
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

    let (signing, sites) = (top.raw("signing"), top.raw("sites"));
    let mut trust_problems = Vec::new();
    config.trust =
        crate::trust::config::TrustConfig::from_yaml(signing, sites, &mut trust_problems);
    for (key, message) in trust_problems {
        problems.push(key, message);
    }
}

/// The `redis` section; see `store::redis` for the URL forms and what each key does.
fn read_redis(
    redis: &mut crate::store::redis::RedisSettings,
    top: &mut Table<'_>,
    problems: &mut Problems,
) {
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

/// One YAML mapping being read: remembers which keys were asked for, to report the rest.
struct Table<'v> {
    path: String,
    map: Option<&'v Mapping>,
    seen: Vec<&'static str>,
}

impl<'v> Table<'v> {
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
        let map = match self.raw(key) {
            None => None,
            Some(Value::Mapping(m)) => Some(m),
            Some(_) => {
                problems.push(path.clone(), "must be a mapping of keys");
                None
            }
        };
        Table {
            path,
            map,
            seen: Vec::new(),
        }
    }

    /// Reports every key of this mapping that was not read.
    fn finish(self, problems: &mut Problems) {
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
                format!("unknown key{hint} (known here: {known}); remove or rename it"),
            );
        }
    }
}

/// The known key nearest to a misspelt one, if it is close enough to be a likely typo.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
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

    #[test]
    fn host_port_checks() {
        assert!(check_host_port("127.0.0.1:80").is_ok());
        assert!(check_host_port("[::1]:80").is_ok());
        assert!(check_host_port("chat.internal:8080").is_ok());
        assert!(check_host_port("chat.internal").is_err());
        assert!(check_host_port("chat internal:80").is_err());
        assert!(check_host_port("x:0").is_err());
    }
}
