//! The process around the proxy: SIGTERM draining, zero-downtime upgrade, `check`, `-t`,
//! h2c, the admin listener and `flowgate demo`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::flowgate::{Flowgate, TempDir, bin, check};
use common::ports::{accepts, free_addr};
use common::raw::read_to_close;
use common::upstream::Upstream;
use common::{DEADLINE, b64, wait_until_async};

fn shipped_config() -> String {
    format!("{}/conf/flowgate.yaml", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let up = Upstream::start();
    let mut fg = Flowgate::options()
        .upstream(up.host_port())
        .grace_period(3)
        .start();
    let url = fg.url("/hold/in-flight");
    let in_flight = tokio::spawn(async move { reqwest::get(url).await });
    wait_until_async("the upstream to receive the request", || async {
        !up.received().is_empty()
    })
    .await;

    fg.signal("TERM");
    fg.wait_for_log("SIGTERM");
    up.release(1);
    let resp = in_flight.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "upstream says hi\n");

    let status = tokio::task::spawn_blocking(move || {
        let s = fg.wait_exit();
        (s, fg.log())
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "exit {:?}; log:\n{}",
        status.0,
        status.1
    );
}

/// A client whose connection was accepted just before the shutdown began (or, during an
/// upgrade, just before the listener was handed over) is sending a request it expects an answer
/// to: it is answered, not closed unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_accepted_before_the_signal_gets_its_first_request_answered() {
    let up = Upstream::start();
    let mut fg = Flowgate::options()
        .upstream(up.host_port())
        .grace_period(3)
        .start();
    let mut early = std::net::TcpStream::connect(fg.addr).unwrap();
    wait_until_async("the connection to be accepted", || async {
        fg.metric("flowgate_connections_open").await >= 1.0
    })
    .await;
    fg.signal("TERM");
    // The listener closes once the shutdown has begun: from then on the early connection's
    // reader has seen the signal too.
    let addr = fg.addr;
    wait_until_async("the listener to close", || async move { !accepts(addr) }).await;
    let response = tokio::task::spawn_blocking(move || {
        early.set_read_timeout(Some(DEADLINE)).unwrap();
        early
            .write_all(b"GET /late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&read_to_close(&mut early)).into_owned()
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    let status = tokio::task::spawn_blocking(move || fg.wait_exit())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_hands_the_listeners_over_without_dropping_requests() {
    let up = Upstream::start();
    let mut old = Flowgate::start(&up.host_port());
    let url = old.url("/during");
    // A client opening a new connection per request, all through the hand-over.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            (ok, failed)
        })
    };

    let new = old.spawn_upgrade();
    // The new process waits on the upgrade socket; the old one hands over on SIGQUIT.
    let sock = old.dir().join("upgrade.sock");
    wait_until_async("the upgrade socket", || async { sock.exists() }).await;
    old.signal("QUIT");
    let old_status = tokio::task::spawn_blocking(move || old.wait_exit())
        .await
        .unwrap();
    assert!(old_status.success(), "{old_status:?}");
    new.wait_for_log("flowgate ready");
    // The old process is gone: whatever answers now is the new one.
    let resp = reqwest::get(new.url("/after")).await.unwrap();
    assert_eq!(resp.status(), 200, "log of the new process:\n{}", new.log());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = probe.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    assert!(ok > 0);
    assert!(accepts(new.admin));
}

#[test]
fn check_accepts_the_shipped_config() {
    let out = check(shipped_config());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
}

#[test]
fn check_lists_every_problem_with_its_key_and_fix() {
    let dir = TempDir::new("flowgate-check");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "listen: localhost\nadmin: \"127.0.0.1:9464\"\nupstreams: [chat]\n\
         routes:\n  init_path: public_FlowWidget/init\n  init_match: regex\n\
         params:\n  site: siteid\n  session: siteid\n\
         headers:\n  prefix: \"X Flowgate\"\n\
         store:\n  ttl_seconds: 0\n  deadline_ms: fast\n  memory_max_byte: 1\n\
         log:\n  format: xml\n\
         server:\n  threads: 0\n\
         tls: true\n\
         quic: true\n",
    )
    .unwrap();
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "listen: \"localhost\" is not an IP address with a port; write e.g. 0.0.0.0:8080",
        "upstreams[0]: \"chat\" has no port; write it as host:port",
        "routes.init_path: must be a path starting with '/'",
        "routes.init_match: \"regex\" is not a match mode; use exact or prefix",
        "params: site, session and context parameters must have three different names",
        "headers.prefix: must be letters, digits and '-'",
        "store.ttl_seconds: must be at least 1",
        "store.deadline_ms: must be a whole number of milliseconds",
        "store.memory_max_byte: unknown key; did you mean `memory_max_bytes`?",
        "log.format: \"xml\" is not a log format; use text or json",
        "server.threads: must be between 1 and 1024",
        "tls: must be a mapping of keys",
        "quic: unknown key",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("13 problems"), "{err}");

    // `run` refuses the same file with the same messages.
    let out = Command::new(bin())
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.ttl_seconds"));

    // A missing file is named.
    let out = check("/nonexistent/flowgate.yaml");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/flowgate.yaml"));
}

#[test]
fn run_t_tests_the_configuration_and_exits() {
    let out = Command::new(bin())
        .args(["run", "-c", &shipped_config(), "-t"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Server Test passed"));
}

#[tokio::test]
async fn h2c_clients_and_the_admin_listener() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let ctx = b64(r#"{"ims_email":"a@b.c"}"#);
    let resp = h2
        .get(fg.url(&format!(
            "/public_FlowWidget/init?siteid=s&jsSessionId=j&visitor_context={ctx}"
        )))
        .header("x-flowgate-status", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-flowgate-leak").is_none());
    assert_eq!(up.last().all("x-flowgate-status"), ["accepted"]);

    let health = reqwest::get(format!("http://{}/healthz", fg.admin))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        health
            .text()
            .await
            .unwrap()
            .starts_with("ok\nconfig: sha256:")
    );
    let missing = reqwest::get(format!("http://{}/nope", fg.admin))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let metrics = fg.metrics().await;
    for family in [
        "flowgate_requests_total",
        "flowgate_request_duration_seconds",
        "flowgate_init_total",
        "flowgate_session_requests_total",
        "flowgate_context_pairs_dropped_total",
        "flowgate_spoofed_headers_stripped_total",
        "flowgate_store_calls_total",
        "flowgate_store_call_duration_seconds",
        "flowgate_store_evictions_total",
        "flowgate_upstream_errors_total",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
}

/// The `curl` lines `flowgate demo` printed, as (headers, url).
fn curl_lines(out: &str) -> Vec<(Vec<(String, String)>, String)> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("curl -s "))
        .filter(|l| !l.contains("/metrics"))
        .map(|l| {
            let quoted: Vec<&str> = l.split('\'').skip(1).step_by(2).collect();
            let (url, headers) = quoted.split_last().unwrap();
            let headers = headers
                .iter()
                .map(|h| {
                    let (n, v) = h.split_once(": ").unwrap();
                    (n.to_owned(), v.to_owned())
                })
                .collect();
            (headers, (*url).to_owned())
        })
        .collect()
}

#[tokio::test]
async fn demo_prints_lines_that_work() {
    let (listen, admin) = (free_addr(), free_addr());
    let dir = TempDir::new("flowgate-demo");
    let log = dir.path().join("demo.log");
    let mut child = Command::new(bin())
        .args([
            "demo",
            "--listen",
            &listen.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .env_remove("FLOWGATE_SIGNING_SECRET")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !(accepts(listen) && accepts(admin)) {
        assert!(child.try_wait().unwrap().is_none(), "demo exited");
        assert!(start.elapsed() < DEADLINE, "demo not ready");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let printed = std::fs::read_to_string(&log).unwrap();
    let lines = curl_lines(&printed);
    assert_eq!(lines.len(), 4, "{printed}");
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for (headers, url) in &lines {
        let mut req = client.get(url);
        for (n, v) in headers {
            req = req.header(n, v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        answers.push(resp.json::<serde_json::Value>().await.unwrap());
    }
    let _ = child.kill();
    let _ = child.wait();

    // The demo signs with a secret of its own and its backend verifies every request.
    assert!(printed.contains("generated for this run"), "{printed}");
    for answer in &answers {
        assert_eq!(answer["signature"], "valid", "{answer}");
    }
    let t = |i: usize| answers[i]["trusted"].clone();
    assert_eq!(t(0)["status"], "accepted");
    assert_eq!(t(0)["prefill"]["visitor_name"], "Jane Smith");
    assert_eq!(t(0)["context"]["account_id"], "USR-84920");
    assert_eq!(t(1)["status"], "absent");
    assert_eq!(t(2)["context"], t(0)["context"]);
    assert_eq!(t(3)["status"], "absent");
    assert!(
        t(3).get("context").is_none(),
        "spoofed context got through: {}",
        t(3)
    );
}
