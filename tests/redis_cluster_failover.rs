//! One Redis Cluster master SIGKILLed under load, through the real binary: the other shards keep
//! their context, nothing fails, the dead shard's keys come back after its replica's promotion.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::flowgate::Flowgate;
use common::redis::RedisCluster;
use common::store_routes::{CONTEXT, get, had_context, init_path, poll_path, redis_yaml};
use common::upstream::Upstream;
use common::wait_until_async;

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
    assert!(healthy.len() >= 20, "too little load during the outage");
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
