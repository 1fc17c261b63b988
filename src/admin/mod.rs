//! The admin listener: `/metrics` (Prometheus text), `/healthz`, and the erasure routes.
//!
//! A Pingora service of its own next to the proxy, on `admin` (default `127.0.0.1:9464`). It
//! reads the metrics and asks the store whether it answers; it never touches requests.
//!
//! - `auth` — the admin token check (bearer, constant time);
//! - `erase` — `DELETE /sessions/<site>[/<session>]`, their answers and counters.

mod auth;
mod erase;

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;

pub(crate) use self::auth::AdminTokens;
use self::erase::Erasure;
use crate::metrics::Metrics;
use crate::store::{SessionStore, StoreHealth};

/// The hash of the configuration in force (`sha256:` of the file's bytes), set at start and by
/// every successful reload; `/healthz` shows it so a deploy can check what is running.
#[derive(Debug)]
pub(crate) struct ConfigHash(RwLock<String>);

impl Default for ConfigHash {
    /// What a server without a configuration file of its own (the demo) reports.
    fn default() -> Self {
        ConfigHash(RwLock::new("built-in".to_owned()))
    }
}

impl ConfigHash {
    /// Records the hash of the configuration now in force.
    pub(crate) fn set(&self, hash: String) {
        if let Ok(mut h) = self.0.write() {
            *h = hash;
        }
    }

    /// The hash of the configuration in force.
    pub(crate) fn get(&self) -> String {
        self.0.read().map(|h| h.clone()).unwrap_or_default()
    }
}

/// The admin HTTP app: `/metrics` (Prometheus text), `/healthz` and erasure.
pub(crate) struct AdminApp {
    metrics: Arc<Metrics>,
    store: Option<Arc<dyn SessionStore>>,
    config: Arc<ConfigHash>,
    erasure: Erasure,
}

impl AdminApp {
    /// `/healthz`: always 200 while the proxy serves; a store that does not answer is reported
    /// as `degraded` (requests go on without stored context), not as the proxy being down. The
    /// second line names the configuration in force: `config: sha256:<hex>`.
    fn healthz(&self) -> Vec<u8> {
        let state = match self.store.as_ref().map(|s| s.health()) {
            None | Some(StoreHealth::Ok) => "ok".to_owned(),
            Some(StoreHealth::Degraded(why)) => format!("degraded: {why}"),
        };
        format!("{state}\nconfig: {}\n", self.config.get()).into_bytes()
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
/// which is off when `tokens` is `None`; `config` names the configuration in `/healthz`.
pub(crate) fn service(
    metrics: Arc<Metrics>,
    store: Option<Arc<dyn SessionStore>>,
    config: Arc<ConfigHash>,
    tokens: Option<AdminTokens>,
    addr: &str,
) -> Service<HttpServer<AdminApp>> {
    let erasure = Erasure::new(tokens, store.clone());
    let mut service = Service::new(
        "flowgate admin".to_owned(),
        HttpServer::new_app(AdminApp {
            metrics,
            store,
            config,
            erasure,
        }),
    );
    service.add_tcp(addr);
    service
}
