//! How a host site's server signs a visitor context (the Rust counterpart of
//! `examples/host/sign.php`).
//!
//! The token is a standard JWT: header `{"alg":"HS256","typ":"JWT","kid":…}`, payload the
//! context pairs in order followed by `aud` (the site id), `iat` and `exp`. The page hands it to
//! the widget, which sends it as the `visitor_context_token` query parameter.

use std::fmt;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::provider;

/// The key a host site signs with: the `kid` flowgate knows it by, and the shared secret.
pub struct HostKey<'a> {
    /// The key id configured for the site in flowgate (`sites.<id>.keys[].kid`).
    pub kid: &'a str,
    /// The shared secret's bytes.
    pub secret: &'a [u8],
    /// HS256, HS384 or HS512.
    pub alg: Algorithm,
}

impl fmt::Debug for HostKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Why a token could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    /// The algorithm is not HS256, HS384 or HS512.
    Algorithm,
    /// A context key is a registered claim name (`exp`, `aud`, …) that the signer sets itself.
    ReservedKey(String),
    /// The JWT library refused (its message).
    Jwt(String),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::Algorithm => f.write_str("only HS256, HS384 and HS512 are accepted"),
            SignError::ReservedKey(k) => write!(f, "context key {k:?} is a registered claim"),
            SignError::Jwt(e) => write!(f, "cannot sign: {e}"),
        }
    }
}

impl std::error::Error for SignError {}

struct Claims<'a, V> {
    context: &'a [(&'a str, V)],
    site: &'a str,
    iat: u64,
    exp: u64,
}

impl<V: Serialize> Serialize for Claims<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.context.len() + 3))?;
        for (k, v) in self.context {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("aud", self.site)?;
        map.serialize_entry("iat", &self.iat)?;
        map.serialize_entry("exp", &self.exp)?;
        map.end()
    }
}

/// Signs `context` (pairs in the order the operator should see them) for `site`, issued at
/// `now` (unix seconds) and valid for `ttl_secs`.
pub fn sign_context<V: Serialize>(
    context: &[(&str, V)],
    site: &str,
    key: &HostKey<'_>,
    now: u64,
    ttl_secs: u64,
) -> Result<String, SignError> {
    if !provider::ALGORITHMS.contains(&key.alg) {
        return Err(SignError::Algorithm);
    }
    if let Some((k, _)) = context
        .iter()
        .find(|(k, _)| super::token::REGISTERED_CLAIMS.contains(k))
    {
        return Err(SignError::ReservedKey((*k).to_owned()));
    }
    provider::ensure_installed();
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.to_owned());
    let claims = Claims {
        context,
        site,
        iat: now,
        exp: now.saturating_add(ttl_secs),
    };
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key.secret))
        .map_err(|e| SignError::Jwt(e.to_string()))
}
