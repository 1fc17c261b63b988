//! flowgate on Redis through the real binary: two instances sharing sessions, Redis killed
//! under load, Redis absent at start, Cluster and Sentinel, and the config checks.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::flowgate::{Flowgate, bin};
use common::ports::free_port;
use common::redis::{Options, RedisCluster, RedisSentinel, RedisServer};
use common::upstream::{Received, Upstream};
use common::{b64, decode_json, wait_until_async};
use serde_json::json;

const CONTEXT: &str = r#"{"account_id":"USR-84920","plan":"Pro","ims_username":"Jane Smith"}"#;

fn init_path(site: &str, session: &str, ctx: Option<&str>) -> String {
    let mut p = format!("/public_FlowWidget/init?siteid={site}&jsSessionId={session}");
    if let Some(c) = ctx {
        p.push_str("&visitor_context=");
        p.push_str(&b64(c));
    }
    p
}

/// A session route with the ids in a fixed order, so the upstream's record can be found.
fn poll_path(site: &str, session: &str) -> String {
    format!("/public_FlowWidget/chat/poll?jsSessionId={session}&siteid={site}")
}

/// The last request the upstream got for `path_and_query`.
fn received(up: &Upstream, path_and_query: &str) -> Option<Received> {
    let (path, query) = path_and_query.split_once('?').unwrap();
    up.received()
        .into_iter()
        .rev()
        .find(|r| r.path == path && r.query.as_deref() == Some(query))
}

async fn get(client: &reqwest::Client, url: String) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

/// Init through `a`, session route through `b`: does `b` re-attach the stored context?
async fn shared_context(
    client: &reqwest::Client,
    up: &Upstream,
    a: &Flowgate,
    b: &Flowgate,
    site: &str,
    session: &str,
) -> Option<serde_json::Value> {
    assert_eq!(
        get(client, a.url(&init_path(site, session, Some(CONTEXT)))).await,
        200
    );
    let poll = poll_path(site, session);
    assert_eq!(get(client, b.url(&poll)).await, 200);
    received(up, &poll)?
        .header("x-flowgate-context")
        .map(decode_json)
}

async fn healthz(fg: &Flowgate) -> String {
    reqwest::get(format!("http://{}/healthz", fg.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn redis_yaml(url: &str) -> String {
    format!("redis:\n  url: \"{url}\"\n")
}

/// A store deadline a loaded test machine always meets, for tests about data, not deadlines.
const RELAXED: &str = "store:\n  deadline_ms: 2000\n";

#[tokio::test]
async fn two_instances_share_sessions_through_redis() {
    let redis = RedisServer::start();
    let up = Upstream::start();
    // One configured by the file, one by the flag.
    let a = Flowgate::options()
        .upstream(up.host_port())
        .yaml(RELAXED)
        .yaml(&redis_yaml(&redis.url()))
        .start();
    let b = Flowgate::options()
        .upstream(up.host_port())
        .yaml(RELAXED)
        .arg("--redis")
        .arg(&redis.url())
        .start();
    assert!(a.log().contains("store=\"redis\"") || a.log().contains("store=redis"));
    let client = reqwest::Client::new();

    let ctx = shared_context(&client, &up, &a, &b, "site-1", "visitor.42").await;
    assert_eq!(
        ctx,
        Some(json!({"account_id":"USR-84920","plan":"Pro","ims_username":"Jane Smith"}))
    );
    let poll = received(&up, &poll_path("site-1", "visitor.42")).unwrap();
    assert_eq!(poll.header("x-flowgate-status"), Some("accepted"));
    assert_eq!(
        poll.header("x-flowgate-prefill").map(decode_json),
        Some(json!({"visitor_name":"Jane Smith","username":"Jane Smith","name":"Jane Smith"}))
    );
    // The other site never sees it.
    assert_eq!(
        get(&client, a.url(&poll_path("site-2", "visitor.42"))).await,
        200
    );
    let other = received(&up, &poll_path("site-2", "visitor.42")).unwrap();
    assert_eq!(other.header("x-flowgate-context"), None);

    // An anonymous re-init through B deletes what A stored.
    assert_eq!(
        get(&client, b.url(&init_path("site-1", "visitor.42", None))).await,
        200
    );
    assert_eq!(
        get(&client, a.url(&poll_path("site-1", "visitor.42"))).await,
        200
    );
    let after = received(&up, &poll_path("site-1", "visitor.42")).unwrap();
    assert_eq!(after.header("x-flowgate-context"), None);
    let keys: Vec<String> = redis.query(redis::cmd("KEYS").arg("*")).unwrap();
    assert!(keys.is_empty(), "{keys:?}");

    assert!(healthz(&a).await.starts_with("ok\n"));
    let metrics = b.metrics().await;
    assert!(metrics.contains("flowgate_redis_command_duration_seconds_bucket{command=\"get\""));
    assert!(metrics.contains(r#"flowgate_store_calls_total{op="get",result="hit"} 1"#));
}

/// Counts of a load run.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    server_errors: AtomicU64,
    failed: AtomicU64,
}

/// Init + session-route pairs in a loop on `workers` tasks until `stop`.
fn start_load(
    fg: &Flowgate,
    workers: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::new();
    (0..workers)
        .map(|w| {
            let (client, stop, tally) = (client.clone(), stop.clone(), tally.clone());
            let (init_url, poll_url) = (fg.url(""), fg.url(""));
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let session = format!("w{w}-{i}");
                    for url in [
                        format!("{init_url}{}", init_path("load", &session, Some(CONTEXT))),
                        format!("{poll_url}{}", poll_path("load", &session)),
                    ] {
                        match client.get(url).send().await {
                            Ok(r) if r.status().is_server_error() => {
                                tally.server_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) => {
                                tally.ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                tally.failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            })
        })
        .collect()
}

/// Polls until an init through `fg` is re-attached on its session route; returns how long.
async fn time_to_stored_context(fg: &Flowgate, up: &Upstream, what: &str) -> Duration {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut n = 0;
    wait_until_async(what, || {
        n += 1;
        let session = format!("probe-{n}");
        let client = client.clone();
        async move {
            shared_context(&client, up, fg, fg, "probe", &session)
                .await
                .is_some()
        }
    })
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_means_no_5xx_and_recovery_after_restart() {
    let mut redis = RedisServer::start();
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .arg("--redis")
        .arg(&redis.url())
        .start();
    time_to_stored_context(&fg, &up, "stored context before the kill").await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let load = start_load(&fg, 4, stop.clone(), tally.clone());
    let wait_requests = |n: u64| {
        let tally = tally.clone();
        async move {
            let target = tally.ok.load(Ordering::Relaxed) + n;
            wait_until_async("load to make progress", || {
                let tally = tally.clone();
                async move { tally.ok.load(Ordering::Relaxed) >= target }
            })
            .await;
        }
    };
    wait_requests(200).await;

    redis.kill();
    wait_until_async("/healthz to report Redis degraded", || async {
        healthz(&fg).await.starts_with("degraded: redis ")
    })
    .await;
    wait_requests(300).await;

    redis.restart();
    let recovery = time_to_stored_context(&fg, &up, "stored context after the restart").await;
    wait_requests(200).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let (ok, five, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.server_errors.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "through the proxy: {ok} responses, {five} 5xx, {failed} failed; stored context back \
         {recovery:?} after Redis answered PING"
    );
    assert_eq!((five, failed), (0, 0), "every request must be served");
    assert!(healthz(&fg).await.starts_with("ok\n"));
    let node = format!("127.0.0.1:{}", redis.port());
    assert!(
        fg.metric(&format!(
            r#"flowgate_redis_breaker_opened_total{{node="{node}"}}"#
        ))
        .await
            >= 1.0
    );
    assert!(
        fg.metric(r#"flowgate_store_calls_total{op="put",result="error"}"#)
            .await
            + fg.metric(r#"flowgate_store_calls_total{op="put",result="timeout"}"#)
                .await
            > 0.0
    );
}

#[tokio::test]
async fn redis_absent_at_start_is_picked_up_when_it_appears() {
    let port = free_port();
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .arg("--redis")
        .arg(&format!("redis://127.0.0.1:{port}"))
        .start();
    let client = reqwest::Client::new();
    // Served, without stored context.
    for i in 0..10 {
        let ctx = shared_context(&client, &up, &fg, &fg, "early", &format!("e{i}")).await;
        assert_eq!(ctx, None);
    }
    assert!(healthz(&fg).await.starts_with("degraded: redis "));

    let _redis = RedisServer::try_start_on(port, Options::default())
        .unwrap_or_else(|log| panic!("redis-server on :{port}: {log}"));
    let took = time_to_stored_context(&fg, &up, "stored context once Redis is up").await;
    eprintln!("redis appeared after flowgate: stored context {took:?} after PING");
    assert!(healthz(&fg).await.starts_with("ok\n"));
}

#[tokio::test]
async fn cluster_through_the_proxy() {
    let cluster = RedisCluster::start();
    let up = Upstream::start();
    let a = Flowgate::options()
        .upstream(up.host_port())
        .yaml(RELAXED)
        .yaml(&redis_yaml(&cluster.url()))
        .start();
    let b = Flowgate::options()
        .upstream(up.host_port())
        .yaml(RELAXED)
        .arg("--redis")
        .arg(&cluster.url())
        .start();
    let client = reqwest::Client::new();
    for i in 0..60 {
        let session = format!("c.{i}");
        assert!(
            shared_context(&client, &up, &a, &b, &format!("site{}", i % 5), &session)
                .await
                .is_some(),
            "session {session}"
        );
    }
    let per_node: Vec<usize> = cluster
        .nodes
        .iter()
        .map(|n| {
            let keys: Vec<String> = n.query(redis::cmd("KEYS").arg("flowgate:*")).unwrap();
            keys.len()
        })
        .collect();
    assert_eq!(per_node.iter().sum::<usize>(), 60);
    assert!(per_node.iter().all(|n| *n > 0), "{per_node:?}");
}

#[tokio::test]
async fn sentinel_through_the_proxy_across_a_failover() {
    let setup = RedisSentinel::start();
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml(RELAXED)
        .arg("--redis")
        .arg(&setup.url())
        .start();
    time_to_stored_context(&fg, &up, "stored context via sentinel").await;
    let old = setup.master_port();
    setup.failover();
    // The proxy keeps serving; stored context lands on the new master.
    let client = reqwest::Client::new();
    let mut n = 0;
    wait_until_async("stored context on the new master", || {
        n += 1;
        let session = format!("after-{n}");
        let (client, up, fg, setup) = (client.clone(), &up, &fg, &setup);
        async move {
            shared_context(&client, up, fg, fg, "s", &session)
                .await
                .is_some()
                && setup
                    .master()
                    .query::<Option<Vec<u8>>>(
                        redis::cmd("GET").arg(format!("flowgate:{{s:{session}}}")),
                    )
                    .unwrap()
                    .is_some()
        }
    })
    .await;
    assert_ne!(setup.master_port(), old);
}

#[test]
fn check_and_run_name_bad_redis_settings() {
    let dir = common::flowgate::TempDir::new("redis-check");
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "upstreams: [\"127.0.0.1:8000\"]\nredis:\n  url: \"redis+sentinel://s1:26379\"\n  \
         key_prefix: \"a b\"\n  breaker_failures: 0\n",
    )
    .unwrap();
    let out = common::flowgate::check(&file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for key in ["redis.url", "redis.key_prefix", "redis.breaker_failures"] {
        assert!(err.contains(key), "{key} not named:\n{err}");
    }
    assert!(err.contains("missing master name"), "{err}");

    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "upstreams: [\"127.0.0.1:8000\"]\nredis:\n  url: \"redis+cluster://a:7000,b:7001\"\n",
    )
    .unwrap();
    let out = common::flowgate::check(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = std::process::Command::new(bin())
        .args(["run", "--redis", "redis://app:hunter2@cache:notaport"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("redis.url") && err.contains("notaport"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "password leaked: {err}");
}
