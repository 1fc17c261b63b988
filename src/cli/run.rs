//! `flowgate run`: parses the flags, applies them over the configuration file, and hands the
//! result to [`crate::server`], which assembles and runs the proxy.

use std::path::PathBuf;
use std::process::ExitCode;

use pingora::server::configuration::Opt;

use crate::config::{Config, Problem, Problems};
use crate::server::{self, Loaded};

/// Arguments of `flowgate run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Configuration file (YAML). Without one, every default applies.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Chat backend as host:port; repeat for several (overrides `upstreams`).
    #[arg(long = "upstream", value_name = "HOST:PORT")]
    pub(crate) upstreams: Vec<String>,
    /// Session store in Redis: redis://[user:pass@]host:port[/db], rediss://…,
    /// redis+cluster://host:port,…, redis+sentinel://host:port,…/master-name; "" keeps the
    /// in-process store (overrides `redis.url`).
    #[arg(long, value_name = "URL")]
    pub(crate) redis: Option<String>,
    /// Admin listener for /metrics and /healthz; "" turns it off (overrides `admin`).
    #[arg(long, value_name = "ADDR")]
    pub(crate) admin: Option<String>,
    // The session-store flags (`--redis URL`) go here, applied in `load_config` like the others.
    /// Take over the listeners of a running instance (zero-downtime upgrade; then send it SIGQUIT).
    #[arg(short = 'u', long)]
    pub(crate) upgrade: bool,
    /// Run in the background.
    #[arg(short = 'd', long)]
    pub(crate) daemon: bool,
    /// Check the configuration, build the server, and exit.
    #[arg(short = 't', long)]
    pub(crate) test: bool,
}

impl Args {
    /// The configuration: the file (or the defaults) with the flags applied, validated.
    pub(crate) fn load_config(&self) -> Result<Config, Problems> {
        self.load().map(|loaded| loaded.config)
    }

    /// [`Args::load_config`] with the hash of the file's bytes (`sha256:<hex>`; `defaults`
    /// without a file), as start-up and every reload read it.
    pub(crate) fn load(&self) -> Result<Loaded, Problems> {
        let (mut config, hash) = match &self.config {
            Some(path) => {
                let text = Config::read_text(path)?;
                let hash = sha256_hex(text.as_bytes());
                (Config::from_yaml(&text)?, hash)
            }
            None => (Config::default(), "defaults".to_owned()),
        };
        let mut problems = Vec::new();
        if let Some(listen) = &self.listen {
            match listen.parse() {
                Ok(addr) => config.listen = Some(addr),
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
            Ok(Loaded { config, hash })
        } else {
            Err(Problems(problems))
        }
    }

    /// Pingora's own options, from the flags it defines.
    pub(crate) fn pingora_opt(&self) -> Opt {
        Opt {
            upgrade: self.upgrade,
            daemon: self.daemon,
            nocapture: false,
            test: self.test,
            conf: None,
        }
    }
}

/// `sha256:` and the lower-case hex digest of `bytes` (what `sha256sum` prints).
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256:");
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Runs `flowgate run`.
pub fn main(args: Args) -> ExitCode {
    let loaded = match args.load() {
        Ok(l) => l,
        Err(problems) => {
            eprintln!("flowgate: the configuration has problems:\n{problems}");
            return ExitCode::from(2);
        }
    };
    let config = loaded.config.clone();
    super::logging::init(&config.log);
    let built = match server::build(&config, Some(args.pingora_opt())) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("flowgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        listen = %config.listen.map_or_else(|| "off".to_owned(), |a| a.to_string()),
        admin = %config.admin.map_or_else(|| "off".to_owned(), |a| a.to_string()),
        upstreams = ?config.upstreams,
        balance = config.upstream.balance.as_str(),
        store = built.store_backend,
        "flowgate starting"
    );
    let reload_args = args.clone();
    let reloader = built.reloader(
        loaded,
        Box::new(move || reload_args.load()),
        super::logging::set_level,
    );
    server::run_until_signalled(built.server, built.connections, Some(reloader))
}
