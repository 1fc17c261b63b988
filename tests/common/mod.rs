//! Test harness: real processes and servers on free ports, readiness by deadline, cleanup on
//! drop. Each file owns one kind of part; add a `pub mod` line for a new one.
#![allow(dead_code, clippy::unwrap_used)]

pub mod curl;
pub mod echo;
pub mod flowgate;
pub mod inprocess;
pub mod kits;
pub mod node;
pub mod php_server;
pub mod ports;
pub mod process;
pub mod raw;
pub mod redis;
pub mod redis_cluster;
pub mod store_routes;
pub mod temp;
pub mod tls;
pub mod upstream;

use std::time::{Duration, Instant};

/// How long any start-up or condition may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` until it holds or [`DEADLINE`] passes; panics with `what` on timeout.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(DEADLINE, what, || cond().then_some(()));
}

/// Polls `f` every 10 ms until it returns `Some`, or panics with `what` after `deadline`.
pub fn wait_for<T>(deadline: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Async [`wait_until`].
pub async fn wait_until_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Standard base64 of `s`, as the widget sends it.
pub fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Decodes a base64 JSON header value.
pub fn decode_json(value: &str) -> serde_json::Value {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {value}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {value}"))
}
