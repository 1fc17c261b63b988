//! The admin listener: `/metrics` (Prometheus text) and `/healthz`.
//!
//! A Pingora service of its own next to the proxy, on `admin` (default `127.0.0.1:9464`). It
//! reads the metrics and asks the store whether it answers; it never touches requests.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;

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

/// The admin HTTP app: `/metrics` (Prometheus text) and `/healthz`.
pub(crate) struct AdminApp {
    metrics: Arc<Metrics>,
    store: Option<Arc<dyn SessionStore>>,
    config: Arc<ConfigHash>,
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
        let (status, content_type, body) = match session.req_header().uri.path() {
            "/metrics" => (200, "text/plain; version=0.0.4", self.metrics.encode()),
            "/healthz" => (200, "text/plain; charset=utf-8", self.healthz()),
            _ => (
                404,
                "text/plain; charset=utf-8",
                b"not found: try /metrics or /healthz\n".to_vec(),
            ),
        };
        let len = body.len();
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, len)
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}

/// The admin listener as a Pingora service on `addr`; `store` and `config` feed `/healthz`.
pub(crate) fn service(
    metrics: Arc<Metrics>,
    store: Option<Arc<dyn SessionStore>>,
    config: Arc<ConfigHash>,
    addr: &str,
) -> Service<HttpServer<AdminApp>> {
    let mut service = Service::new(
        "flowgate admin".to_owned(),
        HttpServer::new_app(AdminApp {
            metrics,
            store,
            config,
        }),
    );
    service.add_tcp(addr);
    service
}
