//! Init rate limits and the body limit through the real binary: discard and reject modes, per
//! client and per site; 413 on a declared length over the limit, on a chunked or HTTP/2 body
//! counted past it, per route class; an abort once the response has started; a WebSocket
//! tunnel's bytes are no body.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use common::curl;
use common::echo::EchoUpstream;
use common::flowgate::Flowgate;
use common::raw::{self, RawResponse};
use common::upstream::Upstream;
use common::{DEADLINE, wait_until};

const INIT: &str = "/public_FlowWidget/init";
/// Inits sent back to back: with one allowed a second, at most two fall in allowed slots.
const SENT: usize = 5;

fn init(fg: &Flowgate, site: &str, n: usize) -> String {
    fg.url(&format!(
        "{INIT}?siteid={site}&jsSessionId=sess.{n}&visitor_context=e30="
    ))
}

#[tokio::test]
async fn per_client_over_the_limit_is_proxied_without_context() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("limits:\n  init_per_second: {per_client: 1}\n")
        .start();
    for n in 0..SENT {
        let resp = reqwest::get(init(&fg, "site-1", n)).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let received = up.received();
    assert_eq!(received.len(), SENT, "every init reaches the upstream");
    let limited: Vec<_> = received
        .iter()
        .filter(|r| r.header("x-flowgate-status") == Some("discarded; reason=rate_limited"))
        .collect();
    assert!(limited.len() >= SENT - 2, "{} limited", limited.len());
    for r in &limited {
        assert!(r.header("x-flowgate-context").is_none());
        assert_eq!(r.header("x-flowgate-site"), Some("site-1"));
    }
    let n = limited.len() as f64;
    fg.assert_metrics(&[
        (
            r#"flowgate_init_total{outcome="discarded",reason="rate_limited"}"#,
            n,
        ),
        (r#"flowgate_rate_limited_total{scope="client"}"#, n),
    ])
    .await;
}

#[tokio::test]
async fn reject_mode_answers_429_with_retry_after() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("limits:\n  init_per_second: {per_client: 1}\n  mode: reject\n")
        .start();
    let mut rejected = 0;
    for n in 0..SENT {
        let resp = reqwest::get(init(&fg, "site-1", n)).await.unwrap();
        if resp.status() == 429 {
            rejected += 1;
            assert_eq!(resp.headers()["retry-after"], "1");
            assert!(
                resp.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            assert_eq!(resp.text().await.unwrap(), "too many requests\n");
        } else {
            assert_eq!(resp.status(), 200);
        }
    }
    assert!(rejected >= SENT - 2, "{rejected} rejected");
    assert_eq!(
        up.received().len(),
        SENT - rejected,
        "rejected inits are not proxied"
    );
    fg.assert_metrics(&[(
        r#"flowgate_rate_limited_total{scope="client"}"#,
        rejected as f64,
    )])
    .await;
}

#[tokio::test]
async fn per_site_limits_one_site_only() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("limits:\n  init_per_second: {per_site: 1}\n")
        .start();
    for n in 0..SENT {
        reqwest::get(init(&fg, "busy", n)).await.unwrap();
    }
    reqwest::get(init(&fg, "quiet", 99)).await.unwrap();
    let received = up.received();
    let status = |site: &str| -> Vec<String> {
        received
            .iter()
            .filter(|r| r.header("x-flowgate-site") == Some(site))
            .map(|r| r.header("x-flowgate-status").unwrap().to_owned())
            .collect()
    };
    let busy = status("busy");
    let limited = busy
        .iter()
        .filter(|s| *s == "discarded; reason=rate_limited")
        .count();
    assert!(limited >= SENT - 2, "{busy:?}");
    assert_eq!(status("quiet"), ["accepted"]);
    fg.assert_metrics(&[(
        r#"flowgate_rate_limited_total{scope="site"}"#,
        limited as f64,
    )])
    .await;
}

#[tokio::test]
async fn content_length_over_the_limit_is_413_before_proxying() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("limits:\n  max_body_bytes: 16\n")
        .start();
    let client = reqwest::Client::new();
    let resp = client
        .post(fg.url("/api/upload"))
        .body(vec![b'x'; 17])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.text().await.unwrap(), "request body too large\n");
    let ok = client
        .post(fg.url("/api/upload"))
        .body(vec![b'x'; 16])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        up.received().len(),
        1,
        "only the body within the limit is proxied"
    );
    fg.assert_metrics(&[(
        r#"flowgate_request_body_too_large_total{outcome="rejected",route="other"}"#,
        1.0,
    )])
    .await;
}

/// Waits until the upstream has finished every connection the proxy opened.
fn upstream_settled(up: &EchoUpstream) {
    wait_until("the upstream's connections to end", || up.open() == 0);
}

const TOO_LARGE: &[u8] = b"request body too large\n";

#[tokio::test]
async fn chunked_body_over_the_limit_is_413_and_never_reaches_the_upstream_whole() {
    let up = EchoUpstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("limits:\n  max_body_bytes: 16\n")
        .start();
    let resp = raw::exchange_async(
        fg.addr,
        raw::chunked_post("/api/upload", &[b"12345678", b"12345678", b"9"]),
    )
    .await;
    assert_eq!(resp.status, 413, "{:?}", String::from_utf8_lossy(&resp.raw));
    assert_eq!(resp.body, TOO_LARGE);
    assert_eq!(resp.header("connection"), Some("close"));
    upstream_settled(&up);
    for got in up.got() {
        assert!(!got.complete, "the upstream got a whole body: {got:?}");
        assert!(got.body.len() <= 16, "{got:?}");
    }
    // Exactly at the limit, in several chunks: passes, byte for byte.
    let resp = raw::exchange_async(
        fg.addr,
        raw::chunked_post("/api/upload", &[b"12345678", b"abcdefgh"]),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"12345678abcdefgh");
    upstream_settled(&up);
    let whole: Vec<_> = up.got().into_iter().filter(|g| g.complete).collect();
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].body, b"12345678abcdefgh");
    fg.assert_metrics(&[
        (
            r#"flowgate_request_body_too_large_total{outcome="rejected",route="other"}"#,
            1.0,
        ),
        (
            r#"flowgate_request_body_too_large_total{outcome="aborted",route="other"}"#,
            0.0,
        ),
    ])
    .await;
}

#[tokio::test]
async fn each_route_class_has_its_own_body_limit() {
    let up = EchoUpstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("limits:\n  max_body_bytes: {default: 16, init: 4, session: 0}\n")
        .start();
    let init = "/public_FlowWidget/init?siteid=s&jsSessionId=j";
    let status = |r: RawResponse| r.status;
    assert_eq!(
        status(raw::exchange_async(fg.addr, raw::chunked_post(init, &[b"12", b"345"])).await),
        413
    );
    assert_eq!(
        status(raw::exchange_async(fg.addr, raw::chunked_post(init, &[b"1234"])).await),
        200
    );
    let big = vec![b's'; 4096];
    let resp = raw::exchange_async(
        fg.addr,
        raw::chunked_post("/public_FlowWidget/messages", &[&big, &big]),
    )
    .await;
    assert_eq!(resp.status, 200, "session routes have no limit (0)");
    assert_eq!(resp.body.len(), 8192);
    assert_eq!(
        status(raw::exchange_async(fg.addr, raw::chunked_post("/api/x", &[&[b'o'; 17]])).await),
        413
    );
    assert_eq!(
        status(raw::exchange_async(fg.addr, raw::chunked_post("/api/x", &[&[b'o'; 16]])).await),
        200
    );
    let declared = reqwest::Client::new()
        .post(fg.url(init))
        .body("12345")
        .send()
        .await
        .unwrap();
    assert_eq!(
        declared.status(),
        413,
        "a declared length over the class's limit"
    );
    fg.assert_metrics(&[
        (
            r#"flowgate_request_body_too_large_total{outcome="rejected",route="init"}"#,
            2.0,
        ),
        (
            r#"flowgate_request_body_too_large_total{outcome="rejected",route="other"}"#,
            1.0,
        ),
        (
            r#"flowgate_request_body_too_large_total{outcome="rejected",route="session"}"#,
            0.0,
        ),
    ])
    .await;
}

#[tokio::test]
async fn an_http2_body_without_length_is_counted_too() {
    let up = EchoUpstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("limits:\n  max_body_bytes: 16\n")
        .start();
    let url = fg.url("/api/upload");
    let (over, within) = tokio::task::spawn_blocking(move || {
        (
            curl::h2_upload(&url, &[b'x'; 17]),
            curl::h2_upload(&url, b"0123456789abcdef"),
        )
    })
    .await
    .unwrap();
    assert_eq!(over, (413, TOO_LARGE.to_vec()));
    assert_eq!(within, (200, b"0123456789abcdef".to_vec()));
    upstream_settled(&up);
    let whole: Vec<_> = up.got().into_iter().filter(|g| g.complete).collect();
    assert_eq!(
        whole.len(),
        1,
        "only the body within the limit reaches the upstream whole"
    );
    fg.assert_metrics(&[(
        r#"flowgate_request_body_too_large_total{outcome="rejected",route="other"}"#,
        1.0,
    )])
    .await;
}

#[tokio::test]
async fn past_the_limit_after_the_response_started_the_transfer_is_aborted() {
    let up = EchoUpstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("limits:\n  max_body_bytes: 16\n")
        .start();
    let addr = fg.addr;
    let resp = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.write_all(b"POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n")
            .unwrap();
        // The upstream answers before it has the body; once its first chunk is here, the
        // response has started.
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("early\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        let _ = s.write_all(b"10\r\n0123456789abcdef\r\n0\r\n\r\n");
        seen.extend(raw::read_to_close(&mut s));
        RawResponse::parse(seen)
    })
    .await
    .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"early\n");
    assert!(
        !resp.complete,
        "aborted, never completed: {:?}",
        String::from_utf8_lossy(&resp.raw)
    );
    upstream_settled(&up);
    assert!(up.got().iter().all(|g| !g.complete), "{:?}", up.got());
    fg.assert_metrics(&[(
        r#"flowgate_request_body_too_large_total{outcome="aborted",route="other"}"#,
        1.0,
    )])
    .await;
}

#[tokio::test]
async fn a_websocket_tunnel_after_its_101_is_not_a_body() {
    let up = EchoUpstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("limits:\n  max_body_bytes: 16\n")
        .start();
    let addr = fg.addr;
    let echoed = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .unwrap();
        let head = raw::read_head(&mut s);
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{:?}",
            String::from_utf8_lossy(&head)
        );
        let frames = vec![b'w'; 1000];
        s.write_all(&frames).unwrap();
        let mut echoed = Vec::new();
        let mut buf = [0u8; 4096];
        while echoed.len() < frames.len() {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the tunnel closed after {} bytes", echoed.len());
            echoed.extend_from_slice(&buf[..n]);
        }
        echoed
    })
    .await
    .unwrap();
    assert_eq!(echoed, vec![b'w'; 1000]);
    fg.assert_metrics(&[(
        r#"flowgate_request_body_too_large_total{outcome="aborted",route="other"}"#,
        0.0,
    )])
    .await;
}
