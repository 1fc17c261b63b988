//! The store contract on the in-process store and on Redis (standalone, TLS, Cluster, Sentinel),
//! then the Redis store against real `redis-server` processes:
//! Cluster spread, Sentinel failover, a killed Redis, a Redis that appears late, and the memory
//! one session takes.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ports::free_port;
use common::redis::{Options, RedisCluster, RedisSentinel, RedisServer, TlsFiles};
use flowgate::store::redis::{RedisSettings, RedisStore};
use flowgate::store::{SessionEntry, SessionKey, SessionStore, StoreError, Write};

/// Deadline for the contract suite: generous, so a loaded machine does not fail it.
const RELAXED: Duration = Duration::from_secs(2);

fn key<'a>(site: &'a str, session: &'a str) -> SessionKey<'a> {
    SessionKey { site, session }
}

fn entry(tag: &str) -> SessionEntry {
    SessionEntry {
        context: format!("eyJ0YWciOiJ{tag}In0="),
        prefill: "e30=".to_string(),
        status: "accepted".to_string(),
        key_hash: None,
    }
}

fn settings(url: &str, ttl: Duration) -> RedisSettings {
    let mut s = RedisSettings::new(url);
    s.ttl = ttl;
    s.timeout = RELAXED;
    s.connect_timeout = RELAXED;
    s
}

/// A store on the TLS deployment at `url`, trusting the test CA `ca`.
fn tls_store(url: &str, ca: &std::path::Path, ttl: Duration) -> RedisStore {
    let mut s = settings(url, ttl);
    s.tls_ca_file = Some(ca.to_path_buf());
    RedisStore::new(&s).unwrap()
}

/// A fresh directory for one test's certificates, named after `tag` and this process.
fn tls_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flowgate-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Retries `f` until it succeeds (a store call right after a topology change may be refused
/// by the breaker or still connecting).
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > end => panic!("{what}: still failing: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The behaviour every `SessionStore` backend must have. `make(ttl)` builds a fresh store.
async fn contract(make: impl Fn(Duration) -> Arc<dyn SessionStore>) {
    let store = make(Duration::from_secs(3600));
    let a = key("site-1", "sess.1");

    assert_eq!(store.get(a).await.unwrap(), None, "missing entry");
    store.put(a, &entry("one")).await.unwrap();
    assert_eq!(store.get(a).await.unwrap(), Some(entry("one")));

    // Replace (reload after login re-inits).
    store.put(a, &entry("two")).await.unwrap();
    assert_eq!(store.get(a).await.unwrap(), Some(entry("two")));

    // Delete, and deleting what is not there.
    store.delete(a).await.unwrap();
    assert_eq!(store.get(a).await.unwrap(), None);
    store.delete(a).await.unwrap();

    // A bound entry is replaced or deleted only by a write presenting its key hash; an
    // unbound one (or none) by any (`sessions.bind: key`).
    let (mine, theirs) = ([1u8; 32], [2u8; 32]);
    let bound = |tag: &str, hash: [u8; 32]| SessionEntry {
        key_hash: Some(hash),
        ..entry(tag)
    };
    let b = key("site-1", "bound");
    assert!(
        store
            .write_bound(b, Write::Put(&entry("old")), &theirs)
            .await
            .unwrap()
    );
    assert!(
        store
            .write_bound(b, Write::Put(&bound("mine", mine)), &mine)
            .await
            .unwrap()
    );
    let theirs_entry = bound("theirs", theirs);
    assert!(
        !store
            .write_bound(b, Write::Put(&theirs_entry), &theirs)
            .await
            .unwrap()
    );
    assert!(!store.write_bound(b, Write::Delete, &theirs).await.unwrap());
    assert_eq!(store.get(b).await.unwrap(), Some(bound("mine", mine)));
    assert!(
        store
            .write_bound(b, Write::Put(&bound("again", mine)), &mine)
            .await
            .unwrap()
    );
    assert_eq!(store.get(b).await.unwrap(), Some(bound("again", mine)));
    assert!(store.write_bound(b, Write::Delete, &mine).await.unwrap());
    assert_eq!(store.get(b).await.unwrap(), None);
    assert!(store.write_bound(b, Write::Delete, &theirs).await.unwrap());

    // Sites are isolated; ids with `.`, `-`, `_` do not collide.
    store.put(key("s1", "x"), &entry("s1")).await.unwrap();
    store.put(key("s2", "x"), &entry("s2")).await.unwrap();
    assert_eq!(store.get(key("s1", "x")).await.unwrap(), Some(entry("s1")));
    assert_eq!(store.get(key("s2", "x")).await.unwrap(), Some(entry("s2")));
    assert_eq!(store.get(key("s3", "x")).await.unwrap(), None);
    store.put(key("a.b", "c"), &entry("ab.c")).await.unwrap();
    store.put(key("a", "b.c"), &entry("a.bc")).await.unwrap();
    store.put(key("a-b", "c_d"), &entry("ab-cd")).await.unwrap();
    assert_eq!(
        store.get(key("a.b", "c")).await.unwrap(),
        Some(entry("ab.c"))
    );
    assert_eq!(
        store.get(key("a", "b.c")).await.unwrap(),
        Some(entry("a.bc"))
    );
    assert_eq!(
        store.get(key("a-b", "c_d")).await.unwrap(),
        Some(entry("ab-cd"))
    );
    assert_eq!(store.get(key("a", "b-c_d")).await.unwrap(), None);

    // Longest ids and a value as large as a maximal context makes.
    let site = "S".repeat(128);
    let session = "s.-_".repeat(32);
    let big = SessionEntry {
        context: "A".repeat(300_000),
        prefill: "B".repeat(20_000),
        status: "accepted".into(),
        key_hash: None,
    };
    store.put(key(&site, &session), &big).await.unwrap();
    assert_eq!(store.get(key(&site, &session)).await.unwrap(), Some(big));

    // TTL: a short-lived store forgets; the long-lived one does not.
    let short = make(Duration::from_millis(400));
    short.put(key("ttl", "gone"), &entry("t")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while short.get(key("ttl", "gone")).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "entry outlived its TTL");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.get(key("s1", "x")).await.unwrap(), Some(entry("s1")));
}

fn redis_maker(url: String) -> impl Fn(Duration) -> Arc<dyn SessionStore> {
    move |ttl| Arc::new(RedisStore::new(&settings(&url, ttl)).unwrap()) as Arc<dyn SessionStore>
}

#[tokio::test]
async fn in_process_contract() {
    // The same contract, for the in-process store (64 MiB bound, as shipped).
    contract(|ttl| {
        Arc::new(flowgate::store::memory::MemoryStore::new(
            ttl,
            64 << 20,
            None,
        )) as Arc<dyn SessionStore>
    })
    .await;
}

#[tokio::test]
async fn standalone_contract() {
    let server = RedisServer::start();
    contract(redis_maker(server.url())).await;
    let store = RedisStore::new(&settings(&server.url(), Duration::from_secs(90))).unwrap();
    assert_eq!(store.backend(), "redis");

    // One SET … EX with the configured TTL, under the hash-tagged key.
    store.put(key("site", "ttl"), &entry("x")).await.unwrap();
    let ttl: i64 = server
        .query(redis::cmd("TTL").arg("flowgate:{site:ttl}"))
        .unwrap();
    assert!((1..=90).contains(&ttl), "TTL {ttl}");
}

#[tokio::test]
async fn tls_contract() {
    let dir = tls_dir("tls");
    let tls = TlsFiles::generate(&dir);
    let server = RedisServer::start_with(Options {
        tls: Some(tls.clone()),
        ..Options::default()
    });
    let url = server.url();
    assert!(url.starts_with("rediss://"));
    let ca = tls.ca.clone();
    contract(move |ttl| Arc::new(tls_store(&url, &ca, ttl)) as Arc<dyn SessionStore>).await;

    // Without the CA the server's certificate is not trusted: calls fail, nothing hangs.
    let untrusted = RedisStore::new(&settings(&server.url(), Duration::from_secs(60))).unwrap();
    assert!(untrusted.get(key("s", "x")).await.is_err());
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tls_cluster_contract() {
    let dir = tls_dir("tls-cluster");
    let tls = TlsFiles::generate(&dir);
    let cluster = RedisCluster::start_with(Some(tls.clone()));
    let url = cluster.url();
    assert!(url.starts_with("rediss+cluster://"));
    let ca = tls.ca.clone();
    contract(move |ttl| Arc::new(tls_store(&url, &ca, ttl)) as Arc<dyn SessionStore>).await;
    drop(cluster);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tls_sentinel_contract_and_failover() {
    let dir = tls_dir("tls-sentinel");
    let tls = TlsFiles::generate(&dir);
    let setup = RedisSentinel::start_with(Some(tls.clone()));
    let url = setup.url();
    assert!(url.starts_with("rediss+sentinel://"));
    let ca = tls.ca.clone();
    let make = move |ttl| tls_store(&url, &ca, ttl);
    let store = make(Duration::from_secs(600));
    contract(move |ttl| Arc::new(make(ttl)) as Arc<dyn SessionStore>).await;
    follows_failover(&setup, &store).await;
    drop(setup);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn cluster_contract_and_spread_over_all_masters() {
    let cluster = RedisCluster::start();
    contract(redis_maker(cluster.url())).await;

    let mut s = settings(&cluster.url(), Duration::from_secs(600));
    s.key_prefix = "spread:".into();
    let store = RedisStore::new(&s).unwrap();
    assert_eq!(store.backend(), "redis-cluster");
    let sessions: Vec<String> = (0..300).map(|i| format!("visitor-{i}.x")).collect();
    for (i, session) in sessions.iter().enumerate() {
        let site = format!("site{}", i % 7);
        store
            .put(key(&site, session), &entry(&i.to_string()))
            .await
            .unwrap();
    }
    for (i, session) in sessions.iter().enumerate() {
        let site = format!("site{}", i % 7);
        assert_eq!(
            store.get(key(&site, session)).await.unwrap(),
            Some(entry(&i.to_string())),
            "session {i}"
        );
    }
    let per_node: Vec<usize> = cluster
        .nodes
        .iter()
        .map(|n| {
            let keys: Vec<String> = n.query(redis::cmd("KEYS").arg("spread:*")).unwrap();
            keys.len()
        })
        .collect();
    eprintln!("sessions per master: {per_node:?}");
    assert_eq!(per_node.iter().sum::<usize>(), sessions.len());
    assert!(per_node.iter().all(|n| *n > 0), "{per_node:?}");
}

#[tokio::test]
async fn sentinel_contract_and_failover() {
    let setup = RedisSentinel::start();
    contract(redis_maker(setup.url())).await;
    let store = RedisStore::new(&settings(&setup.url(), Duration::from_secs(600))).unwrap();
    assert_eq!(store.backend(), "redis-sentinel");
    follows_failover(&setup, &store).await;
}

/// Runs `SENTINEL FAILOVER` and waits until the store's writes land on the new master.
async fn follows_failover(setup: &RedisSentinel, store: &RedisStore) {
    store.put(key("site", "before"), &entry("b")).await.unwrap();
    let old = setup.master_port();
    let new = setup.failover();
    assert_ne!(old, new);
    // Right after a failover the old master still accepts writes until Sentinel demotes it;
    // the store must notice the switch and write to the new master.
    let started = Instant::now();
    let mut attempt = 0u32;
    let written = wait_for_async("a write to land on the new master", || {
        attempt += 1;
        let session = format!("after-{attempt}");
        let new_master = setup.master();
        async move {
            store.put(key("site", &session), &entry("a")).await.ok()?;
            let on_new: Option<Vec<u8>> = new_master
                .query(redis::cmd("GET").arg(format!("flowgate:{{site:{session}}}")))
                .ok()?;
            on_new.map(|_| session)
        }
    })
    .await;
    eprintln!(
        "sentinel failover: store writing to the new master :{new} {:?} after it was announced",
        started.elapsed()
    );
    assert_eq!(
        store.get(key("site", &written)).await.unwrap(),
        Some(entry("a"))
    );
}

/// Polls the async `f` every 20 ms until it returns `Some`, or panics after 30 s.
async fn wait_for_async<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A store with production defaults (50 ms deadline, breaker) against `url`.
fn production_store(url: &str) -> RedisStore {
    RedisStore::new(&RedisSettings::new(url)).unwrap()
}

#[tokio::test]
async fn killed_redis_fails_fast_then_recovers() {
    let mut server = RedisServer::start();
    let store = production_store(&server.url());
    let k = key("site", "steady");
    let first = entry("v");
    eventually("first put", || store.put(k, &first)).await;

    server.kill();
    let mut slowest = Duration::ZERO;
    let mut refused = 0;
    for _ in 0..200 {
        let t = Instant::now();
        match store.get(k).await {
            Ok(_) => panic!("a killed Redis answered"),
            Err(StoreError::CircuitOpen(_)) => refused += 1,
            Err(_) => {}
        }
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(refused > 0, "the breaker never opened");
    eprintln!("redis down: slowest call {slowest:?}, {refused}/200 refused by the breaker");

    server.restart();
    let up = Instant::now();
    let again = entry("again");
    eventually("put after restart", || store.put(k, &again)).await;
    let recovery = up.elapsed();
    assert_eq!(store.get(k).await.unwrap(), Some(entry("again")));
    eprintln!("redis restarted: store recovered {recovery:?} after it answered PING");

    let text = prometheus::TextEncoder::new()
        .encode_to_string(&prometheus::gather())
        .unwrap();
    for name in [
        "flowgate_redis_errors_total",
        "flowgate_redis_rejected_total",
        "flowgate_redis_breaker_opened_total",
        "flowgate_redis_command_duration_seconds",
        "flowgate_redis_breaker_state",
    ] {
        assert!(
            text.contains(name),
            "{name} missing from the default registry"
        );
    }
}

#[tokio::test]
async fn absent_redis_at_start_is_picked_up_later() {
    let port = free_port();
    let store = production_store(&format!("redis://127.0.0.1:{port}"));
    for _ in 0..20 {
        assert!(store.get(key("site", "early")).await.is_err());
    }
    assert!(!store.redis_health().is_ok());

    let server = RedisServer::try_start_on(port, Options::default())
        .unwrap_or_else(|log| panic!("redis-server on :{port}: {log}"));
    let up = Instant::now();
    let late = entry("l");
    eventually("put once Redis is up", || {
        store.put(key("site", "late"), &late)
    })
    .await;
    eprintln!(
        "redis appeared: store connected {:?} after it answered PING",
        up.elapsed()
    );
    assert_eq!(
        store.get(key("site", "late")).await.unwrap(),
        Some(entry("l"))
    );
    assert!(store.redis_health().is_ok());
    drop(server);
}

#[test]
fn bad_settings_name_the_key() {
    let err = RedisStore::new(&RedisSettings::new("redis://localhost:http")).unwrap_err();
    assert!(err.to_string().contains("redis.url"), "{err}");
    let mut s = RedisSettings::new("redis://localhost");
    s.key_prefix = "{x}".into();
    s.breaker_failures = 0;
    let err = RedisStore::new(&s).unwrap_err().to_string();
    assert!(
        err.contains("redis.key_prefix") && err.contains("redis.breaker_failures"),
        "{err}"
    );
}

/// JSON object of `pairs`, in order.
fn json_object(pairs: &[(String, String)]) -> Vec<u8> {
    let members: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}:{}",
                serde_json::to_string(k).unwrap(),
                serde_json::to_string(v).unwrap()
            )
        })
        .collect();
    format!("{{{}}}", members.join(",")).into_bytes()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The entry an init with `pairs` as its visitor context stores, through the real pipeline.
fn entry_for(pairs: &[(String, String)]) -> SessionEntry {
    let raw = b64(&json_object(pairs));
    let ctx = flowgate::context::sanitize(raw.as_bytes()).unwrap();
    assert_eq!(ctx.len(), pairs.len(), "every pair accepted");
    SessionEntry {
        context: flowgate::headers::context_value(&ctx),
        prefill: flowgate::headers::prefill_value(&flowgate::prefill::prefill(&ctx)),
        status: flowgate::headers::Status::Accepted.to_string(),
        key_hash: None,
    }
}

/// The entry the same pairs would make if the 20,000-byte input limit did not exist: the header
/// values computed directly (pre-fill slots as SPEC lists them).
fn entry_unlimited(pairs: &[(String, String)]) -> SessionEntry {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut slots = Vec::new();
    for (key, names) in [
        ("ims_username", &["visitor_name", "username", "name"][..]),
        ("ims_email", &["visitor_email", "email"][..]),
        ("ims_telephone", &["visitor_phone", "phone", "custom1"][..]),
    ] {
        if let Some(v) = get(key) {
            slots.extend(names.iter().map(|s| (s.to_string(), v.clone())));
        }
    }
    SessionEntry {
        context: b64(&json_object(pairs)),
        prefill: b64(&json_object(&slots)),
        status: "accepted".into(),
        key_hash: None,
    }
}

/// Bytes Redis spends on one session (`MEMORY USAGE`), for the README's sizing table.
#[tokio::test]
async fn memory_per_session() {
    use flowgate::context::limits::{MAX_KEY_BYTES, MAX_PAIRS, MAX_RAW_BYTES, MAX_VALUE_CHARS};
    let server = RedisServer::start();
    let store = RedisStore::new(&settings(&server.url(), Duration::from_secs(86_400))).unwrap();
    let site = "site-12345";
    let session = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f";
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let seed = owned(&[
        ("account_id", "USR-84920"),
        ("plan", "Pro"),
        ("last_order", "#ORD-20241122"),
        ("ims_username", "Jane Smith"),
        ("ims_email", "jane@example.com"),
    ]);

    // The largest context an init can carry: the three ims_* keys at 500 four-byte code points
    // (they are copied into 8 pre-fill slots), then 47 more pairs sharing what is left of the
    // 20,000-byte base64 input.
    let emoji = "\u{1F600}".repeat(MAX_VALUE_CHARS);
    let mut largest: Vec<(String, String)> = ["ims_username", "ims_email", "ims_telephone"]
        .iter()
        .map(|k| (k.to_string(), emoji.clone()))
        .collect();
    let others = MAX_PAIRS - largest.len();
    largest.extend((0..others).map(|i| (format!("k{i:02}"), String::new())));
    let json_budget = MAX_RAW_BYTES / 4 * 3;
    loop {
        let grown: Vec<(String, String)> = largest
            .iter()
            .map(|(k, v)| {
                if k.starts_with('k') && v.len() < MAX_VALUE_CHARS {
                    (k.clone(), format!("{v}x"))
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        if json_object(&grown).len() > json_budget || grown == largest {
            break;
        }
        largest = grown;
    }

    // 50 keys of 100 bytes with 500 four-byte code points each: what the per-pair limits alone
    // would allow; the input limit makes it unreachable.
    let unlimited: Vec<(String, String)> = (0..MAX_PAIRS)
        .map(|i| {
            let k = match i {
                0 => "ims_username".to_string(),
                1 => "ims_email".to_string(),
                2 => "ims_telephone".to_string(),
                _ => format!("{i:02}{}", "k".repeat(MAX_KEY_BYTES - 2)),
            };
            (k, emoji.clone())
        })
        .collect();

    let cases = [
        ("seed example (5 keys)", entry_for(&seed)),
        (
            "largest accepted context (20,000-byte input)",
            entry_for(&largest),
        ),
        (
            "50 keys x 500 four-byte code points (beyond the input limit)",
            entry_unlimited(&unlimited),
        ),
    ];
    let mut table = String::new();
    for (name, e) in cases {
        store.put(key(site, session), &e).await.unwrap();
        let k = store.key(key(site, session));
        let usage: i64 = server
            .query(
                redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(&k)
                    .arg("SAMPLES")
                    .arg(0),
            )
            .unwrap();
        let value_len = flowgate::store::redis::codec::encode(&e).len();
        table.push_str(&format!(
            "| {name} | {} | {} | {value_len} | {usage} |\n",
            e.context.len(),
            e.prefill.len()
        ));
        assert!(usage as usize >= value_len);
    }
    eprintln!(
        "| entry | Context header bytes | Prefill header bytes | stored value bytes | MEMORY USAGE bytes |\n\
         | --- | --- | --- | --- | --- |\n{table}"
    );
}
