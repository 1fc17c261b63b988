//! `flowgate demo`: the proxy, the built-in sample chat backend and the in-process store on
//! localhost, with `curl` lines to try printed on start.

use std::process::ExitCode;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine as _;
use pingora::server::ShutdownWatch;
use pingora::services::background::{BackgroundService, background_service};

use crate::config::{Config, RulesConfig, SiteConfig};
use crate::headers::signature::Version;
use crate::sample_backend::{self, DEMO_SITE, SAMPLE_CONTEXT};
use crate::secret::Secret;
use crate::server;
use crate::trust::origin::OriginPattern;
use crate::trust::{DEFAULT_LEEWAY_SECS, DEFAULT_MAX_TOKEN_AGE_SECS, Mode};

/// Arguments of `flowgate demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A configuration file to try with the demo (its sites, limits, routes, …); the flags
    /// below still choose the listeners, and the upstream is always the sample backend.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<std::path::PathBuf>,
    /// Address the proxy listens on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub(crate) listen: String,
    /// Admin listener (/metrics, /healthz).
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub(crate) admin: String,
    /// Also serve the demo over HTTPS (HTTP/2), with a certificate made for the run.
    #[arg(long)]
    pub(crate) tls: bool,
    /// Address of the HTTPS listener with `--tls`.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub(crate) tls_listen: String,
    /// Where a customer's page on another origin embeds the widget (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub(crate) host_page: String,
}

/// Serves the cross-origin host page inside the server, so it stops with it.
struct HostPage {
    listener: Mutex<Option<std::net::TcpListener>>,
    proxy: String,
}

#[async_trait]
impl BackgroundService for HostPage {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let taken = self.listener.lock().ok().and_then(|mut l| l.take());
        let Some(listener) = taken.and_then(|l| tokio::net::TcpListener::from_std(l).ok()) else {
            tracing::error!("host page: cannot use its listener");
            return;
        };
        let proxy = self.proxy.clone();
        sample_backend::cross_origin::serve(listener, proxy, async move {
            let _ = shutdown.changed().await;
        })
        .await;
    }
}

/// `demo-site` lists the proxy's own origins (the demo page, over HTTP and, with `--tls`,
/// HTTPS) and the host page's, unless the
/// configuration already has an entry for it.
fn demo_site_origins(config: &mut Config, host_page: std::net::SocketAddr) {
    if config.trust.sites.contains_key(DEMO_SITE) {
        return;
    }
    let mut origins = vec![plain_base(config), format!("http://{host_page}")];
    if let Some(tls) = &config.tls {
        let port = tls.listen.port();
        origins.push(format!("https://127.0.0.1:{port}"));
        origins.push(format!("https://localhost:{port}"));
    }
    let origins = origins
        .iter()
        .filter_map(|o| OriginPattern::parse(o).ok())
        .collect();
    config.trust.sites.insert(
        DEMO_SITE.to_owned(),
        SiteConfig {
            mode: Mode::Off,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            max_token_age_secs: DEFAULT_MAX_TOKEN_AGE_SECS,
            keys: Vec::new(),
            bind_session: false,
            rules: RulesConfig {
                origins: Some(origins),
                ..RulesConfig::default()
            },
        },
    );
}

/// Runs the sample backend inside the server, so it stops with it.
struct SampleBackend {
    listener: Mutex<Option<std::net::TcpListener>>,
    prefix: String,
    verifier: Option<crate::upstream::Options>,
}

#[async_trait]
impl BackgroundService for SampleBackend {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let taken = self.listener.lock().ok().and_then(|mut l| l.take());
        let Some(listener) = taken else { return };
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "sample backend: cannot use its listener");
                return;
            }
        };
        sample_backend::serve(listener, &self.prefix, self.verifier.clone(), async move {
            let _ = shutdown.changed().await;
        })
        .await;
    }
}

/// Runs `flowgate demo`.
pub fn main(args: Args) -> ExitCode {
    let run_args = super::run::Args {
        config: args.config.clone(),
        listen: Some(args.listen.clone()),
        admin: Some(args.admin.clone()),
        upstreams: vec!["127.0.0.1:1".to_owned()],
        ..Default::default()
    };
    let mut config: Config = match run_args.load_config() {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("flowgate demo: {problems}");
            return ExitCode::from(2);
        }
    };
    let backend = match std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("flowgate demo: cannot bind the sample backend: {e}");
            return ExitCode::FAILURE;
        }
    };
    let backend_addr = match backend.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("flowgate demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host_page = match std::net::TcpListener::bind(&args.host_page)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "flowgate demo: cannot bind the host page on {}: {e}",
                args.host_page
            );
            return ExitCode::FAILURE;
        }
    };
    let host_addr = match host_page.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("flowgate demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    config.upstreams = vec![backend_addr.to_string()];
    let https = if args.tls {
        match demo_certs(&args.tls_listen) {
            Ok((certs, listen)) => {
                config.tls = Some(certs.tls_config(listen));
                Some(certs)
            }
            Err(e) => {
                eprintln!("flowgate demo: --tls: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    demo_site_origins(&mut config, host_addr);
    config.server.grace_period_seconds = 1;
    config.server.graceful_shutdown_timeout_seconds = 1;
    super::logging::init(&config.log);

    // The demo signs what it forwards, as a deployment should, and its backend verifies it.
    let (secrets, signing) = match config.trust.signing_secrets() {
        Ok(Some(list)) => (
            list,
            "from the configuration; the sample backend verifies it",
        ),
        Ok(None) => match generated_secret() {
            Some(secret) => (
                vec![secret],
                "generated for this run; the sample backend verifies it",
            ),
            None => (Vec::new(), "off (no random source for a secret)"),
        },
        Err(problem) => {
            eprintln!("flowgate demo: {problem}");
            return ExitCode::from(2);
        }
    };
    let given = (!secrets.is_empty()).then(|| secrets.clone());
    let mut built = match server::build_signing_with(&config, None, given) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("flowgate demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    built.server.add_service(background_service(
        "sample chat backend",
        SampleBackend {
            listener: Mutex::new(Some(backend)),
            prefix: config.headers.prefix.clone(),
            verifier: crate::upstream::Options::new(&secrets).ok().map(|o| {
                o.prefix(&config.headers.prefix)
                    .request_id_header(&config.client_ip.request_id_header)
                    .client_ip_header(&config.client_ip.real_ip_header)
                    .accept_v1(!config.trust.signing_versions.contains(Version::V2))
            }),
        },
    ));
    built.server.add_service(background_service(
        "cross-origin host page",
        HostPage {
            listener: Mutex::new(Some(host_page)),
            proxy: plain_base(&config),
        },
    ));
    print!(
        "{}",
        instructions(&config, backend_addr, host_addr, signing)
    );
    if let (Some(certs), Some(tls)) = (&https, &config.tls) {
        let base = format!("https://localhost:{}", tls.listen.port());
        print!("{}", super::demo_tls::trust_instructions(certs, &base));
    }
    server::run_until_signalled(built.server, built.connections, None)
}

/// The certificates for `--tls`, in a directory of this run, and the listen address.
fn demo_certs(listen: &str) -> Result<(super::demo_tls::DemoCerts, std::net::SocketAddr), String> {
    let listen = listen.parse().map_err(|_| {
        format!("{listen:?} is not an IP address with a port; write e.g. 127.0.0.1:8443")
    })?;
    let dir = std::env::temp_dir().join(format!("flowgate-demo-tls-{}", std::process::id()));
    Ok((super::demo_tls::generate(&dir)?, listen))
}

/// A fresh 256-bit signing secret (64 hex characters), or `None` without a random source.
fn generated_secret() -> Option<Secret> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(Secret::new(hex.into_bytes()))
}

/// Visitor 1's session key in the printed lines (a real widget makes a random one per session).
const DEMO_SESSION_KEY: &str = "ZGVtbyBzZXNzaW9uIGtleSBvZiB2aXNpdG9yIG9uZSE";

/// The text printed on start: what runs where, and the lines to paste. `signing` says where
/// the header-signing secret came from.
pub(crate) fn instructions(
    config: &Config,
    backend: std::net::SocketAddr,
    host_page: std::net::SocketAddr,
    signing: &str,
) -> String {
    let base = plain_base(config);
    let ctx = base64::engine::general_purpose::STANDARD.encode(SAMPLE_CONTEXT);
    let init = &config.routes.init_path;
    let session_path = config
        .routes
        .session_prefixes
        .first()
        .map(|p| format!("{}/chat/poll", p.trim_end_matches('/')))
        .unwrap_or_else(|| "/".to_owned());
    let p = &config.params;
    let admin = config
        .admin
        .map_or_else(|| "(off)".to_owned(), |a| format!("http://{a}"));
    let prefix = &config.headers.prefix;
    format!(
        r#"
flowgate demo
  demo page             {base}/   (open it in a browser: the widget, the chat, the operator panel)
  host page             http://{host_page}/   (a customer's page on another origin embedding the widget;
                        demo-site lists both origins, so CORS and the origin rule are the edge's)
  proxy                 {base}
  sample chat backend   http://{backend}   (the demo's chat; answers curl with what it received, as JSON)
  admin                 {admin}/metrics  {admin}/healthz
  session store         in-process
  header signature      {signing}

Try these (each answer shows the trusted headers the backend got, decoded):

  # 1. a logged-in visitor's init: the context is validated, stored, and pre-fills name and email
  #    (the session key is what the widget sends; with sessions.bind: key only it gets the context)
  curl -s -H 'Origin: {base}' -H 'Flowgate-Session-Key: {demo_key}' '{base}{init}?{site}=demo-site&{session}=visitor-1&{context}={ctx}'

  # 2. an anonymous init: Status absent, no context
  curl -s -H 'Origin: {base}' '{base}{init}?{site}=demo-site&{session}=visitor-2'

  # 3. a later request in visitor 1's chat session gets the stored context back
  curl -s -H 'Flowgate-Session-Key: {demo_key}' '{base}{session_path}?{site}=demo-site&{session}=visitor-1'

  # 4. a spoof attempt: forged trusted headers are stripped before anything else
  curl -s -H '{prefix}Context: eyJpbXNfZW1haWwiOiJldmlsQGV4YW1wbGUuY29tIn0=' -H '{underscored}Status: accepted' '{base}{session_path}?{site}=demo-site&{session}=visitor-2'

  # what the edge counted
  curl -s {admin}/metrics | grep ^flowgate_

Stop with Ctrl-C.
"#,
        site = p.site,
        session = p.session,
        context = p.context,
        underscored = prefix.replace('-', "_"),
        demo_key = DEMO_SESSION_KEY,
    )
}

/// `http://<listen>`: the demo always has a plaintext listener (`--listen`).
fn plain_base(config: &Config) -> String {
    config
        .listen
        .map_or_else(String::new, |a| format!("http://{a}"))
}
