//! The sample chat backend behind `flowgate demo`: it answers every request with what it
//! received — method, path and the trusted headers, with `Context` and `Prefill` decoded — as
//! JSON, so a newcomer can see exactly what a real backend would get from the edge.
//!
//! It is a plain hyper 1 HTTP/1.1 server on a listener the caller binds (port 0 in the demo
//! and in tests). It trusts the headers blindly; a real backend verifies the signature first.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::headers::spoof::SpoofMatcher;

/// Serves the sample backend on `listener` until `shutdown` completes.
///
/// `prefix` is the trusted header prefix the proxy is configured with.
pub async fn serve(
    listener: TcpListener,
    prefix: &str,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let state = Arc::new(State {
        prefix_len: prefix.len(),
        matcher: SpoofMatcher::new(prefix),
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
                async move { Ok::<_, Infallible>(state.answer(&req)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

struct State {
    prefix_len: usize,
    matcher: SpoofMatcher,
}

impl State {
    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
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
            "{{\"backend\":\"flowgate sample chat backend\",\"method\":{},\"path\":{},\"trusted\":{}}}\n",
            json_string(req.method().as_str()),
            json_string(req.uri().path()),
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
