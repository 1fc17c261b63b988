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
//! With an HTTPS listener, the certificates of `tls.certs` (a new list too) and
//! `tls.watch_interval_seconds` are part of the reload: after the runtime is built, the new list
//! is loaded completely, and only then are runtime and certificates swapped together. A list
//! that does not load refuses the whole reload.
//!
//! Listeners, threads and the connection front are built once: a change to one of their keys is
//! logged as a warning naming the key, and takes a restart or a `-u` upgrade to apply.

use std::sync::{Arc, Mutex};

use pingora::services::background::BackgroundService;
use tokio::sync::watch;

use super::{BuildError, runtime_replacing};
use crate::admin::ConfigHash;
use crate::config::{Config, Problems, TlsConfig};
use crate::metrics::{Metrics, ReloadResult};
use crate::proxy::{HealthCheck, RuntimeHandle};
use crate::secret::Secret;
use crate::tls::{CertReloader, NewCerts};

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
    /// The HTTPS listener's certificates, when it runs.
    certs: Option<Arc<CertReloader>>,
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
        // The listener is there or not from the start; its certificates reload live.
        ("tls", old.tls.is_some() != new.tls.is_some()),
        (
            "tls.listen",
            tls_differs(old, new, |o, n| o.listen != n.listen),
        ),
        (
            "tls.min_version",
            tls_differs(old, new, |o, n| o.min_version != n.min_version),
        ),
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

/// Whether both configurations have `tls:` and `differs` says they differ.
fn tls_differs(old: &Config, new: &Config, differs: fn(&TlsConfig, &TlsConfig) -> bool) -> bool {
    matches!((&old.tls, &new.tls), (Some(o), Some(n)) if differs(o, n))
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
        certs: Option<Arc<CertReloader>>,
    ) -> Reloader {
        hash.set(loaded.hash);
        if let Some(certs) = &certs {
            certs.follow_config();
        }
        Reloader {
            load,
            runtime,
            metrics,
            hash,
            signing,
            set_log_level,
            certs,
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
        let certs = match self.load_certs(&loaded.config) {
            Ok(certs) => certs,
            Err(result) => return result,
        };
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
        if let (Some(reloader), Some(new)) = (&self.certs, certs) {
            reloader.put_in_force(new);
        }
        self.metrics.signing_enabled(signed);
        (self.set_log_level)(&loaded.config.log.level);
        self.hash.set(loaded.hash.clone());
        tracing::info!(config = %loaded.hash, "configuration reloaded");
        *current = loaded.config;
        ReloadResult::Ok
    }

    /// Loads the certificates `config` lists, every one, before anything is swapped; `None`
    /// when there is no HTTPS listener or the new file has no `tls:` (a restart-only change).
    fn load_certs(&self, config: &Config) -> Result<Option<NewCerts>, ReloadResult> {
        let (Some(_), Some(tls)) = (&self.certs, &config.tls) else {
            return Ok(None);
        };
        match CertReloader::load_new(tls.certs.clone(), tls.watch_interval) {
            Ok(new) => Ok(Some(new)),
            Err(e) => {
                let key = e.key();
                tracing::error!(
                    target: "flowgate::tls",
                    key = %key,
                    problem = %e.error,
                    "certificate reload refused: {key} does not load; the configuration and the certificates in force stay"
                );
                Err(ReloadResult::Failed)
            }
        }
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

    fn with_tls(listen: &str, version: &str, cert: &str, watch: u64) -> Config {
        Config::from_yaml(&format!(
            "tls:\n  listen: {listen}\n  min_version: \"{version}\"\n  watch_interval_seconds: {watch}\n  \
             certs:\n    - {{cert_file: {cert}, key_file: k.pem}}\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn certificates_reload_live_but_the_listener_does_not() {
        let old = with_tls("127.0.0.1:8443", "1.2", "a.pem", 10);
        let certs = with_tls("127.0.0.1:8443", "1.2", "b.pem", 1);
        assert!(restart_only_changes(&old, &certs).is_empty());
        let listener = with_tls("127.0.0.1:9443", "1.3", "a.pem", 10);
        assert_eq!(
            restart_only_changes(&old, &listener),
            ["tls.listen", "tls.min_version"]
        );
        assert_eq!(restart_only_changes(&old, &Config::default()), ["tls"]);
        assert_eq!(restart_only_changes(&Config::default(), &old), ["tls"]);
    }
}
