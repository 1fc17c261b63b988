//! The per-site decision: the same payloads under modes off, optional and required.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flowgate::context::{Context, Discard, DropReason, Pipeline};
use flowgate::headers::{self, Status};
use flowgate::prefill::prefill;
use flowgate::trust::sign::{HostKey, sign_context};
use flowgate::trust::{
    InitInput, Mode, Secret, SiteKey, SitePolicy, TokenError, TokenOutcome, TrustPolicy, evaluate,
};
use jsonwebtoken::Algorithm;

const SECRET: &str = "host-site-secret-0123456789abcdef";
const CLAIMS: &[(&str, &str)] = &[("plan", "Pro"), ("ims_email", "jane@example.com")];

fn policy() -> TrustPolicy {
    let mut p = TrustPolicy::new();
    for (site, mode) in [
        ("off", Mode::Off),
        ("opt", Mode::Optional),
        ("req", Mode::Required),
    ] {
        p.insert(
            site,
            SitePolicy {
                mode,
                keys: vec![SiteKey::new("k1", &Secret::new(SECRET))],
                leeway_secs: 60,
                max_token_age_secs: 3600,
                bind_session: false,
            },
        );
    }
    p
}

fn token_for(site: &str) -> String {
    let key = HostKey {
        kid: "k1",
        secret: SECRET.as_bytes(),
        alg: Algorithm::HS256,
    };
    sign_context(
        CLAIMS,
        site,
        &key,
        jsonwebtoken::get_current_timestamp(),
        300,
    )
    .unwrap()
}

fn unsigned() -> String {
    STANDARD.encode(r#"{"plan":"Free","ims_email":"mallory@example.com"}"#)
}

struct Seen {
    status: String,
    token: TokenOutcome,
    pairs: Vec<(String, String)>,
    dropped: Vec<(String, DropReason)>,
    email: Option<String>,
}

fn run(site: &str, context: Option<&str>, token: Option<&str>) -> Seen {
    let mut out = Context::new();
    let o = evaluate(
        &policy(),
        &InitInput {
            site,
            session: "",
            context: context.map(str::as_bytes),
            token: token.map(str::as_bytes),
            page: Default::default(),
        },
        &mut Pipeline::new(),
        &mut out,
    );
    let email = prefill(&out)
        .slots()
        .find(|(s, _)| *s == "visitor_email")
        .map(|(_, v)| v.to_owned());
    Seen {
        status: o.status.to_string(),
        token: o.token,
        pairs: out
            .pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        dropped: out.dropped().map(|(k, r)| (k.to_owned(), r)).collect(),
        email,
    }
}

#[test]
fn mode_off_ignores_tokens() {
    let s = run("off", Some(&unsigned()), Some(&token_for("off")));
    assert_eq!(s.status, "accepted");
    assert_eq!(s.token, TokenOutcome::Ignored);
    assert_eq!(s.email.as_deref(), Some("mallory@example.com"));
    let s = run("off", None, Some(&token_for("off")));
    assert_eq!(s.status, "absent");
    // A site that is not configured at all behaves as off.
    let s = run("elsewhere", Some(&unsigned()), None);
    assert_eq!(s.status, "accepted");
}

#[test]
fn a_verified_token_is_the_context_in_every_mode_that_looks() {
    for site in ["opt", "req"] {
        let s = run(site, Some(&unsigned()), Some(&token_for(site)));
        assert_eq!(s.status, "accepted; verified", "{site}");
        assert_eq!(
            s.token,
            TokenOutcome::Verified { kid: "k1".into() },
            "{site}"
        );
        assert_eq!(
            s.pairs,
            vec![
                ("plan".to_owned(), "Pro".to_owned()),
                ("ims_email".to_owned(), "jane@example.com".to_owned())
            ]
        );
        assert_eq!(s.email.as_deref(), Some("jane@example.com"));
    }
}

#[test]
fn unsigned_context_is_unverified_and_required_drops_identity() {
    let s = run("opt", Some(&unsigned()), None);
    assert_eq!(s.status, "accepted; unverified");
    assert_eq!(s.email.as_deref(), Some("mallory@example.com"));

    let s = run("req", Some(&unsigned()), None);
    assert_eq!(s.status, "accepted; unverified");
    assert_eq!(s.pairs, vec![("plan".to_owned(), "Free".to_owned())]);
    assert_eq!(
        s.dropped,
        vec![("ims_email".to_owned(), DropReason::UnverifiedIdentity)]
    );
    assert_eq!(s.email, None);

    assert_eq!(run("req", None, None).status, "absent");
    assert_eq!(
        run("req", Some("!!"), None).status,
        "discarded; reason=base64"
    );
}

#[test]
fn a_bad_token_discards_and_never_falls_back() {
    for site in ["opt", "req"] {
        // A token for another site: wrong audience.
        let s = run(site, Some(&unsigned()), Some(&token_for("other")));
        assert_eq!(s.status, "discarded; reason=bad_signature", "{site}");
        assert_eq!(s.token, TokenOutcome::Rejected(TokenError::WrongAudience));
        assert!(s.pairs.is_empty() && s.email.is_none());
        // Oversize token: the size rule of an unsigned context.
        let huge = "a".repeat(20_001);
        let s = run(site, None, Some(&huge));
        assert_eq!(s.status, "discarded; reason=size");
        assert_eq!(s.token, TokenOutcome::Rejected(TokenError::TooLong));
    }
}

#[test]
fn claims_go_through_every_pipeline_rule() {
    let key = HostKey {
        kid: "k1",
        secret: SECRET.as_bytes(),
        alg: Algorithm::HS256,
    };
    let long = "v".repeat(600);
    let claims: Vec<(&str, serde_json::Value)> = vec![
        ("note", serde_json::json!("<b>hi</b> &amp; bye")),
        ("bad key", serde_json::json!("x")),
        ("nested", serde_json::json!({"a": 1})),
        ("n", serde_json::json!(0.1)),
        ("long", serde_json::json!(long)),
    ];
    let t = sign_context(
        &claims,
        "opt",
        &key,
        jsonwebtoken::get_current_timestamp(),
        60,
    )
    .unwrap();
    let s = run("opt", None, Some(&t));
    assert_eq!(s.status, "accepted; verified");
    assert_eq!(s.pairs[0], ("note".to_owned(), "hi & bye".to_owned()));
    assert_eq!(s.pairs[1], ("n".to_owned(), "0.1".to_owned()));
    assert_eq!(s.pairs[2].1.chars().count(), 500);
    assert_eq!(
        s.dropped,
        vec![
            ("bad key".to_owned(), DropReason::KeyInvalid),
            ("nested".to_owned(), DropReason::ValueType)
        ]
    );
}

#[test]
fn status_and_reason_strings() {
    assert_eq!(Status::Verified.to_string(), "accepted; verified");
    assert_eq!(Status::Unverified.to_string(), "accepted; unverified");
    assert_eq!(
        Status::Discarded(Discard::BadSignature).to_string(),
        "discarded; reason=bad_signature"
    );
    assert_eq!(
        DropReason::UnverifiedIdentity.as_str(),
        "unverified_identity"
    );
    assert_eq!(headers::DEFAULT_PREFIX, "X-Flowgate-");
}
