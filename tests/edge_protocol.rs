//! Protocol hygiene through the real binary: an over-long request target answers `414` (with a
//! metric and a log line without the target), an HTTP/1.0 client never gets chunked framing,
//! and a request's `Content-Length` reaches the upstream as the one number Pingora framed the
//! body by.
#![allow(clippy::unwrap_used)]

mod common;

use common::flowgate::Flowgate;
use common::node::ChatBackend;
use common::raw::{self, RawResponse, RawUpstream, Step};

const TOO_LONG: &str = r#"flowgate_connections_closed_total{reason="uri_too_long"}"#;

fn ok_upstream() -> RawUpstream {
    RawUpstream::start(|_| {
        vec![Step::Send(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n".to_vec(),
        )]
    })
}

async fn send(fg: &Flowgate, request: Vec<u8>) -> RawResponse {
    let addr = fg.addr;
    tokio::task::spawn_blocking(move || raw::exchange(addr, &request))
        .await
        .unwrap()
}

/// A GET whose request target is exactly `len` bytes, its query full of a marker value.
fn target_of(len: usize) -> Vec<u8> {
    let prefix = "/public_FlowWidget/init?siteid=s&jsSessionId=j&visitor_context=";
    let target = format!("{prefix}{}", "Q".repeat(len - prefix.len()));
    assert_eq!(target.len(), len);
    format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn an_over_long_request_target_is_a_414() {
    let up = ok_upstream();
    let fg = Flowgate::start(&up.host_port());
    // The default limit is the longest target Pingora can represent at all.
    assert_eq!(send(&fg, target_of(65_534)).await.status, 200);
    for len in [65_535, 70_000, 1 << 20] {
        let resp = send(&fg, target_of(len)).await;
        assert_eq!(
            resp.status,
            414,
            "{len}: {:?}",
            String::from_utf8_lossy(&resp.raw)
        );
        assert_eq!(
            resp.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(resp.body, b"flowgate: the request target is too long\n");
    }
    fg.assert_metrics(&[(TOO_LONG, 3.0)]).await;
    assert_eq!(up.received().len(), 1);
    let log = fg.log();
    assert_eq!(log.matches("request target too long").count(), 3, "{log}");
    assert!(!log.contains("QQQQ"), "the target reached the log");
    // The connection front is still serving.
    assert_eq!(send(&fg, target_of(100)).await.status, 200);
}

#[tokio::test]
async fn the_request_target_limit_is_configurable() {
    let up = ok_upstream();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .server("max_request_target_bytes", 8192)
        .start();
    assert_eq!(send(&fg, target_of(8192)).await.status, 200);
    assert_eq!(send(&fg, target_of(8193)).await.status, 414);
    // HTTP/1.0 and a bare-LF head are measured the same way.
    let mut old = target_of(9000);
    let at = old.windows(8).position(|w| w == b"HTTP/1.1").unwrap();
    old[at + 7] = b'0';
    assert_eq!(send(&fg, old).await.status, 414);
    let bare = String::from_utf8(target_of(9000))
        .unwrap()
        .replace("\r\n", "\n");
    assert_eq!(send(&fg, bare.into_bytes()).await.status, 414);
    fg.assert_metrics(&[(TOO_LONG, 3.0)]).await;
}

#[tokio::test]
async fn http10_clients_get_close_delimited_bodies() {
    let backend = ChatBackend::start("A", &[]);
    let fg = Flowgate::start(&backend.host_port());
    // The backend streams to HTTP/1.1 (flowgate's upstream side) with chunked framing.
    for path in [
        "/http10?chunks=4&interval_ms=20",
        "/public_FlowWidget/chat/stream?siteid=s&jsSessionId=j",
    ] {
        let resp = send(
            &fg,
            format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").into_bytes(),
        )
        .await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(
            resp.header("transfer-encoding"),
            None,
            "{path}: {:?}",
            resp.headers
        );
        assert_eq!(
            resp.header("connection"),
            Some("close"),
            "{path}: {:?}",
            resp.headers
        );
        let body = String::from_utf8(resp.body).unwrap();
        assert!(
            body.starts_with("line 1 of ") && body.lines().count() >= 4,
            "{path}: {body:?}"
        );
        assert!(
            !body.contains("\r\n"),
            "chunk framing in the body: {body:?}"
        );
    }
    // HTTP/1.1 clients keep chunked streaming.
    let resp = send(
        &fg,
        b"GET /http10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert!(resp.complete);
    // And curl, speaking HTTP/1.0, reads the whole stream.
    let out = std::process::Command::new("curl")
        .args(["-s", "--http1.0", "-D", "-", "--max-time", "20"])
        .arg(fg.url("/stream?chunks=3&interval_ms=10"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(!text.contains("transfer-encoding"), "{text}");
    assert!(text.contains("line 3 of 3"), "{text}");
}

/// The request's `Content-Length` lines as the upstream received them.
fn lengths_seen(up: &RawUpstream) -> Vec<String> {
    let req = up.received().pop().unwrap();
    String::from_utf8_lossy(&req)
        .lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn content_length_reaches_the_upstream_as_one_number() {
    let up = ok_upstream();
    let fg = Flowgate::start(&up.host_port());
    for (lines, body, want) in [
        (&["5, 5"][..], "hello", "5"),
        (&["5", "5"][..], "hello", "5"),
        (&["0145"][..], &*"b".repeat(145), "145"),
        (&["005 ,5"][..], "hello", "5"),
    ] {
        let mut req = String::from("POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for l in lines {
            req.push_str(&format!("Content-Length: {l}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        let resp = send(&fg, req.into_bytes()).await;
        assert_eq!(resp.status, 200, "{lines:?}");
        assert_eq!(lengths_seen(&up), [want], "{lines:?}");
        let got = up.received().pop().unwrap();
        assert!(
            got.ends_with(body.as_bytes()),
            "{lines:?}: body not forwarded whole"
        );
    }
    // Values that disagree are refused before anything reaches the upstream.
    let before = up.received().len();
    for lines in [&["5, 6"][..], &["5", "6"][..], &["+5"][..], &["5 5"][..]] {
        let mut req = String::from("POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for l in lines {
            req.push_str(&format!("Content-Length: {l}\r\n"));
        }
        req.push_str("\r\nhello");
        assert_eq!(send(&fg, req.into_bytes()).await.status, 400, "{lines:?}");
    }
    assert_eq!(up.received().len(), before);
    // Over h2c too (a list that agrees).
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--http2-prior-knowledge",
        ])
        .args(["-H", "Content-Length: 5", "--data-binary", "hello"])
        .arg(fg.url("/upload"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    assert_eq!(lengths_seen(&up), ["5"]);
}
