//! Init rate limits and the body limit through the real binary: discard and reject modes, per
//! client and per site, 413 on a declared length over the limit.
#![allow(clippy::unwrap_used)]

mod common;

use common::flowgate::Flowgate;
use common::upstream::Upstream;

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
    fg.assert_metrics(&[("flowgate_request_body_too_large_total", 1.0)])
        .await;
}
