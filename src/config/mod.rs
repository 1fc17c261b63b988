//! The configuration: the file's settings as plain data, read by one walker, checked once.
//!
//! The file is YAML. Every key is optional; a missing key (or an explicit `null`) takes the
//! default of the behaviour contract (`defaults`), so an empty file — or no file at all — is a
//! valid configuration. Unknown keys are errors, because a misspelt key silently falling back to
//! a default is the kind of mistake an operator only finds in production.
//!
//! - this file — the [`Config`] types: plain data, `Clone`, no behaviour;
//! - `defaults` — the contract's defaults and `Config::default()`;
//! - `read` — file text → `Config`, section by section (`sites` reads `signing:` and
//!   `sites:`, `client_ip` reads `client_ip:`), all through the one walker in `table`: each key is read on its own, so one run
//!   reports every problem in the file, and an unknown key gets a "did you mean" computed from
//!   the keys of its table;
//! - `check` — the semantic checks that do not depend on how a value was written;
//! - `secrets` — the secrets the file names (environment, files) → the trust policy and the
//!   header-signing secrets;
//! - [`Problem`] — the one problem type every part reports in.
//!
//! The layout of the file is documented in `conf/flowgate.yaml` and the README.

mod balance;
mod check;
mod client_ip;
pub(crate) mod defaults;
mod edge;
mod erasure;
mod limits;
mod problem;
mod read;
mod secrets;
mod sessions;
mod site_rules;
mod sites;
mod table;
mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use balance::Balance;
pub use problem::{Problem, Problems};
pub(crate) use secrets::SIGNING_SECRET_ENV;
pub use site_rules::RulesConfig;
pub use tls::{CertFiles, TlsConfig, TlsVersion};
pub(crate) use tls::{UpstreamAddress, upstream_address};

use crate::headers::forwarded::Cidr;
use crate::headers::signature::Versions;
use crate::secret::Secret;
use crate::store::StoreSettings;
use crate::trust::Mode;

/// A validated configuration: what the proxy runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address the plaintext proxy listener binds; `None` (`listen: ""`): HTTPS only.
    pub listen: Option<SocketAddr>,
    /// Every connection on `listen` starts with a PROXY protocol v1/v2 header (an L4 load
    /// balancer in front); connections without a valid one are closed.
    pub listen_proxy_protocol: bool,
    /// The HTTPS listener and its certificates (`tls:`); `None`: plaintext only.
    pub tls: Option<TlsConfig>,
    /// Address of the admin listener; `None` turns it off.
    pub admin: Option<SocketAddr>,
    /// The chat backends (`host:port`); health-checked and balanced when there are several.
    pub upstreams: Vec<String>,
    /// Timeouts and health checks towards the upstreams.
    pub upstream: UpstreamConfig,
    /// Which paths are init and session routes.
    pub routes: RoutesConfig,
    /// Names of the query parameters the widget sends.
    pub params: ParamNames,
    /// Trusted header settings.
    pub headers: HeadersConfig,
    /// Client identity headers and the proxies trusted to pass them on.
    pub client_ip: ClientIpConfig,
    /// Session store settings (the `store` and `redis` sections).
    pub store: StoreSettings,
    /// Logging settings.
    pub log: LogConfig,
    /// Pingora server settings.
    pub server: ServerSettings,
    /// Read timeouts per route class and for WebSocket tunnels (`timeouts:`).
    pub timeouts: TimeoutsConfig,
    /// Header signing and signed visitor context (`signing:`, `sites:`; see [`crate::trust`]).
    pub trust: TrustConfig,
    /// Init rate limits and the request body limit (`limits:`).
    pub limits: LimitsConfig,
    /// Where the admin token of the erasure routes comes from (`erasure:`).
    pub erasure: ErasureConfig,
    /// How a stored context is bound to its session (`sessions:`).
    pub sessions: SessionsConfig,
}

/// What a session route must present for its stored context (`sessions.bind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SessionBind {
    /// The session id alone: whoever knows it gets the stored context.
    #[default]
    Off,
    /// The session id and the widget's `Flowgate-Session-Key`, whose hash is stored beside the
    /// context; an init must present it too to replace or delete a bound context.
    Key,
}

/// The `sessions:` section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionsConfig {
    /// `bind`: `off` or `key`.
    pub bind: SessionBind,
}

/// What happens to an init over its rate limit (`limits.mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LimitMode {
    /// Proxied without its context: neither read nor stored (`reason=rate_limited`).
    #[default]
    Discard,
    /// Answered `429` with `Retry-After: 1`, not proxied.
    Reject,
}

/// Init rate limits and the request body limit (`limits:`); `0` turns a limit off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `init_per_second.per_client`: inits a second from one client address.
    pub per_client: u32,
    /// `init_per_second.per_site`: inits a second for one site id.
    pub per_site: u32,
    /// `burst`: extra inits allowed within one second on top of either rate.
    pub burst: u32,
    /// `mode`: what happens to an init over a limit.
    pub mode: LimitMode,
    /// `max_body_bytes`: the largest request body proxied (else `413`), per route class.
    pub max_body_bytes: BodyLimits,
}

/// `limits.max_body_bytes`: one number for every route class, or `{default, init, session,
/// other}`; `0` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodyLimits {
    /// The scalar form, or `default`: every class without its own.
    pub default: u64,
    /// `init`: the init route.
    pub init: Option<u64>,
    /// `session`: the session routes.
    pub session: Option<u64>,
    /// `other`: every other path.
    pub other: Option<u64>,
}

/// The `erasure:` section: where the admin listener's bearer token comes from when
/// `FLOWGATE_ADMIN_TOKEN` is unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureConfig {
    /// `erasure.token_file`: one token per line (`#` comments allowed).
    pub token_file: Option<PathBuf>,
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
    /// How a request picks one of several upstreams.
    pub balance: Balance,
    /// CA certificates `https://` upstreams are verified against; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
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
    /// Whether the context and token parameters stay in the query sent upstream.
    pub forward_raw: bool,
}

/// Client identity headers (`client_ip:`): which proxies' chains are kept, and the names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIpConfig {
    /// Peers whose `X-Forwarded-For`, `X-Real-IP`, `X-Request-Id`, … are kept.
    pub trusted_proxies: Vec<Cidr>,
    /// The client address header (`X-Real-IP`).
    pub real_ip_header: String,
    /// The address chain header (`X-Forwarded-For`).
    pub forwarded_for_header: String,
    /// The scheme header (`X-Forwarded-Proto`).
    pub forwarded_proto_header: String,
    /// The original host header (`X-Forwarded-Host`).
    pub forwarded_host_header: String,
    /// The request id header (`X-Request-Id`).
    pub request_id_header: String,
    /// Whether the RFC 7239 `Forwarded` header is set too.
    pub forwarded: bool,
}

/// Trusted header settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadersConfig {
    /// Prefix of every trusted header name (`X-Flowgate-`).
    pub prefix: String,
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
    /// Seconds a client connection may stay silent: before its first request and between
    /// keep-alive requests.
    pub idle_timeout_seconds: u64,
    /// Seconds a request head may take from its first byte to its last.
    pub header_timeout_seconds: u64,
    /// Longest request target accepted; longer ones are answered `414`.
    pub max_request_target_bytes: usize,
    /// Seconds an open WebSocket tunnel keeps working after SIGTERM/SIGQUIT.
    pub websocket_drain_seconds: u64,
}

/// Read timeouts of one route class (`timeouts.init`, `.session`, `.other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassTimeouts {
    /// Longest silence while reading the client's request body.
    pub client_read: Duration,
    /// Longest wait for the upstream's response head and between its reads; `None` takes
    /// `upstream.read_timeout_ms`.
    pub upstream_read: Option<Duration>,
}

/// Read timeouts per route class and for WebSocket tunnels (`timeouts:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutsConfig {
    /// The init route.
    pub init: ClassTimeouts,
    /// Session routes.
    pub session: ClassTimeouts,
    /// Every other route.
    pub other: ClassTimeouts,
    /// A tunnel (after a `101`) with no traffic either way for this long is closed.
    pub websocket_idle: Duration,
}

/// The trust settings of the configuration file (`signing:`, `sites:`), before secrets are read.
///
/// ```yaml
/// signing:
///   # One secret per line, newest first. FLOWGATE_SIGNING_SECRET (comma-separated) wins when set.
///   secret_file: /etc/flowgate/signing.secrets
///   versions: [v2]              # [v1, v2] while backends move to v2
/// sites:
///   "site1":
///     mode: required            # off | optional | required (default off)
///     leeway_seconds: 60        # clock skew allowed for exp / nbf / iat (default 60)
///     max_token_age_seconds: 3600   # iat required; older tokens refused (default 3600)
///     bind_session: false       # true: every token needs `sid` = the request's jsSessionId
///     keys:
///       - kid: key-2026-11
///         secret_env: FLOWGATE_SITE1_KEY_2026_11   # or secret_file: /path, or secret: "…"
/// ```
///
/// A key's secret comes from an environment variable (`secret_env`), a file (`secret_file`,
/// its first non-comment line) or, for tests and demos, inline (`secret`); inline secrets end up
/// in version control, so production configs should use one of the other two. Secrets are
/// read when the proxy starts (and by `flowgate check`), never logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustConfig {
    /// `signing.secret_file`.
    pub signing_secret_file: Option<PathBuf>,
    /// `signing.versions`.
    pub signing_versions: Versions,
    /// `sites`, by site id.
    pub sites: BTreeMap<String, SiteConfig>,
    /// `sites_default`: the page rules of sites without their own.
    pub sites_default: RulesConfig,
}

/// One site's entry under `sites:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// `mode`.
    pub mode: Mode,
    /// `leeway_seconds`.
    pub leeway_secs: u64,
    /// `max_token_age_seconds`.
    pub max_token_age_secs: u64,
    /// `keys` (the list form) or `keys.verify`: the token keys.
    pub keys: Vec<KeyConfig>,
    /// The page rules: `origins`, `keys.allow`, `keys.signed_only`, `enforce`, `values`,
    /// `credentials`.
    pub rules: RulesConfig,
    /// `bind_session`: every token must carry a `sid` equal to the request's `jsSessionId`.
    pub bind_session: bool,
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
