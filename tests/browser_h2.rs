//! The demo over HTTPS in headless Chromium: `flowgate demo --tls` makes a CA and a
//! certificate for the run, Chromium trusts it through the flag the demo prints
//! (`--ignore-certificate-errors-spki-list`), and the widget works over HTTP/2 — the browser's
//! own resource timing reports `h2` for the page, the widget script and its init request.
#![allow(clippy::unwrap_used)]

// The whole harness, named by path: `tests/browser/` beside this file confuses rustfmt.
#[path = "common/mod.rs"]
mod common;
#[path = "browser/harness.rs"]
mod harness;

use harness::{Browser, Demo};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_works_over_https_and_http2() {
    let demo = Demo::start_tls();
    let flag = demo
        .trust_flag
        .clone()
        .expect("flowgate demo --tls prints the Chromium flag that trusts its certificate");
    let browser = Browser::start_with("https-h2", &[flag]).await;
    browser.goto(&demo.url("/?as=jane&via=attribute")).await;
    browser.wait_widget(1).await;
    assert_eq!(
        browser.js("return location.protocol;", vec![]).await,
        "https:"
    );

    // The chat works: the stored context pre-filled name and email.
    let step = browser
        .js(
            "const f = document.querySelector('#ims-flow-widget form');
             return f ? f.getAttribute('data-node') : '';",
            vec![],
        )
        .await;
    assert_eq!(step, "contact");

    let navigation = browser
        .js(
            "return performance.getEntriesByType('navigation')[0].nextHopProtocol;",
            vec![],
        )
        .await;
    assert_eq!(navigation, "h2");
    let resources = browser
        .js(
            "return performance.getEntriesByType('resource')
                .map(e => [new URL(e.name).pathname, e.nextHopProtocol]);",
            vec![],
        )
        .await;
    let resources: Vec<(String, String)> = serde_json::from_value(resources).unwrap();
    let init = resources
        .iter()
        .find(|(path, _)| path.ends_with("/init"))
        .unwrap_or_else(|| panic!("no init request in {resources:?}"));
    assert_eq!(init.1, "h2", "{resources:?}");
    let script = resources
        .iter()
        .find(|(path, _)| path.ends_with(".js"))
        .unwrap_or_else(|| panic!("no script in {resources:?}"));
    assert_eq!(script.1, "h2", "{resources:?}");
    assert!(
        resources.iter().all(|(_, p)| p == "h2" || p.is_empty()),
        "{resources:?}"
    );
    let _: Value = browser.js("return true;", vec![]).await;
    browser.snapshot().await;
    browser.finish().await;
}
