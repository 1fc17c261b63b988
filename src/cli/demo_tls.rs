//! `flowgate demo --tls`: a certificate authority made for the run and a certificate for
//! `localhost` and `127.0.0.1` it signs, written to a private temp directory, and how to trust
//! them (curl's `--cacert`, Chromium's SPKI flag, or importing the CA).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use sha2::{Digest as _, Sha256};

use crate::config::{CertFiles, TlsConfig, TlsVersion};

/// Days the demo's certificates are valid.
const VALID_DAYS: i64 = 7;

/// The files made for the run.
#[derive(Debug)]
pub(crate) struct DemoCerts {
    /// The CA certificate a client trusts.
    pub(crate) ca: PathBuf,
    /// The server certificate and its key.
    pub(crate) files: CertFiles,
    /// base64 SHA-256 of the server key's SubjectPublicKeyInfo (Chromium's
    /// `--ignore-certificate-errors-spki-list`).
    pub(crate) spki_sha256: String,
}

impl DemoCerts {
    /// The HTTPS listener serving these certificates on `listen`.
    pub(crate) fn tls_config(&self, listen: std::net::SocketAddr) -> TlsConfig {
        TlsConfig {
            listen,
            certs: vec![self.files.clone()],
            min_version: TlsVersion::V1_2,
            watch_interval: None,
        }
    }
}

/// Makes the CA and the server certificate in `dir` (created, keys readable by the owner only).
pub(crate) fn generate(dir: &Path) -> Result<DemoCerts, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let fail = |e: rcgen::Error| e.to_string();
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::days(VALID_DAYS);

    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.distinguished_name
        .push(DnType::CommonName, "flowgate demo CA (this run only)");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (ca.not_before, ca.not_after) = (now, until);
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;

    let key = KeyPair::generate().map_err(fail)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(fail)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    (leaf.not_before, leaf.not_after) = (now, until);
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(fail)?;

    let files = CertFiles {
        cert_file: dir.join("localhost.pem"),
        key_file: dir.join("localhost.key"),
        names: Vec::new(),
    };
    let ca_path = dir.join("ca.pem");
    write(&ca_path, &ca_cert.pem())?;
    write(&files.cert_file, &cert.pem())?;
    write(&files.key_file, &key.serialize_pem())?;
    let spki = Sha256::digest(key.public_key_der());
    Ok(DemoCerts {
        ca: ca_path,
        files,
        spki_sha256: base64::engine::general_purpose::STANDARD.encode(spki),
    })
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The lines `flowgate demo --tls` prints about trusting the certificate.
pub(crate) fn trust_instructions(certs: &DemoCerts, base: &str) -> String {
    format!(
        r#"
HTTPS (HTTP/2 and HTTP/1.1)   {base}/
  The certificate is signed by a CA made for this run: {ca}
  curl:      curl --cacert {ca} {base}/
  Chromium:  chromium --user-data-dir=$(mktemp -d) --ignore-certificate-errors-spki-list={spki} {base}/
  any browser: import {ca} as a certificate authority (remove it after the demo)
"#,
        ca = certs.ca.display(),
        spki = certs.spki_sha256,
    )
}
