//! What a verified request carries: [`TrustedContext`], and the one safe way to its pre-fill.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::headers::signature::Version;

/// What the `Status` header said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextStatus {
    /// `accepted`: a context from the browser, on a site whose mode is `off`. Anyone can write it.
    Accepted,
    /// `accepted; verified`: the host site's server signed the context and flowgate verified it.
    Verified,
    /// `accepted; unverified`: a context from the browser on a site that signs contexts. Anyone
    /// can write it.
    Unverified,
    /// `absent`: no context was sent (or none is stored for the session).
    Absent,
    /// `discarded; reason=<r>`: the context was dropped, with the edge's reason.
    Discarded {
        /// The machine-readable reason (`size`, `base64`, `bad_signature`, …).
        reason: String,
    },
}

impl ContextStatus {
    pub(super) fn parse(value: &str) -> Option<Self> {
        match value {
            "accepted" => Some(ContextStatus::Accepted),
            "accepted; verified" => Some(ContextStatus::Verified),
            "accepted; unverified" => Some(ContextStatus::Unverified),
            "absent" | "" => Some(ContextStatus::Absent),
            _ => value
                .strip_prefix("discarded; reason=")
                .filter(|r| !r.is_empty())
                .map(|r| ContextStatus::Discarded {
                    reason: r.to_owned(),
                }),
        }
    }
}

/// Ordered `(key, value)` pairs of a decoded header (context or pre-fill).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairs(Vec<(String, String)>);

impl Pairs {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs as owned tuples.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.0.clone()
    }

    /// Base64 of a JSON object of strings → its pairs in order (`""` → none).
    pub(super) fn decode(value: &str) -> Option<Pairs> {
        if value.is_empty() {
            return Some(Pairs::default());
        }
        let json = STANDARD.decode(value).ok()?;
        let mut de = serde_json::Deserializer::from_slice(&json);
        let pairs = de.deserialize_map(PairsVisitor).ok()?;
        de.end().ok()?;
        Some(Pairs(pairs))
    }
}

struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<String, String>()? {
            out.push((k, v));
        }
        Ok(out)
    }
}

/// The explicit opt-in of [`TrustedContext::browser_prefill`]: "this site is `mode: off`, and
/// I accept that the browser wrote this identity".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcknowledgeUnsigned;

/// The trusted headers of one request, signature checked and decoded.
///
/// The context and its pre-fill are what the *browser* said unless [`ContextStatus::Verified`]:
/// read pre-fill through [`TrustedContext::verified_prefill`], which is empty otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedContext {
    /// The `Site` header (`None` when absent: not a widget route).
    pub site: Option<String>,
    /// The `Session` header (`None` when absent).
    pub session: Option<String>,
    /// The parsed `Status` header.
    pub status: ContextStatus,
    /// The accepted context pairs, in order (a browser's claims unless verified).
    pub context: Pairs,
    /// The request id (v2 only: v1 does not sign it).
    pub request_id: Option<String>,
    /// The client address flowgate determined (v2 only: v1 does not sign it).
    pub client_ip: Option<String>,
    /// The signature's timestamp (unix seconds).
    pub signed_at: u64,
    /// The signature version that verified.
    pub version: Version,
    pub(super) prefill: Pairs,
}

impl TrustedContext {
    /// The pre-fill slots (`visitor_email`, `name`, …) — only when the host site's server signed
    /// the context (`accepted; verified`). `None` for every other status: an `accepted; unverified`
    /// pre-fill is whatever the browser claimed.
    pub fn verified_prefill(&self) -> Option<&Pairs> {
        (self.status == ContextStatus::Verified).then_some(&self.prefill)
    }

    /// The pre-fill of a site documented as `mode: off` (status `accepted`), where the browser's
    /// word is all there is and the caller says so. Never the pre-fill of `accepted;
    /// unverified`; the verified pre-fill is returned too.
    pub fn browser_prefill(&self, _acknowledged: AcknowledgeUnsigned) -> Option<&Pairs> {
        matches!(
            self.status,
            ContextStatus::Accepted | ContextStatus::Verified
        )
        .then_some(&self.prefill)
    }

    /// True when the host site signed the context and flowgate verified it.
    pub fn is_verified(&self) -> bool {
        self.status == ContextStatus::Verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(status: &str) -> TrustedContext {
        TrustedContext {
            site: Some("s".into()),
            session: Some("j".into()),
            status: ContextStatus::parse(status).unwrap(),
            context: Pairs::default(),
            request_id: None,
            client_ip: None,
            signed_at: 0,
            version: Version::V2,
            prefill: Pairs(vec![("visitor_email".into(), "a@b.c".into())]),
        }
    }

    #[test]
    fn prefill_only_when_verified_or_acknowledged_off() {
        let v = with("accepted; verified");
        assert_eq!(
            v.verified_prefill().unwrap().get("visitor_email"),
            Some("a@b.c")
        );
        assert!(v.browser_prefill(AcknowledgeUnsigned).is_some());
        let u = with("accepted; unverified");
        assert_eq!(u.verified_prefill(), None);
        assert_eq!(u.browser_prefill(AcknowledgeUnsigned), None);
        let off = with("accepted");
        assert_eq!(off.verified_prefill(), None);
        assert!(off.browser_prefill(AcknowledgeUnsigned).is_some());
        for s in ["absent", "", "discarded; reason=json"] {
            assert_eq!(with(s).verified_prefill(), None);
            assert_eq!(with(s).browser_prefill(AcknowledgeUnsigned), None);
        }
    }

    #[test]
    fn status_forms() {
        assert_eq!(
            ContextStatus::parse("discarded; reason=bad_signature"),
            Some(ContextStatus::Discarded {
                reason: "bad_signature".into()
            })
        );
        assert_eq!(ContextStatus::parse("discarded; reason="), None);
        assert_eq!(ContextStatus::parse("weird"), None);
        assert_eq!(Pairs::decode("e30=").unwrap().len(), 0);
        assert_eq!(Pairs::decode("W10="), None);
        assert_eq!(Pairs::decode("!"), None);
    }
}
