//! The `tls:` section (the HTTPS listener and its certificates) and `upstream.ca_file`. Read
//! through the same walker as every section; whether the files hold a usable certificate is
//! judged by `crate::tls` (`flowgate check` and the listener's start).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::table::Table;
use super::{Config, Problems};

/// Default interval at which certificate files are checked for changes.
pub(crate) const WATCH_INTERVAL_SECONDS: u64 = 10;
/// Longest accepted watch interval (a day): a sanity bound on typos.
const MAX_WATCH_SECONDS: u64 = 86_400;

/// The HTTPS listener (`tls:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Address the HTTPS listener binds.
    pub listen: SocketAddr,
    /// The certificates, chosen by the name the client asks for (SNI); the first one is the
    /// default for clients that ask for no name or an unknown one.
    pub certs: Vec<CertFiles>,
    /// Oldest protocol version accepted.
    pub min_version: TlsVersion,
    /// How often the certificate files are checked for changes; `None` turns the check off
    /// (SIGHUP still reloads them).
    pub watch_interval: Option<Duration>,
}

/// One certificate: its chain, its key and the names it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// PEM file with the certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Names (`chat.example.com`, `*.example.com`) this certificate is chosen for; empty: the
    /// DNS names of the certificate itself.
    pub names: Vec<String>,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 (and 1.3).
    V1_2,
    /// TLS 1.3 only.
    V1_3,
}

/// Reads the `tls:` section; `tls.listen` absent or `null` means no HTTPS listener.
pub(super) fn read_tls(config: &mut Config, top: &mut Table<'_>, problems: &mut Problems) {
    let mut t = top.table("tls", problems);
    let listen = t.field::<Option<String>>(
        "listen",
        "an address such as 0.0.0.0:8443, or null for no HTTPS listener",
        problems,
    );
    let listen = match listen.flatten() {
        None => None,
        Some(v) => match v.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                problems.push(
                    "tls.listen",
                    format!("{v:?} is not an IP address with a port; write e.g. 0.0.0.0:8443"),
                );
                None
            }
        },
    };
    let mut min_version = TlsVersion::V1_2;
    if let Some(v) = t.field::<String>("min_version", "\"1.2\" or \"1.3\"", problems) {
        match v.as_str() {
            "1.2" => min_version = TlsVersion::V1_2,
            "1.3" => min_version = TlsVersion::V1_3,
            _ => problems.push(
                "tls.min_version",
                format!("{v:?} is not a supported version; write \"1.2\" or \"1.3\""),
            ),
        }
    }
    let mut watch_interval = Some(Duration::from_secs(WATCH_INTERVAL_SECONDS));
    if let Some(v) = t.field::<u64>(
        "watch_interval_seconds",
        "a whole number of seconds (0 turns the file watch off)",
        problems,
    ) {
        if v > MAX_WATCH_SECONDS {
            problems.push(
                "tls.watch_interval_seconds",
                format!("{v} is above {MAX_WATCH_SECONDS}; use a few seconds, or 0 to turn it off"),
            );
        }
        watch_interval = (v > 0).then(|| Duration::from_secs(v));
    }
    let mut certs = Vec::new();
    if let Some(items) = t.list("certs", "a list of {cert_file, key_file, names}", problems) {
        for (i, item) in items.iter().enumerate() {
            let path = format!("tls.certs[{i}]");
            let mut c = Table::nested(path, Some(item), "must be {cert_file, key_file}", problems);
            if let Some(cert) = read_cert(i, &mut c, problems) {
                certs.push(cert);
            }
            c.finish(problems);
        }
    }
    t.finish(problems);
    if let Some(listen) = listen {
        if certs.is_empty() {
            problems.push(
                "tls.certs",
                "no certificate for the HTTPS listener; list at least one {cert_file, key_file}",
            );
        }
        config.tls = Some(TlsConfig {
            listen,
            certs,
            min_version,
            watch_interval,
        });
    }
}

fn read_cert(i: usize, c: &mut Table<'_>, problems: &mut Problems) -> Option<CertFiles> {
    let file = "the path of a PEM file";
    let cert_file = c.field::<PathBuf>("cert_file", file, problems);
    let key_file = c.field::<PathBuf>("key_file", file, problems);
    let names = c
        .field::<Vec<String>>("names", "a list of host names", problems)
        .unwrap_or_default();
    for (j, n) in names.iter().enumerate() {
        if !is_name_pattern(n) {
            problems.push(
                format!("tls.certs[{i}].names[{j}]"),
                format!("{n:?} is not a host name; write e.g. chat.example.com or *.example.com"),
            );
        }
    }
    for (key, value) in [("cert_file", &cert_file), ("key_file", &key_file)] {
        if value.is_none() {
            problems.push(
                format!("tls.certs[{i}].{key}"),
                "missing; give the path of a PEM file",
            );
        }
    }
    Some(CertFiles {
        cert_file: cert_file?,
        key_file: key_file?,
        names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
    })
}

/// A host name, optionally with one leading `*.` label.
fn is_name_pattern(name: &str) -> bool {
    crate::trust::origin::is_host(name.strip_prefix("*.").unwrap_or(name))
}

/// Reads `upstream.ca_file` from the open `upstream:` table.
pub(super) fn read_upstream_ca(config: &mut Config, t: &mut Table<'_>, problems: &mut Problems) {
    if let Some(v) = t.field::<Option<PathBuf>>(
        "ca_file",
        "the path of a PEM file of CA certificates, or null for the system's roots",
        problems,
    ) {
        config.upstream.ca_file = v;
    }
}

/// An entry of `upstreams:`, its scheme taken off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UpstreamAddress<'a> {
    /// `https://`: TLS to the upstream, verified, with the host as SNI.
    pub(crate) tls: bool,
    /// The `host:port` part.
    pub(crate) host_port: &'a str,
}

impl UpstreamAddress<'_> {
    /// The host part (the SNI and the name verified for `https://`), without IPv6 brackets.
    pub(crate) fn host(&self) -> &str {
        let host = self
            .host_port
            .rsplit_once(':')
            .map_or(self.host_port, |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// Splits an `upstreams:` entry: `https://host:port`, `http://host:port` or `host:port`.
pub(crate) fn upstream_address(entry: &str) -> UpstreamAddress<'_> {
    if let Some(rest) = entry.strip_prefix("https://") {
        UpstreamAddress {
            tls: true,
            host_port: rest,
        }
    } else {
        UpstreamAddress {
            tls: false,
            host_port: entry.strip_prefix("http://").unwrap_or(entry),
        }
    }
}

impl Config {
    /// The HTTPS listener must not share an address with the other listeners; without a
    /// plaintext listener it is the only one.
    pub(super) fn check_tls(&self, problems: &mut Problems) {
        let Some(tls) = &self.tls else {
            if self.listen.is_none() {
                problems.push(
                    "listen",
                    "\"\" turns the plaintext listener off, which leaves no listener without \
                     tls.listen; give an address such as 0.0.0.0:8080, or configure tls:",
                );
            }
            return;
        };
        for (key, other) in [("listen", self.listen), ("admin", self.admin)] {
            if other == Some(tls.listen) {
                problems.push(
                    "tls.listen",
                    format!(
                        "same address as {key} ({}); give the HTTPS listener its own port",
                        tls.listen
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key() {
        let c = Config::from_yaml(
            "tls:\n  listen: 127.0.0.1:8443\n  min_version: \"1.3\"\n  watch_interval_seconds: 0\n  \
             certs:\n    - {cert_file: a.pem, key_file: a.key, names: [Chat.Example.com, \"*.x.org\"]}\n\
             upstream: {ca_file: ca.pem}\n",
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.listen.port(), 8443);
        assert_eq!(tls.min_version, TlsVersion::V1_3);
        assert_eq!(tls.watch_interval, None);
        assert_eq!(tls.certs[0].names, ["chat.example.com", "*.x.org"]);
        assert_eq!(c.upstream.ca_file, Some(PathBuf::from("ca.pem")));
    }

    #[test]
    fn problems_name_the_key_and_the_fix() {
        let err = Config::from_yaml(
            "tls:\n  listen: 127.0.0.1:8443\n  min_version: \"1.1\"\n  \
             certs:\n    - {cert_file: a.pem, names: [\"bad name\"], key: x}\n",
        )
        .unwrap_err()
        .to_string();
        for key in [
            "tls.min_version",
            "tls.certs[0].key_file",
            "tls.certs[0].names[0]",
            "tls.certs[0].key",
        ] {
            assert!(err.contains(key), "{key} missing in {err}");
        }
        let err = Config::from_yaml("tls: {listen: 127.0.0.1:8443}\n").unwrap_err();
        assert!(err.to_string().contains("tls.certs"), "{err}");
    }

    #[test]
    fn upstream_entries_name_their_scheme() {
        let a = upstream_address("https://chat.internal:443");
        assert!(a.tls);
        assert_eq!(
            (a.host_port, a.host()),
            ("chat.internal:443", "chat.internal")
        );
        let a = upstream_address("http://[::1]:8000");
        assert!(!a.tls);
        assert_eq!(a.host(), "::1");
        assert!(Config::from_yaml("upstreams: [\"https://chat.internal:443\"]\n").is_ok());
        let err = Config::from_yaml("tls: {listen: \"127.0.0.1:8080\", certs: [{cert_file: a, key_file: b}]}\nlisten: 127.0.0.1:8080\n").unwrap_err();
        assert!(err.to_string().contains("tls.listen"), "{err}");
    }

    #[test]
    fn shipped_example_documents_the_section() {
        let shipped = include_str!("../../conf/flowgate.yaml");
        for key in [
            "tls:",
            "min_version:",
            "watch_interval_seconds:",
            "ca_file:",
        ] {
            assert!(shipped.contains(key), "{key} missing in conf/flowgate.yaml");
        }
    }
}
