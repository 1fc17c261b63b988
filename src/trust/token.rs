//! Verifying one signed visitor-context token (a JWT) for one site.
//!
//! Rules: at most [`MAX_TOKEN_BYTES`] characters; `alg` one of HS256, HS384, HS512 (`none` and
//! every other algorithm rejected); `kid` required, a string selecting one of the site's keys;
//! no `crit` header (flowgate understands no JWS extension). Once the MAC verifies, the claims:
//! `aud` equal to (or, as an array of strings, containing) the site id; `exp` and `iat`
//! required, `nbf` optional, each a whole number of seconds (`1700000000`, never `1.7e9` or
//! `"1700000000"`), each registered claim at most once; `exp` not past, `nbf` and `iat` not
//! ahead, each with the site's leeway; and the token no older than the site's maximum age
//! (`now - iat`), so a token with a far `exp` still stops working. The registered claims
//! (`iss sub aud exp nbf iat jti`) are then removed and the rest — the private claims, in
//! document order — is the context JSON that the SPEC §1 pipeline checks like any other.
//!
//! `jsonwebtoken` parses the header and checks the MAC; the claims are read here, so each
//! refusal has its own precise reason.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer as _};
use serde_json::value::RawValue;

use super::provider::{self, ALGORITHMS};
use crate::context::limits::MAX_RAW_BYTES;

/// Longest token accepted: the same 20,000-character limit as an unsigned context.
pub const MAX_TOKEN_BYTES: usize = MAX_RAW_BYTES;

/// The registered claim names (RFC 7519 §4.1); they never become context pairs.
pub const REGISTERED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// Why a token was not accepted; all but [`TokenError::TooLong`] discard as `bad_signature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`] (discarded as `size`, like an oversize context).
    TooLong,
    /// Not three base64url segments with a JSON header and a JSON object payload, a `crit`
    /// header, or a registered claim given twice.
    Malformed,
    /// `alg` is not HS256, HS384 or HS512 (`none`, RS256, a number, …).
    AlgNotAllowed,
    /// The header has no `kid`.
    MissingKid,
    /// The header's `kid` is not a string.
    BadKid,
    /// No key of this site has the token's `kid`.
    UnknownKid,
    /// The MAC does not match (wrong key, altered header or claims).
    BadSignature,
    /// `exp` is in the past, beyond the leeway.
    Expired,
    /// `nbf` or `iat` is in the future, beyond the leeway.
    NotYetValid,
    /// Issued (`iat`) longer ago than the site's maximum token age, beyond the leeway.
    TooOld,
    /// `aud` is not this site's id.
    WrongAudience,
    /// `exp`, `iat` or `aud` is missing.
    MissingClaim,
    /// `exp`, `nbf` or `iat` is not a whole number of seconds, or `aud` is neither a string nor
    /// an array of strings.
    BadClaim,
}

impl TokenError {
    /// Every token error, in a stable order (for metrics).
    pub const ALL: [TokenError; 13] = [
        TokenError::TooLong,
        TokenError::Malformed,
        TokenError::AlgNotAllowed,
        TokenError::MissingKid,
        TokenError::BadKid,
        TokenError::UnknownKid,
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::TooOld,
        TokenError::WrongAudience,
        TokenError::MissingClaim,
        TokenError::BadClaim,
    ];

    /// The stable snake_case name used in metrics and `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenError::TooLong => "too_long",
            TokenError::Malformed => "malformed",
            TokenError::AlgNotAllowed => "alg_not_allowed",
            TokenError::MissingKid => "missing_kid",
            TokenError::BadKid => "bad_kid",
            TokenError::UnknownKid => "unknown_kid",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::TooOld => "too_old",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::MissingClaim => "missing_claim",
            TokenError::BadClaim => "bad_claim",
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One verification key of a site: its `kid` and the shared secret.
#[derive(Clone)]
pub struct SiteKey {
    kid: String,
    key: DecodingKey,
}

impl SiteKey {
    /// A key with id `kid` and secret `secret`.
    pub fn new(kid: impl Into<String>, secret: &super::Secret) -> Self {
        SiteKey {
            kid: kid.into(),
            key: DecodingKey::from_secret(secret.expose()),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

impl fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteKey")
            .field("kid", &self.kid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The time rules a site's tokens are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRules {
    /// Allowed clock skew for `exp`, `nbf`, `iat` and the age, seconds.
    pub leeway: u64,
    /// Oldest a token may be (`now - iat`), seconds.
    pub max_age: u64,
}

/// A token that verified: the key that did it and the context JSON of its private claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The `kid` of the key that verified it.
    pub kid: String,
    /// The private claims as a JSON object, in document order (for `Pipeline::run_json`).
    pub context_json: Vec<u8>,
}

/// Verifies `token` for site `site` with `keys` under `rules`, against the system clock.
///
/// Never panics on any input; the error says why the token was refused, never what it held.
pub fn verify(
    token: &[u8],
    site: &str,
    keys: &[SiteKey],
    rules: &TimeRules,
) -> Result<VerifiedToken, TokenError> {
    verify_at(
        token,
        site,
        keys,
        rules,
        jsonwebtoken::get_current_timestamp(),
    )
}

/// [`verify`] at unix time `now`.
pub fn verify_at(
    token: &[u8],
    site: &str,
    keys: &[SiteKey],
    rules: &TimeRules,
    now: u64,
) -> Result<VerifiedToken, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong);
    }
    let well_formed = token
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && token.iter().filter(|&&b| b == b'.').count() == 2;
    // Only base64url and dots: the token is ASCII.
    let (Ok(text), true) = (std::str::from_utf8(token), well_formed) else {
        return Err(TokenError::Malformed);
    };
    provider::ensure_installed();
    let header = jsonwebtoken::decode_header(token).map_err(|_| classify_header(text))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(TokenError::AlgNotAllowed);
    }
    if header.crit.is_some() {
        return Err(TokenError::Malformed);
    }
    let kid = header.kid.ok_or(TokenError::MissingKid)?;
    // Which key ids exist is configuration, not a secret: a plain lookup is fine here.
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(TokenError::UnknownKid)?;
    let (message, signature) = text.rsplit_once('.').ok_or(TokenError::Malformed)?;
    match jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.key, header.alg) {
        Ok(true) => {}
        Ok(false) => return Err(TokenError::BadSignature),
        Err(_) => return Err(TokenError::Malformed),
    }

    // The signature is good: everything below reads data the host site signed.
    let payload = message
        .split_once('.')
        .and_then(|(_, p)| URL_SAFE_NO_PAD.decode(p).ok())
        .ok_or(TokenError::Malformed)?;
    let claims = private_claims(&payload).ok_or(TokenError::Malformed)?;
    claims.check(site, rules, now)?;
    Ok(VerifiedToken {
        kid,
        context_json: claims.json,
    })
}

/// Why `jsonwebtoken` could not read a header: `alg_not_allowed` for an `alg` that is not one
/// of ours (`none`, `HS1`, `RS256`, a number), `bad_kid` for a `kid` that is not a string,
/// `malformed` otherwise.
fn classify_header(token: &str) -> TokenError {
    #[derive(Deserialize)]
    struct Loose<'a> {
        #[serde(borrow)]
        alg: Option<&'a RawValue>,
        #[serde(borrow)]
        kid: Option<&'a RawValue>,
    }
    let json = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok());
    let Some(header) = json
        .as_deref()
        .and_then(|j| serde_json::from_slice::<Loose<'_>>(j).ok())
    else {
        return TokenError::Malformed;
    };
    let is_string = |v: &RawValue| v.get().starts_with('"');
    match (header.alg, header.kid) {
        (None, _) => TokenError::Malformed,
        (Some(alg), _) if !is_string(alg) => TokenError::AlgNotAllowed,
        (Some(alg), _) if !allowed_alg(alg.get()) => TokenError::AlgNotAllowed,
        (_, Some(kid)) if !is_string(kid) => TokenError::BadKid,
        _ => TokenError::Malformed,
    }
}

/// Whether the JSON string `alg` names one of the accepted algorithms.
fn allowed_alg(alg: &str) -> bool {
    serde_json::from_str::<jsonwebtoken::Algorithm>(alg).is_ok_and(|a| ALGORITHMS.contains(&a))
}

struct PrivateClaims<'a> {
    json: Vec<u8>,
    aud: Option<&'a RawValue>,
    exp: Option<&'a RawValue>,
    nbf: Option<&'a RawValue>,
    iat: Option<&'a RawValue>,
}

impl PrivateClaims<'_> {
    /// The registered-claim rules of the module docs, in order: presence and form, audience,
    /// then time.
    fn check(&self, site: &str, rules: &TimeRules, now: u64) -> Result<(), TokenError> {
        let exp = numeric_date(self.exp.ok_or(TokenError::MissingClaim)?)?;
        let aud = self.aud.ok_or(TokenError::MissingClaim)?;
        let iat = numeric_date(self.iat.ok_or(TokenError::MissingClaim)?)?;
        let nbf = self.nbf.map(numeric_date).transpose()?;
        let audiences: Vec<String> = match aud.get().as_bytes().first() {
            Some(b'"') => vec![serde_json::from_str(aud.get()).map_err(|_| TokenError::BadClaim)?],
            Some(b'[') => serde_json::from_str(aud.get()).map_err(|_| TokenError::BadClaim)?,
            _ => return Err(TokenError::BadClaim),
        };
        if !audiences.iter().any(|a| a == site) {
            return Err(TokenError::WrongAudience);
        }
        let (now, leeway) = (i128::from(now), i128::from(rules.leeway));
        if exp + leeway < now {
            return Err(TokenError::Expired);
        }
        if nbf.is_some_and(|nbf| nbf > now + leeway) || iat > now + leeway {
            return Err(TokenError::NotYetValid);
        }
        if now - iat > i128::from(rules.max_age) + leeway {
            return Err(TokenError::TooOld);
        }
        Ok(())
    }
}

/// A NumericDate written as a JSON integer (`-?(0|[1-9][0-9]*)`, within `i64`); a fraction, an
/// exponent, a string or anything else is `bad_claim`.
fn numeric_date(raw: &RawValue) -> Result<i128, TokenError> {
    let text = raw.get();
    let digits = text.strip_prefix('-').unwrap_or(text);
    let integer = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match text.parse::<i64>() {
        Ok(n) if integer => Ok(i128::from(n)),
        _ => Err(TokenError::BadClaim),
    }
}

/// The payload object without its registered claims, members kept verbatim and in order; the
/// registered claims kept raw for [`PrivateClaims::check`]. `None` for anything that is not a
/// JSON object, or one that gives a registered claim twice.
fn private_claims(payload: &[u8]) -> Option<PrivateClaims<'_>> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let claims = de.deserialize_map(ClaimsVisitor).ok()?;
    de.end().ok()?;
    Some(claims)
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = PrivateClaims<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = PrivateClaims {
            json: Vec::with_capacity(256),
            aud: None,
            exp: None,
            nbf: None,
            iat: None,
        };
        out.json.push(b'{');
        let mut seen = [false; REGISTERED_CLAIMS.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            if let Some(i) = REGISTERED_CLAIMS.iter().position(|c| *c == key) {
                if std::mem::replace(&mut seen[i], true) {
                    return Err(serde::de::Error::custom("registered claim given twice"));
                }
                match REGISTERED_CLAIMS[i] {
                    "aud" => out.aud = Some(value),
                    "exp" => out.exp = Some(value),
                    "nbf" => out.nbf = Some(value),
                    "iat" => out.iat = Some(value),
                    _ => {}
                }
                continue;
            }
            if out.json.len() > 1 {
                out.json.push(b',');
            }
            serde_json::to_writer(&mut out.json, key.as_ref()).map_err(serde::de::Error::custom)?;
            out.json.push(b':');
            out.json.extend_from_slice(value.get().as_bytes());
        }
        out.json.push(b'}');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: TimeRules = TimeRules {
        leeway: 0,
        max_age: 3600,
    };

    #[test]
    fn private_claims_keep_order_duplicates_and_raw_values() {
        let p = br#"{"plan":"Pro","exp":1,"aud":["s"],"n":1e400,"deep":[[{}]],"plan":"x","\u0041":true,"iat":5}"#;
        let c = private_claims(p).unwrap();
        assert_eq!(
            std::str::from_utf8(&c.json).unwrap(),
            r#"{"plan":"Pro","n":1e400,"deep":[[{}]],"plan":"x","A":true}"#
        );
        assert_eq!(c.iat.map(RawValue::get), Some("5"));
        assert!(private_claims(br#"{"exp":1,"\u0065xp":2}"#).is_none());
        assert!(private_claims(b"[1]").is_none());
        assert!(private_claims(br#"{"a":1} x"#).is_none());
    }

    fn check(payload: &str, now: u64) -> Result<(), TokenError> {
        private_claims(payload.as_bytes())
            .unwrap()
            .check("s", &RULES, now)
    }

    #[test]
    fn claims_each_with_its_reason() {
        let n = 1_800_000_000u64;
        let ok = |extra: &str| format!(r#"{{"aud":"s","exp":{},"iat":{n}{extra}}}"#, n + 60);
        assert_eq!(check(&ok(""), n), Ok(()));
        assert_eq!(check(&ok(r#","nbf":0"#), n), Ok(()));
        for (payload, why) in [
            (
                format!(r#"{{"aud":"s","iat":{n}}}"#),
                TokenError::MissingClaim,
            ),
            (
                format!(r#"{{"exp":{n},"iat":{n}}}"#),
                TokenError::MissingClaim,
            ),
            (
                format!(r#"{{"aud":"s","exp":{n}}}"#),
                TokenError::MissingClaim,
            ),
            (
                format!(r#"{{"aud":"s","exp":{n}.0,"iat":{n}}}"#),
                TokenError::BadClaim,
            ),
            (
                format!(r#"{{"aud":"s","exp":1e10,"iat":{n}}}"#),
                TokenError::BadClaim,
            ),
            (
                format!(r#"{{"aud":"s","exp":"{n}","iat":{n}}}"#),
                TokenError::BadClaim,
            ),
            (
                format!(r#"{{"aud":"s","exp":{n},"iat":{n}.5}}"#),
                TokenError::BadClaim,
            ),
            (
                format!(r#"{{"aud":"s","exp":18446744073709551615,"iat":{n}}}"#),
                TokenError::BadClaim,
            ),
            (
                format!(r#"{{"aud":7,"exp":{n},"iat":{n}}}"#),
                TokenError::BadClaim,
            ),
            (
                format!(r#"{{"aud":["s",7],"exp":{n},"iat":{n}}}"#),
                TokenError::BadClaim,
            ),
            (ok(r#","nbf":null"#), TokenError::BadClaim),
            (
                format!(r#"{{"aud":"t","exp":{n},"iat":{n}}}"#),
                TokenError::WrongAudience,
            ),
            (
                format!(r#"{{"aud":"s","exp":-1,"iat":{n}}}"#),
                TokenError::Expired,
            ),
            (
                format!(r#"{{"aud":"s","exp":{},"iat":{n}}}"#, n - 1),
                TokenError::Expired,
            ),
            (ok(&format!(r#","nbf":{}"#, n + 1)), TokenError::NotYetValid),
            (
                format!(r#"{{"aud":"s","exp":{},"iat":{}}}"#, n + 60, n + 1),
                TokenError::NotYetValid,
            ),
            (
                format!(r#"{{"aud":"s","exp":{},"iat":1}}"#, i64::MAX),
                TokenError::TooOld,
            ),
            (
                format!(r#"{{"aud":"s","exp":{},"iat":{}}}"#, n + 60, n - 3601),
                TokenError::TooOld,
            ),
        ] {
            assert_eq!(check(&payload, n), Err(why), "{payload}");
        }
        let edge = format!(r#"{{"aud":["x","s"],"exp":{n},"iat":{}}}"#, n - 3600);
        assert_eq!(check(&edge, n), Ok(()));
    }

    #[test]
    fn shape_checks_come_first() {
        let keys: [SiteKey; 0] = [];
        assert_eq!(
            verify(&[b'a'; MAX_TOKEN_BYTES + 1], "s", &keys, &RULES),
            Err(TokenError::TooLong)
        );
        for bad in [&b"a.b"[..], b"a.b.c.d", b"a b.c.d", b"", b"a.b.c=", b"..\n"] {
            assert_eq!(verify(bad, "s", &keys, &RULES), Err(TokenError::Malformed));
        }
        let header = |h: &str| {
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(h),
                URL_SAFE_NO_PAD.encode("{}")
            )
        };
        for (h, why) in [
            (r#"{"alg":"none","kid":"k"}"#, TokenError::AlgNotAllowed),
            (r#"{"alg":256,"kid":"k"}"#, TokenError::AlgNotAllowed),
            (r#"{"alg":"HS256","kid":7}"#, TokenError::BadKid),
            (r#"{"alg":"HS256","kid":null}"#, TokenError::MissingKid),
            (r#"{"alg":"HS256"}"#, TokenError::MissingKid),
            (r#"{"kid":"k"}"#, TokenError::Malformed),
            (
                r#"{"alg":"HS256","kid":"k","x5c":7}"#,
                TokenError::Malformed,
            ),
            (r#"[1]"#, TokenError::Malformed),
        ] {
            assert_eq!(
                verify(header(h).as_bytes(), "s", &keys, &RULES),
                Err(why),
                "{h}"
            );
        }
    }
}
