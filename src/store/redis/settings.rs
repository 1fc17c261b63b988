//! What the Redis store is built from, and what can be wrong with it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::codec;
use super::url::{self, UrlError};

/// Default key prefix.
pub(crate) const DEFAULT_KEY_PREFIX: &str = "flowgate:";
/// Default per-call deadline.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// Default consecutive failures that open the breaker.
pub(crate) const DEFAULT_BREAKER_FAILURES: u32 = 5;
/// Default time the breaker stays open before a probe.
pub(crate) const DEFAULT_BREAKER_COOL_DOWN: Duration = Duration::from_millis(250);
/// Default bound on one connection attempt.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Default session time-to-live.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Everything the Redis store is built from (the config file's `redis` section and `--redis`).
/// Its `Debug` output hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// The URL; see [`url`] for the forms.
    pub url: String,
    /// Prepended to every key; printable ASCII, no braces.
    pub key_prefix: String,
    /// Session time-to-live (`SET … EX`); sub-second parts use `PX`.
    pub ttl: Duration,
    /// Deadline of each call, connection wait included.
    pub timeout: Duration,
    /// Bound on one connection attempt (runs in the background, not on a request).
    pub connect_timeout: Duration,
    /// Consecutive failures that open the breaker.
    pub breaker_failures: u32,
    /// How long the open breaker refuses calls before one probe.
    pub breaker_cool_down: Duration,
    /// PEM file with the CA certificate(s) that sign the servers' TLS certificates
    /// (`rediss://`); without it the system's roots are used.
    pub tls_ca_file: Option<PathBuf>,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &url::redact(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_cool_down", &self.breaker_cool_down)
            .field("tls_ca_file", &self.tls_ca_file)
            .finish()
    }
}

impl RedisSettings {
    /// Settings for `url` with every other value at its default.
    pub fn new(url: impl Into<String>) -> Self {
        RedisSettings {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_string(),
            ttl: DEFAULT_TTL,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            breaker_failures: DEFAULT_BREAKER_FAILURES,
            breaker_cool_down: DEFAULT_BREAKER_COOL_DOWN,
            tls_ca_file: None,
        }
    }

    /// Everything wrong with these settings; empty when valid. Reads nothing but `tls_ca_file`.
    pub fn check(&self) -> Vec<SettingsError> {
        let mut out = Vec::new();
        let parsed = url::parse(&self.url);
        if let Err(e) = &parsed {
            out.push(SettingsError::Url(e.clone()));
        }
        if let Err(e) = codec::validate_prefix(&self.key_prefix) {
            out.push(SettingsError::KeyPrefix(e));
        }
        if self.ttl < Duration::from_millis(1) {
            out.push(SettingsError::Ttl);
        }
        if self.timeout.is_zero() {
            out.push(SettingsError::Timeout);
        }
        if self.connect_timeout.is_zero() {
            out.push(SettingsError::ConnectTimeout);
        }
        if self.breaker_failures == 0 {
            out.push(SettingsError::BreakerFailures);
        }
        if let Some(path) = &self.tls_ca_file {
            if !matches!(&parsed, Ok(u) if u.tls) {
                out.push(SettingsError::CaFileWithoutTls);
            }
            if let Err(e) = std::fs::metadata(path) {
                out.push(SettingsError::CaFileMissing {
                    path: path.clone(),
                    why: e.to_string(),
                });
            }
        }
        out
    }
}

/// One thing wrong with [`RedisSettings`]; [`SettingsError::key`] names the configuration key
/// it is about, the message says how to fix it (and never repeats a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// The URL does not parse.
    Url(UrlError),
    /// The key prefix is too long or has characters a key cannot carry.
    KeyPrefix(String),
    /// The TTL is under a millisecond.
    Ttl,
    /// The per-call deadline is zero.
    Timeout,
    /// The connect timeout is zero.
    ConnectTimeout,
    /// The breaker would open before any failure.
    BreakerFailures,
    /// A CA file is given for a URL without TLS.
    CaFileWithoutTls,
    /// The CA file does not exist or cannot be reached.
    CaFileMissing {
        /// The path given.
        path: PathBuf,
        /// The I/O error's text.
        why: String,
    },
    /// The CA file exists but could not be read.
    CaFileRead {
        /// The path given.
        path: PathBuf,
        /// The I/O error's text.
        why: String,
    },
    /// The Redis client refused the URL's parameters.
    Client {
        /// The URL without credentials.
        endpoint: String,
        /// The client's message.
        why: String,
    },
}

impl SettingsError {
    /// The configuration key the problem is about.
    pub fn key(&self) -> &'static str {
        match self {
            SettingsError::Url(_) | SettingsError::Client { .. } => "redis.url",
            SettingsError::KeyPrefix(_) => "redis.key_prefix",
            SettingsError::Ttl => "store.ttl_seconds",
            SettingsError::Timeout => "store.deadline_ms",
            SettingsError::ConnectTimeout => "redis.connect_timeout_ms",
            SettingsError::BreakerFailures => "redis.breaker_failures",
            SettingsError::CaFileWithoutTls
            | SettingsError::CaFileMissing { .. }
            | SettingsError::CaFileRead { .. } => "redis.tls_ca_file",
        }
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Url(e) => write!(f, "{e}"),
            SettingsError::KeyPrefix(why) => f.write_str(why),
            SettingsError::Ttl => f.write_str("must be at least 1 (default 86400)"),
            SettingsError::Timeout => f.write_str("must be at least 1 (default 50)"),
            SettingsError::ConnectTimeout => f.write_str("must be at least 1 (default 500)"),
            SettingsError::BreakerFailures => f.write_str("must be at least 1 (default 5)"),
            SettingsError::CaFileWithoutTls => {
                f.write_str("set, but the URL does not use TLS; use rediss:// or remove the key")
            }
            SettingsError::CaFileMissing { path, why } => write!(
                f,
                "cannot read {} ({why}); give the path of a PEM file",
                path.display()
            ),
            SettingsError::CaFileRead { path, why } => {
                write!(f, "cannot read {}: {why}", path.display())
            }
            SettingsError::Client { endpoint, why } => write!(f, "{endpoint}: {why}"),
        }
    }
}

impl std::error::Error for SettingsError {}

/// Why the Redis store could not be built: every problem, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfigError(pub Vec<SettingsError>);

impl fmt::Display for RedisConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {e}", e.key())?;
        }
        Ok(())
    }
}

impl std::error::Error for RedisConfigError {}
