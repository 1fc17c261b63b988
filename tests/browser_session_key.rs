//! `sessions.bind: key` end to end in headless Chromium, cross-origin: the real `flowgate demo`
//! with the key binding on, the widget embedded in the customer's page on another origin. The
//! widget's key reaches the edge on every session route (the preflight allows it), so the
//! backend sees the stored context; another client that replays the session id without the key
//! (or with another) gets nothing, and cannot log the visitor out.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;
#[path = "browser/harness.rs"]
mod harness;

use harness::{Browser, Demo};
use serde_json::{Value, json};

const ACCEPTED: &str = r#"flowgate_init_total{outcome="accepted",reason=""}"#;
const HIT: &str = r#"flowgate_session_requests_total{outcome="hit"}"#;
const KEY_REFUSED: &str = r#"flowgate_session_requests_total{outcome="session_key"}"#;
const INIT_REFUSED: &str = r#"flowgate_init_total{outcome="discarded",reason="session_key"}"#;
const REFUSED: &str = "discarded; reason=session_key";

/// The operator view of the widget's session (a session route), fetched from the page with the
/// widget's key, cross-origin: `{status, context}` as JSON text, or `blocked: …`.
const OPERATOR_FROM_PAGE: &str = "const s = window.imsFlowWidget.session();
    return fetch(arguments[0] + '/public_FlowWidget/operator?siteid=' + encodeURIComponent(s.siteid)
        + '&jsSessionId=' + encodeURIComponent(s.jsSessionId),
        { cache: 'no-store', headers: { 'Flowgate-Session-Key': s.sessionKey } })
      .then(r => r.json())
      .then(v => JSON.stringify({ status: v.status, context: v.context }), e => 'blocked: ' + e);";

/// The operator view as another client sees it when it replays the ids (with `key`, if any).
async fn replayed(demo: &Demo, site: &str, session: &str, key: Option<&str>) -> Value {
    let url = demo.url(&format!(
        "/public_FlowWidget/operator?siteid={site}&jsSessionId={session}"
    ));
    let mut req = reqwest::Client::new().get(url);
    if let Some(k) = key {
        req = req.header("Flowgate-Session-Key", k);
    }
    req.send().await.unwrap().json().await.unwrap()
}

async fn from_page(browser: &Browser, demo: &Demo) -> Value {
    let text = browser.js(OPERATOR_FROM_PAGE, vec![json!(demo.base)]).await;
    let text = text.as_str().unwrap();
    serde_json::from_str(text).unwrap_or_else(|_| panic!("the page's fetch failed: {text}"))
}

#[tokio::test]
async fn the_widget_gets_its_context_and_a_replayed_session_id_gets_nothing() {
    let demo = Demo::start_with_yaml("sessions:\n  bind: key\n");
    let browser = Browser::start("session-key-cross-origin").await;
    browser.goto(&format!("{}/", demo.host_page)).await;
    browser.wait_widget(1).await;
    assert_eq!(demo.metric(ACCEPTED).await, 1.0);

    // The widget's key, from the customer's page: the backend sees the stored context.
    let own = browser
        .js("return window.imsFlowWidget.session();", vec![])
        .await;
    let (site, session) = (
        own["siteid"].as_str().unwrap().to_owned(),
        own["jsSessionId"].as_str().unwrap().to_owned(),
    );
    let key = own["sessionKey"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 43);
    let seen = from_page(&browser, &demo).await;
    assert!(
        seen["status"].as_str().unwrap().starts_with("accepted"),
        "{seen}"
    );
    assert!(seen["context"].to_string().contains("USR-84920"), "{seen}");

    // The widget's own session route (its answer, a preflighted POST) carries the key too.
    let hits = demo.metric(HIT).await;
    browser.type_into("#ims-flow-widget input", "x").await;
    browser.click("#ims-flow-widget .imsfw-send").await;
    common::wait_until_async("the widget's answer to reach the backend", || async {
        demo.metric(HIT).await > hits
    })
    .await;

    // Another client with the session id alone, or with a key of its own: nothing.
    for k in [None, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] {
        let view = replayed(&demo, &site, &session, k).await;
        assert_eq!(view["status"], REFUSED, "{view}");
        assert_eq!(view["context"], json!([]), "{view}");
    }
    assert!(demo.metric(KEY_REFUSED).await >= 2.0);

    // Nor can it log the visitor out: its anonymous init leaves the stored context alone.
    let logout = demo.url(&format!(
        "/public_FlowWidget/init?siteid={site}&jsSessionId={session}"
    ));
    let status = reqwest::Client::new()
        .get(logout)
        .header("Origin", &demo.host_page)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    assert_eq!(demo.metric(INIT_REFUSED).await, 1.0);
    let seen = from_page(&browser, &demo).await;
    assert!(seen["context"].to_string().contains("USR-84920"), "{seen}");

    // The visitor's own reload (same session, same key) still works.
    let reloaded = browser
        .js(
            "return window.imsFlowWidget.reload().then(() => 'resolved', e => 'rejected: ' + e.message);",
            vec![],
        )
        .await;
    assert_eq!(reloaded.as_str(), Some("resolved"));
    assert_eq!(demo.metric(ACCEPTED).await, 2.0);
    browser.snapshot().await;
    browser.finish().await;
}
