//! The shipped PHP kit against what flowgate's Rust code really produces, and the other way
//! round: `examples/upstream/verify.php` (signature v2, the secrets it refuses, the safe
//! pre-fill accessor, the replay caches) next to `flowgate::upstream`, and
//! `examples/host/sign.php` tokens verified by the edge.
#![allow(clippy::unwrap_used)]

mod common {
    pub mod process;
}

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flowgate::context::{Context, Pipeline};
use flowgate::headers::signature::{SignedFields, Signer, Version, Versions};
use flowgate::headers::{self, Status};
use flowgate::prefill::prefill;
use flowgate::trust::sign::{HostKey, sign_context};
use flowgate::trust::{
    InitInput, Mode, Outcome, Secret, SiteKey, SitePolicy, TokenOutcome, TrustPolicy, evaluate,
};
use flowgate::upstream::{self, MemoryReplayCache, Options, RequestView, VerifyError};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;
const CURRENT: &str = "current-signing-secret-0123456789";
const PREVIOUS: &str = "previous-signing-secret-012345678";
const TARGET: &str = "/public_FlowWidget/init?siteid=site1&jsSessionId=sess.42";

/// Runs `tests/php/<script>` on `input`; its output without the final newline.
fn php(script: &str, input: &Value) -> String {
    let cmd = &mut common::process::php(&["-d", "apc.enable_cli=1"], script);
    common::process::run(cmd, input.to_string())
        .trim_end()
        .to_owned()
}

/// One request as the backend receives it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn set(&mut self, name: &str, value: Option<&str>) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            self.headers.push((name.to_owned(), v.to_owned()));
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for (k, v) in &self.headers {
            match map.get_mut(k) {
                Some(Value::Array(list)) => list.push(json!(v)),
                Some(one) => *one = json!([one.clone(), v]),
                None => {
                    map.insert(k.clone(), json!(v));
                }
            }
        }
        json!({"method": self.method, "target": self.target, "headers": map})
    }
}

/// The request flowgate forwards for one context on the init route, signed with `secret`.
fn produce(context_json: &str, status: Status, secret: &str, t: u64, versions: &[Version]) -> Req {
    produce_id(
        context_json,
        status,
        secret,
        t,
        versions,
        "0af7651916cd43dd8448eb211c80319c",
    )
}

fn produce_id(
    context_json: &str,
    status: Status,
    secret: &str,
    t: u64,
    versions: &[Version],
    request_id: &str,
) -> Req {
    let mut ctx = Context::new();
    let status = match Pipeline::new().run(STANDARD.encode(context_json).as_bytes(), &mut ctx) {
        Ok(()) => status,
        Err(d) => Status::Discarded(d),
    };
    let status = status.to_string();
    let context = headers::context_value(&ctx);
    let prefill = headers::prefill_value(&prefill(&ctx));
    let fields = SignedFields {
        method: "GET",
        host: "chat.example.com",
        target: TARGET,
        request_id,
        client_ip: "203.0.113.7",
        site: "site1",
        session: "sess.42",
        status: &status,
        context: &context,
        prefill: &prefill,
    };
    let signer = Signer::new(&Secret::new(secret), Versions::new(versions).unwrap());
    let sig = signer.header_value(t, &fields);
    let p = headers::DEFAULT_PREFIX;
    Req {
        method: "GET".into(),
        target: TARGET.into(),
        headers: vec![
            ("Host".to_owned(), "chat.example.com".to_owned()),
            ("X-Request-Id".to_owned(), fields.request_id.to_owned()),
            ("X-Real-IP".to_owned(), fields.client_ip.to_owned()),
            (format!("{p}Site"), "site1".to_owned()),
            (format!("{p}Session"), "sess.42".to_owned()),
            (format!("{p}Status"), status.clone()),
            (format!("{p}Context"), context.clone()),
            (format!("{p}Prefill"), prefill.clone()),
            (format!("{p}Signature"), sig),
        ],
    }
}

fn v2(context_json: &str, status: Status, secret: &str, t: u64) -> Req {
    produce(context_json, status, secret, t, &[Version::V2])
}

/// verify.php on `requests` (one replay cache for all of them); `Err` is a configuration error.
fn php_verify_all(
    requests: &[&Req],
    secrets: Value,
    settings: Value,
    replay: Option<&str>,
) -> Result<Vec<Value>, String> {
    let input = json!({
        "secrets": secrets,
        "settings": settings,
        "replay": replay,
        "requests": requests.iter().map(|r| r.json()).collect::<Vec<_>>(),
    });
    let out: Value = serde_json::from_str(&php("trust_verify.php", &input)).unwrap();
    match out.get("config_error") {
        Some(e) => Err(e.as_str().unwrap().to_owned()),
        None => Ok(out["results"].as_array().unwrap().clone()),
    }
}

fn php_verify(req: &Req, secrets: &[&str], now: u64) -> Value {
    php_verify_all(&[req], json!(secrets), json!({"now": now}), None).unwrap()[0].clone()
}

fn php_reason(req: &Req, secrets: &[&str], now: u64) -> String {
    let v = php_verify(req, secrets, now);
    v["reason"].as_str().unwrap_or("ok").to_owned()
}

fn rust_verify(req: &Req, options: &Options) -> Result<upstream::TrustedContext, VerifyError> {
    let mut b = http::Request::builder()
        .method(req.method.as_str())
        .uri(req.target.as_str());
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    upstream::verify(&b.body(()).unwrap(), options)
}

fn rust_reason(req: &Req, secrets: &[&str], now: u64) -> String {
    match rust_verify(req, &Options::new(secrets).unwrap().now(now)) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.as_str().to_owned(),
    }
}

const CONTEXT: &str = r#"{"account_id":"USR-84920","plan":"Pro <b>+</b>","ims_username":"Jöhn \"J\" Doe","ims_email":"jane@example.com","n":1e15}"#;

#[test]
fn fresh_requests_verify_in_php_and_rust_alike() {
    let h = v2(CONTEXT, Status::Verified, CURRENT, NOW);
    let php = php_verify(&h, &[CURRENT], NOW + 10);
    assert_eq!(php["ok"], true, "{php}");
    let rust = rust_verify(&h, &Options::new(&[CURRENT]).unwrap().now(NOW + 10)).unwrap();
    let r = &php["result"];
    assert_eq!(r["site"], "site1");
    assert_eq!(r["session"], "sess.42");
    assert_eq!(r["status"], "verified");
    assert_eq!(r["signed_at"], NOW);
    assert_eq!(r["version"], "v2");
    assert_eq!(r["request_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(r["client_ip"], "203.0.113.7");
    let pairs = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(pairs(&r["context"]), rust.context.to_vec());
    assert_eq!(
        pairs(&r["verified_prefill"]),
        rust.verified_prefill().unwrap().to_vec()
    );
    assert_eq!(rust.context.get("ims_username"), Some("Jöhn \"J\" Doe"));
    assert_eq!(rust.context.get("n"), Some("1.0E+15"));
    assert_eq!(
        rust.request_id.as_deref(),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
    // The same through a view over a lookup closure, as a framework without `http` types has.
    let view = RequestView::new(&h.method, &h.target, |name: &str| h.get(name));
    let o = Options::new(&[CURRENT]).unwrap().now(NOW + 10);
    assert_eq!(upstream::verify(&view, &o).unwrap(), rust);
}

#[test]
fn every_part_of_v2_is_covered_by_both() {
    let h = v2(CONTEXT, Status::Accepted, CURRENT, NOW);
    let other = v2(
        r#"{"ims_email":"ceo@example.com"}"#,
        Status::Accepted,
        CURRENT,
        NOW,
    );
    let names: Vec<String> = h.headers.iter().map(|(n, _)| n.clone()).collect();
    for name in names.iter().filter(|n| !n.ends_with("Signature")) {
        // Swap in another validly signed request's value, a forged one, or drop it.
        let replacements = [
            other.get(name).map(str::to_owned),
            Some("x".to_owned()),
            None,
        ];
        for replacement in replacements {
            if replacement.as_deref() == h.get(name) {
                continue;
            }
            let mut t = h.clone();
            t.set(name, replacement.as_deref());
            assert_eq!(php_reason(&t, &[CURRENT], NOW), "bad_signature", "{name}");
            assert_eq!(rust_reason(&t, &[CURRENT], NOW), "bad_signature", "{name}");
        }
    }
    // Method, query, path: replayed elsewhere (issue 17, finding 5).
    for (method, target) in [
        ("POST", TARGET),
        ("DELETE", TARGET),
        (
            "GET",
            "/public_FlowWidget/init?siteid=site1&jsSessionId=sess.43",
        ),
        ("GET", "/public_FlowWidget/init"),
        (
            "GET",
            "/public_FlowWidget/admin?siteid=site1&jsSessionId=sess.42",
        ),
    ] {
        let mut t = h.clone();
        t.method = method.into();
        t.target = target.into();
        assert_eq!(
            php_reason(&t, &[CURRENT], NOW),
            "bad_signature",
            "{method} {target}"
        );
        assert_eq!(
            rust_reason(&t, &[CURRENT], NOW),
            "bad_signature",
            "{method} {target}"
        );
    }
    // The timestamp moved while the MAC stayed; the MAC changed.
    let sig = h.get("X-Flowgate-Signature").unwrap().to_owned();
    let mut t = h.clone();
    t.set(
        "X-Flowgate-Signature",
        Some(&sig.replacen(&NOW.to_string(), &(NOW + 60).to_string(), 1)),
    );
    assert_eq!(php_reason(&t, &[CURRENT], NOW), "bad_signature");
    let mut t = h.clone();
    let flipped = if sig.ends_with('0') { "1" } else { "0" };
    t.set(
        "X-Flowgate-Signature",
        Some(&format!("{}{flipped}", &sig[..sig.len() - 1])),
    );
    assert_eq!(php_reason(&t, &[CURRENT], NOW), "bad_signature");
    // No signature; malformed ones; a repeated signed header.
    for (sig, why) in [
        (None, "missing_signature"),
        (Some("t=abc,v2=00"), "malformed_signature"),
        (Some("t=1"), "malformed_signature"),
        (
            Some(format!("{sig},v2={}", "0".repeat(64)).as_str()),
            "malformed_signature",
        ),
        (
            Some(format!("t={NOW},v9={}", "0".repeat(64)).as_str()),
            "unsupported_version",
        ),
    ] {
        let mut t = h.clone();
        t.set("X-Flowgate-Signature", sig);
        assert_eq!(php_reason(&t, &[CURRENT], NOW), why, "{sig:?}");
        assert_eq!(rust_reason(&t, &[CURRENT], NOW), why, "{sig:?}");
    }
    let mut t = h.clone();
    t.headers.push(("X-Request-Id".into(), "second".into()));
    assert_eq!(php_reason(&t, &[CURRENT], NOW), "bad_header");
    assert_eq!(rust_reason(&t, &[CURRENT], NOW), "bad_header");
}

#[test]
fn expiry_wrong_secret_and_rotation() {
    let h = v2(CONTEXT, Status::Accepted, PREVIOUS, NOW);
    for (now, why) in [
        (NOW + 300, "ok"),
        (NOW + 301, "expired"),
        (NOW - 301, "expired"),
    ] {
        assert_eq!(php_reason(&h, &[PREVIOUS], now), why);
        assert_eq!(rust_reason(&h, &[PREVIOUS], now), why);
    }
    assert_eq!(php_reason(&h, &[CURRENT], NOW), "bad_signature");
    assert_eq!(rust_reason(&h, &[CURRENT], NOW), "bad_signature");
    // Rotation: the verifier lists the new secret first and still accepts the old one.
    assert_eq!(php_reason(&h, &[CURRENT, PREVIOUS], NOW), "ok");
    assert_eq!(rust_reason(&h, &[CURRENT, PREVIOUS], NOW), "ok");
}

/// Issue 17, finding 1: an empty (or short) secret never verifies anything — both kits refuse
/// the list before looking at a request, and a request signed with the empty key is no longer
/// accepted by a backend that read an unset variable.
#[test]
fn empty_and_short_secrets_are_refused_by_both_kits() {
    let forged = v2(
        r#"{"ims_email":"ceo@example.com"}"#,
        Status::Verified,
        "",
        NOW,
    );
    let short = "s".repeat(31);
    for (secrets, rust_err) in [
        (json!([]), upstream::SecretsError::None),
        (json!([null]), upstream::SecretsError::Empty { position: 1 }),
        (json!([""]), upstream::SecretsError::Empty { position: 1 }),
        (
            json!([CURRENT, ""]),
            upstream::SecretsError::Empty { position: 2 },
        ),
        (
            json!([short]),
            upstream::SecretsError::TooShort { position: 1 },
        ),
    ] {
        let err = php_verify_all(&[&forged], secrets.clone(), json!({"now": NOW}), None)
            .expect_err("a configuration error");
        assert!(err.contains("secret"), "{secrets}: {err}");
        let list: Vec<String> = secrets
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap_or("").to_owned())
            .collect();
        assert_eq!(Options::new(&list).unwrap_err(), rust_err, "{secrets}");
    }
    // The forgery itself is a well-formed signature: only the refusal above keeps it out.
    let sig = forged.get("X-Flowgate-Signature").unwrap();
    assert!(sig.starts_with(&format!("t={NOW},v2=")), "{sig}");
}

/// Issue 17, finding 2: on an `optional` site, a browser-written `accepted; unverified` context
/// with `ims_email` never pre-fills through the safe accessor, in either kit; `mode: off`
/// sites opt in explicitly.
#[test]
fn unverified_prefill_is_never_handed_out() {
    let email = r#"{"ims_email":"mallory@example.com"}"#;
    for (status, verified, browser) in [
        (Status::Unverified, false, false),
        (Status::Accepted, false, true),
        (Status::Verified, true, true),
    ] {
        let h = v2(email, status, CURRENT, NOW);
        let php = php_verify(&h, &[CURRENT], NOW);
        let r = &php["result"];
        assert_eq!(
            r["verified_prefill"].is_array(),
            verified,
            "{status}: {php}"
        );
        assert_eq!(r["browser_prefill"].is_array(), browser, "{status}: {php}");
        let rust = rust_verify(&h, &Options::new(&[CURRENT]).unwrap().now(NOW)).unwrap();
        assert_eq!(rust.verified_prefill().is_some(), verified, "{status}");
        let ack = rust
            .browser_prefill(upstream::AcknowledgeUnsigned)
            .is_some();
        assert_eq!(ack, browser, "{status}");
    }
}

#[test]
fn v1_only_when_the_caller_allows_it() {
    let h = produce(CONTEXT, Status::Accepted, CURRENT, NOW, &[Version::V1]);
    assert_eq!(php_reason(&h, &[CURRENT], NOW), "unsupported_version");
    assert_eq!(rust_reason(&h, &[CURRENT], NOW), "unsupported_version");
    let allow = json!({"now": NOW, "accept_v1": true});
    let php = php_verify_all(&[&h], json!([CURRENT]), allow.clone(), None).unwrap();
    assert_eq!(php[0]["result"]["version"], "v1", "{php:?}");
    assert_eq!(php[0]["result"]["request_id"], Value::Null);
    let rust = rust_verify(
        &h,
        &Options::new(&[CURRENT]).unwrap().now(NOW).accept_v1(true),
    );
    assert_eq!(rust.unwrap().version, Version::V1);
    // Transition: both versions sent; v2 decides, so a changed method fails even with v1 allowed.
    let mut both = produce(
        CONTEXT,
        Status::Accepted,
        CURRENT,
        NOW,
        &[Version::V1, Version::V2],
    );
    assert!(both.get("X-Flowgate-Signature").unwrap().contains(",v1="));
    both.method = "POST".into();
    let php = php_verify_all(&[&both], json!([CURRENT]), allow, None).unwrap();
    assert_eq!(php[0]["reason"], "bad_signature");
    let o = Options::new(&[CURRENT]).unwrap().now(NOW).accept_v1(true);
    assert_eq!(
        rust_verify(&both, &o).unwrap_err(),
        VerifyError::BadSignature
    );
}

/// Issue 17, finding 5: a captured request replays within the window unless the backend opts
/// into a replay cache — then the second use of its request id is refused, by both kits
/// (PHP's in-process and APCu caches).
#[test]
fn replays_are_refused_when_the_backend_opts_in() {
    let h = v2(CONTEXT, Status::Accepted, CURRENT, NOW);
    let rid = "ffffffffffffffffffffffffffffffff";
    let other = produce_id(CONTEXT, Status::Accepted, CURRENT, NOW, &[Version::V2], rid);
    let settings = json!({"now": NOW});
    for replay in [None, Some("memory"), Some("apcu")] {
        let all = [&h, &h, &other, &other];
        let r = php_verify_all(&all, json!([CURRENT]), settings.clone(), replay).unwrap();
        let reasons: Vec<&str> = r
            .iter()
            .map(|v| v["reason"].as_str().unwrap_or("ok"))
            .collect();
        let want = match replay {
            Some(_) => ["ok", "replayed", "ok", "replayed"],
            None => ["ok", "ok", "ok", "ok"],
        };
        assert_eq!(reasons, want, "{replay:?}");
    }
    let cache = Arc::new(MemoryReplayCache::with_tolerance(
        upstream::DEFAULT_TOLERANCE,
    ));
    let o = Options::new(&[CURRENT]).unwrap().now(NOW).replay(cache);
    assert!(rust_verify(&h, &o).is_ok());
    assert_eq!(rust_verify(&h, &o).unwrap_err(), VerifyError::Replayed);
    // Without the cache the same request verifies again (what a backend opts out of).
    let plain = Options::new(&[CURRENT]).unwrap().now(NOW);
    assert!(rust_verify(&h, &plain).is_ok() && rust_verify(&h, &plain).is_ok());
}

#[test]
fn discarded_and_absent_statuses_decode() {
    let h = v2("[1]", Status::Accepted, CURRENT, NOW);
    let php = php_verify(&h, &[CURRENT], NOW);
    assert_eq!(php["result"]["status"], "discarded");
    assert_eq!(php["result"]["discard_reason"], "not_object");
    assert_eq!(php["result"]["context"], json!([]));
    assert_eq!(php["result"]["verified_prefill"], Value::Null);
}

const HOST_SECRET: &str = "host-site-shared-secret-0123456789";

fn php_sign(context: &Value, site: &str, kid: &str, alg: &str, now: u64) -> String {
    php(
        "trust_sign.php",
        &json!({"context": context, "site": site, "kid": kid, "secret": HOST_SECRET,
                "ttl": 300, "alg": alg, "now": now}),
    )
}

/// What the edge decides for an init on `site1` carrying only `token`.
fn evaluate_token(mode: Mode, token: &str) -> (Outcome, Context) {
    let mut out = Context::new();
    let outcome = evaluate(
        &site_policy(mode),
        &InitInput {
            site: "site1",
            session: "",
            context: None,
            token: Some(token.as_bytes()),
            page: Default::default(),
        },
        &mut Pipeline::new(),
        &mut out,
    );
    (outcome, out)
}

fn site_policy(mode: Mode) -> TrustPolicy {
    let mut p = TrustPolicy::new();
    p.insert(
        "site1",
        SitePolicy {
            mode,
            keys: vec![SiteKey::new("k1", &Secret::new(HOST_SECRET))],
            leeway_secs: 60,
            max_token_age_secs: 3600,
            bind_session: false,
        },
    );
    p
}

#[test]
fn php_signed_tokens_verify_at_the_edge_and_match_rust_byte_for_byte() {
    let now = jsonwebtoken::get_current_timestamp();
    let context = json!([
        ["account_id", "USR-1"],
        ["ims_email", "jane@example.com"],
        ["city", "Zürich/Genève"]
    ]);
    for alg in ["HS256", "HS384", "HS512"] {
        let token = php_sign(&context, "site1", "k1", alg, now);
        let (outcome, out) = evaluate_token(Mode::Required, &token);
        assert_eq!(outcome.status, Status::Verified, "{alg}");
        assert_eq!(outcome.token, TokenOutcome::Verified { kid: "k1".into() });
        let pairs: Vec<(&str, &str)> = out.pairs().collect();
        assert_eq!(
            pairs,
            [
                ("account_id", "USR-1"),
                ("ims_email", "jane@example.com"),
                ("city", "Zürich/Genève")
            ]
        );

        let alg_rs = match alg {
            "HS256" => jsonwebtoken::Algorithm::HS256,
            "HS384" => jsonwebtoken::Algorithm::HS384,
            _ => jsonwebtoken::Algorithm::HS512,
        };
        let key = HostKey {
            kid: "k1",
            secret: HOST_SECRET.as_bytes(),
            alg: alg_rs,
        };
        let rust = sign_context(
            &[
                ("account_id", "USR-1"),
                ("ims_email", "jane@example.com"),
                ("city", "Zürich/Genève"),
            ],
            "site1",
            &key,
            now,
            300,
        )
        .unwrap();
        assert_eq!(rust, token, "{alg}");
    }
}

#[test]
fn php_signed_tokens_for_the_wrong_site_or_key_are_refused() {
    let now = jsonwebtoken::get_current_timestamp();
    let context = json!([["ims_email", "jane@example.com"]]);
    for (token, why) in [
        (
            php_sign(&context, "site2", "k1", "HS256", now),
            "wrong_audience",
        ),
        (
            php_sign(&context, "site1", "k2", "HS256", now),
            "unknown_kid",
        ),
        (
            php_sign(&context, "site1", "k1", "HS256", now - 3600),
            "expired",
        ),
    ] {
        let (outcome, _) = evaluate_token(Mode::Optional, &token);
        assert_eq!(
            outcome.status.to_string(),
            "discarded; reason=bad_signature"
        );
        match outcome.token {
            TokenOutcome::Rejected(e) => assert_eq!(e.as_str(), why),
            other => panic!("{other:?}"),
        }
    }
}

/// The README's worked example, verified by the PHP kit (the Rust signer's side is a unit test
/// in `headers::signature`).
#[test]
fn the_readme_worked_example_verifies_in_php() {
    let mac = "7e0283d66857ed8e9a19bd652ad7048e12d21ff4abd7292a25fc957cddadb7ab";
    let req = Req {
        method: "GET".into(),
        target: "/public_FlowWidget/init?siteid=site-12345&jsSessionId=sess-6f1c9a0e".into(),
        headers: [
            ("Host", "chat.example.com"),
            ("X-Request-Id", "4bf92f3577b34da6a3ce929d0e0e4736"),
            ("X-Real-IP", "203.0.113.7"),
            ("X-Flowgate-Site", "site-12345"),
            ("X-Flowgate-Session", "sess-6f1c9a0e"),
            ("X-Flowgate-Status", "accepted"),
            (
                "X-Flowgate-Context",
                "eyJhY2NvdW50X2lkIjoiVVNSLTg0OTIwIiwiaW1zX2VtYWlsIjoiamFuZUBleGFtcGxlLmNvbSJ9",
            ),
            (
                "X-Flowgate-Prefill",
                "eyJ2aXNpdG9yX2VtYWlsIjoiamFuZUBleGFtcGxlLmNvbSIsImVtYWlsIjoiamFuZUBleGFtcGxlLmNvbSJ9",
            ),
            ("X-Flowgate-Signature", &format!("t=1767225600,v2={mac}")),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
    };
    let secret = "3f1d9c0e7a5b4c2d8e6f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d";
    let php = php_verify(&req, &[secret], 1_767_225_600);
    assert_eq!(php["ok"], true, "{php}");
    assert_eq!(
        php["result"]["context"][1],
        json!(["ims_email", "jane@example.com"])
    );
    assert_eq!(rust_reason(&req, &[secret], 1_767_225_600), "ok");
}
