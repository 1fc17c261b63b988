//! Live reload: SIGHUP (or `flowgate reload`) re-reads the configuration file, validates all of
//! it, and only then replaces what the proxy runs with for new requests.
//!
//! Validation is complete before anything changes: the file, the command-line overrides, the
//! secrets it names and the upstream names it lists. A file with any problem changes nothing and
//! every problem is logged with its key. A good file becomes a new [`Runtime`] handed to
//! [`RuntimeHandle::swap`] — sites, keys, routes, params, upstreams, timeouts and limits change
//! at once for new requests, while requests in flight finish on the runtime they started with.
//! The session store and the metrics are not part of the runtime, so stored sessions survive.
//! The log level follows `log.level` (unless `RUST_LOG` is set).
//!
//! Listeners, threads and the connection front are built once: a change to one of their keys is
//! logged as a warning naming the key, and takes a restart or a `-u` upgrade to apply.

use std::sync::{Arc, Mutex};

use pingora::services::background::BackgroundService;
use tokio::sync::watch;

use super::{BuildError, runtime_replacing};
use crate::admin::ConfigHash;
use crate::config::{Config, Problems};
use crate::metrics::{Metrics, ReloadResult};
use crate::proxy::{HealthCheck, RuntimeHandle};
use crate::secret::Secret;

/// A configuration as read for a (re)load, with the hash `/healthz` reports.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration, command-line overrides applied.
    pub config: Config,
    /// `sha256:<hex>` of the file's bytes (`defaults` without a file).
    pub hash: String,
}

/// Reads and validates the configuration again, exactly as at start (file plus flags).
pub type LoadConfig = Box<dyn Fn() -> Result<Loaded, Problems> + Send + Sync>;

/// Everything a reload needs, kept from start-up.
pub struct Reloader {
    load: LoadConfig,
    runtime: RuntimeHandle,
    metrics: Arc<Metrics>,
    hash: Arc<ConfigHash>,
    signing: Option<Vec<Secret>>,
    set_log_level: fn(&str),
    current: Mutex<Config>,
    /// Stops the health check of the pool a previous reload started.
    health: Mutex<Option<watch::Sender<bool>>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

/// Keys that are read once at start: listeners, threads, the connection front, the store.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.server, &new.server);
    let checks = [
        ("listen", old.listen != new.listen),
        (
            "listen_proxy_protocol",
            old.listen_proxy_protocol != new.listen_proxy_protocol,
        ),
        ("admin", old.admin != new.admin),
        // Certificate files named at start reload on their own; the section itself does not.
        ("tls", old.tls != new.tls),
        ("server.threads", o.threads != n.threads),
        ("server.work_stealing", o.work_stealing != n.work_stealing),
        (
            "server.grace_period_seconds",
            o.grace_period_seconds != n.grace_period_seconds,
        ),
        (
            "server.graceful_shutdown_timeout_seconds",
            o.graceful_shutdown_timeout_seconds != n.graceful_shutdown_timeout_seconds,
        ),
        ("server.pid_file", o.pid_file != n.pid_file),
        ("server.upgrade_sock", o.upgrade_sock != n.upgrade_sock),
        ("server.daemon", o.daemon != n.daemon),
        ("server.error_log", o.error_log != n.error_log),
        ("server.user", o.user != n.user),
        ("server.group", o.group != n.group),
        ("server.h2c", o.h2c != n.h2c),
        (
            "server.upstream_keepalive_pool_size",
            o.upstream_keepalive_pool_size != n.upstream_keepalive_pool_size,
        ),
        (
            "server.idle_timeout_seconds",
            o.idle_timeout_seconds != n.idle_timeout_seconds,
        ),
        (
            "server.header_timeout_seconds",
            o.header_timeout_seconds != n.header_timeout_seconds,
        ),
        (
            "server.max_request_target_bytes",
            o.max_request_target_bytes != n.max_request_target_bytes,
        ),
        (
            "server.websocket_drain_seconds",
            o.websocket_drain_seconds != n.websocket_drain_seconds,
        ),
        ("store.ttl_seconds", old.store.ttl != new.store.ttl),
        (
            "store.memory_max_bytes",
            old.store.memory_max_bytes != new.store.memory_max_bytes,
        ),
        ("redis", old.store.redis != new.store.redis),
        ("log.format", old.log.format != new.log.format),
    ];
    checks
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
}

impl Reloader {
    /// A reloader for the server started with `loaded`; `signing` as given to the build.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        loaded: Loaded,
        load: LoadConfig,
        runtime: RuntimeHandle,
        metrics: Arc<Metrics>,
        hash: Arc<ConfigHash>,
        signing: Option<Vec<Secret>>,
        set_log_level: fn(&str),
    ) -> Reloader {
        hash.set(loaded.hash);
        Reloader {
            load,
            runtime,
            metrics,
            hash,
            signing,
            set_log_level,
            current: Mutex::new(loaded.config),
            health: Mutex::new(None),
        }
    }

    /// Re-reads the configuration and, when all of it is valid, puts it in force for new
    /// requests. Logs the outcome; counts it in `flowgate_config_reloads_total{result}`.
    pub fn reload(&self) -> ReloadResult {
        let result = self.try_reload();
        self.metrics.config_reload(result);
        result
    }

    fn try_reload(&self) -> ReloadResult {
        let loaded = (self.load)().and_then(|l| {
            let secrets = l.config.trust.check_secrets();
            secrets.or(l)
        });
        let loaded = match loaded {
            Ok(l) => l,
            Err(problems) => {
                for p in &problems.0 {
                    tracing::error!(key = %p.key, problem = %p.message, "reload refused");
                }
                tracing::error!(
                    problems = problems.0.len(),
                    "reload refused: the configuration has problems; nothing changed"
                );
                return ReloadResult::Invalid;
            }
        };
        let Ok(mut current) = self.current.lock() else {
            return ReloadResult::Failed;
        };
        let previous = self.runtime.load();
        let (runtime, health) =
            match runtime_replacing(&loaded.config, self.signing.clone(), &previous) {
                Ok(built) => built,
                Err(BuildError(why)) => {
                    tracing::error!(problem = %why, "reload refused; nothing changed");
                    return ReloadResult::Failed;
                }
            };
        drop(previous);
        for key in restart_only_changes(&current, &loaded.config) {
            tracing::warn!(
                key,
                "changed in the file but read only at start: needs a restart or `-u` upgrade"
            );
        }
        let signed = runtime.signs();
        if let Some(health) = health {
            self.start_health_check(health);
        }
        self.runtime.swap(runtime);
        self.metrics.signing_enabled(signed);
        (self.set_log_level)(&loaded.config.log.level);
        self.hash.set(loaded.hash.clone());
        tracing::info!(config = %loaded.hash, "configuration reloaded");
        *current = loaded.config;
        ReloadResult::Ok
    }

    /// Runs the health check of a new upstream pool on the current Tokio runtime, and stops
    /// the one a previous reload started (its pool is no longer used by new requests).
    fn start_health_check(&self, health: HealthCheck) {
        let (stop, stopped) = watch::channel(false);
        let pool = health.task();
        tokio::spawn(async move { pool.start(stopped).await });
        if let Ok(mut slot) = self.health.lock()
            && let Some(old) = slot.replace(stop)
        {
            let _ = old.send(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_keys_are_named() {
        let old = Config::default();
        let mut new = old.clone();
        assert!(restart_only_changes(&old, &new).is_empty());
        new.server.threads += 1;
        new.listen = None;
        new.upstreams = vec!["127.0.0.1:9".into()];
        new.log.level = "debug".into();
        assert_eq!(
            restart_only_changes(&old, &new),
            ["listen", "server.threads"]
        );
    }
}
