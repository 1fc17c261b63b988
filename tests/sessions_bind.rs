//! Tokens bound to the chat session, through the real binary: a token's `sid` must be the
//! request's `jsSessionId` (`bind_session: true` makes it required), and a token with a `jti`
//! works once — remembered in the in-process store, or in a real redis-server shared by two
//! flowgate processes. `flowgate check` and `flowgate inspect --site` on the same rules.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::flowgate::{Flowgate, TempDir, bin, check};
use common::redis::RedisServer;
use common::upstream::Upstream;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const INIT: &str = "/public_FlowWidget/init";
const KEY: &str = "host-key-bind-0123456789abcdefghijk";

/// Sites: `s-bind` (optional, bind_session), `s-free` (optional, sid and jti optional).
fn sites_yaml() -> String {
    let mut yaml = String::from("sites:\n");
    for (site, bind) in [("s-bind", true), ("s-free", false)] {
        yaml.push_str(&format!(
            "  {site}:\n    mode: optional\n    bind_session: {bind}\n    keys:\n      - {{kid: k1, secret: \"{KEY}\"}}\n"
        ));
    }
    yaml
}

/// A token for `site` with `extra` claims, HS256 with the site's key.
fn token(site: &str, extra: &Value) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({"ims_email": "jane@example.com", "plan": "Pro", "aud": site, "iat": now, "exp": now + 120});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "k1"});
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(msg.as_bytes());
    format!(
        "{msg}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Sends an init for `site`/`session` with `token`; the `Status` the upstream received.
async fn init(fg: &Flowgate, up: &Upstream, site: &str, session: &str, token: &str) -> String {
    let url = fg.url(&format!(
        "{INIT}?siteid={site}&jsSessionId={session}&visitor_context_token={token}"
    ));
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), 200, "the chat always works");
    up.last().header("x-flowgate-status").unwrap().to_owned()
}

/// The `Status` a session route of `site`/`session` gets re-attached.
async fn stored(fg: &Flowgate, up: &Upstream, site: &str, session: &str) -> String {
    let url = fg.url(&format!(
        "/public_FlowWidget/poll?siteid={site}&jsSessionId={session}"
    ));
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
    up.last().header("x-flowgate-status").unwrap().to_owned()
}

async fn metrics(fg: &Flowgate) -> String {
    reqwest::get(format!("http://{}/metrics", fg.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_session_bound_token_works_in_its_session_once_and_nowhere_else() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml(&sites_yaml())
        .start();

    let t = token("s-bind", &json!({"sid": "chat-A", "jti": "once-1"}));
    // Replayed into another visitor's chat session: refused before it is ever used.
    assert_eq!(
        init(&fg, &up, "s-bind", "chat-B", &t).await,
        "discarded; reason=wrong_session"
    );
    assert_eq!(stored(&fg, &up, "s-bind", "chat-B").await, "absent");
    // In its own session: accepted once, and the session routes carry it.
    assert_eq!(
        init(&fg, &up, "s-bind", "chat-A", &t).await,
        "accepted; verified"
    );
    assert_eq!(
        stored(&fg, &up, "s-bind", "chat-A").await,
        "accepted; verified"
    );
    // The same token again, even in its own session: replayed; the stored identity goes too.
    assert_eq!(
        init(&fg, &up, "s-bind", "chat-A", &t).await,
        "discarded; reason=replayed"
    );
    assert_eq!(stored(&fg, &up, "s-bind", "chat-A").await, "absent");

    // bind_session: a token without sid is refused; a site without it accepts one.
    let unbound = token("s-bind", &json!({}));
    assert_eq!(
        init(&fg, &up, "s-bind", "chat-C", &unbound).await,
        "discarded; reason=wrong_session"
    );
    let free = token("s-free", &json!({"jti": "once-1"}));
    assert_eq!(
        init(&fg, &up, "s-free", "chat-C", &free).await,
        "accepted; verified"
    );
    // One-time ids are per site (s-bind's once-1 was another token), and used is used in any
    // session.
    assert_eq!(
        init(&fg, &up, "s-free", "chat-D", &free).await,
        "discarded; reason=replayed"
    );
    // No sid, no jti, no bind_session: reusable as before.
    let plain = token("s-free", &json!({}));
    for session in ["chat-E", "chat-F"] {
        assert_eq!(
            init(&fg, &up, "s-free", session, &plain).await,
            "accepted; verified"
        );
    }
    // A non-string sid is a bad claim.
    let bad = token("s-free", &json!({"sid": 7}));
    assert_eq!(
        init(&fg, &up, "s-free", "chat-G", &bad).await,
        "discarded; reason=bad_signature"
    );

    let m = metrics(&fg).await;
    for line in [
        r#"flowgate_init_total{outcome="discarded",reason="wrong_session"} 2"#,
        r#"flowgate_init_total{outcome="discarded",reason="replayed"} 2"#,
        r#"flowgate_context_tokens_total{result="wrong_session"} 2"#,
        r#"flowgate_context_tokens_total{result="replayed"} 2"#,
        r#"flowgate_context_tokens_total{result="bad_claim"} 1"#,
    ] {
        assert!(m.contains(line), "{line} missing:\n{m}");
    }
    let log = fg.log();
    for value in ["chat-A", "chat-B", "once-1", &t[..20]] {
        assert!(!log.contains(value), "{value} in the log:\n{log}");
    }
}

#[tokio::test]
async fn a_one_time_token_used_on_one_instance_is_replayed_on_another_through_redis() {
    let redis = RedisServer::start();
    let up = Upstream::start();
    let yaml = format!("{}redis:\n  url: \"{}\"\n", sites_yaml(), redis.url());
    let a = Flowgate::options()
        .upstream(up.host_port())
        .yaml(&yaml)
        .start();
    let b = Flowgate::options()
        .upstream(up.host_port())
        .yaml(&yaml)
        .start();

    let t = token("s-bind", &json!({"sid": "chat-A", "jti": "once-r"}));
    assert_eq!(
        init(&b, &up, "s-bind", "chat-X", &t).await,
        "discarded; reason=wrong_session"
    );
    assert_eq!(
        init(&a, &up, "s-bind", "chat-A", &t).await,
        "accepted; verified"
    );
    assert_eq!(
        init(&b, &up, "s-bind", "chat-A", &t).await,
        "discarded; reason=replayed"
    );
    assert_eq!(
        init(&a, &up, "s-bind", "chat-A", &t).await,
        "discarded; reason=replayed"
    );

    // One key for the used id, hashed, living as long as the token verifies: exp in 120 s plus
    // the default 60 s leeway.
    let keys: Vec<String> = redis
        .query(redis::cmd("KEYS").arg("flowgate:jti:*"))
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("flowgate:jti:s-bind:") && !keys[0].contains("once-r"));
    let pttl: i64 = redis.query(redis::cmd("PTTL").arg(&keys[0])).unwrap();
    assert!((170_000..=182_000).contains(&pttl), "{pttl}");
}

#[tokio::test]
async fn a_store_that_cannot_answer_never_lets_a_one_time_token_through() {
    let mut redis = RedisServer::start();
    let up = Upstream::start();
    let yaml = format!("{}redis:\n  url: \"{}\"\n", sites_yaml(), redis.url());
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml(&yaml)
        .start();
    redis.kill();
    let t = token("s-free", &json!({"jti": "once-down"}));
    assert_eq!(
        init(&fg, &up, "s-free", "chat-A", &t).await,
        "discarded; reason=replay_unchecked"
    );
    // Tokens without jti do not need the store to be verified.
    let plain = token("s-free", &json!({}));
    assert_eq!(
        init(&fg, &up, "s-free", "chat-A", &plain).await,
        "accepted; verified"
    );
}

#[test]
fn check_names_bind_session_without_signed_context() {
    let dir = TempDir::new("bind-check");
    let conf = dir.path().join("f.yaml");
    std::fs::write(
        &conf,
        "sites:\n  s1:\n    bind_session: true\n  s2:\n    mode: optional\n    bind_session: yes-please\n    keys:\n      - {kid: k1, secret: \"0123456789abcdef0123456789abcdef\"}\n",
    )
    .unwrap();
    let out = check(&conf);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("sites.s1.bind_session"), "{err}");
    assert!(err.contains("mode: optional or required"), "{err}");
    assert!(err.contains("sites.s2.bind_session"), "{err}");
    std::fs::write(&conf, sites_yaml()).unwrap();
    let out = check(&conf);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn inspect_shows_wrong_session_and_one_time_use() {
    let dir = TempDir::new("bind-inspect");
    let conf = dir.path().join("f.yaml");
    std::fs::write(&conf, sites_yaml()).unwrap();
    let t = token("s-bind", &json!({"sid": "chat-A", "jti": "once-i"}));
    let inspect = |session: &str| {
        let out = Command::new(bin())
            .args([
                "inspect",
                "--site",
                "s-bind",
                "--session",
                session,
                "--token",
                &t,
                "-c",
            ])
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let other = inspect("chat-B");
    assert!(other.contains("bind_session: tokens need sid"), "{other}");
    assert!(other.contains("REFUSED (wrong_session)"), "{other}");
    assert!(
        other.contains("status: discarded; reason=wrong_session"),
        "{other}"
    );
    let own = inspect("chat-A");
    assert!(own.contains("token: verified with kid k1"), "{own}");
    assert!(own.contains("one-time (jti)"), "{own}");
    assert!(own.contains("sid present, jti present"), "{own}");
}
