//! Trusted header names and values; anti-spoof matching; the header signature; client identity
//! values (`forwarded`).
//!
//! Header values are ASCII only: the context and the pre-fill travel as standard padded
//! base64 of a UTF-8 JSON object whose members keep the pipeline's order.

pub mod forwarded;
pub(crate) mod session_key;
pub mod signature;
pub(crate) mod spoof;

use std::fmt;

use crate::context::json::find_writer_escape;
use crate::context::{Context, Discard};
use crate::prefill::Prefill;

/// The default prefix of every trusted header name.
pub const DEFAULT_PREFIX: &str = "X-Flowgate-";
/// Suffix of the header carrying the accepted pairs.
pub(crate) const CONTEXT: &str = "Context";
/// Suffix of the header carrying the pre-fill slots.
pub(crate) const PREFILL: &str = "Prefill";
/// Suffix of the header carrying the [`Status`].
pub(crate) const STATUS: &str = "Status";
/// Suffix of the header carrying the site id.
pub(crate) const SITE: &str = "Site";
/// Suffix of the header carrying the chat session id.
pub(crate) const SESSION: &str = "Session";
/// Suffix of the header carrying the signature over the trusted headers.
pub(crate) const SIGNATURE: &str = "Signature";

/// The `Context` header value: base64 of the JSON object of accepted pairs, in order.
pub fn context_value(ctx: &Context) -> String {
    encode_object(ctx.pairs())
}

/// The `Prefill` header value: base64 of the JSON object slot → value, in slot order.
pub fn prefill_value(p: &Prefill) -> String {
    encode_object(p.slots())
}

/// Base64 of the JSON object `{"k":"v",…}`, byte for byte what `serde_json` writes for a
/// map of strings (same escapes), written directly: this runs on every accepted init.
fn encode_object<K: AsRef<str>, V: AsRef<str>>(
    members: impl Iterator<Item = (K, V)> + Clone,
) -> String {
    let size: usize = members
        .clone()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 6)
        .sum();
    let mut json = Vec::with_capacity(size + 2);
    json.push(b'{');
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            json.push(b',');
        }
        write_json_string(&mut json, key.as_ref());
        json.push(b':');
        write_json_string(&mut json, value.as_ref());
    }
    json.push(b'}');
    base64_simd::STANDARD.encode_to_string(&json)
}

/// `s` as a JSON string: `"` and `\` escaped, control bytes as `\b \t \n \f \r` or
/// `\u00XX`, everything else (including non-ASCII UTF-8) copied as is — serde_json's rules.
pub(crate) fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // The bytes JSON must escape are the ones that end the JSON reader's plain runs.
    write_json_string_with(out, s, find_writer_escape);
}

/// [`write_json_string`] with `find_escape` finding the next `"`, `\` or control byte (a
/// caller with a faster search for long strings passes its own).
pub(crate) fn write_json_string_with(
    out: &mut Vec<u8>,
    s: &str,
    find_escape: impl Fn(&[u8]) -> Option<usize>,
) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut start = 0;
    loop {
        let at = find_escape(&bytes[start..]).map_or(bytes.len(), |p| start + p);
        out.extend_from_slice(&bytes[start..at]);
        let Some(&b) = bytes.get(at) else { break };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = at + 1;
    }
    out.push(b'"');
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
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

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
    fn json_matches_serde_json_byte_for_byte() {
        use serde::Serializer as _;
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        let cases: [&[(&str, &str)]; 4] = [
            &[],
            &[("a", "1")],
            &[
                ("k", every_ascii.as_str()),
                ("ims_name", "Zoë 山田 👩‍💻 \u{7f}\u{85}"),
            ],
            &[("x", "\"\\\"\\"), ("y", ""), ("z", "</script>")],
        ];
        let shifted: Vec<String> = (0..17)
            .map(|n| {
                format!(
                    "{}\"{}\u{1}{}\\",
                    "a".repeat(n),
                    "é".repeat(n),
                    "b".repeat(n)
                )
            })
            .collect();
        let shifted: Vec<(&str, &str)> = shifted.iter().map(|v| ("k", v.as_str())).collect();
        for members in cases.into_iter().chain([shifted.as_slice()]) {
            let mut expected = Vec::new();
            let _ = serde_json::Serializer::new(&mut expected)
                .collect_map(members.iter().map(|&(k, v)| (k, v)));
            let got = decode(&encode_object(members.iter().copied()));
            assert_eq!(got.as_bytes(), expected.as_slice());
        }
    }

    proptest::proptest! {
        #[test]
        fn json_matches_serde_json_on_any_text(k in "\\PC*", v in "(\\PC|[\\x00-\\x1f\"\\\\])*") {
            use serde::Serializer as _;
            let mut expected = Vec::new();
            let _ = serde_json::Serializer::new(&mut expected).collect_map([(&k, &v)]);
            let got = decode(&encode_object([(&k, &v)].into_iter()));
            proptest::prop_assert_eq!(got.as_bytes(), expected.as_slice());
        }
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
