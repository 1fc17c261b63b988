//! The widget script in headless Chromium, against a small recording server: which context it
//! reads, how it encodes it into the init URL, its session id and `reload()`.
//!
//! The end-to-end cases through `flowgate demo` are in `tests/browser.rs`; these pin the widget's
//! own contract at the request level.
#![allow(clippy::unwrap_used)]

// The whole harness, named by path: `tests/browser/` beside this file confuses rustfmt.
#[path = "common/mod.rs"]
mod common;
#[path = "browser/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use flowgate::sample_backend::escape_html;
use harness::{Browser, DEADLINE};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, body::Incoming};
use serde_json::{Value, json};

/// One request the widget made to the chat routes.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    query: String,
    body: String,
}

impl Hit {
    /// Query parameters, percent-decoded the way flowgate decodes them (`+` stays `+`).
    fn params(&self) -> HashMap<String, String> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let v = percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .unwrap()
                    .into_owned();
                (k.to_owned(), v)
            })
            .collect()
    }

    /// The visitor context the widget sent, as the exact JSON text, or `None`.
    fn context(&self) -> Option<String> {
        let b64 = self.params().get("visitor_context")?.clone();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .expect("standard padded base64");
        Some(String::from_utf8(bytes).expect("UTF-8 JSON"))
    }
}

#[derive(Default)]
struct State {
    pages: HashMap<String, String>,
    hits: Vec<Hit>,
}

/// Serves the widget from `widget/`, host pages registered by the test, and canned chat routes.
struct Site {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

const NONCE: &str = "t3st-n0nce";
const CSP: &str = "default-src 'self'; script-src 'self' 'nonce-t3st-n0nce'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'";

impl Site {
    async fn start() -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(serve(req, &state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Site { addr, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Registers a host page with the widget tag (`attr`: the raw attribute JSON) and an optional
    /// `window.imsFlowConfig` object literal; returns its URL.
    fn page(&self, name: &str, attr: Option<&str>, config: Option<&str>) -> String {
        let attr = attr
            .map(|a| format!(" data-visitor-context='{}'", escape_html(a)))
            .unwrap_or_default();
        let config = config
            .map(|c| format!("window.imsFlowConfig = {c};"))
            .unwrap_or_default();
        let html = format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><title>{name}</title>
<script nonce="{NONCE}">
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {{
  window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
}});
{config}
</script></head><body><div id="ims-flow-widget"></div>
<script src="/widget/visitor-context.js" data-siteid="site-1"{attr}></script>
</body></html>"#
        );
        let path = format!("/{name}");
        self.state.lock().unwrap().pages.insert(path.clone(), html);
        self.url(&path)
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }

    /// Waits for the widget to make request number `n` (1-based) and returns it.
    async fn nth_hit(&self, n: usize) -> Hit {
        let started = Instant::now();
        loop {
            if let Some(hit) = self.hits().get(n - 1) {
                return hit.clone();
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the widget made no request #{n}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

fn response(status: StatusCode, kind: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", kind)
        .header("content-security-policy", CSP)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn serve(req: Request<Incoming>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let widget = |file: &str| {
        std::fs::read_to_string(format!("{}/widget/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    match path.as_str() {
        "/widget/visitor-context.js" => response(
            StatusCode::OK,
            "text/javascript",
            widget("visitor-context.js"),
        ),
        "/widget/visitor-context.css" => {
            response(StatusCode::OK, "text/css", widget("visitor-context.css"))
        }
        "/public_FlowWidget/init" | "/public_FlowWidget/chat" => {
            let body = String::from_utf8_lossy(&body).into_owned();
            let answer = serde_json::from_str::<Value>(&body).ok();
            state.lock().unwrap().hits.push(Hit {
                path: path.clone(),
                query,
                body,
            });
            let state = match answer {
                None => json!({
                    "transcript": [{"from": "bot", "text": "What is your name?"}],
                    "prompt": {"node": "ask_name", "label": "What is your name?",
                               "fields": [{"field_name": "visitor_name", "label": "Name"}]}
                }),
                Some(answer) => json!({
                    "transcript": [{"from": "bot", "text": "What is your name?"},
                                   {"from": "visitor", "text": answer["values"]["visitor_name"]}],
                    "finished": true
                }),
            };
            response(StatusCode::OK, "application/json", state.to_string())
        }
        _ => match state.lock().unwrap().pages.get(&path) {
            Some(html) => response(StatusCode::OK, "text/html; charset=utf-8", html.clone()),
            None => response(StatusCode::NOT_FOUND, "text/plain", "not found".into()),
        },
    }
}

async fn no_csp_violations(browser: &Browser) {
    let violations = browser.js("return window.cspViolations;", vec![]).await;
    assert_eq!(
        violations,
        json!([]),
        "the widget must run under a strict CSP"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_reads_the_context_and_encodes_it_into_the_init_url() {
    let site = Site::start().await;
    let browser = Browser::start("widget-encoding").await;
    let mut seen = 0;
    let mut next = || {
        seen += 1;
        seen
    };

    // The attribute, exactly as the host page wrote it (HTML-escaped, single-quoted), including
    // characters that need UTF-8 and produce `+`, `/` and `=` in base64.
    let attr = r#"{"account_id":"USR-84920","ims_username":"Zoë 山田 👩‍💻","note":"<b>'quotes' & \"more\"</b>","q":"???>>>"}"#;
    browser
        .goto(&site.page("attribute", Some(attr), None))
        .await;
    let hit = site.nth_hit(next()).await;
    assert_eq!(hit.path, "/public_FlowWidget/init");
    assert_eq!(hit.context().as_deref(), Some(attr));
    let raw = hit.query.split("visitor_context=").nth(1).unwrap();
    assert!(
        !raw.contains(['+', '/', '=']),
        "base64 must be percent-encoded: {raw}"
    );
    assert_eq!(hit.params()["siteid"], "site-1");
    browser.wait_widget(1).await;
    no_csp_violations(&browser).await;

    // The config object (an object), no attribute.
    let config = r#"{ siteid: 'site-1', visitorContext: { plan: 'Pro', ims_email: 'jane@example.com', n: 3 } }"#;
    browser.goto(&site.page("config", None, Some(config))).await;
    let hit = site.nth_hit(next()).await;
    let sent: Value = serde_json::from_str(&hit.context().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({"plan": "Pro", "ims_email": "jane@example.com", "n": 3})
    );

    // The config object given as a JSON string is sent as written.
    let config = r#"{ visitorContext: '{"plan":"Team"}' }"#;
    browser
        .goto(&site.page("config-string", None, Some(config)))
        .await;
    assert_eq!(
        site.nth_hit(next()).await.context().as_deref(),
        Some(r#"{"plan":"Team"}"#)
    );

    // Both: the attribute wins.
    let config = r#"{ visitorContext: { ims_username: 'Config Person' } }"#;
    browser
        .goto(&site.page(
            "both",
            Some(r#"{"ims_username":"Attribute Person"}"#),
            Some(config),
        ))
        .await;
    assert_eq!(
        site.nth_hit(next()).await.context().as_deref(),
        Some(r#"{"ims_username":"Attribute Person"}"#)
    );

    // A blank attribute is no attribute: the config object is used.
    browser
        .goto(&site.page("blank-attribute", Some("  "), Some(config)))
        .await;
    assert_eq!(
        site.nth_hit(next()).await.context().as_deref(),
        Some(r#"{"ims_username":"Config Person"}"#)
    );

    // No context, an empty one, or one that is not a JSON object: no parameter at all.
    for (name, attr, config) in [
        ("anonymous", None, None),
        ("empty-object", Some("{}"), None),
        ("empty-config", None, Some("{ visitorContext: {} }")),
        (
            "not-json",
            Some("{oops"),
            Some(r#"{ visitorContext: { a: '1' } }"#),
        ),
        ("array", Some(r#"["a"]"#), None),
    ] {
        browser.goto(&site.page(name, attr, config)).await;
        let hit = site.nth_hit(next()).await;
        assert!(
            !hit.params().contains_key("visitor_context"),
            "{name}: no visitor_context parameter expected, got {}",
            hit.query
        );
        assert!(hit.params().contains_key("jsSessionId"), "{name}");
    }
    browser.snapshot().await;
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_id_is_random_kept_for_the_tab_and_reload_reinitialises() {
    let site = Site::start().await;
    let browser = Browser::start("widget-session").await;
    let config = r#"{ siteid: 'site-1' }"#;
    let url = site.page("spa", None, Some(config));

    browser.goto(&url).await;
    let first = site.nth_hit(1).await;
    let id = first.params()["jsSessionId"].clone();
    assert_eq!(id.len(), 32, "128 random bits, hex: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(first.context().is_none());
    browser.wait_widget(1).await;

    // Same tab, new page load: the same session id.
    browser.goto(&url).await;
    assert_eq!(site.nth_hit(2).await.params()["jsSessionId"], id);
    browser.wait_widget(1).await;

    // A single-page app logs the visitor in, then calls reload().
    browser
        .js(
            "window.imsFlowConfig.visitorContext = { ims_username: 'Jane Smith', plan: 'Pro' };
             window.imsFlowWidget.reload();",
            vec![],
        )
        .await;
    let login = site.nth_hit(3).await;
    assert_eq!(login.params()["jsSessionId"], id);
    assert_eq!(
        login.context().as_deref(),
        Some(r#"{"ims_username":"Jane Smith","plan":"Pro"}"#)
    );
    browser.wait_widget(2).await;
    let session = browser
        .js("return window.imsFlowWidget.session();", vec![])
        .await;
    assert_eq!(session["siteid"], json!("site-1"));
    assert_eq!(session["jsSessionId"], json!(id));
    // The session's key: 32 random bytes, base64url without padding.
    assert_eq!(session["sessionKey"].as_str().map(str::len), Some(43));

    // Logout: the context is gone, reload() sends none.
    browser
        .js(
            "delete window.imsFlowConfig.visitorContext; window.imsFlowWidget.reload();",
            vec![],
        )
        .await;
    let logout = site.nth_hit(4).await;
    assert!(logout.context().is_none());
    browser.wait_widget(3).await;

    // Answering posts to the session route with the same ids; the answer is rendered as text.
    let typed = "<img src=x onerror=alert(1)>";
    browser
        .type_into("#ims-flow-widget input[name=visitor_name]", typed)
        .await;
    browser.click("#ims-flow-widget .imsfw-send").await;
    let answer = site.nth_hit(5).await;
    assert_eq!(answer.path, "/public_FlowWidget/chat");
    assert_eq!(answer.params()["jsSessionId"], id);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        body,
        json!({"node": "ask_name", "values": {"visitor_name": typed}})
    );
    browser
        .wait_js(
            "the finished chat",
            "return document.querySelector('#ims-flow-widget .imsfw-done');",
        )
        .await;
    assert_eq!(browser.text("#ims-flow-widget .imsfw-visitor").await, typed);
    assert_eq!(
        browser
            .js(
                "return document.querySelectorAll('#ims-flow-widget img').length;",
                vec![]
            )
            .await,
        json!(0)
    );
    assert_eq!(browser.alert_text().await, None);
    no_csp_violations(&browser).await;
    browser.snapshot().await;

    // A new tab (a new browsing session for sessionStorage) gets a different id.
    browser.js("sessionStorage.clear();", vec![]).await;
    browser.refresh().await;
    let fresh = site.nth_hit(6).await;
    assert_ne!(fresh.params()["jsSessionId"], id);
    browser.finish().await;
}
