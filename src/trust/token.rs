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
//! (`iss sub aud exp nbf iat jti`) and `sid` are then removed and the rest — the private claims,
//! in document order — is the context JSON that the SPEC §1 pipeline checks like any other
//! (see `claims`). `sid` and `jti`, when present, must be non-empty strings; what they bind the
//! token to is checked by [`crate::trust::evaluate`] and the proxy.
//!
//! `jsonwebtoken` parses the header and checks the MAC; the claims are read here, so each
//! refusal has its own precise reason.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::claims::private_claims;
use super::provider::{self, ALGORITHMS};
use crate::context::limits::MAX_RAW_BYTES;

/// Longest token accepted: the same 20,000-character limit as an unsigned context.
pub const MAX_TOKEN_BYTES: usize = MAX_RAW_BYTES;

/// The registered claim names (RFC 7519 §4.1); they never become context pairs.
pub const REGISTERED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// Why a token was not accepted. The context is discarded as `size` ([`TokenError::TooLong`]),
/// `wrong_session`, `replayed`, `replay_unchecked` (the variants of those names), or otherwise
/// `bad_signature`.
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
    /// `exp`, `nbf` or `iat` is not a whole number of seconds, `aud` is neither a string nor
    /// an array of strings, or `sid`/`jti` is not a short non-empty string.
    BadClaim,
    /// `sid` is not the request's `jsSessionId`, or missing on a site with `bind_session`.
    WrongSession,
    /// The token's `jti` was already used (the session store remembers it for the token's
    /// lifetime).
    Replayed,
    /// The token has a `jti` but the session store could not say whether it was used.
    ReplayUnchecked,
}

impl TokenError {
    /// Every token error, in a stable order (for metrics).
    pub const ALL: [TokenError; 16] = [
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
        TokenError::WrongSession,
        TokenError::Replayed,
        TokenError::ReplayUnchecked,
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
            TokenError::WrongSession => "wrong_session",
            TokenError::Replayed => "replayed",
            TokenError::ReplayUnchecked => "replay_unchecked",
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

/// A token that verified: the key that did it, the context JSON of its private claims, and
/// what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The `kid` of the key that verified it.
    pub kid: String,
    /// The private claims as a JSON object, in document order (for `Pipeline::run_json`).
    pub context_json: Vec<u8>,
    /// The `sid` claim: the chat session (`jsSessionId`) the token is for.
    pub sid: Option<String>,
    /// The `jti` claim: the token may be used once.
    pub jti: Option<String>,
    /// The last unix second at which the token verifies: how long its `jti` is remembered.
    pub valid_until: u64,
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
    let binding = claims.check(site, rules, now)?;
    Ok(VerifiedToken {
        kid,
        context_json: claims.json,
        sid: binding.sid,
        jti: binding.jti,
        valid_until: binding.valid_until,
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

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: TimeRules = TimeRules {
        leeway: 0,
        max_age: 3600,
    };

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
