//! HTTPS: the listener's TLS configuration on rustls (Pingora's `rustls` provider), its
//! certificates chosen by SNI and reloaded without a restart, and their validation for
//! `flowgate check`.
//!
//! ```text
//!  config tls.certs ─ certs::load (read ≤ 1 MiB, key ↔ leaf, expiry, names) ─▶ CertSet
//!        SniResolver (ArcSwap<CertSet>) ◀─ CertReloader::reload  ◀─ file changes (SIGHUP without a file)
//!                                        ◀─ load_new + put_in_force ◀─ configuration reload
//!        rustls ServerConfig (min_version, ALPN h2 + http/1.1, the resolver)
//!          └▶ the connection front: PROXY header, handshake under its deadline, HTTP
//! ```
//!
//! - `certs` — one certificate from its files;
//! - `resolver` — the set in force and the choice by SNI;
//! - `reload` — [`CertReloader`]: reload on file change and with a configuration reload (a new
//!   `tls.certs` list too), refusing a bad set.

mod certs;
mod reload;
mod resolver;

use std::path::Path;
use std::sync::Arc;

use pingora::listeners::tls::Acceptor;
use rustls::ServerConfig;
use rustls::version::{TLS12, TLS13};

pub use reload::{CertListError, CertReloader, NewCerts};

use crate::config::{Config, Problems, TlsConfig, TlsVersion};

/// A certificate expiring sooner than this (14 days) is warned about.
pub(crate) const EXPIRY_WARNING_SECONDS: i64 = 14 * 86_400;

/// Why certificates could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// A certificate or key file is unusable; the path and why.
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// No certificate is configured.
    NoCertificate,
}

impl TlsError {
    fn file(path: &Path, why: impl Into<String>) -> TlsError {
        TlsError::File {
            path: path.display().to_string(),
            why: why.into(),
        }
    }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::File { path, why } => write!(f, "{path}: {why}"),
            TlsError::NoCertificate => f.write_str("no certificate configured"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The HTTPS listener's handshake side: the acceptor the connection front uses, and the
/// reloader to run beside the server.
pub(crate) struct Listener {
    /// Performs handshakes with the current certificates.
    pub(crate) acceptor: Arc<Acceptor>,
    /// Reloads the certificates on SIGHUP and file change.
    pub(crate) reloader: Arc<CertReloader>,
}

/// Loads the certificates of `config` and builds the listener's TLS configuration.
pub(crate) fn listener(config: &TlsConfig) -> Result<Listener, TlsError> {
    install_crypto_provider();
    let reloader = Arc::new(CertReloader::start(
        config.certs.clone(),
        config.watch_interval,
    )?);
    let versions: &[&'static rustls::SupportedProtocolVersion] = match config.min_version {
        TlsVersion::V1_2 => &[&TLS13, &TLS12],
        TlsVersion::V1_3 => &[&TLS13],
    };
    let mut server = ServerConfig::builder_with_protocol_versions(versions)
        .with_no_client_auth()
        .with_cert_resolver(reloader.resolver());
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Listener {
        acceptor: Arc::new(Acceptor::from_server_config(Arc::new(server))),
        reloader,
    })
}

/// rustls needs one process-wide crypto provider; Pingora's is `ring`, as is flowgate's.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `flowgate check`: every certificate loads (readable, key matching, not expired) and
/// `upstream.ca_file` holds CA certificates; returns the warnings (expiry under 14 days), or
/// every problem by key.
pub fn check(config: &Config) -> Result<Vec<String>, Problems> {
    install_crypto_provider();
    let now = certs::now();
    let mut problems = Problems::default();
    let mut warnings = Vec::new();
    if let Some(path) = &config.upstream.ca_file
        && let Err(e) = certs::check_ca_file(path)
    {
        problems.push(
            "upstream.ca_file",
            format!("{e}; give a PEM file of CA certificates"),
        );
    }
    let certs = config.tls.as_ref().map_or(&[][..], |t| &t.certs[..]);
    for (i, files) in certs.iter().enumerate() {
        match certs::load(files, now) {
            Ok(cert) => {
                let left = cert.seconds_left(now);
                if left < EXPIRY_WARNING_SECONDS {
                    warnings.push(format!(
                        "tls.certs[{i}]: {} expires in {} days; renew it",
                        files.cert_file.display(),
                        left / 86_400
                    ));
                }
                if cert.names.is_empty() {
                    warnings.push(format!(
                        "tls.certs[{i}]: {} names no host; list tls.certs[{i}].names",
                        files.cert_file.display()
                    ));
                }
            }
            Err(e) => problems.push(
                format!("tls.certs[{i}]"),
                format!("{e}; fix the file or the path"),
            ),
        }
    }
    problems.or(warnings)
}
