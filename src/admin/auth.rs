//! The admin token check: `Authorization: Bearer <token>` against the configured tokens.
//!
//! Both sides are hashed (SHA-256) before the constant-time comparison, so neither the bytes
//! nor the length of a configured token can be learnt from response times.

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::secret::Secret;

/// The configured admin tokens, kept as digests.
pub(crate) struct AdminTokens(Vec<[u8; 32]>);

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminTokens({} configured)", self.0.len())
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl AdminTokens {
    /// The tokens any of which authorises an erasure.
    pub(crate) fn new(tokens: &[Secret]) -> AdminTokens {
        AdminTokens(tokens.iter().map(|t| digest(t.expose())).collect())
    }

    /// Whether the `Authorization` header value carries one of the tokens. Every configured
    /// token is compared, whichever matches.
    pub(crate) fn authorises(&self, authorization: Option<&[u8]>) -> bool {
        let Some(token) = authorization.and_then(bearer) else {
            return false;
        };
        let presented = digest(token);
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |ok, t| ok | t.ct_eq(&presented))
            .into()
    }
}

/// The token of a `Bearer` credential (scheme case-insensitive, RFC 6750).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_bearer_token_authorises() {
        let t = AdminTokens::new(&[Secret::new("a".repeat(32)), Secret::new("b".repeat(40))]);
        let a = format!("Bearer {}", "a".repeat(32));
        let b = format!("bearer  {} ", "b".repeat(40));
        assert!(t.authorises(Some(a.as_bytes())));
        assert!(t.authorises(Some(b.as_bytes())));
        for bad in [
            format!("Bearer {}", "a".repeat(31)),
            format!("Basic {}", "a".repeat(32)),
            "a".repeat(32),
            "Bearer ".to_owned(),
            String::new(),
        ] {
            assert!(!t.authorises(Some(bad.as_bytes())), "{bad}");
        }
        assert!(!t.authorises(None));
        assert!(!AdminTokens::new(&[]).authorises(Some(a.as_bytes())));
    }
}
