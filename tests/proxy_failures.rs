//! Failure behaviour through the real binary: upstream down, several upstreams, oversized
//! requests, clients that go away.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::b64;
use common::flowgate::Flowgate;
use common::ports::free_addr;
use common::upstream::Upstream;

#[tokio::test]
async fn upstream_down_is_a_502_with_a_plain_text_body() {
    // A port nothing listens on.
    let fg = Flowgate::start(&free_addr().to_string());
    let ctx = b64(r#"{"ims_email":"a@b.c"}"#);
    for path in [
        format!("/public_FlowWidget/init?siteid=s&jsSessionId=j&visitor_context={ctx}"),
        "/other".to_owned(),
    ] {
        let resp = reqwest::get(fg.url(&path)).await.unwrap();
        assert_eq!(resp.status(), 502, "{path}");
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "text/plain; charset=utf-8"
        );
        assert!(resp.text().await.unwrap().contains("unavailable"));
    }
    assert_eq!(
        fg.metric(r#"flowgate_upstream_errors_total{kind="connect"}"#)
            .await,
        2.0
    );
    // The context was still handled: the session was stored before the upstream failed.
    assert_eq!(
        fg.metric(r#"flowgate_store_calls_total{op="put",result="ok"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn several_upstreams_share_the_load_and_a_dead_one_is_skipped() {
    let a = Upstream::start();
    let b = Upstream::start();
    let dead = free_addr().to_string();
    let fg = Flowgate::options()
        .upstream(a.host_port())
        .upstream(dead)
        .upstream(b.host_port())
        .yaml("upstream:\n  health_check_interval_ms: 100\n  balance: round_robin\n")
        .start();
    let client = reqwest::Client::new();
    for i in 0..12 {
        let resp = client.get(fg.url(&format!("/r{i}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200, "request {i}");
    }
    let (na, nb) = (a.received().len(), b.received().len());
    assert_eq!(na + nb, 12);
    assert!(
        na > 0 && nb > 0,
        "round robin used only one upstream: {na} / {nb}"
    );
}

/// Sends raw bytes and returns the response's status line ("" if the connection just closed).
fn raw_status_line(request: Vec<u8>, addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = s.try_clone().unwrap();
    // The server may stop reading once it has seen enough: write from another thread.
    let w = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(2).any(|w| w == b"\r\n") {
                    break;
                }
            }
        }
    }
    drop(s);
    let _ = w.join();
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn oversized_heads_get_a_400_and_long_targets_a_414() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let addr = fg.addr;
    let statuses = tokio::task::spawn_blocking(move || {
        let long_target = format!(
            "GET /public_FlowWidget/init?visitor_context={} HTTP/1.1\r\nHost: x\r\n\r\n",
            "A".repeat(1 << 21)
        );
        let big_header = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "b".repeat(1 << 21)
        );
        let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..300 {
            many.push_str(&format!("X-H{i}: v\r\n"));
        }
        many.push_str("\r\n");
        [long_target, big_header, many].map(|r| raw_status_line(r.into_bytes(), addr))
    })
    .await
    .unwrap();
    // The target is refused by the connection front; the rest by Pingora before any phase runs.
    for (line, want) in statuses.iter().zip([414, 400, 400]) {
        let code: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {line:?}"));
        assert_eq!(code, want, "{line}");
    }
    assert!(up.received().is_empty());
    // The proxy is still fine.
    assert_eq!(reqwest::get(fg.url("/ok")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn clients_that_go_away_are_not_logged_as_errors() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let addr = fg.addr;
    tokio::task::spawn_blocking(move || {
        for partial in [
            "GET /x HTTP/1.1\r\nHost:",
            "GET /public_FlowWidget/init?siteid=s&js",
        ] {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(partial.as_bytes()).unwrap();
            drop(s);
        }
    })
    .await
    .unwrap();
    // A complete request afterwards proves the earlier ones were processed.
    assert_eq!(reqwest::get(fg.url("/ok")).await.unwrap().status(), 200);
    fg.wait_for_log("path=\"/ok\"");
    let log = fg.log();
    assert!(
        !log.contains("ERROR"),
        "client disconnects logged as errors:\n{log}"
    );
}

/// The harness never hands one test two equal ports (a flowgate once got the same port for
/// `listen` and `admin` and refused to start).
#[test]
fn harness_ports_are_distinct() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let [a, b] = common::ports::free_ports::<2>();
        assert!(seen.insert(a), "{a} handed out twice");
        assert!(seen.insert(b), "{b} handed out twice");
        let c = free_addr().port();
        assert!(seen.insert(c), "{c} handed out twice");
    }
}
