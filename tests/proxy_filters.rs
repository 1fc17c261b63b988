//! Single phases of the proxy driven with a mock-IO Pingora `Session` (no sockets), and the
//! library entry running a real Pingora `Server` in a thread.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::inprocess::InProcess;
use common::upstream::Upstream;
use flowgate::config::Config;
use flowgate::metrics::Metrics;
use flowgate::proxy::{Flowgate, Runtime, Upstreams};
use flowgate::trust::TrustPolicy;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{ProxyHttp, Session};

fn proxy(config: &Config) -> Flowgate {
    let metrics = Arc::new(Metrics::new());
    let store = flowgate::store::build(&config.store, None).unwrap();
    let (upstreams, _) = Upstreams::build(config).unwrap();
    let runtime = Runtime::new(config, upstreams, TrustPolicy::new(), None);
    Flowgate::new(runtime, store, metrics)
}

async fn session(request: &str) -> Session {
    let io = tokio_test::io::Builder::new()
        .read(request.as_bytes())
        .build();
    let mut s = Session::new_h1(Box::new(io));
    assert!(s.read_request().await.unwrap());
    s
}

#[tokio::test]
async fn request_filter_strips_first_then_decides() {
    let fg = proxy(&Config::default());
    let mut s = session(
        "GET /public_FlowWidget/chat?siteid=s&jsSessionId=j HTTP/1.1\r\nHost: x\r\n\
         X_Flowgate_Context: forged\r\nx-flowgate-status: accepted\r\nx-flowgate-status: accepted\r\n\r\n",
    )
    .await;
    let mut ctx = fg.new_ctx();
    assert!(!fg.request_filter(&mut s, &mut ctx).await.unwrap());
    assert_eq!(
        s.req_header().headers.len(),
        1,
        "{:?}",
        s.req_header().headers
    );
    assert_eq!(ctx.trusted().status.as_deref(), Some("absent"));
    assert_eq!(ctx.trusted().site.as_deref(), Some("s"));
    assert_eq!(ctx.trusted().context, None);

    // The upstream request gets exactly the decided headers.
    let mut upstream = RequestHeader::build("GET", b"/public_FlowWidget/chat", None).unwrap();
    fg.upstream_request_filter(&mut s, &mut upstream, &mut ctx)
        .await
        .unwrap();
    let names: Vec<&str> = upstream.headers.keys().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        ["x-flowgate-site", "x-flowgate-session", "x-flowgate-status"]
    );
}

#[tokio::test]
async fn response_filter_strips_prefixed_headers() {
    let fg = proxy(&Config::default());
    let mut s = session("GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut ctx = fg.new_ctx();
    let mut resp = ResponseHeader::build(200, None).unwrap();
    resp.append_header("X-Flowgate-Context", "e30=").unwrap();
    resp.append_header("x_flowgate_prefill", "e30=").unwrap();
    resp.append_header("Content-Type", "text/plain").unwrap();
    fg.response_filter(&mut s, &mut resp, &mut ctx)
        .await
        .unwrap();
    let names: Vec<&str> = resp.headers.keys().map(|n| n.as_str()).collect();
    assert_eq!(names, ["content-type"]);
}

#[tokio::test]
async fn the_library_entry_runs_a_real_server_in_a_thread() {
    let up = Upstream::start();
    let config = Config {
        upstreams: vec![up.host_port()],
        ..Config::default()
    };
    let server = InProcess::start(config);
    let ctx = common::b64(r#"{"ims_username":"Jane"}"#);
    let resp = reqwest::get(server.url(&format!(
        "/public_FlowWidget/init?siteid=s&jsSessionId=j&visitor_context={ctx}"
    )))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.last().header("x-flowgate-status"), Some("accepted"));
    let text = String::from_utf8(server.metrics.encode()).unwrap();
    assert!(text.contains(r#"flowgate_init_total{outcome="accepted",reason=""} 1"#));
}

/// The runtime seam a reload will use: a swap changes what new requests see, while a request
/// that already took the old runtime finishes with it.
#[tokio::test]
async fn a_swapped_runtime_serves_new_requests_and_in_flight_ones_keep_theirs() {
    let fg = proxy(&Config::default());
    let request = "GET /public_FlowWidget/init?siteid=s&jsSessionId=j HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut before = session(request).await;
    let mut before_ctx = fg.new_ctx();

    let mut edge = Config::default();
    edge.headers.prefix = "X-Edge-".to_owned();
    let (upstreams, _) = Upstreams::build(&edge).unwrap();
    let old = fg
        .runtime()
        .swap(Runtime::new(&edge, upstreams, TrustPolicy::new(), None));
    assert!(
        std::sync::Arc::strong_count(&old) >= 2,
        "the request in flight holds it"
    );

    let mut after = session(request).await;
    let mut after_ctx = fg.new_ctx();
    let mut sent = Vec::new();
    for (s, ctx) in [(&mut before, &mut before_ctx), (&mut after, &mut after_ctx)] {
        assert!(!fg.request_filter(s, ctx).await.unwrap());
        let mut upstream = RequestHeader::build("GET", b"/public_FlowWidget/init", None).unwrap();
        fg.upstream_request_filter(s, &mut upstream, ctx)
            .await
            .unwrap();
        let names: Vec<String> = upstream.headers.keys().map(|n| n.to_string()).collect();
        sent.push(names);
    }
    assert_eq!(
        sent[0],
        ["x-flowgate-site", "x-flowgate-session", "x-flowgate-status"]
    );
    assert_eq!(sent[1], ["x-edge-site", "x-edge-session", "x-edge-status"]);
}
