//! The admin listener: `/metrics` (Prometheus text), `/healthz`, and the erasure routes.
//!
//! A Pingora service of its own next to the proxy, on `admin` (default `127.0.0.1:9464`). It
//! reads the metrics and asks the store whether it answers; it never touches requests.
//!
//! - `auth` — the admin token check (bearer, constant time);
//! - `erase` — `DELETE /sessions/<site>[/<session>]`, their answers and counters.

mod auth;
mod erase;

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;

pub(crate) use self::auth::AdminTokens;
use self::erase::Erasure;
use crate::metrics::Metrics;
use crate::store::{SessionStore, StoreHealth};

/// The admin HTTP app: `/metrics` (Prometheus text), `/healthz` and erasure.
pub(crate) struct AdminApp {
    metrics: Arc<Metrics>,
    store: Option<Arc<dyn SessionStore>>,
    erasure: Erasure,
}

impl AdminApp {
    /// `/healthz`: always 200 while the proxy serves; a store that does not answer is reported
    /// as `degraded` (requests go on without stored context), not as the proxy being down.
    fn healthz(&self) -> Vec<u8> {
        match self.store.as_ref().map(|s| s.health()) {
            None | Some(StoreHealth::Ok) => b"ok\n".to_vec(),
            Some(StoreHealth::Degraded(why)) => format!("degraded: {why}\n").into_bytes(),
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path().to_owned();
        let (status, content_type, body) = match path.as_str() {
            "/metrics" => {
                let mut text = self.metrics.encode();
                text.extend_from_slice(&self.erasure.encode());
                (200, "text/plain; version=0.0.4", text)
            }
            "/healthz" => (200, "text/plain; charset=utf-8", self.healthz()),
            p if p.starts_with(erase::PREFIX) => {
                let method = req.method.clone();
                let authorization = req
                    .headers
                    .get(http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes().to_vec());
                let (status, body) = self
                    .erasure
                    .answer(&method, p, authorization.as_deref())
                    .await;
                (status, "application/json", body.into_bytes())
            }
            _ => (
                404,
                "text/plain; charset=utf-8",
                b"not found: try /metrics, /healthz or DELETE /sessions/<siteid>[/<jsSessionId>]\n"
                    .to_vec(),
            ),
        };
        let len = body.len();
        let mut response = Response::builder();
        if status == 401 {
            response = response.header(http::header::WWW_AUTHENTICATE, "Bearer");
        }
        if status == 405 {
            response = response.header(http::header::ALLOW, "DELETE");
        }
        response
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, len)
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}

/// The admin listener as a Pingora service on `addr`; `store` feeds `/healthz` and erasure,
/// which is off when `tokens` is `None`.
pub(crate) fn service(
    metrics: Arc<Metrics>,
    store: Option<Arc<dyn SessionStore>>,
    tokens: Option<AdminTokens>,
    addr: &str,
) -> Service<HttpServer<AdminApp>> {
    let erasure = Erasure::new(tokens, store.clone());
    let mut service = Service::new(
        "flowgate admin".to_owned(),
        HttpServer::new_app(AdminApp {
            metrics,
            store,
            erasure,
        }),
    );
    service.add_tcp(addr);
    service
}
