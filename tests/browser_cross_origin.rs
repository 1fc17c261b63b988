//! The cross-origin embedding in headless Chromium through the real `flowgate demo`: a
//! customer's page on another origin (the demo's host page) loads the widget from the proxy.
//! A listed origin gets its chat and its context; from an unlisted one the browser stops at the
//! edge's preflight answer (no `Access-Control-Allow-Origin`; the widget's session-key header
//! makes every widget request preflighted), so nothing is sent and nothing is readable; a
//! preflight with the widget's headers is answered by the edge; `reload()` rejects when the
//! init fails.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;
#[path = "browser/harness.rs"]
mod harness;

use harness::{Browser, Demo};

const ACCEPTED: &str = r#"flowgate_init_total{outcome="accepted",reason=""}"#;
const ORIGIN: &str = r#"flowgate_init_total{outcome="discarded",reason="origin"}"#;
const INIT_ROUTE: &str = r#"flowgate_requests_total{route="init"}"#;

/// A POST with a JSON body and the session-key header (so the browser sends a preflight) to the
/// chat route, from the page: its status, or "blocked" when the browser withheld it.
const CROSS_POST: &str = "return fetch(arguments[0] + '/public_FlowWidget/chat?siteid=demo-site&jsSessionId=preflight-1', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Flowgate-Session-Key': 'k' },
        body: '{}',
    }).then(r => String(r.status), () => 'blocked');";

#[tokio::test]
async fn a_listed_origin_gets_its_chat_and_context_across_origins() {
    let demo = Demo::start();
    let browser = Browser::start("cross-origin-listed").await;
    browser.goto(&format!("{}/", demo.host_page)).await;
    browser.wait_widget(1).await;
    assert_eq!(demo.metric(ACCEPTED).await, 1.0);
    assert_eq!(demo.metric(ORIGIN).await, 0.0);
    // The pre-fill answered name and email: the widget does not ask for them.
    let fields = browser
        .js(
            "return Array.from(document.querySelectorAll('#ims-flow-widget input')).map(i => i.name).join(',');",
            vec![],
        )
        .await;
    assert!(!fields.as_str().unwrap().contains("email"), "{fields}");
    // A preflighted request with the widget's headers goes through.
    let status = browser
        .js(CROSS_POST, vec![serde_json::json!(demo.base)])
        .await;
    assert_ne!(status.as_str(), Some("blocked"));
    // reload() resolves when the init works.
    let reloaded = browser
        .js(
            "return window.imsFlowWidget.reload().then(() => 'resolved', e => 'rejected: ' + e.message);",
            vec![],
        )
        .await;
    assert_eq!(reloaded.as_str(), Some("resolved"));
    browser.snapshot().await;
    browser.finish().await;
}

#[tokio::test]
async fn a_foreign_origin_loses_its_context_and_reload_rejects() {
    let demo = Demo::start();
    let browser = Browser::start("cross-origin-foreign").await;
    // Same page, another origin: `localhost` is not the listed `127.0.0.1`.
    let foreign = demo.host_page.replace("127.0.0.1", "localhost");
    browser.goto(&format!("{foreign}/")).await;
    browser
        .wait_js(
            "the widget to report the failure",
            "const w = document.getElementById('ims-flow-widget');
             return w && w.getAttribute('data-status') === 'error';",
        )
        .await;
    // The init carries the widget's session key, so the browser preflights it: the edge
    // answered the preflight without an allow-origin, and the init itself never left the browser.
    assert!(demo.metric(INIT_ROUTE).await >= 1.0);
    assert_eq!(demo.metric(ORIGIN).await, 0.0);
    assert_eq!(demo.metric(ACCEPTED).await, 0.0);
    let reloaded = browser
        .js(
            "return window.imsFlowWidget.reload().then(() => 'resolved', e => 'rejected: ' + e.message);",
            vec![],
        )
        .await;
    assert!(
        reloaded.as_str().unwrap().starts_with("rejected"),
        "{reloaded}"
    );
    // The preflight is answered at the edge without an allow-origin: the browser blocks.
    let status = browser
        .js(CROSS_POST, vec![serde_json::json!(demo.base)])
        .await;
    assert_eq!(status.as_str(), Some("blocked"));
    browser.snapshot().await;
    browser.finish().await;
}
