//! Certificate reload without a restart: on SIGHUP and when a file changes (its size or
//! modification time, checked every `tls.watch_interval_seconds`). A set that does not load
//! completely is refused: the certificates in force stay, and the error is logged.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{SignalKind, signal};

use super::certs::{self, LoadedCert};
use super::resolver::{CertSet, SniResolver};
use super::{EXPIRY_WARNING_SECONDS, TlsError};
use crate::config::CertFiles;

/// What a file looked like when last loaded: a change in either means a new file.
type Stamp = Option<(SystemTime, u64)>;

/// Loads the configured certificates into the listener's resolver, again on demand.
pub struct CertReloader {
    files: Vec<CertFiles>,
    resolver: Arc<SniResolver>,
    stamps: Mutex<Vec<Stamp>>,
    watch_interval: Option<Duration>,
}

impl CertReloader {
    /// Loads every certificate once; fails when any does not load.
    pub(crate) fn start(
        files: Vec<CertFiles>,
        watch_interval: Option<Duration>,
    ) -> Result<CertReloader, TlsError> {
        let stamps = stamps(&files);
        let set = load_set(&files)?;
        Ok(CertReloader {
            files,
            resolver: Arc::new(SniResolver::new(set)),
            stamps: Mutex::new(stamps),
            watch_interval,
        })
    }

    /// The resolver the listener's TLS configuration uses.
    pub(crate) fn resolver(&self) -> Arc<SniResolver> {
        self.resolver.clone()
    }

    /// Reads every certificate file again and serves them from the next handshake on; when
    /// any does not load, nothing changes and the error is returned (and logged).
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamps = stamps(&self.files);
        if let Ok(mut last) = self.stamps.lock() {
            // A refused file is not retried until it changes again (or SIGHUP).
            *last = stamps;
        }
        match load_set(&self.files) {
            Ok(set) => {
                self.resolver.replace(set);
                tracing::info!(target: "flowgate::tls", certificates = self.files.len(), "certificates reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(target: "flowgate::tls", error = %e, "certificate reload refused; the certificates in force stay");
                Err(e)
            }
        }
    }

    /// Whether a file changed since it was last loaded.
    fn changed(&self) -> bool {
        let now = stamps(&self.files);
        self.stamps.lock().is_ok_and(|last| *last != now)
    }
}

#[async_trait]
impl BackgroundService for CertReloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(target: "flowgate::tls", error = %e, "cannot listen for SIGHUP; certificates reload on file change only");
                None
            }
        };
        tracing::info!(
            target: "flowgate::tls",
            certificates = self.files.len(),
            watch_seconds = self.watch_interval.map_or(0, |d| d.as_secs()),
            "certificates reload on SIGHUP and on file change",
        );
        let period = self.watch_interval.unwrap_or(Duration::from_secs(3600));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                    let _ = self.reload();
                }
                _ = tick.tick() => {
                    if self.watch_interval.is_some() && self.changed() {
                        let _ = self.reload();
                    }
                }
            }
        }
    }
}

fn stamps(files: &[CertFiles]) -> Vec<Stamp> {
    files
        .iter()
        .flat_map(|f| [&f.cert_file, &f.key_file])
        .map(stamp)
        .collect()
}

fn stamp(path: &PathBuf) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Loads every certificate, warning about those close to expiry.
fn load_set(files: &[CertFiles]) -> Result<CertSet, TlsError> {
    let now = certs::now();
    let loaded = files
        .iter()
        .map(|f| certs::load(f, now))
        .collect::<Result<Vec<LoadedCert>, _>>()?;
    for (cert, files) in loaded.iter().zip(files) {
        let left = cert.seconds_left(now);
        if left < EXPIRY_WARNING_SECONDS {
            tracing::warn!(target: "flowgate::tls", file = %files.cert_file.display(), days_left = left / 86_400, "certificate expires soon; renew it");
        }
    }
    CertSet::new(&loaded).ok_or(TlsError::NoCertificate)
}
