//! The claims of a token whose MAC verified: the registered claims checked, the binding claims
//! (`sid`, `jti`) read, and the rest — the private claims, in document order — kept verbatim as
//! the context JSON.
//!
//! `sid` is not an RFC 7519 claim but OpenID Connect's session id; flowgate reads it as the chat
//! session (`jsSessionId`) the token is bound to, so it never becomes a context pair either.

use std::fmt;

use serde::Deserializer as _;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use super::token::{REGISTERED_CLAIMS, TimeRules, TokenError};

/// Longest `sid` or `jti` accepted, in bytes (a session id is at most 128; ids are short).
pub const MAX_BINDING_CLAIM_BYTES: usize = 256;

/// Claims that never become context pairs: the registered ones and `sid`.
const NOT_CONTEXT: [&str; REGISTERED_CLAIMS.len() + 1] = {
    let mut out = [""; REGISTERED_CLAIMS.len() + 1];
    let mut i = 0;
    while i < REGISTERED_CLAIMS.len() {
        out[i] = REGISTERED_CLAIMS[i];
        i += 1;
    }
    out[i] = "sid";
    out
};

/// What the checked claims bind the token to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Binding {
    /// The `sid` claim: the chat session the token is for.
    pub(super) sid: Option<String>,
    /// The `jti` claim: the token's one-time id.
    pub(super) jti: Option<String>,
    /// The last unix second at which the token still verifies (`exp` or `iat` + max age, plus
    /// the leeway): how long a used `jti` must be remembered.
    pub(super) valid_until: u64,
}

pub(super) struct PrivateClaims<'a> {
    pub(super) json: Vec<u8>,
    aud: Option<&'a RawValue>,
    exp: Option<&'a RawValue>,
    nbf: Option<&'a RawValue>,
    iat: Option<&'a RawValue>,
    sid: Option<&'a RawValue>,
    jti: Option<&'a RawValue>,
}

impl PrivateClaims<'_> {
    /// The registered-claim rules of the module docs, in order: presence and form, audience,
    /// then time.
    pub(super) fn check(
        &self,
        site: &str,
        rules: &TimeRules,
        now: u64,
    ) -> Result<Binding, TokenError> {
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
        let last = (exp + leeway).min(iat + i128::from(rules.max_age) + leeway);
        Ok(Binding {
            sid: self.sid.map(binding_claim).transpose()?,
            jti: self.jti.map(binding_claim).transpose()?,
            valid_until: u64::try_from(last.max(0)).unwrap_or(u64::MAX),
        })
    }
}

/// `sid` or `jti`: a non-empty JSON string of at most [`MAX_BINDING_CLAIM_BYTES`] bytes.
fn binding_claim(raw: &RawValue) -> Result<String, TokenError> {
    match serde_json::from_str::<String>(raw.get()) {
        Ok(s) if !s.is_empty() && s.len() <= MAX_BINDING_CLAIM_BYTES => Ok(s),
        _ => Err(TokenError::BadClaim),
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
pub(super) fn private_claims(payload: &[u8]) -> Option<PrivateClaims<'_>> {
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
            sid: None,
            jti: None,
        };
        out.json.push(b'{');
        let mut seen = [false; NOT_CONTEXT.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            if let Some(i) = NOT_CONTEXT.iter().position(|c| *c == key) {
                if std::mem::replace(&mut seen[i], true) {
                    return Err(serde::de::Error::custom("registered claim given twice"));
                }
                match NOT_CONTEXT[i] {
                    "aud" => out.aud = Some(value),
                    "sid" => out.sid = Some(value),
                    "jti" => out.jti = Some(value),
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
            .map(|_| ())
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
    fn binding_claims_are_read_and_never_pairs() {
        let n = 1_800_000_000u64;
        let p = format!(
            r#"{{"sid":"chat-1","a":1,"jti":"t-1","aud":"s","exp":{},"iat":{n}}}"#,
            n + 60
        );
        let c = private_claims(p.as_bytes()).unwrap();
        assert_eq!(std::str::from_utf8(&c.json).unwrap(), r#"{"a":1}"#);
        let b = c.check("s", &RULES, n).unwrap();
        assert_eq!(b.sid.as_deref(), Some("chat-1"));
        assert_eq!(b.jti.as_deref(), Some("t-1"));
        assert_eq!(b.valid_until, n + 60);
        let old = format!(r#"{{"aud":"s","exp":{},"iat":{n}}}"#, n + 99_999);
        let b = private_claims(old.as_bytes())
            .unwrap()
            .check("s", &RULES, n)
            .unwrap();
        assert_eq!((b.sid, b.jti, b.valid_until), (None, None, n + 3600));
        for bad in [
            r#""sid":7"#,
            r#""sid":"""#,
            r#""jti":null"#,
            r#""jti":["x"]"#,
        ] {
            let p = format!(r#"{{{bad},"aud":"s","exp":{n},"iat":{n}}}"#);
            let c = private_claims(p.as_bytes()).unwrap();
            assert_eq!(c.check("s", &RULES, n), Err(TokenError::BadClaim), "{bad}");
        }
        let long = format!(
            r#"{{"jti":"{}","aud":"s","exp":{n},"iat":{n}}}"#,
            "x".repeat(257)
        );
        let c = private_claims(long.as_bytes()).unwrap();
        assert_eq!(c.check("s", &RULES, n), Err(TokenError::BadClaim));
        assert!(private_claims(br#"{"sid":"a","sid":"b"}"#).is_none());
    }
}
