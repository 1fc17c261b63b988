//! Verifying one signed visitor-context token (a JWT) for one site.
//!
//! Rules: at most [`MAX_TOKEN_BYTES`] characters; `alg` one of HS256, HS384, HS512 (`none` and
//! every other algorithm rejected); `kid` required, selecting one of the site's keys; `exp` and
//! `aud` required, `aud` equal to (or, as an array, containing) the site id; `exp`, `nbf` and
//! `iat` checked against the clock with the site's leeway; no `crit` header (flowgate
//! understands no JWS extension). The registered claims (`iss sub aud exp nbf iat jti`) are then
//! removed and the rest — the private claims, in document order — is the context JSON that the
//! SPEC §1 pipeline checks like any other.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde::de::{IgnoredAny, MapAccess, Visitor};
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
    /// Not three base64url segments with a JSON header and payload, or a `crit` header.
    Malformed,
    /// `alg` is not HS256, HS384 or HS512 (`none`, RS256, …).
    AlgNotAllowed,
    /// The header has no `kid`.
    MissingKid,
    /// No key of this site has the token's `kid`.
    UnknownKid,
    /// The MAC does not match (wrong key, altered header or claims).
    BadSignature,
    /// `exp` is in the past, beyond the leeway.
    Expired,
    /// `nbf` or `iat` is in the future, beyond the leeway.
    NotYetValid,
    /// `aud` is not this site's id.
    WrongAudience,
    /// `exp` or `aud` is missing.
    MissingClaim,
    /// `exp`, `nbf` or `iat` is not a whole number of seconds.
    BadClaim,
}

impl TokenError {
    /// Every token error, in a stable order (for metrics).
    pub const ALL: [TokenError; 11] = [
        TokenError::TooLong,
        TokenError::Malformed,
        TokenError::AlgNotAllowed,
        TokenError::MissingKid,
        TokenError::UnknownKid,
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::NotYetValid,
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
            TokenError::UnknownKid => "unknown_kid",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
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

/// A token that verified: the key that did it and the context JSON of its private claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The `kid` of the key that verified it.
    pub kid: String,
    /// The private claims as a JSON object, in document order (for `Pipeline::run_json`).
    pub context_json: Vec<u8>,
}

/// Verifies `token` for site `site` with `keys`, allowing `leeway` seconds of clock skew.
///
/// Never panics on any input; the error says why the token was refused, never what it held.
pub fn verify(
    token: &[u8],
    site: &str,
    keys: &[SiteKey],
    leeway: u64,
) -> Result<VerifiedToken, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong);
    }
    let well_formed = token
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && token.iter().filter(|&&b| b == b'.').count() == 2;
    if !well_formed {
        return Err(TokenError::Malformed);
    }
    provider::ensure_installed();
    let header = jsonwebtoken::decode_header(token).map_err(|_| classify_header(token))?;
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

    let mut validation = Validation::new(header.alg);
    validation.algorithms = ALGORITHMS.to_vec();
    validation.leeway = leeway;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "aud"]);
    validation.set_audience(&[site]);
    jsonwebtoken::decode::<IgnoredAny>(token, &key.key, &validation).map_err(|e| {
        match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::MissingRequiredClaim(_) => TokenError::MissingClaim,
            ErrorKind::InvalidClaimFormat(_) => TokenError::BadClaim,
            ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                TokenError::AlgNotAllowed
            }
            _ => TokenError::Malformed,
        }
    })?;

    // The signature is good: everything below reads data the host site signed.
    let payload = token
        .split(|&b| b == b'.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .ok_or(TokenError::Malformed)?;
    let claims = private_claims(&payload).ok_or(TokenError::Malformed)?;
    if claims.bad_iat {
        return Err(TokenError::BadClaim);
    }
    // jsonwebtoken checks `exp` and `nbf`; a token issued in the future is refused here.
    if claims
        .iat
        .is_some_and(|iat| iat > jsonwebtoken::get_current_timestamp().saturating_add(leeway))
    {
        return Err(TokenError::NotYetValid);
    }
    Ok(VerifiedToken {
        kid,
        context_json: claims.json,
    })
}

/// `alg_not_allowed` when the header is JSON naming an algorithm `jsonwebtoken` does not know
/// (`none`, `HS1`, …); `malformed` otherwise.
fn classify_header(token: &[u8]) -> TokenError {
    #[derive(Deserialize)]
    struct AlgOnly {
        alg: Option<String>,
    }
    let named = token
        .split(|&b| b == b'.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|json| serde_json::from_slice::<AlgOnly>(&json).ok())
        .and_then(|h| h.alg);
    match named {
        Some(_) => TokenError::AlgNotAllowed,
        None => TokenError::Malformed,
    }
}

struct PrivateClaims {
    json: Vec<u8>,
    iat: Option<u64>,
    bad_iat: bool,
}

/// The payload object without its registered claims, members kept verbatim and in order.
fn private_claims(payload: &[u8]) -> Option<PrivateClaims> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let claims = de.deserialize_map(ClaimsVisitor).ok()?;
    de.end().ok()?;
    Some(claims)
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = PrivateClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut json = Vec::with_capacity(256);
        json.push(b'{');
        let mut iat = None;
        let mut bad_iat = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            if REGISTERED_CLAIMS.contains(&key.as_ref()) {
                if key == "iat" {
                    match value.get().parse::<u64>() {
                        Ok(t) => iat = Some(t),
                        Err(_) => bad_iat = true,
                    }
                }
                continue;
            }
            if json.len() > 1 {
                json.push(b',');
            }
            serde_json::to_writer(&mut json, key.as_ref()).map_err(serde::de::Error::custom)?;
            json.push(b':');
            json.extend_from_slice(value.get().as_bytes());
        }
        json.push(b'}');
        Ok(PrivateClaims { json, iat, bad_iat })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_claims_keep_order_duplicates_and_raw_values() {
        let p = br#"{"plan":"Pro","exp":1,"aud":["s"],"n":1e400,"deep":[[{}]],"plan":"x","\u0041":true,"iat":5}"#;
        let c = private_claims(p).unwrap();
        assert_eq!(
            std::str::from_utf8(&c.json).unwrap(),
            r#"{"plan":"Pro","n":1e400,"deep":[[{}]],"plan":"x","A":true}"#
        );
        assert_eq!(c.iat, Some(5));
        assert!(!c.bad_iat);
        let c = private_claims(br#"{"iat":1.5}"#).unwrap();
        assert!(c.bad_iat);
        assert_eq!(c.json, b"{}");
        assert!(private_claims(b"[1]").is_none());
        assert!(private_claims(br#"{"a":1} x"#).is_none());
    }

    #[test]
    fn shape_checks_come_first() {
        let keys: [SiteKey; 0] = [];
        assert_eq!(
            verify(&[b'a'; MAX_TOKEN_BYTES + 1], "s", &keys, 0),
            Err(TokenError::TooLong)
        );
        for bad in [&b"a.b"[..], b"a.b.c.d", b"a b.c.d", b"", b"a.b.c=", b"..\n"] {
            assert_eq!(verify(bad, "s", &keys, 0), Err(TokenError::Malformed));
        }
        // {"alg":"none","kid":"k"} . {} . (empty signature)
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k"}"#),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert_eq!(
            verify(none.as_bytes(), "s", &keys, 0),
            Err(TokenError::AlgNotAllowed)
        );
    }
}
