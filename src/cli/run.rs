//! `flowgate run`: the proxy. Also the library entry that builds the Pingora server, used by
//! `flowgate demo` and by tests that run a real server in a thread.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::proxy::ProxyServiceBuilder;
use pingora::server::configuration::Opt;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{SignalKind, signal};

use crate::admin;
use crate::config::{Config, Problem, Problems};
use crate::headers::signature::Signer;
use crate::metrics::Metrics;
use crate::proxy::Flowgate;
use crate::proxy::upstreams::Upstreams;
use crate::secret::Secret;
use crate::store;
use crate::trust::TrustPolicy;

/// Arguments of `flowgate run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Configuration file (YAML). Without one, every default applies.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Chat backend as host:port; repeat for several (overrides `upstreams`).
    #[arg(long = "upstream", value_name = "HOST:PORT")]
    pub upstreams: Vec<String>,
    /// Session store in Redis: redis://[user:pass@]host:port[/db], rediss://…,
    /// redis+cluster://host:port,…, redis+sentinel://host:port,…/master-name; "" keeps the
    /// in-process store (overrides `redis.url`).
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Admin listener for /metrics and /healthz; "" turns it off (overrides `admin`).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    // The session-store flags (`--redis URL`) go here, applied in `load_config` like the others.
    /// Take over the listeners of a running instance (zero-downtime upgrade; then send it SIGQUIT).
    #[arg(short = 'u', long)]
    pub upgrade: bool,
    /// Run in the background.
    #[arg(short = 'd', long)]
    pub daemon: bool,
    /// Check the configuration, build the server, and exit.
    #[arg(short = 't', long)]
    pub test: bool,
}

impl Args {
    /// The configuration: the file (or the defaults) with the flags applied, validated.
    pub fn load_config(&self) -> Result<Config, Problems> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let mut problems = Vec::new();
        if let Some(listen) = &self.listen {
            match listen.parse() {
                Ok(addr) => config.listen = addr,
                Err(_) => problems.push(Problem {
                    key: "--listen".into(),
                    message: format!(
                        "{listen:?} is not an IP address with a port, e.g. 0.0.0.0:8080"
                    ),
                }),
            }
        }
        if let Some(admin) = &self.admin {
            if admin.is_empty() {
                config.admin = None;
            } else {
                match admin.parse() {
                    Ok(addr) => config.admin = Some(addr),
                    Err(_) => problems.push(Problem {
                        key: "--admin".into(),
                        message: format!(
                            "{admin:?} is not an IP address with a port, e.g. 127.0.0.1:9464 (\"\" turns it off)"
                        ),
                    }),
                }
            }
        }
        if !self.upstreams.is_empty() {
            config.upstreams = self.upstreams.clone();
        }
        if let Some(url) = &self.redis {
            config.store.redis.url = url.clone();
        }
        if let Err(Problems(more)) = config.validate() {
            problems.extend(more);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(Problems(problems))
        }
    }

    /// Pingora's own options, from the flags it defines.
    pub fn pingora_opt(&self) -> Opt {
        Opt {
            upgrade: self.upgrade,
            daemon: self.daemon,
            nocapture: false,
            test: self.test,
            conf: None,
        }
    }
}

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
}

/// Builds the Pingora server for `config`: the proxy, the upstream health check (several
/// upstreams) and the admin listener. With `opt.test` set this exits the process after
/// bootstrapping, as Pingora's `-t` does.
pub fn build_server(config: &Config, opt: Option<Opt>) -> Result<Built, BuildError> {
    build_server_signing_with(config, opt, None)
}

/// [`build_server`] with the header-signing secrets given rather than read from the
/// environment or `signing.secret_file` (`flowgate demo` signs with a secret of its own).
pub fn build_server_signing_with(
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
    let (upstreams, health_check) = Upstreams::build(config).map_err(BuildError)?;
    let (trust, signer) = trust_parts(config, signing)?;
    let proxy = Flowgate::new(config, store, upstreams, metrics.clone()).with_trust(trust, signer);

    let mut options = HttpServerOptions::default();
    options.h2c = config.server.h2c;
    let mut service = ProxyServiceBuilder::new(&server.configuration, proxy)
        .name("flowgate")
        .server_options(options)
        .build();
    service.add_tcp(&config.listen.to_string());
    server.add_service(service);
    if let Some(health_check) = health_check {
        server.add_service(health_check);
    }
    if let Some(admin) = config.admin {
        server.add_service(admin::service(
            metrics.clone(),
            Some(store_health),
            &admin.to_string(),
        ));
    }
    Ok(Built {
        server,
        metrics,
        store_backend,
    })
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
        Some([first, ..]) => Some(Signer::new(first)),
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
fn server_conf(config: &Config) -> pingora::server::configuration::ServerConf {
    let s = &config.server;
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
    conf.max_retries = config.upstreams.len().max(1);
    conf
}

/// Pingora's Unix signals (SIGQUIT upgrade, SIGTERM graceful, SIGINT fast), plus a `flowgate
/// ready` log line once the handlers are installed: from then on a signal is handled rather
/// than killing the process, which is what supervisors and tests wait for.
pub struct ReadySignals;

#[async_trait]
impl ShutdownSignalWatch for ReadySignals {
    async fn recv(&self) -> ShutdownSignal {
        let (quit, term, int) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (quit, term, int) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tracing::info!(pid = std::process::id(), "flowgate ready");
        tokio::select! {
            _ = quit.recv() => ShutdownSignal::GracefulUpgrade,
            _ = term.recv() => ShutdownSignal::GracefulTerminate,
            _ = int.recv() => ShutdownSignal::FastShutdown,
        }
    }
}

/// Runs a built server until a signal stops it, then ends the process.
pub fn run_until_signalled(server: Server) -> ! {
    server.run(RunArgs {
        shutdown_signal: Box::new(ReadySignals),
    });
    std::process::exit(0)
}

/// Runs `flowgate run`.
pub fn main(args: Args) -> ExitCode {
    let config = match args.load_config() {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("flowgate: the configuration has problems:\n{problems}");
            return ExitCode::from(2);
        }
    };
    super::logging::init(&config.log);
    let built = match build_server(&config, Some(args.pingora_opt())) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("flowgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        listen = %config.listen,
        admin = %config.admin.map_or_else(|| "off".to_owned(), |a| a.to_string()),
        upstreams = ?config.upstreams,
        store = built.store_backend,
        "flowgate starting"
    );
    run_until_signalled(built.server)
}
