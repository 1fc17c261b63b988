//! Trust through the real binary: the header signature on what the upstream really received
//! (checked by `upstream::verify` and by `examples/upstream/verify.php`), and signed visitor
//! context per site mode.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::flowgate::{Flowgate, TempDir};
use common::upstream::{Received, Upstream};
use common::{b64, decode_json};
use flowgate::trust::sign::{HostKey, sign_context};
use flowgate::upstream::{self, AcknowledgeUnsigned, Options, RequestView, VerifyError};
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use sha2::Sha256;

const INIT: &str = "/public_FlowWidget/init";
const SIGN_NEW: &str = "edge-signing-secret-new-0123456789";
const SIGN_OLD: &str = "edge-signing-secret-old-0123456789";
const K1: &str = "host-key-one-0123456789abcdefghijk";
const K2: &str = "host-key-two-0123456789abcdefghijk";

// ---------------------------------------------------------------------------------------------
// Helpers

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The target the upstream received: path, and `?query` when there is one.
fn target(r: &Received) -> String {
    match &r.query {
        Some(q) => format!("{}?{q}", r.path),
        None => r.path.clone(),
    }
}

/// The received request as the verification kit's input.
fn verify_received(
    r: &Received,
    secrets: &[&str],
    at: Option<u64>,
) -> Result<upstream::TrustedContext, VerifyError> {
    let target = target(r);
    let view = RequestView::new(&r.method, &target, |name: &str| r.header(name));
    let mut options = Options::new(secrets).unwrap();
    if let Some(now) = at {
        options = options.now(now);
    }
    upstream::verify(&view, &options)
}

/// `examples/upstream/verify.php` on the received request: the result, or the refusal reason.
fn php_verify(r: &Received, secrets: &[&str], now: u64) -> Value {
    let headers: serde_json::Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let request = json!({"method": r.method, "target": target(r), "headers": headers});
    let input = json!({"secrets": secrets, "settings": {"now": now}, "requests": [request]});
    let out = common::process::run(
        &mut common::process::php(&[], "trust_verify.php"),
        input.to_string(),
    );
    let out: Value = serde_json::from_str(&out).unwrap();
    out["results"][0].clone()
}

fn with_header(r: &Received, name: &str, value: Option<&str>) -> Received {
    let mut r = r.clone();
    r.headers.retain(|(n, _)| n != name);
    if let Some(v) = value {
        r.headers.push((name.to_owned(), v.to_owned()));
    }
    r
}

fn signed_at(r: &Received) -> u64 {
    let sig = r.header("x-flowgate-signature").unwrap();
    sig.split(',')
        .find_map(|f| f.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap()
}

async fn get(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

fn host_token(site: &str, kid: &'static str, secret: &'static str, issued: u64) -> String {
    let key = HostKey {
        kid,
        secret: secret.as_bytes(),
        alg: Algorithm::HS256,
    };
    sign_context(
        &[("plan", "Pro"), ("ims_email", "jane@example.com")],
        site,
        &key,
        issued,
        300,
    )
    .unwrap()
}

/// A token with any header and payload, HS256-signed with `secret` (or with no signature).
fn forge(header: &Value, payload: &Value, secret: Option<&str>) -> String {
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let sig = secret.map_or_else(String::new, |s| {
        let mut mac = Hmac::<Sha256>::new_from_slice(s.as_bytes()).unwrap();
        mac.update(msg.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    });
    format!("{msg}.{sig}")
}

/// Three sites with the same keys: off, optional, required. Key k1 from a file, k2 from the
/// environment; the edge signs with FLOWGATE_SIGNING_SECRET = new,old.
fn start(up: &Upstream, keys: &TempDir) -> Flowgate {
    let k1 = keys.path().join("k1.key");
    std::fs::write(&k1, format!("# site key k1\n{K1}\n")).unwrap();
    let keys_yaml = format!(
        "    keys:\n      - {{kid: k1, secret_file: \"{}\"}}\n      - {{kid: k2, secret_env: TRUST_TEST_K2}}\n",
        k1.display()
    );
    let mut yaml = String::from("sites:\n");
    for (site, mode) in [
        ("s-off", "off"),
        ("s-opt", "optional"),
        ("s-req", "required"),
    ] {
        yaml.push_str(&format!(
            "  {site}:\n    mode: {mode}\n    leeway_seconds: 30\n{keys_yaml}"
        ));
    }
    Flowgate::options()
        .upstream(up.host_port())
        .env(
            "FLOWGATE_SIGNING_SECRET",
            &format!("{SIGN_NEW}, {SIGN_OLD}"),
        )
        .env("TRUST_TEST_K2", K2)
        .yaml(&yaml)
        .start()
}

fn init_url(fg: &Flowgate, site: &str, context: Option<&str>, token: Option<&str>) -> String {
    let mut q = format!("{INIT}?siteid={site}&jsSessionId=sess-{site}");
    if let Some(c) = context {
        q.push_str(&format!(
            "&visitor_context={}",
            c.replace('+', "%2B").replace('=', "%3D")
        ));
    }
    if let Some(t) = token {
        q.push_str(&format!("&visitor_context_token={t}"));
    }
    fg.url(&q)
}

// ---------------------------------------------------------------------------------------------
// Header signature

#[tokio::test]
async fn every_forwarded_request_is_signed_and_verifies_in_rust_and_php() {
    let up = Upstream::start();
    let keys = TempDir::new("trust-keys");
    let fg = start(&up, &keys);
    let ctx =
        b64(r#"{"account_id":"USR-1","ims_username":"Jane Smith","ims_email":"jane@example.com"}"#);

    // A client-sent signature is stripped like every other prefixed header.
    let client = reqwest::Client::new();
    let resp = client
        .get(init_url(&fg, "s-off", Some(&ctx), None))
        .header("X-Flowgate-Signature", "t=1,v1=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let init = up.last();
    assert_eq!(init.all("x-flowgate-signature").len(), 1);
    assert_ne!(init.header("x-flowgate-signature"), Some("t=1,v1=forged"));

    assert_eq!(
        get(&fg.url("/public_FlowWidget/poll?siteid=s-off&jsSessionId=sess-s-off")).await,
        200
    );
    let session = up.last();
    assert_eq!(get(&fg.url("/static/app.js?x=1")).await, 200);
    let other = up.last();
    assert!(
        other.flowgate_headers().len() == 1,
        "{:?}",
        other.flowgate_headers()
    );

    for r in [&init, &session, &other] {
        let t = signed_at(r);
        let ctx = verify_received(r, &[SIGN_NEW], Some(t)).unwrap();
        // Rotation: the old secret alone does not verify what the new one signed…
        assert_eq!(
            verify_received(r, &[SIGN_OLD], Some(t)),
            Err(VerifyError::BadSignature)
        );
        // …and a verifier listing both accepts it.
        assert!(verify_received(r, &[SIGN_OLD, SIGN_NEW], Some(t)).is_ok());
        let php = php_verify(r, &[SIGN_NEW], t);
        assert_eq!(php["ok"], true, "{php} for {}", r.path);
        assert_eq!(php["result"]["status"].as_str().unwrap(), ctx_status(&ctx));
        assert_eq!(php_verify(r, &[SIGN_OLD], t)["reason"], "bad_signature");
        assert_eq!(
            php_verify(r, &["x".repeat(40).as_str()], t)["reason"],
            "bad_signature"
        );
        // Expired and from the future, on both sides.
        assert_eq!(php_verify(r, &[SIGN_NEW], t + 301)["reason"], "expired");
        assert_eq!(
            verify_received(r, &[SIGN_NEW], Some(t + 301)),
            Err(VerifyError::Expired { skew: 301 })
        );
        assert_eq!(php_verify(r, &[SIGN_NEW], t - 301)["reason"], "expired");
    }
    let t = signed_at(&init);
    let trusted = verify_received(&init, &[SIGN_NEW], Some(t)).unwrap();
    // Site s-off: the browser's word, handed out only on the explicit opt-in.
    assert_eq!(trusted.verified_prefill(), None);
    assert_eq!(
        trusted
            .browser_prefill(AcknowledgeUnsigned)
            .unwrap()
            .get("visitor_email"),
        Some("jane@example.com")
    );
    let php = php_verify(&init, &[SIGN_NEW], t);
    assert_eq!(php["result"]["verified_prefill"], Value::Null);
    assert_eq!(
        php["result"]["browser_prefill"][0],
        json!(["visitor_name", "Jane Smith"])
    );
    // The session route re-attached the stored headers, signed afresh.
    let stored = verify_received(&session, &[SIGN_NEW], Some(signed_at(&session))).unwrap();
    assert_eq!(stored.context, trusted.context);

    // Tampering with each field of what the upstream really received is detected by both.
    let forged_ctx = b64(r#"{"ims_email":"ceo@example.com"}"#);
    let forged_prefill = b64(r#"{"visitor_email":"ceo@example.com","email":"ceo@example.com"}"#);
    let cases: [(&str, Option<&str>); 9] = [
        ("x-flowgate-site", Some("other-site")),
        ("x-flowgate-session", Some("sess-x")),
        ("x-flowgate-status", Some("accepted; verified")),
        ("x-flowgate-context", Some(&forged_ctx)),
        ("x-flowgate-prefill", Some(&forged_prefill)),
        ("x-flowgate-context", None),
        ("x-flowgate-prefill", None),
        ("x-flowgate-status", None),
        ("x-flowgate-site", None),
    ];
    for (name, value) in cases {
        let bad = with_header(&init, name, value);
        assert_eq!(
            verify_received(&bad, &[SIGN_NEW], Some(t)),
            Err(VerifyError::BadSignature),
            "{name}"
        );
        assert_eq!(
            php_verify(&bad, &[SIGN_NEW], t)["reason"],
            "bad_signature",
            "{name}"
        );
    }
    // The path: the same headers replayed against another route.
    let mut moved = init.clone();
    moved.path = "/public_FlowWidget/admin".into();
    assert_eq!(
        verify_received(&moved, &[SIGN_NEW], Some(t)),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        php_verify(&moved, &[SIGN_NEW], t)["reason"],
        "bad_signature"
    );
    // The signature itself: removed, or re-timed.
    let bare = with_header(&init, "x-flowgate-signature", None);
    assert_eq!(
        verify_received(&bare, &[SIGN_NEW], Some(t)),
        Err(VerifyError::MissingSignature)
    );
    assert_eq!(
        php_verify(&bare, &[SIGN_NEW], t)["reason"],
        "missing_signature"
    );
    let sig = init.header("x-flowgate-signature").unwrap();
    let retimed = sig.replacen(&format!("t={t}"), &format!("t={}", t + 100), 1);
    let bad = with_header(&init, "x-flowgate-signature", Some(&retimed));
    assert_eq!(php_verify(&bad, &[SIGN_NEW], t)["reason"], "bad_signature");
}

fn ctx_status(ctx: &upstream::TrustedContext) -> &'static str {
    match &ctx.status {
        upstream::ContextStatus::Accepted => "accepted",
        upstream::ContextStatus::Verified => "verified",
        upstream::ContextStatus::Unverified => "unverified",
        upstream::ContextStatus::Absent => "absent",
        upstream::ContextStatus::Discarded { .. } => "discarded",
    }
}

#[tokio::test]
async fn without_a_secret_requests_go_unsigned_and_the_start_warns_once() {
    let up = Upstream::start();
    let keys_dir = TempDir::new("trust-nosecret");
    let fg = Flowgate::start(&up.host_port());
    assert_eq!(
        get(&fg.url(&format!("{INIT}?siteid=a&jsSessionId=b"))).await,
        200
    );
    assert_eq!(up.last().header("x-flowgate-signature"), None);
    assert_eq!(up.last().header("x-flowgate-status"), Some("absent"));
    assert_eq!(
        fg.log().matches("no signing secret").count(),
        1,
        "{}",
        fg.log()
    );
    drop(keys_dir);

    // A secrets file works like the environment (first line signs).
    let dir = TempDir::new("trust-secret-file");
    let file = dir.path().join("signing.secrets");
    std::fs::write(&file, format!("# newest first\n{SIGN_NEW}\n{SIGN_OLD}\n")).unwrap();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml(&format!(
            "signing:\n  secret_file: \"{}\"\n",
            file.display()
        ))
        .start();
    assert_eq!(get(&fg.url("/anything")).await, 200);
    let r = up.last();
    assert!(verify_received(&r, &[SIGN_NEW], None).is_ok());
    assert!(!fg.log().contains("no signing secret"));
    assert!(
        !fg.log().contains(SIGN_NEW),
        "the secret must never be logged"
    );
}

// ---------------------------------------------------------------------------------------------
// Signed visitor context

#[tokio::test]
async fn modes_off_optional_required_on_the_same_payloads() {
    let up = Upstream::start();
    let keys = TempDir::new("trust-keys");
    let fg = start(&up, &keys);
    let unsigned = b64(r#"{"plan":"Free","ims_email":"mallory@example.com"}"#);

    let mut seen = Vec::new();
    for site in ["s-off", "s-opt", "s-req"] {
        let token = host_token(site, "k1", K1, now());
        for (context, token) in [
            (Some(unsigned.as_str()), None),
            (None, Some(token.as_str())),
            (Some(unsigned.as_str()), Some(token.as_str())),
        ] {
            assert_eq!(get(&init_url(&fg, site, context, token)).await, 200);
            let r = up.last();
            let prefill = r
                .header("x-flowgate-prefill")
                .map(|p| {
                    decode_json(p)["visitor_email"]
                        .as_str()
                        .unwrap_or("-")
                        .to_owned()
                })
                .unwrap_or_else(|| "-".to_owned());
            seen.push(format!(
                "{site} ctx={} token={}: {} / {prefill}",
                context.is_some(),
                token.is_some(),
                r.header("x-flowgate-status").unwrap()
            ));
            // Whatever the mode, the backend can verify what it got.
            assert!(verify_received(&r, &[SIGN_NEW], None).is_ok());
        }
    }
    let expected = [
        "s-off ctx=true token=false: accepted / mallory@example.com",
        "s-off ctx=false token=true: absent / -",
        "s-off ctx=true token=true: accepted / mallory@example.com",
        "s-opt ctx=true token=false: accepted; unverified / mallory@example.com",
        "s-opt ctx=false token=true: accepted; verified / jane@example.com",
        "s-opt ctx=true token=true: accepted; verified / jane@example.com",
        "s-req ctx=true token=false: accepted; unverified / -",
        "s-req ctx=false token=true: accepted; verified / jane@example.com",
        "s-req ctx=true token=true: accepted; verified / jane@example.com",
    ];
    assert_eq!(seen, expected);

    // Required mode: the unverified context keeps its metadata, loses its identity.
    assert_eq!(
        get(&init_url(&fg, "s-req", Some(&unsigned), None)).await,
        200
    );
    let r = up.last();
    assert_eq!(
        decode_json(r.header("x-flowgate-context").unwrap()),
        json!({"plan": "Free"})
    );
    assert_eq!(
        decode_json(r.header("x-flowgate-prefill").unwrap()),
        json!({})
    );
    assert_eq!(
        fg.metric(r#"flowgate_context_pairs_dropped_total{reason="unverified_identity"}"#)
            .await,
        2.0
    );
    // A verified context is stored and re-attached on the session's other requests.
    let token = host_token("s-req", "k2", K2, now());
    assert_eq!(get(&init_url(&fg, "s-req", None, Some(&token))).await, 200);
    assert_eq!(
        get(&fg.url("/public_FlowWidget/msg?siteid=s-req&jsSessionId=sess-s-req")).await,
        200
    );
    let r = up.last();
    assert_eq!(r.header("x-flowgate-status"), Some("accepted; verified"));
    assert_eq!(
        decode_json(r.header("x-flowgate-prefill").unwrap())["email"],
        "jane@example.com"
    );
    fg.assert_metrics(&[
        (r#"flowgate_context_tokens_total{result="verified"}"#, 5.0),
        (r#"flowgate_context_tokens_total{result="ignored"}"#, 2.0),
        (
            r#"flowgate_init_verification_total{result="verified"}"#,
            5.0,
        ),
        (
            r#"flowgate_init_verification_total{result="unverified"}"#,
            3.0,
        ),
    ])
    .await;
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_reason() {
    let up = Upstream::start();
    let keys = TempDir::new("trust-keys");
    let fg = start(&up, &keys);
    let n = now();
    let claims = |extra: Value| {
        let mut c =
            json!({"ims_email": "jane@example.com", "aud": "s-opt", "exp": n + 300, "iat": n});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let hs = |kid: &str| json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let good = host_token("s-opt", "k1", K1, n);
    let parts: Vec<&str> = good.split('.').collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.replace("jane@", "ceo@")),
        parts[2]
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong site",
            host_token("s-req", "k1", K1, n),
            "wrong_audience",
        ),
        (
            "expired",
            host_token("s-opt", "k1", K1, n - 3600),
            "expired",
        ),
        (
            "not yet valid (nbf)",
            forge(&hs("k1"), &claims(json!({"nbf": n + 3600})), Some(K1)),
            "not_yet_valid",
        ),
        (
            "not yet valid (iat)",
            forge(&hs("k1"), &claims(json!({"iat": n + 3600})), Some(K1)),
            "not_yet_valid",
        ),
        ("tampered claims", tampered, "bad_signature"),
        (
            "unknown kid",
            forge(&hs("k9"), &claims(json!({})), Some(K1)),
            "unknown_kid",
        ),
        (
            "rotated kid, old name",
            forge(&hs("k1"), &claims(json!({})), Some(K2)),
            "bad_signature",
        ),
        (
            "missing kid",
            forge(&json!({"alg": "HS256"}), &claims(json!({})), Some(K1)),
            "missing_kid",
        ),
        (
            "alg none",
            forge(
                &json!({"alg": "none", "kid": "k1"}),
                &claims(json!({})),
                None,
            ),
            "alg_not_allowed",
        ),
        (
            "wrong alg",
            forge(
                &json!({"alg": "RS256", "kid": "k1"}),
                &claims(json!({})),
                Some(K1),
            ),
            "alg_not_allowed",
        ),
        (
            "no exp",
            forge(&hs("k1"), &claims(json!({"exp": null})), Some(K1)),
            "missing_claim",
        ),
        ("garbage", "not.a.jwt!".to_owned(), "malformed"),
        // Issue 17: tokens that cannot live forever, integer times only, precise reasons.
        (
            "exp 2^63-1, iat 1",
            forge(
                &hs("k1"),
                &claims(json!({"exp": i64::MAX, "iat": 1})),
                Some(K1),
            ),
            "too_old",
        ),
        (
            "issued two hours ago",
            forge(&hs("k1"), &claims(json!({"iat": n - 7200})), Some(K1)),
            "too_old",
        ),
        (
            "no iat",
            forge(&hs("k1"), &claims(json!({"iat": null})), Some(K1)),
            "missing_claim",
        ),
        (
            "float exp",
            forge(
                &hs("k1"),
                &claims(json!({"exp": (n + 300) as f64 + 0.5})),
                Some(K1),
            ),
            "bad_claim",
        ),
        (
            "string iat",
            forge(&hs("k1"), &claims(json!({"iat": n.to_string()})), Some(K1)),
            "bad_claim",
        ),
        (
            "negative exp",
            forge(&hs("k1"), &claims(json!({"exp": -1})), Some(K1)),
            "expired",
        ),
        (
            "numeric kid",
            forge(
                &json!({"alg": "HS256", "kid": 1}),
                &claims(json!({})),
                Some(K1),
            ),
            "bad_kid",
        ),
    ];
    for (what, token, reason) in &cases {
        assert_eq!(
            get(&init_url(
                &fg,
                "s-opt",
                Some(&b64(r#"{"ims_email":"x@y"}"#)),
                Some(token)
            ))
            .await,
            200
        );
        let r = up.last();
        assert_eq!(
            r.header("x-flowgate-status"),
            Some("discarded; reason=bad_signature"),
            "{what}"
        );
        assert_eq!(
            r.header("x-flowgate-context"),
            None,
            "{what}: never a fallback"
        );
        assert_eq!(r.header("x-flowgate-prefill"), None, "{what}");
        // Neither the token nor the context reaches the backend's access log (issue 17).
        assert_eq!(
            r.query.as_deref(),
            Some("siteid=s-opt&jsSessionId=sess-s-opt"),
            "{what}"
        );
        let sample = format!(r#"flowgate_context_tokens_total{{result="{reason}"}}"#);
        assert!(fg.metric(&sample).await >= 1.0, "{what}: {sample}");
        assert!(verify_received(&r, &[SIGN_NEW], None).is_ok());
    }
    // The rotated key itself verifies under its own kid.
    let rotated = forge(&hs("k2"), &claims(json!({})), Some(K2));
    assert_eq!(
        get(&init_url(&fg, "s-opt", None, Some(&rotated))).await,
        200
    );
    assert_eq!(
        up.last().header("x-flowgate-status"),
        Some("accepted; verified")
    );
    // An oversize token: the 20,000-character limit of a context.
    let huge = format!("{}.{}.x", parts[0], "A".repeat(20_000));
    assert_eq!(get(&init_url(&fg, "s-req", None, Some(&huge))).await, 200);
    assert_eq!(
        up.last().header("x-flowgate-status"),
        Some("discarded; reason=size")
    );
    fg.assert_metrics(&[
        (r#"flowgate_context_tokens_total{result="too_long"}"#, 1.0),
        (
            r#"flowgate_context_tokens_total{result="unknown_kid"}"#,
            1.0,
        ),
        (
            r#"flowgate_init_total{outcome="discarded",reason="bad_signature"}"#,
            cases.len() as f64,
        ),
    ])
    .await;
    // No token, no secret and no claim value ever reaches the log.
    let log = fg.log();
    for needle in [K1, K2, SIGN_NEW, "jane@example.com", parts[2]] {
        assert!(!log.contains(needle), "{needle} in the log");
    }
}

#[test]
fn check_lists_trust_problems() {
    let dir = TempDir::new("trust-check");
    let conf = dir.path().join("f.yaml");
    std::fs::write(
        &conf,
        "params: {token: siteid}\nsigning: {secret_file: /nonexistent/flowgate.secrets}\nsites:\n  s1:\n    mode: required\n    leeway: 5\n    keys:\n      - {kid: a, secret_env: TRUST_TEST_SURELY_UNSET}\n      - {kid: a, secret: short}\n  s2: {mode: optional}\n",
    )
    .unwrap();
    let out = common::flowgate::check(&conf);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    for key in [
        "params.token",
        "sites.s1.leeway",
        "sites.s1.keys[1].kid",
        "sites.s1.keys[1].secret",
        "sites.s2.keys",
    ] {
        assert!(text.contains(key), "{key} missing in:\n{text}");
    }
    // Names the missing secrets once the shape is right.
    std::fs::write(
        &conf,
        "signing: {secret_file: /nonexistent/flowgate.secrets}\nsites:\n  s1:\n    mode: required\n    keys:\n      - {kid: a, secret_env: TRUST_TEST_SURELY_UNSET}\n",
    )
    .unwrap();
    let out = common::flowgate::check(&conf);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("sites.s1.keys[0].secret_env") && text.contains("TRUST_TEST_SURELY_UNSET"),
        "{text}"
    );
    assert!(text.contains("signing.secret_file"), "{text}");
}
