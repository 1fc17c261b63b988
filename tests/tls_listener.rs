//! The HTTPS listener through the real binary: certificates by SNI, ALPN h2 and http/1.1,
//! `min_version`, reload on file change and on SIGHUP (a bad certificate refused, the old one
//! kept), `flowgate check` on certificate files, and `https://` upstreams verified with SNI.
//! Certificates come from a test CA made with the real `openssl` at test time; `curl` and
//! `openssl s_client` are the clients.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::flowgate::{self, Flowgate};
use common::ports::{accepts, free_addr};
use common::tls::{Leaf, TestCa, curl, served_subject};
use common::upstream::Upstream;
use common::wait_until;

/// The `tls:` section for `listen` and `certs` (each `(leaf, names)`; empty names: the
/// certificate's own).
fn tls_yaml(listen: SocketAddr, certs: &[(&Leaf, &[&str])], extra: &str) -> String {
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

fn start_https(upstream: &str, tls: &str) -> Flowgate {
    Flowgate::options().upstream(upstream).yaml(tls).start()
}

fn wait_https(addr: SocketAddr) {
    wait_until("the HTTPS listener accepts", || accepts(addr));
}

/// How many reloads the process refused so far.
fn refusals(f: &Flowgate) -> usize {
    f.log().matches("certificate reload refused").count()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn https_serves_h2_and_http1_with_the_certificate_the_client_names() {
    let ca = TestCa::new();
    let a = ca.issue("a", &["a.test"], "first", 30);
    let b = ca.issue("b", &["b.test", "*.b.test"], "second", 30);
    let upstream = Upstream::start();
    let https = free_addr();
    let f = start_https(
        &upstream.host_port(),
        &tls_yaml(https, &[(&a, &[]), (&b, &[])], ""),
    );
    wait_https(https);

    // ALPN h2 by default, http/1.1 when the client offers only that; both reach the backend.
    let out = curl(https, "a.test", "/page?x=1", &ca.cert(), &[]);
    assert!(
        stdout(&out).ends_with("\n2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = curl(https, "a.test", "/page?x=2", &ca.cert(), &["--http1.1"]);
    assert!(
        stdout(&out).ends_with("\n1.1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(upstream.last().target, "/page?x=2");
    assert_eq!(upstream.received().len(), 2);

    // Each name gets its certificate (curl verifies the name); an unknown or absent name gets
    // the first one.
    let out = curl(https, "b.test", "/", &ca.cert(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = curl(https, "chat.b.test", "/", &ca.cert(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(served_subject(https, "b.test").contains("O = second"));
    assert!(served_subject(https, "other.test").contains("O = first"));

    // A plaintext client on the HTTPS port is closed, and counted.
    let raw = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5", &format!("http://{https}/")])
        .output()
        .unwrap();
    assert!(!raw.status.success());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let closed = r#"flowgate_connections_closed_total{reason="tls_handshake"}"#;
        assert!(f.metric(closed).await >= 1.0);
    });
    // The plaintext listener still serves beside it.
    let plain = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5", &f.url("/plain")])
        .output()
        .unwrap();
    assert!(plain.status.success());
}

#[test]
fn min_version_1_3_refuses_tls_1_2() {
    let ca = TestCa::new();
    let a = ca.issue("a", &["a.test"], "only", 30);
    let upstream = Upstream::start();
    let https = free_addr();
    let _f = start_https(
        &upstream.host_port(),
        &tls_yaml(https, &[(&a, &[])], "  min_version: \"1.3\"\n"),
    );
    wait_https(https);
    let tls12 = curl(https, "a.test", "/", &ca.cert(), &["--tls-max", "1.2"]);
    assert!(!tls12.status.success(), "TLS 1.2 was accepted");
    let tls13 = curl(https, "a.test", "/", &ca.cert(), &["--tlsv1.3"]);
    assert!(
        tls13.status.success(),
        "{}",
        String::from_utf8_lossy(&tls13.stderr)
    );
}

/// Overwrites `target`'s files with `from`'s (as a renewal does).
fn replace(target: &Leaf, from: &Leaf) {
    std::fs::copy(&from.key, &target.key).unwrap();
    std::fs::copy(&from.cert, &target.cert).unwrap();
}

#[test]
fn a_changed_certificate_file_is_served_without_a_restart_and_a_bad_one_is_refused() {
    let ca = TestCa::new();
    let a = ca.issue("a", &["a.test"], "v1", 30);
    let upstream = Upstream::start();
    let https = free_addr();
    let f = start_https(
        &upstream.host_port(),
        &tls_yaml(https, &[(&a, &[])], "  watch_interval_seconds: 1\n"),
    );
    wait_https(https);
    assert!(served_subject(https, "a.test").contains("O = v1"));

    let v2 = ca.issue("a-v2", &["a.test"], "v2", 30);
    replace(&a, &v2);
    wait_until("the renewed certificate is served", || {
        served_subject(https, "a.test").contains("O = v2")
    });
    f.wait_for_log("certificates reloaded");

    // A key that does not belong to the certificate: refused, v2 stays, the error is logged.
    let other = ca.issue("other", &["a.test"], "v3", 30);
    let before = refusals(&f);
    std::fs::copy(&other.key, &a.key).unwrap();
    wait_until("the mismatched key is refused", || refusals(&f) > before);
    assert!(f.log().contains("does not belong to"), "{}", f.log());
    assert!(served_subject(https, "a.test").contains("O = v2"));
    let out = curl(https, "a.test", "/", &ca.cert(), &[]);
    assert!(out.status.success());
}

#[test]
fn sighup_reloads_the_certificates_and_keeps_them_when_the_new_ones_do_not_load() {
    let ca = TestCa::new();
    let a = ca.issue("a", &["a.test"], "v1", 30);
    let upstream = Upstream::start();
    let https = free_addr();
    let f = start_https(
        &upstream.host_port(),
        &tls_yaml(https, &[(&a, &[])], "  watch_interval_seconds: 0\n"),
    );
    wait_https(https);
    f.wait_for_log("certificates reload on SIGHUP");

    let v2 = ca.issue("a-v2", &["a.test"], "v2", 30);
    replace(&a, &v2);
    // No file watch: nothing changes until SIGHUP.
    assert!(served_subject(https, "a.test").contains("O = v1"));
    f.signal("HUP");
    wait_until("SIGHUP loads the new certificate", || {
        served_subject(https, "a.test").contains("O = v2")
    });

    std::fs::write(&a.cert, "not a certificate\n").unwrap();
    f.signal("HUP");
    wait_until("the broken file is refused", || refusals(&f) > 0);
    assert!(served_subject(https, "a.test").contains("O = v2"));
    // The process is still the one that started, and serving.
    assert!(accepts(f.addr));
}

fn check_out(dir: &Path, yaml: &str) -> (bool, String) {
    let conf = dir.join("check.yaml");
    std::fs::write(&conf, yaml).unwrap();
    let out = flowgate::check(&conf);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn check_loads_the_certificates_as_the_listener_does() {
    let ca = TestCa::new();
    let good = ca.issue("good", &["a.test"], "good", 30);
    let soon = ca.issue("soon", &["a.test"], "soon", 3);
    let other = ca.issue("other", &["a.test"], "other", 30);
    let listen: SocketAddr = "127.0.0.1:8443".parse().unwrap();

    let (ok, text) = check_out(ca.dir(), &tls_yaml(listen, &[(&good, &[])], ""));
    assert!(ok, "{text}");
    assert!(!text.contains("warning"), "{text}");

    let (ok, text) = check_out(ca.dir(), &tls_yaml(listen, &[(&soon, &[])], ""));
    assert!(ok, "{text}");
    assert!(
        text.contains("warning: tls.certs[0]")
            && (text.contains("expires in 2 days") || text.contains("expires in 3 days")),
        "{text}"
    );

    let mismatched = Leaf {
        cert: good.cert.clone(),
        key: other.key.clone(),
    };
    let missing = Leaf {
        cert: ca.dir().join("absent.pem"),
        key: good.key.clone(),
    };
    let yaml = tls_yaml(listen, &[(&mismatched, &[]), (&missing, &[])], "")
        + "upstream:\n  ca_file: /nonexistent/ca.pem\n";
    let (ok, text) = check_out(ca.dir(), &yaml);
    assert!(!ok, "{text}");
    assert!(
        text.contains("tls.certs[0]") && text.contains("does not belong to"),
        "{text}"
    );
    assert!(
        text.contains("tls.certs[1]") && text.contains("absent.pem"),
        "{text}"
    );
    assert!(text.contains("upstream.ca_file"), "{text}");
}

#[test]
fn https_upstreams_are_verified_and_get_their_name_as_sni() {
    let ca = TestCa::new();
    let decoy = ca.issue("decoy", &["decoy.test"], "decoy", 30);
    let local = ca.issue("localhost", &["localhost"], "backend", 30);
    let upstream = Upstream::start();
    // A TLS backend: a flowgate whose default certificate does not name `localhost`, so only
    // a client sending SNI `localhost` can verify it.
    let backend_addr = free_addr();
    let _backend = start_https(
        &upstream.host_port(),
        &tls_yaml(backend_addr, &[(&decoy, &[]), (&local, &[])], ""),
    );
    wait_https(backend_addr);
    let https_upstream = format!("https://localhost:{}", backend_addr.port());

    let edge = Flowgate::options()
        .upstream(&https_upstream)
        .yaml(&format!(
            "upstream:\n  ca_file: \"{}\"\n",
            ca.cert().display()
        ))
        .start();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &edge.url("/via-tls"),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "200");
    assert_eq!(upstream.last().target, "/via-tls");

    // Verification is on by default: the system's roots do not know the test CA.
    let unverified = Flowgate::options().upstream(&https_upstream).start();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &unverified.url("/refused"),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "502");
    assert!(upstream.received().iter().all(|r| r.target != "/refused"));
}

/// An `openssl s_client` connected over TLS 1.3 to `addr` (as `name`, trusting `ca`) whose
/// stdin is the test's: what the test writes is sent inside the TLS connection.
fn tls_client(addr: SocketAddr, name: &str, ca: &Path) -> std::process::Child {
    std::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-no_ign_eof", "-connect"])
        .arg(addr.to_string())
        .args(["-servername", name, "-CAfile"])
        .arg(ca)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A request head trickled in over TLS, a byte at a time, each inside the idle timeout, is
/// closed at the whole-head deadline as on the plaintext listener (it used to be bounded per
/// read only, so a slow client kept the connection for as long as it liked); an over-long
/// target over TLS gets the front's own `414`.
#[test]
fn tls_request_heads_are_bounded_as_plaintext_ones() {
    use std::io::{Read, Write};
    let ca = TestCa::new();
    let leaf = ca.issue("a", &["a.test"], "first", 30);
    let upstream = Upstream::start();
    let https = free_addr();
    let f = Flowgate::options()
        .upstream(upstream.host_port())
        .server("idle_timeout_seconds", 2)
        .server("header_timeout_seconds", 2)
        .server("max_request_target_bytes", 1024)
        .yaml(&tls_yaml(https, &[(&leaf, &[])], ""))
        .start();
    wait_https(https);

    let mut client = tls_client(https, "a.test", &ca.cert());
    let mut stdin = client.stdin.take().unwrap();
    let started = std::time::Instant::now();
    let trickle = std::thread::spawn(move || {
        // 40 bytes, one every 250 ms: 10 s of head unless the deadline ends it.
        for b in b"GET /slow HTTP/1.1\r\nHost: a.test\r\nX-Slow: "
            .iter()
            .chain(&[b'x'; 40])
        {
            if stdin.write_all(&[*b]).and_then(|()| stdin.flush()).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    });
    let mut out = Vec::new();
    client.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let took = started.elapsed();
    let _ = client.kill();
    let _ = client.wait();
    trickle.join().unwrap();
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert!(
        took < std::time::Duration::from_secs(8),
        "the trickled head was open for {took:?}"
    );
    assert!(upstream.received().is_empty());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let closed = r#"flowgate_connections_closed_total{reason="header_timeout"}"#;
        assert!(f.metric(closed).await >= 1.0);
    });

    // Over-long target: 414 from the front, over HTTP/1.1 on TLS.
    let long = format!("/{}", "a".repeat(3000));
    let out = curl(
        https,
        "a.test",
        &long,
        &ca.cert(),
        &["--http1.1", "-o", "/dev/null", "-w", "%{http_code}"],
    );
    assert!(
        stdout(&out).contains("414"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An ordinary request on the same listener still goes through.
    let out = curl(https, "a.test", "/fine", &ca.cert(), &["--http1.1"]);
    assert!(
        stdout(&out).ends_with("\n1.1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(upstream.last().target, "/fine");
}

/// `listen: ""` with `tls:` serves HTTPS alone: nothing listens in plaintext; without `tls:`
/// it is a problem `flowgate check` names.
#[test]
fn https_alone_without_a_plaintext_listener() {
    let ca = TestCa::new();
    let leaf = ca.issue("a", &["a.test"], "first", 30);
    let upstream = Upstream::start();
    let https = free_addr();
    let f = Flowgate::options()
        .upstream(upstream.host_port())
        .no_plaintext()
        .yaml(&tls_yaml(https, &[(&leaf, &[])], ""))
        .start();
    wait_https(https);
    let out = curl(https, "a.test", "/only-tls", &ca.cert(), &[]);
    assert!(
        stdout(&out).ends_with("\n2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(upstream.last().target, "/only-tls");
    assert!(!accepts(f.addr), "a plaintext listener is open");
    assert!(f.log().contains("listen=off"), "{}", f.log());

    let dir = flowgate::TempDir::new("flowgate-no-listener");
    let (ok, text) = check_out(dir.path(), "listen: \"\"\nupstreams: [\"127.0.0.1:9\"]\n");
    assert!(!ok, "{text}");
    assert!(
        text.contains("listen: \"\" turns the plaintext listener off"),
        "{text}"
    );
}
