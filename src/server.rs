//! Assembly of the Pingora server from a [`Config`]: the proxy service, the upstream health
//! check, the admin listener; and running it until a signal stops it.
//!
//! Used by `flowgate run`, `flowgate demo` and the tests that run a real server in a thread.
//! SIGHUP reloads the configuration (`reload`).

mod reload;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::GenBackgroundService;
use pingora::services::listening::Service;
use tokio::signal::unix::{SignalKind, signal};

use crate::admin::{self, ConfigHash};
use crate::config::Config;
use crate::front::{Connections, Front, FrontSettings, ProxyHeaderBeforeTls};
use crate::headers::signature::Signer;
use crate::metrics::Metrics;
use crate::proxy::{Flowgate, HealthCheck, Runtime, RuntimeHandle, Upstreams};
use crate::secret::Secret;
use crate::store;
use crate::trust::TrustPolicy;

pub use reload::{LoadConfig, Loaded, Reloader};

/// Why the server could not be built.
#[derive(Debug)]
pub struct BuildError(pub String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// A built server and the handles a caller may want before running it.
pub struct Built {
    /// The Pingora server with every flowgate service added; call `run` or `run_forever`.
    pub server: Server,
    /// The metrics the services report to.
    pub metrics: Arc<Metrics>,
    /// The session store's backend name.
    pub store_backend: &'static str,
    /// Replaces what the proxy runs with, for new requests (`server::runtime` builds one).
    pub runtime: RuntimeHandle,
    /// The client connections open on the proxy listener.
    pub connections: Arc<Connections>,
    /// The configuration hash `/healthz` reports.
    hash: Arc<ConfigHash>,
    /// The signing secrets given to the build, if any (a reload keeps them).
    signing: Option<Vec<Secret>>,
    /// Reloads the HTTPS listener's certificates (`tls:` set); a configuration reload does.
    pub tls_reloader: Option<Arc<crate::tls::CertReloader>>,
}

impl Built {
    /// The reloader for this server, started with `loaded`: SIGHUP calls it with what `load`
    /// reads then; `set_log_level` applies a new `log.level`.
    pub fn reloader(&self, loaded: Loaded, load: LoadConfig, set_log_level: fn(&str)) -> Reloader {
        Reloader::new(
            loaded,
            load,
            self.runtime.clone(),
            self.metrics.clone(),
            self.hash.clone(),
            self.signing.clone(),
            set_log_level,
            self.tls_reloader.clone(),
        )
    }
}

/// Builds the Pingora server for `config`: the proxy, the upstream health check (several
/// upstreams) and the admin listener. With `opt.test` set this exits the process after
/// bootstrapping, as Pingora's `-t` does.
pub fn build(config: &Config, opt: Option<Opt>) -> Result<Built, BuildError> {
    build_signing_with(config, opt, None)
}

/// [`build`] with the header-signing secrets given rather than read from the environment or
/// `signing.secret_file` (`flowgate demo` signs with a secret of its own).
pub(crate) fn build_signing_with(
    config: &Config,
    opt: Option<Opt>,
    signing: Option<Vec<Secret>>,
) -> Result<Built, BuildError> {
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(config));
    server.bootstrap();

    let metrics = Arc::new(Metrics::new());
    let evictions = metrics.store_evictions.clone();
    let store = store::build(&config.store, Some(Arc::new(move || evictions.inc())))
        .map_err(|e| BuildError(format!("store: {e}")))?;
    let store_backend = store.backend();
    let store_health = store.clone();
    let (runtime, health_check) = runtime(config, signing.clone())?;
    let connections = Connections::new(metrics.clone());
    let proxy =
        Flowgate::new(runtime, store, metrics.clone()).with_connections(connections.clone());
    let runtime = proxy.runtime();
    let mut tls_reloader = None;
    let front = proxy_front(&server, config, proxy, &connections, &metrics);
    if let Some(tls) = &config.tls {
        let listener = crate::tls::listener(tls).map_err(|e| BuildError(format!("tls: {e}")))?;
        server.add_service(https_service(
            config,
            tls,
            &front,
            listener.acceptor,
            &connections,
            &metrics,
        ));
        tls_reloader = Some(listener.reloader.clone());
        server.add_service(GenBackgroundService::new(
            "tls certificates".to_owned(),
            listener.reloader,
        ));
    }
    if let Some(listen) = config.listen {
        server.add_service(proxy_service(config, listen, front));
    }
    if let Some(health_check) = health_check {
        server.add_service(health_check);
    }
    let hash = Arc::new(ConfigHash::default());
    if let Some(admin) = config.admin {
        let tokens = config
            .erasure
            .admin_tokens()
            .map_err(|p| BuildError(p.to_string()))?
            .map(|list| admin::AdminTokens::new(&list));
        server.add_service(admin::service(
            metrics.clone(),
            Some(store_health),
            hash.clone(),
            tokens,
            &admin.to_string(),
        ));
    }
    Ok(Built {
        server,
        metrics,
        store_backend,
        runtime,
        connections,
        hash,
        signing,
        tls_reloader,
    })
}

type ProxyFront = Front<pingora::proxy::HttpProxy<Flowgate>>;

/// Pingora's `HttpProxy` behind the connection front, which owns every client connection
/// first (see `front`).
fn proxy_front(
    server: &Server,
    config: &Config,
    proxy: Flowgate,
    connections: &Arc<Connections>,
    metrics: &Arc<Metrics>,
) -> ProxyFront {
    let mut options = HttpServerOptions::default();
    options.h2c = config.server.h2c;
    // An h2 connection with no open stream is closed like an idle HTTP/1 one.
    options.h2_idle_timeout = Some(Duration::from_secs(config.server.idle_timeout_seconds));
    let mut http = pingora::proxy::http_proxy(&server.configuration, proxy);
    http.server_options = Some(options);
    let settings = FrontSettings::new(config);
    Front::new(http, settings, connections.clone(), metrics.clone())
}

/// The HTTPS listener (`tls:`): the same proxy behind a front that performs the handshake.
fn https_service(
    config: &Config,
    tls: &crate::config::TlsConfig,
    plain: &ProxyFront,
    acceptor: Arc<pingora::listeners::tls::Acceptor>,
    connections: &Arc<Connections>,
    metrics: &Arc<Metrics>,
) -> Service<ProxyFront> {
    let settings = FrontSettings::new(config);
    let front = Front::sharing(plain.app(), settings, connections.clone(), metrics.clone())
        .with_tls(acceptor);
    let mut service = Service::new("flowgate https".to_owned(), front);
    service.add_tcp(&tls.listen.to_string());
    service
}

/// The plaintext proxy listener, on `listen`.
fn proxy_service(
    config: &Config,
    listen: std::net::SocketAddr,
    front: ProxyFront,
) -> Service<ProxyFront> {
    let mut service = Service::new("flowgate".to_owned(), front);
    if config.listen_proxy_protocol {
        // Plaintext endpoints read the header in the front; TLS ones before the handshake.
        service
            .endpoints()
            .set_pre_tls_callback(Arc::new(ProxyHeaderBeforeTls));
    }
    service.add_listener(plaintext_listener(listen));
    service
}

/// The plaintext proxy endpoint on `listen`: its accepted sockets have no read buffer of their
/// own.
///
/// Pingora gives every accepted socket a 64 KiB read buffer by default, allocated (and zeroed)
/// at accept and held as long as the connection is open: most of what an idle keep-alive
/// connection or a WebSocket costs (`benches/idle.sh`). Plaintext reads do not need it: the
/// front reads request heads into its own 4 KiB buffer, Pingora's HTTP/1 parser and body
/// reader (64 KiB reads) and the h2 codec into theirs, so reads go straight to the socket; only
/// a head over 4 KiB takes more than one read. TLS listeners keep the buffer: the TLS layer
/// reads records in small pieces and the buffer saves system calls there.
fn plaintext_listener(listen: std::net::SocketAddr) -> ListenerConfig {
    ListenerConfig::tcp(listen.to_string()).l4_buffer(L4BufferSettings::default().read(0))
}

/// What the proxy runs with for `config`: its upstream pool (and, with several upstreams, the
/// health check to run beside it), the site keys and the header signer, read from the
/// environment and the files the configuration names unless `signing` is given.
///
/// A reload builds a new one from the new, validated configuration and hands it to
/// [`RuntimeHandle::swap`]; requests in flight finish on the one they started with.
pub(crate) fn runtime(
    config: &Config,
    signing: Option<Vec<Secret>>,
) -> Result<(Runtime, Option<HealthCheck>), BuildError> {
    let (upstreams, health_check) = Upstreams::build(config).map_err(BuildError)?;
    let (trust, signer) = trust_parts(config, signing)?;
    Ok((Runtime::new(config, upstreams, trust, signer), health_check))
}

/// [`runtime`] for a reload: the upstream pool of `previous`, and its health state, is kept when
/// the upstream list, its health-check settings and `upstream.balance` are unchanged.
pub(crate) fn runtime_replacing(
    config: &Config,
    signing: Option<Vec<Secret>>,
    previous: &Runtime,
) -> Result<(Runtime, Option<HealthCheck>), BuildError> {
    let (upstreams, health_check) =
        Upstreams::rebuild(config, previous.upstreams()).map_err(BuildError)?;
    let (trust, signer) = trust_parts(config, signing)?;
    Ok((Runtime::new(config, upstreams, trust, signer), health_check))
}

/// Reads the secrets the configuration names: the per-site token keys and the header-signing
/// secrets. Without a signing secret the proxy still runs, and says so once.
fn trust_parts(
    config: &Config,
    signing: Option<Vec<Secret>>,
) -> Result<(TrustPolicy, Option<Signer>), BuildError> {
    let policy = config
        .trust
        .policy()
        .map_err(|problems| BuildError(problems.to_string()))?;
    let secrets = match signing {
        Some(given) => Some(given),
        None => config
            .trust
            .signing_secrets()
            .map_err(|p| BuildError(p.to_string()))?,
    };
    let signer = match secrets.as_deref() {
        Some([first, ..]) => Some(Signer::new(first, config.trust.signing_versions)),
        _ => {
            tracing::warn!(
                "no signing secret: requests go to the backend without {}{}; set {} (comma-separated, newest first) or signing.secret_file",
                config.headers.prefix,
                crate::headers::SIGNATURE,
                crate::config::SIGNING_SECRET_ENV,
            );
            None
        }
    };
    Ok((policy, signer))
}

/// Pingora's own server configuration, derived from the `server` section.
fn server_conf(config: &Config) -> ServerConf {
    let s = &config.server;
    let mut conf = ServerConf {
        threads: s.threads,
        // Stealing needs a second thread to steal from; with one, Pingora's single-threaded
        // runtime does the same work without the multi-threaded scheduler's atomics and
        // wake-ups (README "Load benchmark": about a tenth less CPU per request).
        work_stealing: s.work_stealing && s.threads > 1,
        // Only the ceiling: the connection front closes plain HTTP connections at
        // grace_period_seconds and tunnels at websocket_drain_seconds, and the process exits
        // once they are all gone (`run_until_signalled`).
        grace_period_seconds: Some(FrontSettings::new(config).drain.ceiling_seconds()),
        graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout_seconds),
        pid_file: s.pid_file.clone(),
        upgrade_sock: s.upgrade_sock.clone(),
        daemon: s.daemon,
        error_log: s.error_log.clone(),
        user: s.user.clone(),
        group: s.group.clone(),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
        ca_file: config
            .upstream
            .ca_file
            .as_ref()
            .map(|p| p.display().to_string()),
        ..Default::default()
    };
    // A failed connection is retried on another upstream (see `fail_to_connect`): one
    // retry per other upstream is enough to find a healthy one.
    conf.max_retries = config.upstreams.len().max(1);
    conf
}

/// Pingora's Unix signals (SIGQUIT upgrade, SIGTERM graceful, SIGINT fast), SIGHUP for a
/// reload, the pid file `flowgate reload` reads, and a `flowgate ready` log line once the
/// handlers are installed: from then on a signal is handled rather than killing the process,
/// which is what supervisors and tests wait for.
pub(crate) struct ReadySignals {
    reloader: Option<Reloader>,
    pid_file: String,
}

#[async_trait]
impl ShutdownSignalWatch for ReadySignals {
    async fn recv(&self) -> ShutdownSignal {
        let (quit, term, int, hup) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        );
        let (Ok(mut quit), Ok(mut term), Ok(mut int), Ok(mut hup)) = (quit, term, int, hup) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        let pid = std::process::id();
        // The newest process owns the pid file (after a `-u` upgrade too): reloads go to it.
        if let Err(e) = std::fs::write(&self.pid_file, format!("{pid}\n")) {
            tracing::warn!(
                pid_file = %self.pid_file,
                error = %e,
                "cannot write the pid file; `flowgate reload` will not find this process (check server.pid_file)"
            );
        }
        tracing::info!(pid, "flowgate ready");
        loop {
            tokio::select! {
                _ = quit.recv() => return ShutdownSignal::GracefulUpgrade,
                _ = term.recv() => return ShutdownSignal::GracefulTerminate,
                _ = int.recv() => return ShutdownSignal::FastShutdown,
                _ = hup.recv() => match &self.reloader {
                    Some(reloader) => {
                        tracing::info!("SIGHUP received, reloading the configuration");
                        reloader.reload();
                    }
                    None => tracing::warn!("SIGHUP received; this command has no configuration file to reload"),
                },
            }
        }
    }
}

/// Runs a built server until a signal stops it, then ends the process: after a graceful
/// shutdown, as soon as the last client connection has closed. SIGHUP calls `reloader`.
pub(crate) fn run_until_signalled(
    server: Server,
    connections: Arc<Connections>,
    reloader: Option<Reloader>,
) -> ! {
    let pid_file = server.configuration.pid_file.clone();
    crate::front::exit_when_drained(server.watch_execution_phase(), connections);
    server.run(RunArgs {
        shutdown_signal: Box::new(ReadySignals { reloader, pid_file }),
    });
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_never_steals_and_more_follow_the_setting() {
        let mut config = Config::default();
        for (threads, setting, expected) in [
            (1, true, false),
            (1, false, false),
            (2, true, true),
            (2, false, false),
        ] {
            config.server.threads = threads;
            config.server.work_stealing = setting;
            let conf = server_conf(&config);
            assert_eq!(conf.threads, threads);
            assert_eq!(
                conf.work_stealing, expected,
                "threads {threads}, setting {setting}"
            );
        }
    }
}
