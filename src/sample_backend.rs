//! The sample chat backend behind `flowgate demo`.
//!
//! - The demo page (`/`): an example shop embedding the widget, with the operator's "Visitor
//!   Context" panel beside it, and the widget's files (`/widget/visitor-context.js`).
//! - The chat protocol the widget speaks (init asked for as `application/vnd.flowgate.chat+json`,
//!   answers on `POST /public_FlowWidget/chat`): the reference [`crate::workflow`] engine, which
//!   skips the steps the trusted `Prefill` header already answers.
//! - The operator's view of a session (`/public_FlowWidget/operator`): the stored context exactly
//!   as the edge re-attached it on that session route.
//! - Every other request (and an init asked for by `curl`) is answered with what it received —
//!   method, path and the trusted headers, with `Context` and `Prefill` decoded — as JSON, so a
//!   newcomer can see exactly what a real backend would get from the edge.
//!
//! It is a plain hyper 1 HTTP/1.1 server on a listener the caller binds (port 0 in the demo
//! and in tests). The echo reports whether each request's `Signature` verifies, the first thing
//! a real backend does with [`crate::upstream::verify`]; the demo's chat takes its pre-fill
//! through the same kit (see `State::prefill`).

mod chat;
pub(crate) mod cross_origin;
mod page;

pub use page::{DEMO_SITE, SAMPLE_CONTEXT, WIDGET_JS, escape_html};

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::headers::spoof::SpoofMatcher;
use crate::upstream;
use crate::workflow::{Prefill, Workflow};
use chat::{Chats, Refused};

/// The widget's init path (the default of flowgate's `routes.init_path`).
pub(crate) const INIT_PATH: &str = "/public_FlowWidget/init";
/// Where the widget posts answers (a session route).
pub(crate) const CHAT_PATH: &str = "/public_FlowWidget/chat";
/// The operator's view of one chat session (a session route).
pub(crate) const OPERATOR_PATH: &str = "/public_FlowWidget/operator";
/// The media type the widget asks the init route for.
pub(crate) const CHAT_TYPE: &str = "application/vnd.flowgate.chat+json";
/// The demo's workflow.
pub(crate) const DEMO_WORKFLOW: &str = include_str!("../widget/demo/workflow.json");

/// Largest answer body read.
const MAX_BODY: usize = 16 * 1024;
/// Most fields read from one answer.
const MAX_FIELDS: usize = 32;

/// Serves the sample backend on `listener` until `shutdown` completes.
///
/// `prefix` is the trusted header prefix the proxy is configured with; `verifier` holds the
/// header-signing secrets the echo checks each request's signature with (none: not checked).
pub(crate) async fn serve(
    listener: TcpListener,
    prefix: &str,
    verifier: Option<upstream::Options>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let chats = match Workflow::from_json(DEMO_WORKFLOW) {
        Ok(workflow) => Some(Mutex::new(Chats::new(Arc::new(workflow)))),
        Err(e) => {
            tracing::error!(error = %e, "sample backend: demo workflow rejected; echo only");
            None
        }
    };
    let state = Arc::new(State {
        verifier,
        prefix_len: prefix.len(),
        matcher: SpoofMatcher::new(prefix),
        chats,
    });
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "sample backend: accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(state.handle(req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

struct State {
    verifier: Option<upstream::Options>,
    prefix_len: usize,
    matcher: SpoofMatcher,
    chats: Option<Mutex<Chats>>,
}

/// The trusted header values of one request (absent ones `None`).
#[derive(Debug, Default)]
struct Trusted {
    site: Option<String>,
    session: Option<String>,
    status: Option<String>,
    context: Option<String>,
    prefill: Option<String>,
}

/// An answer as the widget posts it.
#[derive(Deserialize)]
struct Answer {
    node: String,
    values: serde_json::Map<String, Value>,
}

impl State {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let get = req.method() == Method::GET;
        if get && matches!(path, "/" | "/demo" | "/demo/") {
            let nonce = page::nonce();
            let html = page::host_page(req.uri().query().unwrap_or_default(), &nonce);
            let mut resp = reply(StatusCode::OK, "text/html; charset=utf-8", html);
            if let Ok(v) = http::HeaderValue::from_str(&page::csp(&nonce)) {
                resp.headers_mut()
                    .insert(http::header::CONTENT_SECURITY_POLICY, v);
            }
            return resp;
        }
        if get && let Some((_, kind, body)) = page::ASSETS.iter().find(|(p, _, _)| *p == path) {
            return reply(StatusCode::OK, kind, (*body).to_owned());
        }
        let Some(chats) = &self.chats else {
            return self.echo(&req);
        };
        if get && path == INIT_PATH && wants_chat(&req) {
            let trusted = self.trusted(&req);
            let Some(key) = chat_key(&trusted) else {
                return no_session();
            };
            let state = lock(chats).start(key, self.prefill(&req));
            return json_reply(StatusCode::OK, &state);
        }
        if path == CHAT_PATH && req.method() == Method::POST {
            let trusted = self.trusted(&req);
            let Some(key) = chat_key(&trusted) else {
                return no_session();
            };
            let Some(answer) = read_answer(req).await else {
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "The answer could not be read."}),
                );
            };
            let values: Vec<(String, String)> = answer
                .values
                .iter()
                .take(MAX_FIELDS)
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect();
            return match lock(chats).answer(&key, &answer.node, &values) {
                Ok(state) => json_reply(StatusCode::OK, &state),
                Err(Refused::NoChat) => json_reply(
                    StatusCode::CONFLICT,
                    &json!({"error": "This chat has not started; reload the page."}),
                ),
                Err(Refused::Stale(state)) => json_reply(StatusCode::CONFLICT, &state),
                Err(Refused::Invalid(state)) => {
                    json_reply(StatusCode::UNPROCESSABLE_ENTITY, &state)
                }
            };
        }
        if get && path == OPERATOR_PATH {
            let trusted = self.trusted(&req);
            let Some(key) = chat_key(&trusted) else {
                return no_session();
            };
            let context = trusted
                .context
                .as_deref()
                .and_then(ordered_pairs)
                .unwrap_or_default();
            let view = lock(chats).operator_view(&key, trusted.status.as_deref(), &context);
            return json_reply(StatusCode::OK, &view);
        }
        self.echo(&req)
    }

    /// The trusted headers the edge set (the suffix compared without case).
    fn trusted(&self, req: &Request<Incoming>) -> Trusted {
        let mut t = Trusted::default();
        for (name, value) in req.headers() {
            if !self.matcher.matches(name.as_str().as_bytes()) {
                continue;
            }
            let Ok(value) = value.to_str() else { continue };
            let value = Some(value.to_owned());
            match name.as_str().get(self.prefix_len..).unwrap_or_default() {
                "site" => t.site = value,
                "session" => t.session = value,
                "status" => t.status = value,
                "context" => t.context = value,
                "prefill" => t.prefill = value,
                _ => {}
            }
        }
        t
    }

    /// The pre-fill the demo's chat skips questions with, taken as a real backend takes it:
    /// from a verified request, through the kit's accessors. The demo's site is documented as
    /// `mode: off`, so it acknowledges the browser's word (`browser_prefill`); a site with
    /// signed context would call `verified_prefill`. An unverifiable request pre-fills nothing.
    fn prefill(&self, req: &Request<Incoming>) -> Prefill {
        let Some(options) = &self.verifier else {
            return Prefill::none();
        };
        match upstream::verify(req, options) {
            Ok(trusted) => trusted
                .browser_prefill(upstream::AcknowledgeUnsigned)
                .map_or_else(Prefill::none, |p| Prefill::from_pairs(p.iter())),
            Err(_) => Prefill::none(),
        }
    }

    /// What a real backend's first step says about this request: `valid`, or why not.
    fn signature_verdict(&self, req: &Request<Incoming>) -> String {
        let Some(options) = &self.verifier else {
            return "not checked (no signing secret)".to_owned();
        };
        match upstream::verify(req, options) {
            Ok(_) => "valid".to_owned(),
            Err(e) => format!("rejected: {e}"),
        }
    }

    fn echo(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let mut trusted = String::from("{");
        for (name, value) in req.headers() {
            if !self.matcher.matches(name.as_str().as_bytes()) {
                continue;
            }
            let suffix = name.as_str().get(self.prefix_len..).unwrap_or_default();
            let text = String::from_utf8_lossy(value.as_bytes());
            let rendered = match suffix {
                "context" | "prefill" => {
                    decode_json_b64(&text).unwrap_or_else(|| json_string(&text))
                }
                _ => json_string(&text),
            };
            if trusted.len() > 1 {
                trusted.push(',');
            }
            trusted.push_str(&json_string(suffix));
            trusted.push(':');
            trusted.push_str(&rendered);
        }
        trusted.push('}');
        let body = format!(
            "{{\"backend\":\"flowgate sample chat backend\",\"method\":{},\"path\":{},\"signature\":{},\"trusted\":{}}}\n",
            json_string(req.method().as_str()),
            json_string(req.uri().path()),
            json_string(&self.signature_verdict(req)),
            trusted
        );
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The decoded JSON text, kept verbatim so the pairs stay in the order flowgate sent them.
fn decode_json_b64(value: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?;
    String::from_utf8(bytes).ok()
}

fn lock(chats: &Mutex<Chats>) -> std::sync::MutexGuard<'_, Chats> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    chats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn wants_chat(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(http::header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains(CHAT_TYPE)))
}

fn chat_key(t: &Trusted) -> Option<chat::ChatKey> {
    Some((t.site.clone()?, t.session.clone()?))
}

fn no_session() -> Response<Full<Bytes>> {
    json_reply(
        StatusCode::BAD_REQUEST,
        &json!({"error": "No chat session: siteid and jsSessionId are needed."}),
    )
}

async fn read_answer(req: Request<Incoming>) -> Option<Answer> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .ok()?
        .to_bytes();
    serde_json::from_slice(&body).ok()
}

fn reply(status: StatusCode, kind: &str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(kind) {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    resp
}

fn json_reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    reply(status, "application/json", body.to_string())
}

/// The pairs of the `Context` header in the order the edge sent them.
fn ordered_pairs(value: &str) -> Option<Vec<(String, String)>> {
    struct Pairs(Vec<(String, String)>);
    impl<'de> Deserialize<'de> for Pairs {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Pairs;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object of strings")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Pairs, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = map.next_entry::<String, String>()? {
                        out.push((k, v));
                    }
                    Ok(Pairs(out))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    serde_json::from_slice::<Pairs>(&bytes).ok().map(|p| p.0)
}
