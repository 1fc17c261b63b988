//! A test CA and the certificates it signs, made with the real `openssl` command at test time,
//! and `curl` / `openssl s_client` as HTTPS clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::temp::TempDir;

/// A test certificate authority in its own temp dir.
pub struct TestCa {
    dir: TempDir,
}

/// A certificate and key signed by a [`TestCa`].
#[derive(Debug, Clone)]
pub struct Leaf {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (scripts/lib/packages.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// A new CA (EC P-256), valid for two days.
    pub fn new() -> TestCa {
        let dir = TempDir::new("flowgate-ca");
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=flowgate test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            dir.path(),
        );
        TestCa { dir }
    }

    /// The CA certificate (what clients trust).
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The directory certificates are written to.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Signs a certificate for `names` (DNS or IP), subject `CN=<first name>, O=<tag>`, valid
    /// `days`, written as `<file>.pem` and `<file>.key`.
    pub fn issue(&self, file: &str, names: &[&str], tag: &str, days: u32) -> Leaf {
        let dir = self.dir.path();
        let san: Vec<String> = names
            .iter()
            .map(|n| {
                if n.parse::<std::net::IpAddr>().is_ok() {
                    format!("IP:{n}")
                } else {
                    format!("DNS:{n}")
                }
            })
            .collect();
        let ext = dir.join(format!("{file}.ext"));
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
                san.join(",")
            ),
        )
        .unwrap();
        let (key, csr, pem) = (
            format!("{file}.key.new"),
            format!("{file}.csr"),
            format!("{file}.pem.new"),
        );
        let subj = format!("/CN={}/O={tag}", names[0]);
        openssl(
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &subj,
            ],
            dir,
        );
        let days = days.to_string();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                &days,
                "-extfile",
                ext.to_str().unwrap(),
            ],
            dir,
        );
        // Written next to the final names and renamed, as a certificate manager does.
        let leaf = Leaf {
            cert: dir.join(format!("{file}.pem")),
            key: dir.join(format!("{file}.key")),
        };
        std::fs::rename(dir.join(&key), &leaf.key).unwrap();
        std::fs::rename(dir.join(&pem), &leaf.cert).unwrap();
        leaf
    }
}

/// `curl` over HTTPS to `addr` as `https://<name>:<port><path>`, trusting `ca`: returns the
/// process output (stdout: the body then `\n<http_version>`; stderr: the verbose handshake).
pub fn curl(addr: SocketAddr, name: &str, path: &str, ca: &Path, extra: &[&str]) -> Output {
    let resolve = format!("{name}:{}:{}", addr.port(), addr.ip());
    let url = format!("https://{name}:{}{path}", addr.port());
    Command::new("curl")
        .args([
            "-sS",
            "-v",
            "--max-time",
            "10",
            "--resolve",
            &resolve,
            "--cacert",
        ])
        .arg(ca)
        .args(["-w", "\n%{http_version}"])
        .args(extra)
        .arg(&url)
        .output()
        .expect("curl is installed (scripts/lib/packages.sh)")
}

/// The subject of the certificate `addr` presents for the SNI `name` (`openssl s_client`).
pub fn served_subject(addr: SocketAddr, name: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} -servername {name} </dev/null 2>/dev/null \
             | openssl x509 -noout -subject"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The `tls:` section for `listen` and `certs` (each `(leaf, names)`; empty names: the
/// certificate's own).
pub fn tls_yaml(listen: SocketAddr, certs: &[(&Leaf, &[&str])], extra: &str) -> String {
    let mut y = format!("tls:\n  listen: \"{listen}\"\n{extra}  certs:\n");
    for (leaf, names) in certs {
        y.push_str(&format!(
            "    - cert_file: \"{}\"\n      key_file: \"{}\"\n",
            leaf.cert.display(),
            leaf.key.display()
        ));
        if !names.is_empty() {
            y.push_str(&format!("      names: {names:?}\n"));
        }
    }
    y
}
