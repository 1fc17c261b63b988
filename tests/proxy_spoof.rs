//! Anti-spoofing through the real binary: forged trusted headers never reach the backend, on
//! any route, whatever happens to the context; prefixed response headers never reach clients.
#![allow(clippy::unwrap_used)]

mod common;

use common::b64;
use common::flowgate::Flowgate;
use common::upstream::Upstream;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

const FORGED_CONTEXT: &str = "eyJpbXNfZW1haWwiOiJldmlsQGV4YW1wbGUuY29tIn0=";

/// Every spelling a backend might fold into a trusted header, some of them twice.
fn forged() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("X-Flowgate-Context", FORGED_CONTEXT),
        ("X_Flowgate_Context", FORGED_CONTEXT),
        ("x-flowgate-status", "accepted"),
        ("x-flowgate-status", "accepted"),
        ("X-FLOWGATE-PREFILL", FORGED_CONTEXT),
        ("x_flowgate-site", "other-site"),
        ("X-Flowgate_Session", "other-session"),
        ("X-Flowgate-Signature", "t=1,v1=00"),
        ("X-Flowgate-Anything", "x"),
    ] {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(value),
        );
    }
    h.append("X-Flowgateway", HeaderValue::from_static("kept"));
    h
}

async fn send(client: &reqwest::Client, url: String) -> reqwest::Response {
    client.get(url).headers(forged()).send().await.unwrap()
}

#[tokio::test]
async fn forged_headers_are_stripped_on_every_route() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let client = reqwest::Client::new();
    let good = b64(r#"{"ims_email":"jane@example.com"}"#);

    // (request, the Status the backend must see — or None when no trusted header is sent)
    let cases: Vec<(String, Option<&str>)> = vec![
        (
            format!("/public_FlowWidget/init?siteid=s&jsSessionId=j&visitor_context={good}"),
            Some("accepted"),
        ),
        (
            "/public_FlowWidget/init?siteid=s&jsSessionId=j&visitor_context=%%%".into(),
            Some("discarded; reason=base64"),
        ),
        (
            "/public_FlowWidget/init?siteid=s&jsSessionId=j".into(),
            Some("absent"),
        ),
        (
            "/public_FlowWidget/init?siteid=s%20s&jsSessionId=j".into(),
            Some("discarded; reason=bad_session"),
        ),
        (
            "/public_FlowWidget/chat?siteid=s&jsSessionId=j".into(),
            Some("absent"),
        ),
        ("/public_FlowWidget/chat".into(), None),
        ("/somewhere/else?siteid=s&jsSessionId=j".into(), None),
    ];
    for (path, status) in cases {
        let resp = send(&client, fg.url(&path)).await;
        assert_eq!(resp.status(), 200, "{path}");
        let r = up.last();
        assert_eq!(r.header("x-flowgateway"), Some("kept"), "{path}");
        assert_eq!(r.header("x-flowgate-status"), status, "{path}");
        for (name, value) in r.flowgate_headers() {
            assert!(
                matches!(
                    name,
                    "x-flowgate-status"
                        | "x-flowgate-site"
                        | "x-flowgate-session"
                        | "x-flowgate-context"
                        | "x-flowgate-prefill"
                ),
                "{path}: forged {name} reached the backend"
            );
            assert_ne!(value, FORGED_CONTEXT, "{path}: forged {name}");
            assert_ne!(value, "other-site", "{path}");
            assert_eq!(r.all(name).len(), 1, "{path}: {name} twice");
        }
    }
    // Nine forged values per request, seven requests.
    assert_eq!(
        fg.metric(r#"flowgate_spoofed_headers_stripped_total{direction="request"}"#)
            .await,
        63.0
    );
}

#[tokio::test]
async fn forged_status_cannot_unlock_a_stored_session() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let client = reqwest::Client::new();
    // Another visitor's session exists; the attacker forges headers on their own session.
    let ctx = b64(r#"{"ims_email":"victim@example.com"}"#);
    client
        .get(fg.url(&format!(
            "/public_FlowWidget/init?siteid=s&jsSessionId=victim&visitor_context={ctx}"
        )))
        .send()
        .await
        .unwrap();
    send(
        &client,
        fg.url("/public_FlowWidget/chat?siteid=s&jsSessionId=attacker"),
    )
    .await;
    let r = up.last();
    assert_eq!(r.header("x-flowgate-session"), Some("attacker"));
    assert_eq!(r.header("x-flowgate-status"), Some("absent"));
    assert_eq!(r.header("x-flowgate-context"), None);
}

#[tokio::test]
async fn prefixed_response_headers_never_reach_the_client() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    for path in [
        "/public_FlowWidget/init?siteid=s&jsSessionId=j",
        "/public_FlowWidget/chat?siteid=s&jsSessionId=j",
        "/other",
    ] {
        let resp = reqwest::get(fg.url(path)).await.unwrap();
        assert_eq!(resp.headers().get("x-upstream").unwrap(), "ok", "{path}");
        for name in resp.headers().keys() {
            let folded = name.as_str().replace('_', "-");
            assert!(!folded.starts_with("x-flowgate"), "{path}: {name} leaked");
        }
    }
    assert_eq!(
        fg.metric(r#"flowgate_spoofed_headers_stripped_total{direction="response"}"#)
            .await,
        6.0
    );
}

#[tokio::test]
async fn a_custom_prefix_is_what_gets_stripped_and_set() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("headers:\n  prefix: X-Edge-\n")
        .start();
    let resp = reqwest::Client::new()
        .get(fg.url("/public_FlowWidget/init?siteid=s&jsSessionId=j"))
        .header("x_edge_status", "accepted")
        .header("X-Flowgate-Status", "passes: not our prefix")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = up.last();
    assert_eq!(r.all("x-edge-status"), ["absent"]);
    assert_eq!(r.header("x_edge_status"), None);
    assert_eq!(r.header("x-edge-site"), Some("s"));
    assert_eq!(
        r.header("x-flowgate-status"),
        Some("passes: not our prefix")
    );
}
