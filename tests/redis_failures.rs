//! Redis failures through the real binary: each failure kind Redis can produce locally is named
//! (metric, `/healthz`, warning, access log), and a logout made during a Redis stall holds once
//! Redis is back.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::flowgate::Flowgate;
use common::redis::{Options, RedisServer};
use common::store_routes::{CONTEXT, get, had_context, healthz, init_path, poll_path, redis_yaml};
use common::upstream::Upstream;
use common::wait_until_async;

/// Drives session routes until `/healthz` names the failure; checks metric, log and health.
async fn assert_named(fg: &Flowgate, node: &str, command: &str, kind: &str, health: &str) {
    let client = reqwest::Client::new();
    let mut n = 0;
    wait_until_async("the breaker to open and name the failure", || {
        n += 1;
        let (client, fg) = (client.clone(), fg);
        async move {
            let path = if command == "set" {
                init_path("kinds", &format!("k{n}"), Some(CONTEXT))
            } else {
                poll_path("kinds", "known", n)
            };
            assert_eq!(get(&client, fg.url(&path)).await, 200);
            healthz(fg).await.starts_with("degraded")
        }
    })
    .await;
    // Calls now skipped by the open breaker name the failure too.
    for extra in 0..3 {
        let path = if command == "set" {
            init_path("kinds", &format!("x{extra}"), Some(CONTEXT))
        } else {
            poll_path("kinds", "known", 10_000 + extra)
        };
        assert_eq!(get(&client, fg.url(&path)).await, 200);
    }
    let text = healthz(fg).await;
    assert_eq!(text, format!("degraded: redis {health} at {node}\n"));
    let errors = fg
        .metric(&format!(
            r#"flowgate_redis_errors_total{{command="{command}",kind="{kind}",node="{node}"}}"#
        ))
        .await;
    assert!(
        errors >= 1.0,
        "no {kind} error counted:\n{}",
        fg.metrics().await
    );
    let log = fg.log();
    assert!(
        log.contains(&format!("store_error=\"{kind}\""))
            || log.contains(&format!("store_error={kind}")),
        "access log without store_error={kind}:\n{log}"
    );
    assert!(log.contains(&format!("breaker_open:{kind}")), "{log}");
    let warning = log
        .lines()
        .find(|l| l.contains("circuit breaker open"))
        .unwrap_or_else(|| panic!("no breaker warning:\n{log}"));
    assert!(
        warning.contains(health) && warning.contains(node),
        "{warning}"
    );
}

fn start_fg(up: &Upstream, url: &str) -> Flowgate {
    Flowgate::options()
        .upstream(up.host_port())
        .yaml(&redis_yaml(url))
        .start()
}

/// Runs `cmds` on one connection, then closes every other client connection (as a restart
/// would), so flowgate reconnects under the new rules.
fn reconfigure(redis: &RedisServer, password: Option<&str>, cmds: &[&[&str]]) {
    let mut con = redis.client().get_connection().unwrap();
    if let Some(pw) = password {
        let _: () = redis::cmd("AUTH").arg(pw).query(&mut con).unwrap();
    }
    for args in cmds {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let _: redis::Value = cmd.query(&mut con).unwrap();
    }
    let _: redis::Value = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query(&mut con)
        .unwrap();
}

#[tokio::test]
async fn a_password_set_on_a_running_redis_is_named_noauth() {
    let redis = RedisServer::start();
    let up = Upstream::start();
    let fg = start_fg(&up, &redis.url());
    let node = format!("127.0.0.1:{}", redis.port());
    let client = reqwest::Client::new();
    assert_eq!(
        get(&client, fg.url(&init_path("kinds", "known", Some(CONTEXT)))).await,
        200
    );
    reconfigure(
        &redis,
        None,
        &[&["CONFIG", "SET", "requirepass", "n3w-s3cret"]],
    );
    assert_named(
        &fg,
        &node,
        "get",
        "noauth",
        "requires a password that is not configured (NOAUTH)",
    )
    .await;
    assert!(!fg.log().contains("n3w-s3cret"));
}

#[tokio::test]
async fn a_changed_password_is_named_wrongpass() {
    let redis = RedisServer::start();
    let mut con = redis.client().get_connection().unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", "old-s3cret"])
        .query(&mut con)
        .unwrap();
    let up = Upstream::start();
    let url = format!("redis://:old-s3cret@127.0.0.1:{}", redis.port());
    let fg = start_fg(&up, &url);
    let node = format!("127.0.0.1:{}", redis.port());
    let client = reqwest::Client::new();
    assert_eq!(
        get(&client, fg.url(&init_path("kinds", "known", Some(CONTEXT)))).await,
        200
    );
    reconfigure(
        &redis,
        Some("old-s3cret"),
        &[&["CONFIG", "SET", "requirepass", "n3w-s3cret"]],
    );
    assert_named(
        &fg,
        &node,
        "get",
        "wrongpass",
        "refuses the credentials (WRONGPASS)",
    )
    .await;
    let log = fg.log();
    assert!(!log.contains("old-s3cret") && !log.contains("n3w-s3cret"));
}

#[tokio::test]
async fn an_acl_user_without_permission_is_named_noperm() {
    let redis = RedisServer::start();
    let mut con = redis.client().get_connection().unwrap();
    // May run the commands, but only on keys that are not flowgate's.
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "chat", "on", ">chat-pw", "~other:*", "+@all"])
        .query(&mut con)
        .unwrap();
    let up = Upstream::start();
    let fg = start_fg(
        &up,
        &format!("redis://chat:chat-pw@127.0.0.1:{}", redis.port()),
    );
    let node = format!("127.0.0.1:{}", redis.port());
    assert_named(
        &fg,
        &node,
        "get",
        "noperm",
        "denies the user the store's commands or keys (NOPERM)",
    )
    .await;
    assert!(!fg.log().contains("chat-pw"));
}

#[tokio::test]
async fn a_replica_is_named_readonly() {
    let master = RedisServer::start();
    let replica = RedisServer::start_with(Options {
        config: vec![format!("replicaof 127.0.0.1 {}", master.port())],
        ..Options::default()
    });
    let up = Upstream::start();
    let fg = start_fg(&up, &replica.url());
    let node = format!("127.0.0.1:{}", replica.port());
    assert_named(
        &fg,
        &node,
        "set",
        "readonly",
        "is a read-only replica, not a master (READONLY)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_during_a_redis_stall_holds_after_redis_resumes() {
    let redis = RedisServer::start();
    let up = Upstream::start();
    let fg = start_fg(&up, &redis.url());
    let client = reqwest::Client::new();
    let mut seq = 0u64;
    let mut poll = |session: &str| {
        seq += 1;
        poll_path("stall", session, seq)
    };
    // Context A is stored and re-attached (retried: a loaded machine can miss the deadline).
    let mut stored = false;
    for _ in 0..50 {
        let init = init_path("stall", "visitor", Some(CONTEXT));
        assert_eq!(get(&client, fg.url(&init)).await, 200);
        let first = poll("visitor");
        assert_eq!(get(&client, fg.url(&first)).await, 200);
        if had_context(&up, &first) == Some(true) {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored, "context A never re-attached before the stall");

    // Redis stalls; calls time out until the breaker opens.
    redis.stop();
    let mut other = 0;
    wait_until_async("the breaker to open during the stall", || {
        other += 1;
        let path = poll_path("stall", "bystander", other);
        let (client, fg) = (client.clone(), &fg);
        async move {
            assert_eq!(get(&client, fg.url(&path)).await, 200);
            healthz(fg).await.starts_with("degraded")
        }
    })
    .await;
    // The visitor logs out: the init answers without context, its delete cannot be done now.
    let logout = init_path("stall", "visitor", None);
    assert_eq!(get(&client, fg.url(&logout)).await, 200);
    let (p, q) = logout.split_once('?').unwrap();
    let seen = up
        .received()
        .into_iter()
        .rev()
        .find(|r| r.path == p && r.query.as_deref() == Some(q))
        .unwrap();
    assert_eq!(seen.header("x-flowgate-status"), Some("absent"));
    assert_eq!(seen.header("x-flowgate-context"), None);
    assert!(fg.metric("flowgate_redis_pending_deletes").await >= 1.0);

    redis.resume();
    let resumed = Instant::now();
    let mut with_context = 0;
    let mut polls = 0;
    while resumed.elapsed() < Duration::from_secs(3) {
        let path = poll("visitor");
        assert_eq!(get(&client, fg.url(&path)).await, 200);
        polls += 1;
        if had_context(&up, &path) == Some(true) {
            with_context += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        with_context, 0,
        "A came back on {with_context}/{polls} polls"
    );
    // The delete landed in Redis and nothing waits any more.
    let key = "flowgate:{stall:visitor}";
    let exists: i64 = redis.query(redis::cmd("EXISTS").arg(key)).unwrap();
    assert_eq!(exists, 0, "the logged-out session is still stored");
    assert_eq!(fg.metric("flowgate_redis_pending_deletes").await, 0.0);
    assert_eq!(healthz(&fg).await, "ok\n");
    eprintln!("logout during a stall: {polls} polls in the 3 s after SIGCONT, none with context");
}
