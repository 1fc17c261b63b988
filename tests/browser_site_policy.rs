//! A site's context policy in headless Chromium, through the real `flowgate demo -c`: customer
//! pages on another origin (served by this test) embed the widget from the proxy, one browser
//! visiting them in turn.
//!
//! - `enforce: report`: every key of the context is kept; what `drop` would have removed is
//!   counted in `flowgate_policy_would_drop_total`.
//! - `keys.signed_only`: an unsigned `plan` is dropped (`unverified_key`), a signed token's is kept.
//! - `bind_session: true`: a token signed for one chat session, replayed into another, has its
//!   context discarded (`wrong_session`), and presented again in its own session it is refused
//!   as `replayed` (its `jti`); the chat works every time.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;
#[path = "browser/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::flowgate::TempDir;
use flowgate::sample_backend::escape_html;
use harness::{Browser, Demo};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const KEY: &str = "host-key-browser-0123456789abcdefgh";

/// The customer's site: pages registered by path, served on their own origin.
struct HostPages {
    addr: SocketAddr,
    pages: Arc<Mutex<HashMap<String, String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostPages {
    fn start() -> HostPages {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let pages: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (p, halt) = (pages.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                let page = p.lock().unwrap().get(&path).cloned();
                let (status, body) = match page {
                    Some(body) => ("200 OK", body),
                    None => ("404 Not Found", String::new()),
                };
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
                         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        HostPages {
            addr,
            pages,
            stop,
            thread: Some(thread),
        }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Registers a page embedding the widget from `proxy` for `site`, the chat session set to
    /// `session` beforehand (as a page that signs the session into its token does), with an
    /// unsigned `context` and/or a signed `token`; returns its URL.
    fn add(&self, path: &str, proxy: &str, site: &str, session: &str, embed: Embed<'_>) -> String {
        let mut tag = format!(
            "<script src=\"{}/widget/visitor-context.js\" data-siteid=\"{}\"",
            escape_html(proxy),
            escape_html(site)
        );
        if let Some(c) = embed.context {
            tag.push_str(&format!(" data-visitor-context=\"{}\"", escape_html(c)));
        }
        if let Some(t) = embed.token {
            tag.push_str(&format!(
                " data-visitor-context-token=\"{}\"",
                escape_html(t)
            ));
        }
        tag.push_str("></script>");
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{site}</title></head>\
             <body><h1>A customer's page</h1>\
             <script>sessionStorage.setItem('imsFlowWidget.jsSessionId.{site}', '{session}');</script>\
             {tag}</body></html>"
        );
        self.pages.lock().unwrap().insert(path.to_owned(), html);
        format!("{}{path}", self.origin())
    }
}

impl Drop for HostPages {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a page hands the widget.
#[derive(Clone, Copy, Default)]
struct Embed<'a> {
    context: Option<&'a str>,
    token: Option<&'a str>,
}

/// The demo's configuration: three sites listing the customer's origin.
fn config(origin: &str) -> String {
    format!(
        r#"sites:
  rep:
    origins: ["{origin}"]
    enforce: report
    mode: optional
    keys:
      allow: [ims_username]
      signed_only: [plan]
      verify: [{{kid: k1, secret: "{KEY}"}}]
  sig:
    origins: ["{origin}"]
    mode: optional
    keys:
      signed_only: [plan]
      verify: [{{kid: k1, secret: "{KEY}"}}]
  bound:
    origins: ["{origin}"]
    mode: optional
    bind_session: true
    keys:
      verify: [{{kid: k1, secret: "{KEY}"}}]
"#
    )
}

/// A token for `site` carrying `pairs` and the `extra` claims: HS256 with the sites' key, made
/// as a host site's server makes it.
fn token(site: &str, pairs: Value, extra: Value) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({"aud": site, "iat": now, "exp": now + 300});
    for (k, v) in pairs
        .as_object()
        .unwrap()
        .iter()
        .chain(extra.as_object().unwrap())
    {
        claims[k] = v.clone();
    }
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "k1"});
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(msg.as_bytes());
    format!(
        "{msg}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// A chat session id as the widget makes them (32+ characters).
fn session(name: &str) -> String {
    format!("{name}-{}", "0".repeat(32))
}

/// The context the edge attaches to `site`/`session`'s session routes, as the sample backend's
/// operator view shows it (demo-only: a real backend never returns it to a browser).
async fn stored(demo: &Demo, site: &str, session: &str) -> Vec<(String, String)> {
    let view: Value = reqwest::get(demo.url(&format!(
        "/public_FlowWidget/operator?siteid={site}&jsSessionId={session}"
    )))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    serde_json::from_value(view["context"].clone()).unwrap()
}

/// The keys of `pairs`, sorted.
fn keys(pairs: &[(String, String)]) -> Vec<&str> {
    let mut k: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    k.sort_unstable();
    k
}

/// Opens `url` and waits until its widget's chat is ready.
async fn visit(browser: &Browser, url: &str) {
    browser.goto(url).await;
    browser.wait_widget(1).await;
}

#[tokio::test]
async fn report_signed_only_and_a_replayed_session_token_in_the_browser() {
    let pages = HostPages::start();
    let dir = TempDir::new("browser-site-policy");
    let conf = dir.path().join("flowgate.yaml");
    std::fs::write(&conf, config(&pages.origin())).unwrap();
    let demo = Demo::start_with_config(&conf);
    let browser = Browser::start("site-policy").await;
    let metric = |m: &'static str| demo.metric(m);

    // enforce: report — nothing dropped, what drop would remove counted.
    let ctx = r#"{"ims_username":"Jane Smith","plan":"Pro","account_id":"USR-1"}"#;
    let s = session("rep");
    let url = pages.add(
        "/report",
        &demo.base,
        "rep",
        &s,
        Embed {
            context: Some(ctx),
            token: None,
        },
    );
    visit(&browser, &url).await;
    assert_eq!(
        keys(&stored(&demo, "rep", &s).await),
        ["account_id", "ims_username", "plan"]
    );
    for reason in ["key_not_allowed", "unverified_key"] {
        let sample =
            format!(r#"flowgate_policy_would_drop_total{{reason="{reason}",site_policy="rep"}}"#);
        assert_eq!(demo.metric(&sample).await, 1.0, "{sample}");
    }

    // signed_only: the unsigned plan is dropped, the signed one kept.
    let ctx = r#"{"ims_username":"Jane Smith","plan":"Pro"}"#;
    let s = session("unsigned");
    let url = pages.add(
        "/unsigned",
        &demo.base,
        "sig",
        &s,
        Embed {
            context: Some(ctx),
            token: None,
        },
    );
    visit(&browser, &url).await;
    assert_eq!(keys(&stored(&demo, "sig", &s).await), ["ims_username"]);
    assert_eq!(
        metric(r#"flowgate_context_pairs_dropped_total{reason="unverified_key"}"#).await,
        1.0
    );
    let t = token(
        "sig",
        json!({"ims_username": "Jane Smith", "plan": "Pro"}),
        json!({}),
    );
    let s = session("signed");
    let url = pages.add(
        "/signed",
        &demo.base,
        "sig",
        &s,
        Embed {
            context: None,
            token: Some(&t),
        },
    );
    visit(&browser, &url).await;
    let kept = stored(&demo, "sig", &s).await;
    assert!(
        kept.contains(&("plan".to_owned(), "Pro".to_owned())),
        "{kept:?}"
    );

    // bind_session: the token of session A, replayed into session B, then again in A.
    let (a, b) = (session("bound-a"), session("bound-b"));
    let t = token(
        "bound",
        json!({"ims_username": "Jane Smith", "plan": "Pro"}),
        json!({"sid": a, "jti": "one-time-1"}),
    );
    let embed = Embed {
        context: None,
        token: Some(&t),
    };
    let url = pages.add("/bound-a", &demo.base, "bound", &a, embed);
    visit(&browser, &url).await;
    assert_eq!(
        keys(&stored(&demo, "bound", &a).await),
        ["ims_username", "plan"]
    );
    let url = pages.add("/bound-b", &demo.base, "bound", &b, embed);
    visit(&browser, &url).await;
    assert!(stored(&demo, "bound", &b).await.is_empty());
    assert_eq!(
        metric(r#"flowgate_init_total{outcome="discarded",reason="wrong_session"}"#).await,
        1.0
    );
    let url = pages.add("/bound-a-again", &demo.base, "bound", &a, embed);
    visit(&browser, &url).await;
    assert_eq!(
        metric(r#"flowgate_init_total{outcome="discarded",reason="replayed"}"#).await,
        1.0
    );
    browser.snapshot().await;
    browser.finish().await;
}
