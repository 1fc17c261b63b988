//! A real upstream HTTP server on 127.0.0.1:0 that records what it received.
//!
//! It runs on its own thread and runtime, so sync and async tests can both use it. Every
//! response carries prefixed headers (`X-Flowgate-Leak`, `x_flowgate_context`) that the proxy
//! must strip, and `X-Upstream: ok`, which it must keep. Requests whose path starts with
//! `/hold` wait until the test calls [`Upstream::release`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::{Semaphore, oneshot};

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// The request target exactly as received (origin-form `path?query`, or a whole URL).
    pub target: String,
    /// Every header, in order, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (case-insensitive).
    pub fn all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every header whose name starts with `x-flowgate-` or `x_flowgate_` (any case), as sent.
    pub fn flowgate_headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .filter(|(n, _)| n.replace('_', "-").starts_with("x-flowgate-"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

/// The running upstream; stops on drop.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    gate: Arc<Semaphore>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start() -> Upstream {
        Upstream::start_at(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Binds `addr` and starts serving: the address of a stopped upstream brings it back.
    pub fn start_at(addr: SocketAddr) -> Upstream {
        let listener = std::net::TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Semaphore::new(0));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (rec, g) = (received.clone(), gate.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (stream, _) = tokio::select! {
                        a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                        _ = &mut stopped => return,
                    };
                    let (rec, g) = (rec.clone(), g.clone());
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let (rec, g) = (rec.clone(), g.clone());
                            async move { Ok::<_, Infallible>(handle(req, rec, g).await) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        Upstream {
            addr,
            received,
            gate,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `host:port` for the proxy's configuration.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The last request received; panics if none.
    pub fn last(&self) -> Received {
        self.received()
            .pop()
            .expect("the upstream received nothing")
    }

    /// Lets `n` held (`/hold…`) requests answer.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.gate.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    received: Arc<Mutex<Vec<Received>>>,
    gate: Arc<Semaphore>,
) -> Response<Full<Bytes>> {
    let r = Received {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        target: req.uri().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    let hold = r.path.starts_with("/hold");
    received.lock().unwrap().push(r);
    if hold {
        // Closed on drop: then answer anyway.
        if let Ok(permit) = gate.acquire().await {
            permit.forget();
        }
    }
    Response::builder()
        .status(200)
        .header("Content-Type", "text/plain")
        .header("X-Upstream", "ok")
        .header("X-Flowgate-Leak", "secret")
        .header("x_flowgate_context", "eyJsZWFrIjoxfQ==")
        .body(Full::new(Bytes::from_static(b"upstream says hi\n")))
        .unwrap()
}
