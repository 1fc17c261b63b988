//! Redis failures through the real binary: one dead Cluster master under load leaves the other
//! shards untouched, each failure kind Redis can produce locally is named (metric, `/healthz`,
//! warning, access log), and a logout made during a Redis stall holds once Redis is back.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::flowgate::Flowgate;
use common::redis::{Options, RedisCluster, RedisServer};
use common::upstream::Upstream;
use common::{b64, wait_until_async};

const CONTEXT: &str = r#"{"account_id":"USR-84920","plan":"Pro","ims_username":"Jane Smith"}"#;

fn init_path(site: &str, session: &str, ctx: Option<&str>) -> String {
    let mut p = format!("/public_FlowWidget/init?siteid={site}&jsSessionId={session}");
    if let Some(c) = ctx {
        p.push_str("&visitor_context=");
        p.push_str(&b64(c));
    }
    p
}

fn poll_path(site: &str, session: &str, seq: u64) -> String {
    format!("/public_FlowWidget/chat/poll?jsSessionId={session}&siteid={site}&seq={seq}")
}

/// Whether the upstream got the stored context on the request with this exact query.
fn had_context(up: &Upstream, path_and_query: &str) -> Option<bool> {
    let (path, query) = path_and_query.split_once('?').unwrap();
    up.received()
        .into_iter()
        .rev()
        .find(|r| r.path == path && r.query.as_deref() == Some(query))
        .map(|r| r.header("x-flowgate-context").is_some())
}

async fn get(client: &reqwest::Client, url: String) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
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

/// One poll of the cluster load: which session, whether it had context, its status, when.
struct Poll {
    session: usize,
    path: String,
    status: u16,
    at: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_killed_under_load_leaves_other_shards_their_context() {
    let mut cluster = RedisCluster::start_with_replicas();
    let up = Upstream::start();
    // A deadline a loaded test machine meets, so misses are the outage's, not the machine's.
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("store:\n  deadline_ms: 250\n")
        .yaml(&redis_yaml(&cluster.url()))
        .start();
    let client = reqwest::Client::new();
    let sessions: Vec<String> = (0..48).map(|i| format!("s{i}")).collect();
    for s in &sessions {
        assert_eq!(
            get(&client, fg.url(&init_path("shard", s, Some(CONTEXT)))).await,
            200
        );
    }
    let masters: Vec<u16> = sessions
        .iter()
        .map(|s| {
            cluster
                .master_port_of(&format!("flowgate:{{shard:{s}}}"))
                .unwrap()
        })
        .collect();
    let victim = masters[0];
    let dead_shard: Vec<usize> = (0..sessions.len())
        .filter(|&i| masters[i] == victim)
        .collect();
    assert!(
        dead_shard.len() < sessions.len(),
        "every session on one shard"
    );
    let probe = poll_path("shard", &sessions[0], 0);
    assert_eq!(get(&client, fg.url(&probe)).await, 200);
    assert_eq!(
        had_context(&up, &probe),
        Some(true),
        "stored before the kill"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4u64)
        .map(|w| {
            let (client, stop, base) = (client.clone(), stop.clone(), fg.url(""));
            let n = sessions.len();
            let sessions = sessions.clone();
            tokio::spawn(async move {
                let mut polls = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let session = usize::try_from((i * 7 + w * 13) % n as u64).unwrap();
                    let path = poll_path("shard", &sessions[session], w * 1_000_000 + i);
                    let status = match client.get(format!("{base}{path}")).send().await {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    polls.push(Poll {
                        session,
                        path,
                        status,
                        at: Instant::now(),
                    });
                }
                polls
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    cluster.node_on(victim).kill();
    let killed = Instant::now();
    // The dead shard's keys come back once its replica is promoted.
    let mut seq = 0;
    wait_until_async("the dead shard's context after promotion", || {
        seq += 1;
        let path = poll_path("shard", &sessions[dead_shard[0]], 900_000_000 + seq);
        let (client, fg, up) = (client.clone(), &fg, &up);
        async move {
            get(&client, fg.url(&path)).await == 200 && had_context(up, &path) == Some(true)
        }
    })
    .await;
    let recovered = killed.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut polls = Vec::new();
    for task in load {
        polls.extend(task.await.unwrap());
    }

    let received = up.received();
    let context_of = |path: &str| {
        let (p, q) = path.split_once('?').unwrap();
        received
            .iter()
            .find(|r| r.path == p && r.query.as_deref() == Some(q))
            .is_some_and(|r| r.header("x-flowgate-context").is_some())
    };
    let outage = |p: &&Poll| p.at >= killed && p.at <= killed + recovered;
    let healthy: Vec<&Poll> = polls
        .iter()
        .filter(|p| masters[p.session] != victim)
        .filter(outage)
        .collect();
    let healthy_hits = healthy.iter().filter(|p| context_of(&p.path)).count();
    let dead: Vec<&Poll> = polls
        .iter()
        .filter(|p| masters[p.session] == victim)
        .filter(outage)
        .collect();
    let dead_hits = dead.iter().filter(|p| context_of(&p.path)).count();
    let bad = polls.iter().filter(|p| p.status != 200).count();
    let share = healthy_hits as f64 / healthy.len().max(1) as f64;
    eprintln!(
        "cluster, master :{victim} SIGKILLed: {} polls in all, {bad} not 200; during the \
         {recovered:?} until its keys came back: healthy shards {healthy_hits}/{} with context \
         ({:.2} %), dead shard {dead_hits}/{}",
        polls.len(),
        healthy.len(),
        share * 100.0,
        dead.len()
    );
    assert_eq!(bad, 0, "every request served");
    assert!(healthy.len() >= 50, "too little load during the outage");
    assert!(share >= 0.99, "healthy shards lost context: {share}");
    for port in masters.iter().filter(|&&p| p != victim) {
        let opened = fg
            .metric(&format!(
                r#"flowgate_redis_breaker_opened_total{{node="127.0.0.1:{port}"}}"#
            ))
            .await;
        assert_eq!(opened, 0.0, "the breaker of healthy master :{port} opened");
    }
    // Every dead-shard session has its context again.
    for (n, &i) in dead_shard.iter().enumerate() {
        let path = poll_path("shard", &sessions[i], 800_000_000 + n as u64);
        assert_eq!(get(&client, fg.url(&path)).await, 200);
        assert_eq!(had_context(&up, &path), Some(true), "{}", sessions[i]);
    }
}

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
        let path = poll_path("kinds", "known", 10_000 + extra);
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
    // Context A is stored and re-attached.
    assert_eq!(
        get(
            &client,
            fg.url(&init_path("stall", "visitor", Some(CONTEXT)))
        )
        .await,
        200
    );
    let first = poll("visitor");
    assert_eq!(get(&client, fg.url(&first)).await, 200);
    assert_eq!(had_context(&up, &first), Some(true));

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
