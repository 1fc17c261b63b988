//! Certificate reload without a restart: on SIGHUP, when a file changes (its size or
//! modification time, checked every `tls.watch_interval_seconds`), and with a new `tls.certs`
//! list from a configuration reload. A set that does not load completely is refused: the
//! certificates in force stay, and the error is logged.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use super::certs::{self, LoadedCert};
use super::resolver::{CertSet, SniResolver};
use super::{EXPIRY_WARNING_SECONDS, TlsError};
use crate::config::CertFiles;

/// What a file looked like when last loaded: a change in either means a new file.
type Stamp = Option<(SystemTime, u64)>;

/// The list in force and what its files looked like when loaded.
struct Files {
    list: Vec<CertFiles>,
    stamps: Vec<Stamp>,
    watch_interval: Option<Duration>,
}

/// Loads the configured certificates into the listener's resolver, again on demand.
pub struct CertReloader {
    resolver: Arc<SniResolver>,
    files: Mutex<Files>,
    /// Set when a configuration reload owns SIGHUP: it loads the certificates itself.
    follows_config: AtomicBool,
    /// Wakes the watch loop when `watch_interval` changes.
    rewatch: Notify,
}

/// A new certificate list, every file loaded, ready to be put in force.
pub struct NewCerts {
    files: Files,
    set: CertSet,
}

/// Why a new certificate list was refused: the index in `tls.certs` and the file's problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertListError {
    /// Index of the certificate in `tls.certs` (`None`: the list is empty).
    pub index: Option<usize>,
    /// What is wrong.
    pub error: TlsError,
}

impl CertListError {
    /// The configuration key at fault: `tls.certs[i]` (or `tls.certs`).
    pub fn key(&self) -> String {
        match self.index {
            Some(i) => format!("tls.certs[{i}]"),
            None => "tls.certs".to_owned(),
        }
    }
}

impl std::fmt::Display for CertListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key(), self.error)
    }
}

impl std::error::Error for CertListError {}

impl CertReloader {
    /// Loads every certificate once; fails when any does not load.
    pub(crate) fn start(
        files: Vec<CertFiles>,
        watch_interval: Option<Duration>,
    ) -> Result<CertReloader, TlsError> {
        let new = Self::load_new(files, watch_interval).map_err(|e| e.error)?;
        Ok(CertReloader {
            resolver: Arc::new(SniResolver::new(new.set)),
            files: Mutex::new(new.files),
            follows_config: AtomicBool::new(false),
            rewatch: Notify::new(),
        })
    }

    /// The resolver the listener's TLS configuration uses.
    pub(crate) fn resolver(&self) -> Arc<SniResolver> {
        self.resolver.clone()
    }

    /// From now on SIGHUP reaches the certificates through the configuration reload only
    /// ([`CertReloader::load_new`] then [`CertReloader::put_in_force`]), so that one signal
    /// loads them once.
    pub(crate) fn follow_config(&self) {
        self.follows_config.store(true, Ordering::Relaxed);
    }

    /// Loads a new list completely (every file, key matching, not expired) without changing
    /// anything; the first certificate that does not load is named by its index.
    pub(crate) fn load_new(
        list: Vec<CertFiles>,
        watch_interval: Option<Duration>,
    ) -> Result<NewCerts, CertListError> {
        let stamps = stamps(&list);
        let set = load_set(&list)?;
        Ok(NewCerts {
            files: Files {
                list,
                stamps,
                watch_interval,
            },
            set,
        })
    }

    /// Serves `new` from the next handshake on, and watches its files from now on.
    pub(crate) fn put_in_force(&self, new: NewCerts) {
        let mut files = self.lock();
        let count = new.files.list.len();
        let rewatch = files.watch_interval != new.files.watch_interval;
        *files = new.files;
        self.resolver.replace(new.set);
        drop(files);
        if rewatch {
            self.rewatch.notify_one();
        }
        tracing::info!(target: "flowgate::tls", certificates = count, "certificates reloaded");
    }

    /// Reads every certificate file of the list in force again and serves them from the next
    /// handshake on; when any does not load, nothing changes and the error is returned (and
    /// logged).
    pub fn reload(&self) -> Result<(), CertListError> {
        // Held throughout, so a configuration reload's new list is not overwritten by the old.
        let mut files = self.lock();
        // A refused file is not retried until it changes again (or SIGHUP).
        files.stamps = stamps(&files.list);
        match load_set(&files.list) {
            Ok(set) => {
                self.resolver.replace(set);
                tracing::info!(target: "flowgate::tls", certificates = files.list.len(), "certificates reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(target: "flowgate::tls", error = %e, "certificate reload refused; the certificates in force stay");
                Err(e)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Files> {
        // The state is whole after every assignment: a panic elsewhere leaves it usable.
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a file changed since it was last loaded.
    fn changed(&self) -> bool {
        let files = self.lock();
        stamps(&files.list) != files.stamps
    }

    fn watch_interval(&self) -> Option<Duration> {
        self.lock().watch_interval
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
        let (certificates, watch) = {
            let files = self.lock();
            (files.list.len(), files.watch_interval)
        };
        tracing::info!(
            target: "flowgate::tls",
            certificates,
            watch_seconds = watch.map_or(0, |d| d.as_secs()),
            "certificates reload on SIGHUP and on file change",
        );
        loop {
            let watch = self.watch_interval();
            let period = watch.unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                    if !self.follows_config.load(Ordering::Relaxed) {
                        let _ = self.reload();
                    }
                }
                () = self.rewatch.notified() => {}
                () = tokio::time::sleep(period) => {
                    if watch.is_some() && self.changed() {
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
fn load_set(files: &[CertFiles]) -> Result<CertSet, CertListError> {
    let now = certs::now();
    let loaded = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            certs::load(f, now).map_err(|error| CertListError {
                index: Some(i),
                error,
            })
        })
        .collect::<Result<Vec<LoadedCert>, _>>()?;
    for (cert, files) in loaded.iter().zip(files) {
        let left = cert.seconds_left(now);
        if left < EXPIRY_WARNING_SECONDS {
            tracing::warn!(target: "flowgate::tls", file = %files.cert_file.display(), days_left = left / 86_400, "certificate expires soon; renew it");
        }
    }
    CertSet::new(&loaded).ok_or(CertListError {
        index: None,
        error: TlsError::NoCertificate,
    })
}
