//! Signed visitor-context tokens: every way a token can be wrong, through the public API.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flowgate::trust::sign::{HostKey, SignError, sign_context};
use flowgate::trust::token::{self, MAX_TOKEN_BYTES};
use flowgate::trust::{Secret, SiteKey, TimeRules, TokenError};
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::Algorithm;
use sha2::Sha256;

const K1: &str = "site-one-key-one-0123456789abcdef";
const K2: &str = "site-one-key-two-0123456789abcdef";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn keys() -> Vec<SiteKey> {
    vec![
        SiteKey::new("k1", &Secret::new(K1)),
        SiteKey::new("k2", &Secret::new(K2)),
    ]
}

fn host(kid: &'static str, secret: &'static str, alg: Algorithm) -> HostKey<'static> {
    HostKey {
        kid,
        secret: secret.as_bytes(),
        alg,
    }
}

const CTX: &[(&str, &str)] = &[("account_id", "USR-1"), ("ims_email", "jane@example.com")];

fn good() -> String {
    sign_context(CTX, "site1", &host("k1", K1, Algorithm::HS256), now(), 300).unwrap()
}

/// A token with any header and payload JSON, HS256-signed with `secret` (or unsigned).
fn forge(header: &str, payload: &str, secret: Option<&str>) -> String {
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = match secret {
        Some(s) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(s.as_bytes()).unwrap();
            mac.update(msg.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        None => String::new(),
    };
    format!("{msg}.{sig}")
}

const RULES: TimeRules = TimeRules {
    leeway: 60,
    max_age: 3600,
};

fn verify(token: &str) -> Result<String, TokenError> {
    token::verify(token.as_bytes(), "site1", &keys(), &RULES)
        .map(|v| String::from_utf8(v.context_json).unwrap())
}

#[test]
fn a_fresh_token_yields_its_private_claims_in_order() {
    assert_eq!(
        verify(&good()).unwrap(),
        r#"{"account_id":"USR-1","ims_email":"jane@example.com"}"#
    );
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let t = sign_context(CTX, "site1", &host("k2", K2, alg), now(), 60).unwrap();
        let strict = TimeRules {
            leeway: 0,
            max_age: 3600,
        };
        let v = token::verify(t.as_bytes(), "site1", &keys(), &strict).unwrap();
        assert_eq!(v.kid, "k2");
    }
}

#[test]
fn token_for_another_site_is_refused() {
    let t = sign_context(CTX, "site2", &host("k1", K1, Algorithm::HS256), now(), 300).unwrap();
    assert_eq!(verify(&t), Err(TokenError::WrongAudience));
    let p = format!(
        r#"{{"aud":["x","site1"],"exp":{},"iat":{}}}"#,
        now() + 60,
        now()
    );
    assert!(verify(&forge(r#"{"alg":"HS256","kid":"k1"}"#, &p, Some(K1))).is_ok());
}

#[test]
fn time_claims() {
    let h = r#"{"alg":"HS256","kid":"k1"}"#;
    let n = now();
    let expired = format!(r#"{{"aud":"site1","exp":{},"iat":{}}}"#, n - 3600, n - 3700);
    assert_eq!(
        verify(&forge(h, &expired, Some(K1))),
        Err(TokenError::Expired)
    );
    let in_leeway = format!(r#"{{"aud":"site1","exp":{},"iat":{}}}"#, n - 10, n - 100);
    assert!(verify(&forge(h, &in_leeway, Some(K1))).is_ok());
    let nbf = format!(
        r#"{{"aud":"site1","exp":{},"nbf":{},"iat":{n}}}"#,
        n + 7200,
        n + 3600
    );
    assert_eq!(
        verify(&forge(h, &nbf, Some(K1))),
        Err(TokenError::NotYetValid)
    );
    let iat = format!(r#"{{"aud":"site1","exp":{},"iat":{}}}"#, n + 7200, n + 3600);
    assert_eq!(
        verify(&forge(h, &iat, Some(K1))),
        Err(TokenError::NotYetValid)
    );
    let bad_iat = format!(r#"{{"aud":"site1","exp":{},"iat":"soon"}}"#, n + 60);
    assert_eq!(
        verify(&forge(h, &bad_iat, Some(K1))),
        Err(TokenError::BadClaim)
    );
    let no_exp = format!(r#"{{"aud":"site1","iat":{n}}}"#);
    assert_eq!(
        verify(&forge(h, &no_exp, Some(K1))),
        Err(TokenError::MissingClaim)
    );
    let no_aud = format!(r#"{{"exp":{},"iat":{n}}}"#, n + 60);
    assert_eq!(
        verify(&forge(h, &no_aud, Some(K1))),
        Err(TokenError::MissingClaim)
    );
    // An `exp` that is not a whole number is a bad claim, not a missing one (issue 17).
    for exp in [
        r#""tomorrow""#,
        &format!("{}.0", n + 60),
        &format!("{}.5", n + 60),
        "1e12",
    ] {
        let p = format!(r#"{{"aud":"site1","exp":{exp},"iat":{n}}}"#);
        assert_eq!(
            verify(&forge(h, &p, Some(K1))),
            Err(TokenError::BadClaim),
            "{exp}"
        );
    }
    let float_iat = format!(r#"{{"aud":"site1","exp":{},"iat":{n}.0}}"#, n + 60);
    assert_eq!(
        verify(&forge(h, &float_iat, Some(K1))),
        Err(TokenError::BadClaim)
    );
    // A negative `exp` is expired, not missing.
    let negative = format!(r#"{{"aud":"site1","exp":-1,"iat":{n}}}"#);
    assert_eq!(
        verify(&forge(h, &negative, Some(K1))),
        Err(TokenError::Expired)
    );
}

#[test]
fn tokens_cannot_live_forever() {
    let h = r#"{"alg":"HS256","kid":"k1"}"#;
    let n = now();
    // exp = 2^63 - 1 with an old iat: too old. (2^64 - 1 is no NumericDate flowgate reads.)
    let forever = format!(r#"{{"aud":"site1","exp":{},"iat":1}}"#, i64::MAX);
    assert_eq!(
        verify(&forge(h, &forever, Some(K1))),
        Err(TokenError::TooOld)
    );
    let beyond = format!(r#"{{"aud":"site1","exp":18446744073709551615,"iat":{n}}}"#);
    assert_eq!(
        verify(&forge(h, &beyond, Some(K1))),
        Err(TokenError::BadClaim)
    );
    // Without iat the age cannot be told.
    let no_iat = format!(r#"{{"aud":"site1","exp":{}}}"#, n + 60);
    assert_eq!(
        verify(&forge(h, &no_iat, Some(K1))),
        Err(TokenError::MissingClaim)
    );
    // The age limit, with the leeway.
    let old = format!(
        r#"{{"aud":"site1","exp":{},"iat":{}}}"#,
        n + 60,
        n - 3600 - 61
    );
    assert_eq!(verify(&forge(h, &old, Some(K1))), Err(TokenError::TooOld));
    let fine = format!(
        r#"{{"aud":"site1","exp":{},"iat":{}}}"#,
        n + 60,
        n - 3600 - 30
    );
    assert!(verify(&forge(h, &fine, Some(K1))).is_ok());
    let short = TimeRules {
        leeway: 0,
        max_age: 60,
    };
    let t = sign_context(
        CTX,
        "site1",
        &host("k1", K1, Algorithm::HS256),
        n - 120,
        3600,
    )
    .unwrap();
    assert_eq!(
        token::verify(t.as_bytes(), "site1", &keys(), &short),
        Err(TokenError::TooOld)
    );
}

#[test]
fn keys_are_selected_by_kid() {
    let p = format!(r#"{{"aud":"site1","exp":{},"iat":{}}}"#, now() + 60, now());
    assert_eq!(
        verify(&forge(r#"{"alg":"HS256","kid":"k9"}"#, &p, Some(K1))),
        Err(TokenError::UnknownKid)
    );
    assert_eq!(
        verify(&forge(r#"{"alg":"HS256"}"#, &p, Some(K1))),
        Err(TokenError::MissingKid)
    );
    // A numeric kid is a bad kid, not a refused algorithm (issue 17).
    assert_eq!(
        verify(&forge(r#"{"alg":"HS256","kid":1}"#, &p, Some(K1))),
        Err(TokenError::BadKid)
    );
    // Rotated: signed with k2's secret but naming k1.
    assert_eq!(
        verify(&forge(r#"{"alg":"HS256","kid":"k1"}"#, &p, Some(K2))),
        Err(TokenError::BadSignature)
    );
    assert!(verify(&forge(r#"{"alg":"HS256","kid":"k2"}"#, &p, Some(K2))).is_ok());
}

#[test]
fn algorithms_other_than_hmac_are_refused() {
    let p = format!(r#"{{"aud":"site1","exp":{},"iat":{}}}"#, now() + 60, now());
    for h in [
        r#"{"alg":"none","kid":"k1"}"#,
        r#"{"alg":"None","kid":"k1"}"#,
        r#"{"alg":"RS256","kid":"k1"}"#,
        r#"{"alg":"ES256","kid":"k1"}"#,
        r#"{"alg":"EdDSA","kid":"k1"}"#,
        r#"{"alg":"HS1","kid":"k1"}"#,
    ] {
        assert_eq!(
            verify(&forge(h, &p, Some(K1))),
            Err(TokenError::AlgNotAllowed),
            "{h}"
        );
        assert_eq!(
            verify(&forge(h, &p, None)),
            Err(TokenError::AlgNotAllowed),
            "{h}"
        );
    }
    let crit = r#"{"alg":"HS256","kid":"k1","crit":["exp"]}"#;
    assert_eq!(
        verify(&forge(crit, &p, Some(K1))),
        Err(TokenError::Malformed)
    );
    assert_eq!(
        sign_context(CTX, "s", &host("k1", K1, Algorithm::RS256), now(), 1),
        Err(SignError::Algorithm)
    );
}

#[test]
fn tampering_with_any_part_breaks_the_signature() {
    let t = good();
    let parts: Vec<&str> = t.split('.').collect();
    // Claims rewritten with the same header and signature.
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let evil = payload.replace("jane@example.com", "ceo@example.com");
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(evil), parts[2]);
    assert_eq!(verify(&forged), Err(TokenError::BadSignature));
    // Header switched to HS512 with the HS256 MAC.
    let h512 = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS512","kid":"k1","typ":"JWT"}"#);
    let forged = format!("{h512}.{}.{}", parts[1], parts[2]);
    assert_eq!(verify(&forged), Err(TokenError::BadSignature));
    // One character of the MAC changed.
    let mut sig = parts[2].to_owned();
    let c = if &sig[10..11] == "A" { "B" } else { "A" };
    sig.replace_range(10..11, c);
    let forged = format!("{}.{}.{sig}", parts[0], parts[1]);
    assert_eq!(verify(&forged), Err(TokenError::BadSignature));
    // Signature stripped.
    let forged = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(verify(&forged), Err(TokenError::BadSignature));
}

#[test]
fn size_limit_applies_to_the_token() {
    let filler = "x".repeat(15_500);
    let ctx = [("note", filler.as_str())];
    let t = sign_context(&ctx, "site1", &host("k1", K1, Algorithm::HS256), now(), 60).unwrap();
    assert!(t.len() > MAX_TOKEN_BYTES);
    assert_eq!(verify(&t), Err(TokenError::TooLong));
    let filler = "x".repeat(14_700);
    let ctx = [("note", filler.as_str())];
    let t = sign_context(&ctx, "site1", &host("k1", K1, Algorithm::HS256), now(), 60).unwrap();
    assert!(t.len() <= MAX_TOKEN_BYTES, "{}", t.len());
    assert!(verify(&t).is_ok());
}

#[test]
fn garbage_never_panics() {
    let samples = [
        "",
        ".",
        "..",
        "a.b.c",
        "eyJ.eyJ.x",
        "e30.e30.",
        "bnVsbA.bnVsbA.",
        "W10.W10.",
        "eyJhbGciOiJIUzI1NiJ9..",
        "!!.!!.!!",
    ];
    for s in samples {
        assert!(verify(s).is_err(), "{s}");
    }
    // A validly signed payload that is not an object.
    let t = forge(r#"{"alg":"HS256","kid":"k1"}"#, "[1,2]", Some(K1));
    assert_eq!(verify(&t), Err(TokenError::Malformed));
}

#[test]
fn registered_claims_cannot_be_signed_as_context() {
    assert_eq!(
        sign_context(
            &[("exp", "1")],
            "s",
            &host("k1", K1, Algorithm::HS256),
            0,
            1
        ),
        Err(SignError::ReservedKey("exp".into()))
    );
}
