//! The shipped PHP kit against what flowgate's Rust code really produces, and the other way
//! round: `examples/upstream/verify.php` on signed headers, `examples/host/sign.php` tokens
//! verified by the edge.
#![allow(clippy::unwrap_used)]

mod common {
    pub mod process;
}

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flowgate::context::{Context, Pipeline};
use flowgate::headers::signature::{SignedFields, Signer};
use flowgate::headers::{self, Status};
use flowgate::prefill::prefill;
use flowgate::trust::sign::{HostKey, sign_context};
use flowgate::trust::{
    InitInput, Mode, Outcome, Secret, SiteKey, SitePolicy, TokenOutcome, TrustPolicy, evaluate,
};
use flowgate::upstream::{self, Options, VerifyError};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;
const CURRENT: &str = "current-signing-secret-0123456789";
const PREVIOUS: &str = "previous-signing-secret-012345678";
const PATH: &str = "/public_FlowWidget/init";

/// Runs `tests/php/<script>` on `input`; its output without the final newline.
fn php(script: &str, input: &Value) -> String {
    let out = common::process::run(&mut common::process::php(&[], script), input.to_string());
    out.trim_end().to_owned()
}

/// The trusted headers for one context, as the edge computes them, signed with `secret`.
fn produce(context_json: &str, secret: &str, t: u64) -> Vec<(String, String)> {
    let mut ctx = Context::new();
    let status = match Pipeline::new().run(STANDARD.encode(context_json).as_bytes(), &mut ctx) {
        Ok(()) => Status::Accepted,
        Err(d) => Status::Discarded(d),
    };
    let status = status.to_string();
    let context = headers::context_value(&ctx);
    let prefill = headers::prefill_value(&prefill(&ctx));
    let fields = SignedFields {
        path: PATH,
        site: "site1",
        session: "sess.42",
        status: &status,
        context: &context,
        prefill: &prefill,
    };
    let sig = Signer::new(&Secret::new(secret)).header_value(t, &fields);
    let p = headers::DEFAULT_PREFIX;
    vec![
        (format!("{p}Site"), "site1".to_owned()),
        (format!("{p}Session"), "sess.42".to_owned()),
        (format!("{p}Status"), status),
        (format!("{p}Context"), context),
        (format!("{p}Prefill"), prefill),
        (format!("{p}Signature"), sig),
    ]
}

fn php_verify(headers: &[(String, String)], secrets: &[&str], now: u64) -> Value {
    let map: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let out = php(
        "trust_verify.php",
        &json!({"headers": map, "path": PATH, "secrets": secrets, "tolerance": 300, "now": now}),
    );
    serde_json::from_str(&out).unwrap()
}

fn rust_verify(
    headers: &[(String, String)],
    secrets: &[&str],
    now: u64,
) -> Result<upstream::TrustedContext, VerifyError> {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    upstream::verify_with(
        &(PATH, &map),
        secrets,
        upstream::DEFAULT_TOLERANCE,
        &Options {
            prefix: None,
            now: Some(now),
        },
    )
}

const CONTEXT: &str = r#"{"account_id":"USR-84920","plan":"Pro <b>+</b>","ims_username":"Jöhn \"J\" Doe","ims_email":"jane@example.com","n":1e15}"#;

#[test]
fn fresh_headers_verify_in_php_and_rust_alike() {
    let h = produce(CONTEXT, CURRENT, NOW);
    let php = php_verify(&h, &[CURRENT], NOW + 10);
    assert_eq!(php["ok"], true, "{php}");
    let rust = rust_verify(&h, &[CURRENT], NOW + 10).unwrap();
    let r = &php["result"];
    assert_eq!(r["site"], "site1");
    assert_eq!(r["session"], "sess.42");
    assert_eq!(r["status"], "accepted");
    assert_eq!(r["signed_at"], NOW);
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
    assert_eq!(pairs(&r["context"]), rust.pairs);
    assert_eq!(pairs(&r["prefill"]), rust.prefill);
    assert_eq!(rust.get("ims_username"), Some("Jöhn \"J\" Doe"));
    assert_eq!(rust.get("n"), Some("1.0E+15"));
    assert_eq!(rust.prefill_slot("visitor_email"), Some("jane@example.com"));
}

#[test]
fn every_tampered_field_is_rejected_by_both() {
    let h = produce(CONTEXT, CURRENT, NOW);
    let other = produce(r#"{"ims_email":"ceo@example.com"}"#, CURRENT, NOW);
    for i in 0..5 {
        // Swap in the value another (validly signed) request carried, or a forged one.
        for replacement in [other[i].1.clone(), format!("{}x", h[i].1), String::new()] {
            if replacement == h[i].1 {
                continue;
            }
            let mut t = h.clone();
            t[i].1 = replacement;
            let php = php_verify(&t, &[CURRENT], NOW);
            assert_eq!(
                php,
                json!({"ok": false, "reason": "mismatch"}),
                "{}",
                h[i].0
            );
            assert_eq!(
                rust_verify(&t, &[CURRENT], NOW).unwrap_err(),
                VerifyError::Mismatch
            );
        }
        // The header dropped altogether.
        let mut t = h.clone();
        t.remove(i);
        assert_eq!(php_verify(&t, &[CURRENT], NOW)["reason"], "mismatch");
        assert_eq!(
            rust_verify(&t, &[CURRENT], NOW).unwrap_err(),
            VerifyError::Mismatch
        );
    }
    // The timestamp moved while the MAC stayed.
    let mut t = h.clone();
    t[5].1 = t[5]
        .1
        .replacen(&NOW.to_string(), &(NOW + 60).to_string(), 1);
    assert_eq!(php_verify(&t, &[CURRENT], NOW)["reason"], "mismatch");
    // The MAC changed.
    let mut t = h.clone();
    let flipped = if t[5].1.ends_with('0') { "1" } else { "0" };
    let len = t[5].1.len();
    t[5].1.replace_range(len - 1.., flipped);
    assert_eq!(php_verify(&t, &[CURRENT], NOW)["reason"], "mismatch");
    // No signature at all; a malformed one.
    assert_eq!(
        php_verify(&h[..5], &[CURRENT], NOW)["reason"],
        "missing_signature"
    );
    let mut t = h.clone();
    t[5].1 = "t=abc,v1=00".to_owned();
    assert_eq!(
        php_verify(&t, &[CURRENT], NOW)["reason"],
        "malformed_signature"
    );
}

#[test]
fn expiry_wrong_secret_and_rotation() {
    let h = produce(CONTEXT, PREVIOUS, NOW);
    // Expired and from the future, both sides of the 300 s tolerance.
    assert_eq!(php_verify(&h, &[PREVIOUS], NOW + 300)["ok"], true);
    assert_eq!(php_verify(&h, &[PREVIOUS], NOW + 301)["reason"], "expired");
    assert_eq!(
        rust_verify(&h, &[PREVIOUS], NOW + 301).unwrap_err(),
        VerifyError::Expired { age: 301 }
    );
    assert_eq!(
        php_verify(&h, &[PREVIOUS], NOW - 301)["reason"],
        "from_future"
    );
    // Wrong secret.
    assert_eq!(php_verify(&h, &[CURRENT], NOW)["reason"], "mismatch");
    assert_eq!(
        rust_verify(&h, &[CURRENT], NOW).unwrap_err(),
        VerifyError::Mismatch
    );
    // Rotation: the verifier lists the new secret first and still accepts the old one.
    assert_eq!(php_verify(&h, &[CURRENT, PREVIOUS], NOW)["ok"], true);
    assert!(rust_verify(&h, &[CURRENT, PREVIOUS], NOW).is_ok());
    let h = produce(CONTEXT, CURRENT, NOW);
    assert_eq!(php_verify(&h, &[CURRENT, PREVIOUS], NOW)["ok"], true);
    // No secrets configured is an error, not an accept.
    let none: [&str; 0] = [];
    assert_eq!(php_verify(&h, &none, NOW)["reason"], "no_secrets");
}

#[test]
fn discarded_and_absent_statuses_decode() {
    let h = produce("[1]", CURRENT, NOW);
    let php = php_verify(&h, &[CURRENT], NOW);
    assert_eq!(php["result"]["status"], "discarded; reason=not_object");
    assert_eq!(php["result"]["discard_reason"], "not_object");
    assert_eq!(php["result"]["context"], json!([]));
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
            context: None,
            token: Some(token.as_bytes()),
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
