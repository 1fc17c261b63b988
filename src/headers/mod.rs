//! Trusted header names and values; anti-spoof matching; the header signature.
//!
//! Header values are ASCII only: the context and the pre-fill travel as standard padded
//! base64 of a UTF-8 JSON object whose members keep the pipeline's order.

pub mod signature;
pub mod spoof;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serializer as _;

use crate::context::{Context, Discard};
use crate::prefill::Prefill;

/// The default prefix of every trusted header name.
pub const DEFAULT_PREFIX: &str = "X-Flowgate-";
/// Suffix of the header carrying the accepted pairs.
pub const CONTEXT: &str = "Context";
/// Suffix of the header carrying the pre-fill slots.
pub const PREFILL: &str = "Prefill";
/// Suffix of the header carrying the [`Status`].
pub const STATUS: &str = "Status";
/// Suffix of the header carrying the site id.
pub const SITE: &str = "Site";
/// Suffix of the header carrying the chat session id.
pub const SESSION: &str = "Session";
/// Suffix of the header carrying the signature over the trusted headers.
pub const SIGNATURE: &str = "Signature";

/// The `Context` header value: base64 of the JSON object of accepted pairs, in order.
pub fn context_value(ctx: &Context) -> String {
    encode_object(ctx.pairs())
}

/// The `Prefill` header value: base64 of the JSON object slot → value, in slot order.
pub fn prefill_value(p: &Prefill) -> String {
    encode_object(p.slots())
}

fn encode_object<K: serde::Serialize, V: serde::Serialize>(
    members: impl Iterator<Item = (K, V)>,
) -> String {
    let mut json = Vec::with_capacity(256);
    // Serialising string pairs into a Vec cannot fail.
    let _ = serde_json::Serializer::new(&mut json).collect_map(members);
    STANDARD.encode(json)
}

/// What the edge did with the context of an init request (the `Status` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The context was accepted (possibly with zero pairs).
    Accepted,
    /// Accepted from a signed-context token that verified (`accepted; verified`).
    Verified,
    /// Accepted without a verified token on a site that uses signed context
    /// (`accepted; unverified`).
    Unverified,
    /// The request carried no context.
    Absent,
    /// The context was discarded, with the reason.
    Discarded(Discard),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Accepted => f.write_str("accepted"),
            Status::Verified => f.write_str("accepted; verified"),
            Status::Unverified => f.write_str("accepted; unverified"),
            Status::Absent => f.write_str("absent"),
            Status::Discarded(reason) => write!(f, "discarded; reason={}", reason.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::sanitize;
    use crate::prefill::prefill;

    fn decode(v: &str) -> String {
        String::from_utf8(STANDARD.decode(v).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn values_keep_order_and_are_ascii() {
        let json = r#"{"b":"é\"/\\ &amp;","a":"1","ims_email":"x@y"}"#;
        let ctx = sanitize(STANDARD.encode(json).as_bytes()).unwrap_or_default();
        let c = context_value(&ctx);
        assert!(c.is_ascii());
        assert_eq!(decode(&c), r#"{"b":"é\"/\\ &","a":"1","ims_email":"x@y"}"#);
        let p = prefill_value(&prefill(&ctx));
        assert_eq!(decode(&p), r#"{"visitor_email":"x@y","email":"x@y"}"#);
        assert_eq!(context_value(&Context::new()), "e30=");
    }

    #[test]
    fn status_text() {
        assert_eq!(Status::Accepted.to_string(), "accepted");
        assert_eq!(Status::Absent.to_string(), "absent");
        assert_eq!(
            Status::Discarded(Discard::NotObject).to_string(),
            "discarded; reason=not_object"
        );
    }
}
