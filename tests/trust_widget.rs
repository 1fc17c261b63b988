//! End to end in headless Chromium: a host page embeds the widget with a context its server
//! signed; the widget sends the token through the real flowgate binary (site in `required`
//! mode) to a backend that records what it received. A page that only forges an unsigned
//! context gets no identity pre-fill.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "browser/harness.rs"]
mod harness;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use common::decode_json;
use common::flowgate::Flowgate;
use flowgate::trust::sign::{HostKey, sign_context};
use harness::{Browser, DEADLINE};
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming};
use serde_json::json;

const SIGNING: &str = "edge-signing-secret-widget-0123456789";
const HOST_KEY: &str = "host-site-key-widget-0123456789abcd";

/// The headers of one request, names lower-cased (`:path` added last).
type Headers = Vec<(String, String)>;

/// The chat backend: serves the host pages and the widget files, records init requests.
struct Backend {
    addr: SocketAddr,
    pages: Arc<Mutex<Vec<(String, String)>>>,
    inits: Arc<Mutex<Vec<Headers>>>,
}

impl Backend {
    async fn start() -> Backend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pages = Arc::new(Mutex::new(Vec::new()));
        let inits = Arc::new(Mutex::new(Vec::new()));
        let (p, i) = (pages.clone(), inits.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (p, i) = (p.clone(), i.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (p, i) = (p.clone(), i.clone());
                        async move { Ok::<_, Infallible>(serve(&req, &p, &i)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Backend { addr, pages, inits }
    }

    fn page(&self, path: &str, attrs: &str) {
        let html = format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><title>host</title></head>
<body><div id="ims-flow-widget"></div>
<script src="/widget/visitor-context.js" data-siteid="site-1"{attrs}></script></body></html>"#
        );
        self.pages.lock().unwrap().push((path.to_owned(), html));
    }

    async fn nth_init(&self, n: usize) -> Headers {
        let started = Instant::now();
        loop {
            if let Some(h) = self.inits.lock().unwrap().get(n - 1) {
                return h.clone();
            }
            assert!(started.elapsed() < DEADLINE, "no init request #{n}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

fn serve(
    req: &Request<Incoming>,
    pages: &Mutex<Vec<(String, String)>>,
    inits: &Mutex<Vec<Headers>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let file = |name: &str| {
        std::fs::read_to_string(format!("{}/widget/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let (kind, body) = match path {
        "/widget/visitor-context.js" => ("text/javascript", file("visitor-context.js")),
        "/widget/visitor-context.css" => ("text/css", file("visitor-context.css")),
        "/public_FlowWidget/init" => {
            let mut headers: Headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            headers.push((":path".into(), path.to_owned()));
            let target = req.uri().path_and_query().map_or(path, |pq| pq.as_str());
            headers.push((":target".into(), target.to_owned()));
            headers.push((":method".into(), req.method().to_string()));
            inits.lock().unwrap().push(headers);
            let state = json!({"transcript": [{"from": "bot", "text": "Hello"}], "finished": true});
            ("application/json", state.to_string())
        }
        _ => match pages.lock().unwrap().iter().find(|(p, _)| p == path) {
            Some((_, html)) => ("text/html; charset=utf-8", html.clone()),
            None => ("text/plain", "not found".to_owned()),
        },
    };
    Response::builder()
        .header("content-type", kind)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_context_pre_fills_and_a_forged_one_does_not() {
    let backend = Backend::start().await;
    let fg = Flowgate::options()
        .upstream(backend.addr.to_string())
        .env("FLOWGATE_SIGNING_SECRET", SIGNING)
        .yaml(&format!(
            "sites:\n  site-1:\n    mode: required\n    keys:\n      - {{kid: k1, secret: \"{HOST_KEY}\"}}\n"
        ))
        .start();
    let key = HostKey {
        kid: "k1",
        secret: HOST_KEY.as_bytes(),
        alg: jsonwebtoken::Algorithm::HS256,
    };
    let token = sign_context(
        &[("account_id", "USR-1"), ("ims_email", "jane@example.com")],
        "site-1",
        &key,
        jsonwebtoken::get_current_timestamp(),
        300,
    )
    .unwrap();
    let forged = r#"{"plan":"Free","ims_email":"mallory@example.com"}"#;
    backend.page(
        "/signed",
        &format!(" data-visitor-context-token=\"{token}\" data-visitor-context='{forged}'"),
    );
    backend.page("/forged", &format!(" data-visitor-context='{forged}'"));

    let browser = Browser::start("trust-widget").await;
    browser.goto(&fg.url("/signed")).await;
    let init = backend.nth_init(1).await;
    assert_eq!(
        header(&init, "x-flowgate-status"),
        Some("accepted; verified")
    );
    assert_eq!(
        decode_json(header(&init, "x-flowgate-prefill").unwrap()),
        json!({"visitor_email": "jane@example.com", "email": "jane@example.com"})
    );
    // The backend checks flowgate's signature on what it received.
    let mut map = http::HeaderMap::new();
    for (k, v) in init.iter().filter(|(k, _)| !k.starts_with(':')) {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let view = flowgate::upstream::RequestView::new(
        header(&init, ":method").unwrap(),
        header(&init, ":target").unwrap(),
        |name: &str| map.get(name).and_then(|v| v.to_str().ok()),
    );
    let options = flowgate::upstream::Options::new(&[SIGNING]).unwrap();
    let trusted = flowgate::upstream::verify(&view, &options).unwrap();
    assert!(trusted.is_verified());
    assert_eq!(
        trusted.verified_prefill().unwrap().get("email"),
        Some("jane@example.com")
    );

    browser.goto(&fg.url("/forged")).await;
    let init = backend.nth_init(2).await;
    assert_eq!(
        header(&init, "x-flowgate-status"),
        Some("accepted; unverified")
    );
    assert_eq!(
        decode_json(header(&init, "x-flowgate-context").unwrap()),
        json!({"plan": "Free"})
    );
    assert_eq!(
        decode_json(header(&init, "x-flowgate-prefill").unwrap()),
        json!({})
    );
    browser.finish().await;
}
