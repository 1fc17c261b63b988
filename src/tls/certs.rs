//! One certificate from its files: the chain and key read (bounded), the key checked against
//! the leaf, the names and expiry read from the leaf.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;

use super::TlsError;
use crate::config::CertFiles;

/// Largest certificate or key file read: a chain is a few kilobytes.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// A certificate ready to serve.
#[derive(Debug, Clone)]
pub(crate) struct LoadedCert {
    /// The chain and the signing key.
    pub(crate) key: Arc<CertifiedKey>,
    /// Lower-case names it is chosen for (`*.example.com` allowed).
    pub(crate) names: Vec<String>,
    /// End of the leaf's validity, seconds since the Unix epoch.
    pub(crate) not_after: i64,
}

impl LoadedCert {
    /// Seconds until the leaf expires (negative once it has).
    pub(crate) fn seconds_left(&self, now: i64) -> i64 {
        self.not_after - now
    }
}

/// Loads `files`: refuses an unreadable or empty file, a key that does not match the leaf,
/// and an expired leaf.
pub(crate) fn load(files: &CertFiles, now: i64) -> Result<LoadedCert, TlsError> {
    let cert_pem = read_bounded(&files.cert_file)?;
    let key_pem = read_bounded(&files.key_file)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::file(&files.cert_file, format!("not PEM certificates ({e})")))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::file(&files.cert_file, "holds no certificate"));
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError::file(&files.key_file, format!("holds no private key ({e})")))?;
    let (not_after, cert_names) = leaf_facts(leaf)
        .map_err(|e| TlsError::file(&files.cert_file, format!("leaf not readable ({e})")))?;
    if not_after <= now {
        return Err(TlsError::file(
            &files.cert_file,
            "the certificate has expired",
        ));
    }
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        TlsError::file(
            &files.key_file,
            format!("does not belong to {} ({e})", files.cert_file.display()),
        )
    })?;
    let names = if files.names.is_empty() {
        cert_names
    } else {
        files.names.clone()
    };
    Ok(LoadedCert {
        key: Arc::new(key),
        names,
        not_after,
    })
}

/// A CA file holds at least one PEM certificate.
pub(crate) fn check_ca_file(path: &Path) -> Result<(), TlsError> {
    let pem = read_bounded(path)?;
    let mut certs = CertificateDer::pem_slice_iter(&pem);
    match certs.next() {
        Some(Ok(_)) if certs.all(|c| c.is_ok()) => Ok(()),
        Some(_) => Err(TlsError::file(path, "not PEM certificates")),
        None => Err(TlsError::file(path, "holds no certificate")),
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| TlsError::file(path, e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| TlsError::file(path, e.to_string()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::file(path, "larger than 1 MiB; not a PEM file"));
    }
    Ok(bytes)
}

/// The leaf's end of validity and its DNS names (subject alternative names, else the CN).
fn leaf_facts(leaf: &CertificateDer<'_>) -> Result<(i64, Vec<String>), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| e.to_string())?;
    let not_after = cert.validity().not_after.timestamp();
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    Ok((not_after, names))
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
