//! The defaults of the behaviour contract, in one place, and the [`Config`] they make.
//!
//! A missing key (or an explicit `null`) in the file takes the value here; so does every key
//! when there is no file at all.

use std::net::SocketAddr;
use std::time::Duration;

use super::{
    Balance, ClassTimeouts, ClientIpConfig, Config, HeadersConfig, LogConfig, LogFormat,
    ParamNames, PathMatch, RoutesConfig, ServerSettings, TimeoutsConfig, TrustConfig,
    UpstreamConfig,
};
use crate::headers::DEFAULT_PREFIX;
use crate::store::StoreSettings;
use crate::store::redis::RedisSettings;

/// Address the proxy listens on.
pub(crate) const LISTEN: &str = "0.0.0.0:8080";
/// Address of the admin listener (`/metrics`, `/healthz`).
pub(crate) const ADMIN: &str = "127.0.0.1:9464";
/// The chat backend.
pub(crate) const UPSTREAM: &str = "127.0.0.1:8000";
/// Upstream connect timeout, milliseconds.
pub(crate) const UPSTREAM_CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Upstream read timeout (time to first byte and between reads), milliseconds.
pub(crate) const UPSTREAM_READ_TIMEOUT_MS: u64 = 60_000;
/// How often several upstreams are health-checked, milliseconds.
pub(crate) const UPSTREAM_HEALTH_CHECK_INTERVAL_MS: u64 = 5_000;
/// Path of the widget's init request.
pub(crate) const INIT_PATH: &str = "/public_FlowWidget/init";
/// Paths under these prefixes (other than the init path) are session routes.
pub(crate) const SESSION_PREFIX: &str = "/public_FlowWidget/";
/// Query parameter carrying the site id.
pub(crate) const PARAM_SITE: &str = "siteid";
/// Query parameter carrying the chat session id.
pub(crate) const PARAM_SESSION: &str = "jsSessionId";
/// Query parameter carrying the base64 visitor context.
pub(crate) const PARAM_CONTEXT: &str = "visitor_context";
/// Query parameter carrying the host site's signed-context token (JWT).
pub(crate) const PARAM_TOKEN: &str = "visitor_context_token";
/// Time a stored session lives after its init, seconds (24 h).
pub(crate) const STORE_TTL_SECONDS: u64 = 86_400;
/// Deadline of one store call before the request goes on without it, milliseconds.
pub(crate) const STORE_DEADLINE_MS: u64 = 50;
/// Byte bound of the in-process store (64 MiB).
pub(crate) const STORE_MEMORY_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Worker threads of the proxy service.
pub(crate) const THREADS: usize = 1;
/// Seconds SIGTERM waits for in-flight requests before the runtimes stop.
pub(crate) const GRACE_PERIOD_SECONDS: u64 = 5;
/// Seconds the runtimes get to stop after the grace period.
pub(crate) const GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;
/// Pid file written by the server.
pub(crate) const PID_FILE: &str = "/tmp/flowgate.pid";
/// Socket used to hand listeners over during a zero-downtime upgrade (`-u`).
pub(crate) const UPGRADE_SOCK: &str = "/tmp/flowgate_upgrade.sock";
/// Idle upstream connections kept for reuse.
pub(crate) const UPSTREAM_KEEPALIVE_POOL_SIZE: usize = 128;
/// A client connection silent this long (before a request, between requests) is closed.
pub(crate) const IDLE_TIMEOUT_SECONDS: u64 = 60;
/// A request head must be complete this long after its first byte (slowloris bound): ten
/// seconds is far above what any real client needs to send a few kilobytes of head, even on a
/// slow mobile link, and short enough that a trickling client holds a socket only briefly.
pub(crate) const HEADER_TIMEOUT_SECONDS: u64 = 10;
/// Longest request target: the most the `http` crate (and so Pingora) can represent.
pub(crate) const MAX_REQUEST_TARGET_BYTES: usize = 65_534;
/// After SIGTERM/SIGQUIT, open WebSocket tunnels keep working this long.
pub(crate) const WEBSOCKET_DRAIN_SECONDS: u64 = 60;
/// Downstream body read timeout of every route class, seconds (Pingora's own default).
pub(crate) const CLIENT_READ_SECONDS: u64 = 60;
/// A WebSocket tunnel with no traffic either way for this long is closed, seconds.
pub(crate) const WEBSOCKET_IDLE_SECONDS: u64 = 300;
/// Largest `sites.<id>.leeway_seconds` accepted (a day would make `exp` meaningless).
pub(crate) const MAX_LEEWAY_SECS: u64 = 3_600;
/// Oldest a signed-context token may be (`now - iat`), seconds.
pub(crate) const MAX_TOKEN_AGE_SECS: u64 = crate::trust::DEFAULT_MAX_TOKEN_AGE_SECS;
/// Largest `sites.<id>.max_token_age_seconds` accepted (a day).
pub(crate) const MAX_MAX_TOKEN_AGE_SECS: u64 = 86_400;
/// The client address header.
pub(crate) const REAL_IP_HEADER: &str = "X-Real-IP";
/// The address chain header.
pub(crate) const FORWARDED_FOR_HEADER: &str = "X-Forwarded-For";
/// The scheme header.
pub(crate) const FORWARDED_PROTO_HEADER: &str = "X-Forwarded-Proto";
/// The original host header.
pub(crate) const FORWARDED_HOST_HEADER: &str = "X-Forwarded-Host";
/// The request id header.
pub(crate) const REQUEST_ID_HEADER: &str = "X-Request-Id";

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: Some(parse_addr(LISTEN)),
            listen_proxy_protocol: false,
            tls: None,
            admin: Some(parse_addr(ADMIN)),
            upstreams: vec![UPSTREAM.to_owned()],
            upstream: UpstreamConfig {
                connect_timeout: Duration::from_millis(UPSTREAM_CONNECT_TIMEOUT_MS),
                read_timeout: Duration::from_millis(UPSTREAM_READ_TIMEOUT_MS),
                health_check_interval: Duration::from_millis(UPSTREAM_HEALTH_CHECK_INTERVAL_MS),
                balance: Balance::Session,
                ca_file: None,
            },
            routes: RoutesConfig {
                init_path: INIT_PATH.to_owned(),
                init_match: PathMatch::Exact,
                session_prefixes: vec![SESSION_PREFIX.to_owned()],
            },
            params: ParamNames {
                site: PARAM_SITE.to_owned(),
                session: PARAM_SESSION.to_owned(),
                context: PARAM_CONTEXT.to_owned(),
                token: PARAM_TOKEN.to_owned(),
                forward_raw: false,
            },
            headers: HeadersConfig {
                prefix: DEFAULT_PREFIX.to_owned(),
            },
            client_ip: ClientIpConfig {
                trusted_proxies: Vec::new(),
                real_ip_header: REAL_IP_HEADER.to_owned(),
                forwarded_for_header: FORWARDED_FOR_HEADER.to_owned(),
                forwarded_proto_header: FORWARDED_PROTO_HEADER.to_owned(),
                forwarded_host_header: FORWARDED_HOST_HEADER.to_owned(),
                request_id_header: REQUEST_ID_HEADER.to_owned(),
                forwarded: false,
            },
            store: StoreSettings {
                ttl: Duration::from_secs(STORE_TTL_SECONDS),
                deadline: Duration::from_millis(STORE_DEADLINE_MS),
                memory_max_bytes: STORE_MEMORY_MAX_BYTES,
                redis: RedisSettings::new(""),
            },
            log: LogConfig {
                format: LogFormat::Text,
                level: "info".to_owned(),
                access: true,
            },
            server: ServerSettings {
                threads: THREADS,
                work_stealing: true,
                grace_period_seconds: GRACE_PERIOD_SECONDS,
                graceful_shutdown_timeout_seconds: GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS,
                pid_file: PID_FILE.to_owned(),
                upgrade_sock: UPGRADE_SOCK.to_owned(),
                daemon: false,
                error_log: None,
                user: None,
                group: None,
                h2c: true,
                upstream_keepalive_pool_size: UPSTREAM_KEEPALIVE_POOL_SIZE,
                idle_timeout_seconds: IDLE_TIMEOUT_SECONDS,
                header_timeout_seconds: HEADER_TIMEOUT_SECONDS,
                max_request_target_bytes: MAX_REQUEST_TARGET_BYTES,
                websocket_drain_seconds: WEBSOCKET_DRAIN_SECONDS,
            },
            timeouts: TimeoutsConfig {
                init: ClassTimeouts::default(),
                session: ClassTimeouts::default(),
                other: ClassTimeouts::default(),
                websocket_idle: Duration::from_secs(WEBSOCKET_IDLE_SECONDS),
            },
            trust: TrustConfig::default(),
            limits: Default::default(),
            erasure: super::ErasureConfig::default(),
            sessions: super::SessionsConfig::default(),
        }
    }
}

impl Default for ClassTimeouts {
    fn default() -> Self {
        ClassTimeouts {
            client_read: Duration::from_secs(CLIENT_READ_SECONDS),
            upstream_read: None,
        }
    }
}

fn parse_addr(s: &str) -> SocketAddr {
    // Only called on the constants above, which are valid addresses.
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}
