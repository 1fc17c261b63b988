//! `sessions.bind: key` through the real binary, over raw HTTP: the stored context is attached
//! only to session routes that present the key its init presented (`Flowgate-Session-Key`); a
//! missing, malformed or other key gets nothing and `Status: discarded; reason=session_key`; an
//! init that would replace or delete a bound context without its key leaves it alone; the key
//! never reaches the backend or the log. In the in-process store and in a real redis-server,
//! where entries written before keys existed still read (and are not attached with `bind: key`).
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::flowgate::{Flowgate, TempDir, check};
use common::raw::exchange;
use common::redis::RedisServer;
use common::store_routes::{CONTEXT, redis_yaml};
use common::upstream::{Received, Upstream};
use common::{b64, decode_json, wait_until_async};
use sha2::Digest as _;

const BIND_KEY: &str = "sessions:\n  bind: key\n";
const REFUSED: &str = "discarded; reason=session_key";
/// A deadline a loaded test machine does not miss (these tests are not about slow stores).
const PATIENT: &str = "store:\n  deadline_ms: 2000\n";

/// A session key as the widget makes one: 32 bytes, base64url without padding.
fn key(byte: u8) -> String {
    URL_SAFE_NO_PAD.encode([byte; 32])
}

/// One raw GET through flowgate, with the key header (as given) when set; unique by `seq`.
fn send(fg: &Flowgate, path: &str, seq: u64, header: Option<(&str, &str)>) -> u16 {
    let mut req =
        format!("GET {path}&seq={seq} HTTP/1.1\r\nHost: chat.test\r\nConnection: close\r\n");
    if let Some((name, value)) = header {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    exchange(fg.addr, req.as_bytes()).status
}

fn init(ctx: Option<&str>) -> String {
    let mut p = "/public_FlowWidget/init?siteid=shop&jsSessionId=visitor-1".to_owned();
    if let Some(c) = ctx {
        p.push_str("&visitor_context=");
        p.push_str(&b64(c));
    }
    p
}

const POLL: &str = "/public_FlowWidget/chat/poll?siteid=shop&jsSessionId=visitor-1";

/// What the upstream received for the request sent with `seq`.
fn seen(up: &Upstream, seq: u64) -> Received {
    let want = format!("seq={seq}");
    up.received()
        .into_iter()
        .find(|r| {
            r.query
                .as_deref()
                .is_some_and(|q| q.split('&').any(|p| p == want))
        })
        .unwrap_or_else(|| panic!("the upstream did not get request {seq}"))
}

/// The `Status` and the context's `account_id` the upstream got on request `seq`.
fn trusted(up: &Upstream, seq: u64) -> (String, Option<String>) {
    let r = seen(up, seq);
    let status = r.header("x-flowgate-status").unwrap_or_default().to_owned();
    let account = r
        .header("x-flowgate-context")
        .map(|c| decode_json(c)["account_id"].as_str().unwrap().to_owned());
    (status, account)
}

/// No request the upstream got carried the key, in any spelling, and the log never names it.
fn key_never_left(up: &Upstream, fg: &Flowgate, keys: &[&str]) {
    for r in up.received() {
        for (name, value) in &r.headers {
            let folded: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            assert_ne!(folded, "flowgate-session-key", "{name} was forwarded");
            for k in keys {
                assert!(!value.contains(k), "a key reached the upstream in {name}");
            }
        }
    }
    let log = fg.log();
    for k in keys {
        assert!(!log.contains(k), "the log names a session key");
    }
}

fn start(up: &Upstream, yaml: &str) -> Flowgate {
    Flowgate::options()
        .upstream(up.host_port())
        .yaml(yaml)
        .yaml("log:\n  level: debug\n")
        .start()
}

/// The right key attaches; none, a malformed one or another one does not.
async fn only_the_right_key_attaches(store_yaml: &str) {
    let up = Upstream::start();
    let fg = start(&up, &format!("{BIND_KEY}{PATIENT}{store_yaml}"));
    let (a, b) = (key(1), key(2));
    let h = "Flowgate-Session-Key";
    assert_eq!(send(&fg, &init(Some(CONTEXT)), 1, Some((h, &a))), 200);
    assert_eq!(
        trusted(&up, 1),
        ("accepted".into(), Some("USR-84920".into()))
    );

    assert_eq!(send(&fg, POLL, 2, Some((h, &a))), 200);
    assert_eq!(
        trusted(&up, 2),
        ("accepted".into(), Some("USR-84920".into()))
    );
    // The key is a header, compared case-insensitively by name like any other.
    send(&fg, POLL, 3, Some(("flowgate-session-key", &a)));
    assert_eq!(trusted(&up, 3).1.as_deref(), Some("USR-84920"));

    for (seq, header) in [
        (4, None),
        (5, Some((h, b.as_str()))),
        (6, Some((h, "short"))),
        (7, Some((h, &a[..42]))),
        // Another spelling is removed, never read.
        (8, Some(("Flowgate_Session_Key", a.as_str()))),
    ] {
        assert_eq!(send(&fg, POLL, seq, header), 200);
        assert_eq!(trusted(&up, seq), (REFUSED.into(), None), "request {seq}");
    }
    fg.assert_metrics(&[
        (r#"flowgate_session_requests_total{outcome="hit"}"#, 2.0),
        (
            r#"flowgate_session_requests_total{outcome="session_key"}"#,
            5.0,
        ),
        (r#"flowgate_init_total{outcome="accepted",reason=""}"#, 1.0),
    ])
    .await;
    key_never_left(&up, &fg, &[&a, &b]);
}

/// An init without the stored context's key can neither replace nor delete it; with it, it can.
async fn replace_and_delete_need_the_key(store_yaml: &str) {
    let up = Upstream::start();
    let fg = start(&up, &format!("{BIND_KEY}{PATIENT}{store_yaml}"));
    let (a, b) = (key(1), key(2));
    let h = "Flowgate-Session-Key";
    let other = r#"{"account_id":"ATTACKER","plan":"Free"}"#;
    send(&fg, &init(Some(CONTEXT)), 1, Some((h, &a)));
    // Replace with another key, or none: proxied without context, the stored one untouched.
    send(&fg, &init(Some(other)), 2, Some((h, &b)));
    assert_eq!(trusted(&up, 2), (REFUSED.into(), None));
    send(&fg, &init(Some(other)), 3, None);
    assert_eq!(trusted(&up, 3), (REFUSED.into(), None));
    // Delete (the anonymous re-init of a logout) with another key, or none.
    send(&fg, &init(None), 4, Some((h, &b)));
    assert_eq!(trusted(&up, 4), (REFUSED.into(), None));
    send(&fg, &init(None), 5, None);
    assert_eq!(trusted(&up, 5), (REFUSED.into(), None));
    send(&fg, POLL, 6, Some((h, &a)));
    assert_eq!(
        trusted(&up, 6),
        ("accepted".into(), Some("USR-84920".into()))
    );
    fg.assert_metrics(&[(
        r#"flowgate_init_total{outcome="discarded",reason="session_key"}"#,
        4.0,
    )])
    .await;

    // The visitor's own key replaces, then logs out.
    let plan = r#"{"account_id":"USR-84920","plan":"Team"}"#;
    send(&fg, &init(Some(plan)), 7, Some((h, &a)));
    assert_eq!(trusted(&up, 7).0, "accepted");
    send(&fg, POLL, 8, Some((h, &a)));
    let r = seen(&up, 8);
    assert_eq!(
        decode_json(r.header("x-flowgate-context").unwrap())["plan"],
        "Team"
    );
    send(&fg, &init(None), 9, Some((h, &a)));
    assert_eq!(trusted(&up, 9), ("absent".into(), None));
    send(&fg, POLL, 10, Some((h, &a)));
    assert_eq!(trusted(&up, 10), ("absent".into(), None));
    // After the logout the session is free: an init with any key binds it anew.
    send(&fg, &init(Some(other)), 11, Some((h, &b)));
    assert_eq!(trusted(&up, 11).0, "accepted");
    send(&fg, POLL, 12, Some((h, &a)));
    assert_eq!(trusted(&up, 12), (REFUSED.into(), None));
    key_never_left(&up, &fg, &[&a, &b]);
}

#[tokio::test]
async fn in_process_only_the_right_key_attaches() {
    only_the_right_key_attaches("").await;
}

#[tokio::test]
async fn in_process_replace_and_delete_need_the_key() {
    replace_and_delete_need_the_key("").await;
}

#[tokio::test]
async fn redis_only_the_right_key_attaches() {
    let redis = RedisServer::start();
    only_the_right_key_attaches(&redis_yaml(&redis.url())).await;
}

#[tokio::test]
async fn redis_replace_and_delete_need_the_key() {
    let redis = RedisServer::start();
    replace_and_delete_need_the_key(&redis_yaml(&redis.url())).await;
}

/// Redis holds the key's SHA-256 beside the context, never the key; an entry written without a
/// key (before `bind: key`, by an instance with `bind: off`) still reads, is not attached with
/// `bind: key`, and is replaced by the visitor's next init.
#[tokio::test]
async fn redis_stores_a_hash_and_reads_entries_written_before() {
    let redis = RedisServer::start();
    let up = Upstream::start();
    let off = start(&up, &format!("{PATIENT}{}", redis_yaml(&redis.url())));
    let on = start(
        &up,
        &format!("{BIND_KEY}{PATIENT}{}", redis_yaml(&redis.url())),
    );
    let a = key(3);
    let h = "Flowgate-Session-Key";
    let redis_key = "flowgate:{shop:visitor-1}";

    // Written by `bind: off` without a key: the old format, unbound.
    send(&off, &init(Some(CONTEXT)), 1, None);
    let stored: Vec<u8> = redis.query(redis::cmd("GET").arg(redis_key)).unwrap();
    assert_eq!(stored[0], 1);
    send(&off, POLL, 2, None);
    assert_eq!(trusted(&up, 2).1.as_deref(), Some("USR-84920"));
    send(&on, POLL, 3, Some((h, &a)));
    assert_eq!(trusted(&up, 3), (REFUSED.into(), None));

    // The visitor's next init binds it: the value holds the hash of the key, not the key.
    send(&on, &init(Some(CONTEXT)), 4, Some((h, &a)));
    assert_eq!(trusted(&up, 4).0, "accepted");
    let stored: Vec<u8> = redis.query(redis::cmd("GET").arg(redis_key)).unwrap();
    let raw = URL_SAFE_NO_PAD.decode(&a).unwrap();
    assert_eq!(stored[0], 2);
    assert_eq!(&stored[1..33], sha2::Sha256::digest(&raw).as_slice());
    assert!(!stored.windows(raw.len()).any(|w| w == raw));
    assert!(!stored.windows(a.len()).any(|w| w == a.as_bytes()));
    send(&on, POLL, 5, Some((h, &a)));
    assert_eq!(trusted(&up, 5).1.as_deref(), Some("USR-84920"));
    // `bind: off` ignores the binding (and can still delete: the operator turned it off).
    send(&off, POLL, 6, None);
    assert_eq!(trusted(&up, 6).1.as_deref(), Some("USR-84920"));
    wait_until_async("the bound-write metric", || async {
        on.metrics()
            .await
            .contains(r#"flowgate_redis_command_duration_seconds_count{command="eval"} 1"#)
    })
    .await;
    key_never_left(&up, &on, &[&a]);
}

/// `bind: off` (the default) attaches by session id alone, as before, and still removes the
/// key header before forwarding.
#[tokio::test]
async fn bind_off_attaches_by_id_and_still_strips_the_key() {
    let up = Upstream::start();
    let fg = start(&up, PATIENT);
    let a = key(4);
    send(
        &fg,
        &init(Some(CONTEXT)),
        1,
        Some(("Flowgate-Session-Key", &a)),
    );
    send(&fg, POLL, 2, None);
    assert_eq!(
        trusted(&up, 2),
        ("accepted".into(), Some("USR-84920".into()))
    );
    send(&fg, &init(None), 3, Some(("Flowgate-Session-Key", &key(5))));
    assert_eq!(trusted(&up, 3), ("absent".into(), None));
    key_never_left(&up, &fg, &[&a]);
}

#[test]
fn check_names_a_bad_binding() {
    let dir = TempDir::new("sessions-key");
    let conf = dir.path().join("flowgate.yaml");
    std::fs::write(&conf, "sessions:\n  bind: cookie\n").unwrap();
    let out = check(&conf);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sessions.bind"), "{err}");
    std::fs::write(&conf, BIND_KEY).unwrap();
    assert!(check(&conf).status.success());
}

/// A logout that cannot reach Redis waits with the key it presented: one without the visitor's
/// key lands as a bound delete (the context stays), the visitor's own lands and holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_stalled_logout_keeps_its_key() {
    let redis = RedisServer::start();
    let up = Upstream::start();
    let fg = start(
        &up,
        &format!(
            "{BIND_KEY}{}store:\n  deadline_ms: 250\n",
            redis_yaml(&redis.url())
        ),
    );
    let (a, b) = (key(6), key(7));
    let h = "Flowgate-Session-Key";
    let mut seq = 0u64;
    let mut next = || {
        seq += 1;
        seq
    };
    // A loaded machine can miss a deadline: store until it reads back.
    let mut stored = false;
    for _ in 0..50 {
        send(&fg, &init(Some(CONTEXT)), next(), Some((h, &a)));
        let n = next();
        send(&fg, POLL, n, Some((h, &a)));
        if trusted(&up, n).1.is_some() {
            stored = true;
            break;
        }
    }
    assert!(stored, "the context never read back");

    for (logout_key, survives) in [(&b, true), (&a, false)] {
        redis.stop();
        let bystander = "/public_FlowWidget/chat/poll?siteid=shop&jsSessionId=bystander";
        let fg_ref = &fg;
        wait_until_async("the breaker to open during the stall", || {
            send(fg_ref, bystander, next(), Some((h, &a)));
            async move {
                common::store_routes::healthz(fg_ref)
                    .await
                    .starts_with("degraded")
            }
        })
        .await;
        let n = next();
        send(&fg, &init(None), n, Some((h, logout_key)));
        assert_eq!(trusted(&up, n).1, None);
        assert!(fg.metric("flowgate_redis_pending_deletes").await >= 1.0);
        redis.resume();
        wait_until_async("the waiting logout to reach Redis", || async {
            fg.metric("flowgate_redis_pending_deletes").await == 0.0
        })
        .await;
        let n = next();
        send(&fg, POLL, n, Some((h, &a)));
        let attached = trusted(&up, n).1.is_some();
        let exists: i64 = redis
            .query(redis::cmd("EXISTS").arg("flowgate:{shop:visitor-1}"))
            .unwrap();
        assert_eq!((attached, exists == 1), (survives, survives));
    }
    key_never_left(&up, &fg, &[&a, &b]);
}
