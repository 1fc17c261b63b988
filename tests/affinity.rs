//! Session affinity over several upstreams through the real binary: sessions spread over the
//! upstreams and each stays on its node (init and session routes), requests without ids stick
//! by client address, `round_robin` alternates, a node going down moves only its sessions (and
//! they come back), a reload switches the mode; then the real Socket.IO stack (`tests/node`)
//! with two backends: polling and the upgrade connect by session, fail under round robin, and
//! the clients of a backend that goes down reconnect to the other.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::flowgate::Flowgate;
use common::node::{self, ChatBackend, NodeClient};
use common::upstream::Upstream;
use common::{DEADLINE, wait_until_async};
use serde_json::Value;

const SESSION_PICKS: &str = r#"flowgate_upstream_picks_total{how="session"}"#;
const CLIENT_PICKS: &str = r#"flowgate_upstream_picks_total{how="client_address"}"#;
const ROUND_ROBIN_PICKS: &str = r#"flowgate_upstream_picks_total{how="round_robin"}"#;
const RELOADS_OK: &str = r#"flowgate_config_reloads_total{result="ok"}"#;
/// Every session id in these tests starts with this; the log must never show it.
const ID_PREFIX: &str = "visitor-";

fn init(id: &str) -> String {
    format!("/public_FlowWidget/init?siteid=s&jsSessionId={id}")
}

/// Session-route requests of one session, as the widget and its Socket.IO client send them
/// (parameters in another order, one of them percent-encoded).
fn session_paths(id: &str) -> [String; 3] {
    [
        format!("/public_FlowWidget/chat/poll?siteid=s&jsSessionId={id}"),
        format!("/public_FlowWidget/socket.io/?EIO=4&transport=polling&jsSessionId={id}&siteid=s"),
        format!("/public_FlowWidget/chat/send?siteid=%73&jsSessionId={id}"),
    ]
}

/// Sends requests, each with a unique `probe` parameter, and finds which upstream got it.
#[derive(Default)]
struct Prober {
    client: reqwest::Client,
    n: AtomicUsize,
}

impl Prober {
    /// The index in `nodes` of the upstream that answered `path` (with `X-Forwarded-For: xff`).
    async fn node(
        &self,
        fg: &Flowgate,
        nodes: &[&Upstream],
        path: &str,
        xff: Option<&str>,
    ) -> usize {
        let probe = format!("probe={}", self.n.fetch_add(1, Ordering::Relaxed));
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut req = self.client.get(fg.url(&format!("{path}{sep}{probe}")));
        if let Some(xff) = xff {
            req = req.header("X-Forwarded-For", xff);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let got = |u: &Upstream| {
            u.received().iter().any(|r| {
                r.query
                    .as_deref()
                    .is_some_and(|q| q.split('&').any(|p| p == probe))
            })
        };
        let hits: Vec<usize> = (0..nodes.len()).filter(|&i| got(nodes[i])).collect();
        assert_eq!(hits.len(), 1, "{path}: served by {hits:?}");
        hits[0]
    }

    /// The node of each session, asked on its session route.
    async fn placement(&self, fg: &Flowgate, nodes: &[&Upstream], ids: &[String]) -> Vec<usize> {
        let mut placed = Vec::with_capacity(ids.len());
        for id in ids {
            placed.push(self.node(fg, nodes, &session_paths(id)[0], None).await);
        }
        placed
    }
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{ID_PREFIX}{i}")).collect()
}

fn assert_no_id_logged(fg: &Flowgate) {
    let log = fg.log();
    assert!(
        !log.contains(ID_PREFIX),
        "a session id reached the log:\n{log}"
    );
}

#[tokio::test]
async fn sessions_spread_over_both_upstreams_and_each_stays_on_its_node() {
    let (a, b) = (Upstream::start(), Upstream::start());
    // No `balance:`: session is the default once several upstreams are listed.
    let fg = Flowgate::options()
        .upstream(a.host_port())
        .upstream(b.host_port())
        .start();
    let (nodes, p) = ([&a, &b], Prober::default());
    let mut per_node = [0; 2];
    for id in ids(40) {
        let first = p.node(&fg, &nodes, &init(&id), None).await;
        for path in session_paths(&id) {
            assert_eq!(p.node(&fg, &nodes, &path, None).await, first, "{path}");
        }
        per_node[first] += 1;
    }
    assert!(
        per_node.iter().all(|&n| n > 0),
        "sessions per node: {per_node:?}"
    );
    eprintln!("40 sessions per node: {per_node:?}");
    fg.assert_metrics(&[
        (SESSION_PICKS, 160.0),
        (CLIENT_PICKS, 0.0),
        (ROUND_ROBIN_PICKS, 0.0),
    ])
    .await;
    assert_no_id_logged(&fg);
}

#[tokio::test]
async fn requests_without_a_session_stick_by_client_address() {
    let (a, b) = (Upstream::start(), Upstream::start());
    // The test's connections come from a trusted proxy: the client is the forwarded address.
    let fg = Flowgate::options()
        .upstream(a.host_port())
        .upstream(b.host_port())
        .yaml("client_ip:\n  trusted_proxies: [\"127.0.0.1\"]\n")
        .start();
    let (nodes, p) = ([&a, &b], Prober::default());
    let mut per_node = [0; 2];
    for i in 0..30 {
        let xff = format!("198.51.100.{i}");
        let first = p.node(&fg, &nodes, "/other/page", Some(&xff)).await;
        for path in [
            "/public_FlowWidget/chat/poll?siteid=s",
            "/public_FlowWidget/init",
            "/public_FlowWidget/init?siteid=s&jsSessionId=not%20valid",
            // An address the client itself claims in front of its real one changes nothing.
            "/static/app.js",
        ] {
            let chain = format!("203.0.113.9, {xff}");
            assert_eq!(
                p.node(&fg, &nodes, path, Some(&chain)).await,
                first,
                "{path}"
            );
        }
        per_node[first] += 1;
    }
    assert!(
        per_node.iter().all(|&n| n > 0),
        "clients per node: {per_node:?}"
    );
    fg.assert_metrics(&[(CLIENT_PICKS, 150.0), (SESSION_PICKS, 0.0)])
        .await;
}

#[tokio::test]
async fn round_robin_alternates_even_within_a_session() {
    let (a, b) = (Upstream::start(), Upstream::start());
    let fg = Flowgate::options()
        .upstream(a.host_port())
        .upstream(b.host_port())
        .yaml("upstream:\n  balance: round_robin\n")
        .start();
    let (nodes, p) = ([&a, &b], Prober::default());
    let path = &session_paths(&format!("{ID_PREFIX}rr"))[0];
    let mut served = Vec::new();
    for _ in 0..10 {
        served.push(p.node(&fg, &nodes, path, None).await);
    }
    assert!(served.windows(2).all(|w| w[0] != w[1]), "{served:?}");
    fg.assert_metrics(&[(ROUND_ROBIN_PICKS, 10.0), (SESSION_PICKS, 0.0)])
        .await;
}

#[tokio::test]
async fn a_node_going_down_moves_only_its_sessions_and_they_come_back() {
    let mut nodes = vec![Upstream::start(), Upstream::start(), Upstream::start()];
    let mut options = Flowgate::options().yaml("upstream:\n  health_check_interval_ms: 100\n");
    for n in &nodes {
        options = options.upstream(n.host_port());
    }
    let fg = options.start();
    let p = Prober::default();
    let ids = ids(45);
    let before = p
        .placement(&fg, &nodes.iter().collect::<Vec<_>>(), &ids)
        .await;
    let moving: Vec<usize> = (0..ids.len()).filter(|&i| before[i] == 0).collect();
    assert!(!moving.is_empty() && moving.len() < ids.len(), "{before:?}");

    // Node 0 goes down. Its sessions move (a refused connection is retried along the ring at
    // once); every other session stays where it was.
    let addr = nodes[0].addr;
    drop(nodes.remove(0));
    let up: Vec<&Upstream> = nodes.iter().collect();
    let during = p.placement(&fg, &up, &ids).await;
    for (i, (&was, &now)) in before.iter().zip(&during).enumerate() {
        if was != 0 {
            assert_eq!(now + 1, was, "session {i} moved though its node is up");
        }
    }
    // Once the health check has seen it down, the ring skips it without trying it: one pick
    // per request, no retry.
    let moved = &session_paths(&ids[moving[0]])[0];
    wait_until_async("the health check to mark the node down", || async {
        let picks = fg.metric(SESSION_PICKS).await;
        p.node(&fg, &up, moved, None).await;
        fg.metric(SESSION_PICKS).await == picks + 1.0
    })
    .await;
    assert_eq!(p.placement(&fg, &up, &ids).await, during);

    // Back on the same address: its sessions return to it, the others still stay put.
    nodes.insert(0, Upstream::start_at(addr));
    let all: Vec<&Upstream> = nodes.iter().collect();
    wait_until_async("the sessions to return to their node", || async {
        p.placement(&fg, &all, &ids).await == before
    })
    .await;
    assert_eq!(
        fg.metric(r#"flowgate_upstream_errors_total{kind="connect"}"#)
            .await,
        0.0,
        "a request failed while a node was down"
    );
    assert_no_id_logged(&fg);
}

#[tokio::test]
async fn a_reload_switches_between_session_and_round_robin() {
    let (a, b) = (Upstream::start(), Upstream::start());
    let fg = Flowgate::options()
        .upstream(a.host_port())
        .upstream(b.host_port())
        .start();
    let (nodes, p) = ([&a, &b], Prober::default());
    let path = &session_paths(&format!("{ID_PREFIX}reload"))[0];
    let home = p.node(&fg, &nodes, path, None).await;
    let path_file = fg.dir().join("flowgate.yaml");
    let original = std::fs::read_to_string(&path_file).unwrap();
    let mut reloads = 0.0;
    for balance in ["round_robin", "session", "round_robin", "session"] {
        std::fs::write(
            &path_file,
            format!("{original}upstream:\n  balance: {balance}\n"),
        )
        .unwrap();
        fg.signal("HUP");
        reloads += 1.0;
        wait_until_async("the reload to be counted", || async {
            fg.metric(RELOADS_OK).await == reloads
        })
        .await;
        let mut served = Vec::new();
        for _ in 0..6 {
            served.push(p.node(&fg, &nodes, path, None).await);
        }
        if balance == "session" {
            // The ring depends only on the upstreams: the session is back on its node.
            assert!(served.iter().all(|&n| n == home), "{served:?}");
        } else {
            assert!(served.windows(2).all(|w| w[0] != w[1]), "{served:?}");
        }
    }
    assert_no_id_logged(&fg);
}

#[test]
fn flowgate_check_names_an_unknown_balance_mode_and_the_fix() {
    let dir = common::temp::TempDir::new("affinity-check");
    let conf = dir.path().join("flowgate.yaml");
    std::fs::write(
        &conf,
        "upstreams: [\"a:1\", \"b:2\"]\nupstream:\n  balance: ip_hash\n",
    )
    .unwrap();
    let out = common::flowgate::check(&conf);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("upstream.balance: \"ip_hash\" is not a balance mode"),
        "{err}"
    );
    assert!(
        err.contains("use session") && err.contains("round_robin"),
        "{err}"
    );
    std::fs::write(
        &conf,
        "upstreams: [\"a:1\", \"b:2\"]\nupstream:\n  balance: round_robin\n",
    )
    .unwrap();
    assert!(common::flowgate::check(&conf).status.success());
}

// -------------------------------------------------------------------------------------------
// The real Socket.IO stack.

const SIO_PATH: &str = "/public_FlowWidget/socket.io";

fn sio_query(id: &str) -> String {
    format!("siteid=s&jsSessionId={id}")
}

/// One `chat-client.js` connect (polling, then the upgrade) with the widget's query.
fn sio_connect(fg_url: &str, id: &str, extra: &[&str]) -> Value {
    let query = sio_query(id);
    let mut args = vec![
        "--url",
        fg_url,
        "--path",
        SIO_PATH,
        "--query",
        query.as_str(),
        "--transports",
        "polling,websocket",
    ];
    args.extend_from_slice(extra);
    node::run("chat-client.js", &args)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test]
async fn socket_io_connects_by_session_over_two_backends_and_fails_under_round_robin() {
    let (a, b) = (ChatBackend::start("A", &[]), ChatBackend::start("B", &[]));
    let fg = Flowgate::options()
        .upstream(a.host_port())
        .upstream(b.host_port())
        .start();
    let url = fg.url("");
    // Clients in batches of six until both backends have some (the split is the ring's).
    let mut placed: Vec<(String, String)> = Vec::new();
    for batch in 0..5 {
        let clients: Vec<_> = (0..6)
            .map(|i| {
                let (url, id) = (url.clone(), format!("{ID_PREFIX}sio-{batch}-{i}"));
                std::thread::spawn(move || (sio_connect(&url, &id, &[]), id))
            })
            .collect();
        for c in clients {
            let (r, id) = blocking(move || c.join().unwrap()).await;
            assert_eq!(r["ok"], true, "{r}");
            assert_eq!(
                r["upgraded"], true,
                "polling then WebSocket, one session: {r}"
            );
            assert_eq!(r["transport"], "websocket", "{r}");
            assert_eq!(r["connect_errors"], 0, "{r}");
            placed.push((id, r["node"].as_str().unwrap().to_owned()));
        }
        if placed.iter().any(|(_, n)| n == "A") && placed.iter().any(|(_, n)| n == "B") {
            break;
        }
    }
    let on = |node: &str| placed.iter().filter(|(_, n)| n == node).count();
    assert!(on("A") > 0 && on("B") > 0, "{placed:?}");
    eprintln!(
        "{} Socket.IO clients: {} on A, {} on B",
        placed.len(),
        on("A"),
        on("B")
    );

    // Two sessions on the same backend share its rooms.
    let shared = if on("A") >= 2 { "A" } else { "B" };
    let mates: Vec<&str> = placed
        .iter()
        .filter(|(_, n)| n == shared)
        .map(|(id, _)| id.as_str())
        .take(2)
        .collect();
    let (q1, q2) = (sio_query(mates[0]), sio_query(mates[1]));
    let rooms_url = url.clone();
    let r = blocking(move || {
        node::run(
            "chat-client.js",
            &[
                "--url",
                &rooms_url,
                "--path",
                SIO_PATH,
                "--query",
                &q1,
                "--query2",
                &q2,
                "--transports",
                "polling,websocket",
                "--rooms",
            ],
        )
    })
    .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["nodes"], serde_json::json!([shared, shared]), "{r}");
    assert_eq!(r["delivered"], serde_json::json!([true, true]), "{r}");
    assert_eq!(r["peers"], serde_json::json!([1, 1]), "{r}");
    let picks = fg.metric(SESSION_PICKS).await;
    assert!(picks >= 3.0 * placed.len() as f64, "{picks}");
    assert_no_id_logged(&fg);

    // The same backends in turn: the polls after the handshake reach the other node.
    let rr = Flowgate::options()
        .upstream(a.host_port())
        .upstream(b.host_port())
        .yaml("upstream:\n  balance: round_robin\n")
        .start();
    let url = rr.url("");
    let r = blocking(move || {
        sio_connect(
            &url,
            &format!("{ID_PREFIX}rr"),
            &["--reconnection", "false", "--timeout-ms", "3000"],
        )
    })
    .await;
    assert_eq!(r["ok"], false, "connected under round robin: {r}");
    eprintln!("round robin: {}", r["error"]);
}

#[tokio::test]
async fn socket_io_clients_of_a_backend_that_goes_down_reconnect_to_the_other() {
    let (a, b) = (ChatBackend::start("A", &[]), ChatBackend::start("B", &[]));
    let fg = Flowgate::options()
        .upstream(a.host_port())
        .upstream(b.host_port())
        .yaml("upstream:\n  health_check_interval_ms: 100\n")
        .start();
    let url = fg.url("");
    let query = sio_query(&format!("{ID_PREFIX}watch"));
    let watch = NodeClient::spawn(
        "chat-client.js",
        &[
            "--url",
            &url,
            "--path",
            SIO_PATH,
            "--query",
            &query,
            "--transports",
            "polling,websocket",
            "--reconnect-watch",
            "--count",
            "2",
            "--reconnect-delay-ms",
            "100",
        ],
    );
    let (first, watch) = blocking(move || (watch.wait_event("connect", DEADLINE), watch)).await;
    let home = first["node"].as_str().unwrap().to_owned();
    assert_eq!(first["transport"], "websocket", "{first}");
    // Its backend goes down: the WebSocket closes and the client reconnects, to the other.
    if home == "A" {
        drop(a)
    } else {
        drop(b)
    }
    let r = blocking(move || watch.result(DEADLINE)).await;
    assert_eq!(r["ok"], true, "{r}");
    let connects = r["connects"].as_array().unwrap();
    let nodes: Vec<&str> = connects.iter().filter_map(|c| c["node"].as_str()).collect();
    let other = if home == "A" { "B" } else { "A" };
    assert_eq!(nodes, [home.as_str(), other], "{r}");
    assert_eq!(connects[1]["transport"], "websocket", "{r}");
    let after = connects[1]["at_ms"].as_u64().unwrap() - connects[0]["at_ms"].as_u64().unwrap();
    eprintln!("node {home} down: reconnected to {other} {after} ms after the first connect");
    assert_no_id_logged(&fg);
}
