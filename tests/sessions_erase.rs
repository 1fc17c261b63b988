//! Erasure on the admin listener, through the real binary: `DELETE /sessions/<site>/<session>`
//! and `DELETE /sessions/<site>` with the in-process store, a real redis-server and a real
//! three-node Redis Cluster (keys on every master); the token rules; counters; value-free logs.
#![allow(clippy::unwrap_used)]

mod common;

use common::b64;
use common::flowgate::Flowgate;
use common::redis::{RedisCluster, RedisServer};
use common::upstream::Upstream;
use serde_json::Value;

const TOKEN: &str = "admin-token-0123456789abcdefghijklmnop";

fn start(up: &Upstream, yaml: &str, token: bool) -> Flowgate {
    let mut o = Flowgate::options().upstream(up.host_port()).yaml(yaml);
    if token {
        o = o.env(
            "FLOWGATE_ADMIN_TOKEN",
            &format!("old-token-0123456789abcdefghijklmn,{TOKEN}"),
        );
    }
    o.start()
}

/// Stores a context for `site`/`session` through an init.
async fn init(fg: &Flowgate, site: &str, session: &str) {
    let ctx = b64(r#"{"ims_email":"jane@example.com"}"#).replace('=', "%3D");
    let url = fg.url(&format!(
        "/public_FlowWidget/init?siteid={site}&jsSessionId={session}&visitor_context={ctx}"
    ));
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
}

/// The `Status` a session route of `site`/`session` gets re-attached.
async fn stored(fg: &Flowgate, up: &Upstream, site: &str, session: &str) -> String {
    let url = fg.url(&format!(
        "/public_FlowWidget/poll?siteid={site}&jsSessionId={session}"
    ));
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
    up.last().header("x-flowgate-status").unwrap().to_owned()
}

/// `method path` on the admin listener with `token`: status and JSON body.
async fn admin(fg: &Flowgate, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("http://{}{path}", fg.admin),
    );
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn metrics(fg: &Flowgate) -> String {
    reqwest::get(format!("http://{}/metrics", fg.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The erasure rules and both routes on one store; `extra` sessions of `shop-a` were stored behind
/// the proxy's back (Redis) and are purged too.
async fn erase_one_and_purge(fg: &Flowgate, up: &Upstream, extra: u64) {
    for (site, session) in [
        ("shop-a", "chat-1"),
        ("shop-a", "chat-2"),
        ("shop-b", "chat-1"),
        ("shop-a0", "chat-1"),
    ] {
        init(fg, site, session).await;
    }
    // The token rules.
    let (status, _) = admin(fg, "DELETE", "/sessions/shop-a/chat-1", None).await;
    assert_eq!(status, 401);
    let (status, _) = admin(
        fg,
        "DELETE",
        "/sessions/shop-a",
        Some("wrong-token-0123456789abcdefghijklm"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = admin(fg, "GET", "/sessions/shop-a/chat-1", Some(TOKEN)).await;
    assert_eq!(status, 405);
    let (status, body) = admin(fg, "DELETE", "/sessions/shop-a/bad%20id", Some(TOKEN)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(stored(fg, up, "shop-a", "chat-1").await, "accepted");

    // One session.
    let (status, body) = admin(fg, "DELETE", "/sessions/shop-a/chat-1", Some(TOKEN)).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("ok")),
        "{body}"
    );
    assert_eq!(stored(fg, up, "shop-a", "chat-1").await, "absent");
    assert_eq!(stored(fg, up, "shop-a", "chat-2").await, "accepted");

    // A site (the old token still works while it is listed).
    let (status, body) = admin(
        fg,
        "DELETE",
        "/sessions/shop-a",
        Some("old-token-0123456789abcdefghijklmn"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["removed"].as_u64(), Some(1 + extra), "{body}");
    assert!(body["nodes"].as_u64().unwrap() >= 1 && body["batches"].as_u64().unwrap() >= 1);
    assert_eq!(stored(fg, up, "shop-a", "chat-2").await, "absent");
    // Other sites — even one whose id starts with this one's — keep their contexts.
    assert_eq!(stored(fg, up, "shop-b", "chat-1").await, "accepted");
    assert_eq!(stored(fg, up, "shop-a0", "chat-1").await, "accepted");

    let m = metrics(fg).await;
    for line in [
        r#"flowgate_admin_erasures_total{kind="session",result="ok"} 1"#,
        r#"flowgate_admin_erasures_total{kind="site",result="ok"} 1"#,
        r#"flowgate_admin_erasures_total{kind="session",result="unauthorized"} 1"#,
        r#"flowgate_admin_erasures_total{kind="site",result="unauthorized"} 1"#,
        r#"flowgate_admin_erasures_total{kind="session",result="bad_method"} 1"#,
        r#"flowgate_admin_erasures_total{kind="session",result="bad_request"} 1"#,
    ] {
        assert!(m.contains(line), "{line} missing:\n{m}");
    }
    assert!(
        m.contains(&format!(
            "flowgate_admin_erased_contexts_total {}",
            1 + extra
        )),
        "{m}"
    );
    let log = fg.log();
    assert!(log.contains("erasure done"), "{log}");
    for value in [
        "chat-1",
        "chat-2",
        "shop-a",
        "shop-b",
        "admin-token",
        "old-token",
        "wrong-token",
    ] {
        assert!(!log.contains(value), "{value} in the log:\n{log}");
    }
}

#[tokio::test]
async fn erasure_is_off_without_a_token() {
    let up = Upstream::start();
    let fg = start(&up, "", false);
    init(&fg, "shop-a", "chat-1").await;
    let (status, body) = admin(&fg, "DELETE", "/sessions/shop-a/chat-1", Some(TOKEN)).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("FLOWGATE_ADMIN_TOKEN")
    );
    assert_eq!(stored(&fg, &up, "shop-a", "chat-1").await, "accepted");
    assert!(
        metrics(&fg)
            .await
            .contains(r#"flowgate_admin_erasures_total{kind="session",result="disabled"} 1"#)
    );
}

#[tokio::test]
async fn erasure_in_process() {
    let up = Upstream::start();
    let fg = start(&up, "", true);
    erase_one_and_purge(&fg, &up, 0).await;
}

/// Sessions of `shop-a` written straight into Redis, as another instance would have.
fn seed(redis: &redis::Client, n: u64) {
    let mut c = redis.get_connection().unwrap();
    for i in 0..n {
        let key = format!("flowgate:{{shop-a:bulk-{i}}}");
        let _: () = redis::cmd("SET").arg(&key).arg("x").query(&mut c).unwrap();
    }
}

#[tokio::test]
async fn erasure_in_redis_scans_in_batches() {
    let redis = RedisServer::start();
    let up = Upstream::start();
    let fg = start(&up, &format!("redis:\n  url: \"{}\"\n", redis.url()), true);
    // A used one-time token record of the site survives its purge.
    let _: () = redis
        .query(redis::cmd("SET").arg("flowgate:jti:shop-a:abc").arg(1))
        .unwrap();
    seed(&redis.client(), 1_500);
    erase_one_and_purge(&fg, &up, 1_500).await;
    let left: Vec<String> = redis
        .query(redis::cmd("KEYS").arg("flowgate:{shop-a:*"))
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    let jti: i64 = redis
        .query(redis::cmd("EXISTS").arg("flowgate:jti:shop-a:abc"))
        .unwrap();
    assert_eq!(jti, 1);
}

#[tokio::test]
async fn erasure_in_a_redis_cluster_scans_every_master() {
    let cluster = RedisCluster::start();
    let up = Upstream::start();
    let fg = start(
        &up,
        &format!("redis:\n  url: \"{}\"\n", cluster.url()),
        true,
    );
    let client = redis::cluster::ClusterClient::new(
        cluster
            .nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut c = client.get_connection().unwrap();
    for i in 0..600 {
        let key = format!("flowgate:{{shop-a:bulk-{i}}}");
        let _: () = redis::cmd("SET").arg(&key).arg("x").query(&mut c).unwrap();
    }
    let on_node = |n: &RedisServer| -> usize {
        let keys: Vec<String> = n
            .query(redis::cmd("KEYS").arg("flowgate:{shop-a:*"))
            .unwrap();
        keys.len()
    };
    assert!(
        cluster.nodes.iter().all(|n| on_node(n) > 0),
        "keys on every master"
    );
    erase_one_and_purge(&fg, &up, 600).await;
    for n in &cluster.nodes {
        assert_eq!(on_node(n), 0);
    }
}
