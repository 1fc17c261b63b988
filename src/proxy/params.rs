//! The widget's query parameters: finding them, decoding them, validating the ids.
//!
//! The context value is percent-decoded *without* turning `+` into a space: base64 has no
//! spaces, and a widget that forgot to encode `+` still works. When a parameter appears more
//! than once the last occurrence wins, as in PHP's `$_GET`, which is what the backend sees.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::config::ParamNames;
use crate::context::limits::MAX_RAW_BYTES;

/// Longest site or session id, in bytes.
pub(crate) const MAX_ID_LEN: usize = 128;

/// The widget's parameters as they appear in the query (still percent-encoded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RawParams<'q> {
    /// The site id, if present.
    pub(crate) site: Option<&'q str>,
    /// The chat session id, if present.
    pub(crate) session: Option<&'q str>,
    /// The visitor context, if present.
    pub(crate) context: Option<&'q str>,
    /// The signed-context token, if present.
    pub(crate) token: Option<&'q str>,
}

/// Finds the widget's parameters in a query string (the part after `?`).
pub(crate) fn find<'q>(query: &'q str, names: &ParamNames) -> RawParams<'q> {
    let mut found = RawParams::default();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name: Cow<'_, str> = if name.contains('%') {
            percent_decode_str(name).decode_utf8_lossy()
        } else {
            Cow::Borrowed(name)
        };
        if name == names.context {
            found.context = Some(value);
        } else if name == names.token {
            found.token = Some(value);
        } else if name == names.site {
            found.site = Some(value);
        } else if name == names.session {
            found.session = Some(value);
        }
    }
    found
}

/// A site or session id that failed validation (1–128 bytes of `[A-Za-z0-9._-]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadId;

/// Percent-decodes and validates a site or session id.
pub(crate) fn decode_id(raw: &str) -> Result<Cow<'_, str>, BadId> {
    let id: Cow<'_, str> = if raw.contains('%') {
        // Invalid UTF-8 cannot pass the byte check below anyway.
        percent_decode_str(raw).decode_utf8().map_err(|_| BadId)?
    } else {
        Cow::Borrowed(raw)
    };
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid { Ok(id) } else { Err(BadId) }
}

/// Percent-decodes a context value into `out` (cleared first), keeping `+` as `+`.
///
/// Decoding stops one byte past the pipeline's size limit: the pipeline then discards the
/// value as oversized, and a huge query never costs more than that much memory. Runs without
/// `%` (all of a typical base64 value) are copied whole rather than byte by byte.
pub(crate) fn decode_context_into(raw: &str, out: &mut Vec<u8>) {
    out.clear();
    let raw = raw.as_bytes();
    let limit = MAX_RAW_BYTES + 1;
    let mut i = 0;
    while i < raw.len() && out.len() < limit {
        let run_end = memchr::memchr(b'%', &raw[i..]).map_or(raw.len(), |p| i + p);
        let take = (run_end - i).min(limit - out.len());
        out.extend_from_slice(&raw[i..i + take]);
        i += take;
        if i < run_end || i == raw.len() || out.len() >= limit {
            break;
        }
        // raw[i] is '%': a valid escape is two hex digits, anything else stays literal.
        match (raw.get(i + 1).and_then(hex), raw.get(i + 2).and_then(hex)) {
            (Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            _ => {
                out.push(b'%');
                i += 1;
            }
        }
    }
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn names() -> ParamNames {
        Config::default().params
    }

    #[test]
    fn finds_parameters_last_wins() {
        let p = find(
            "siteid=a&x=1&jsSessionId=s1&visitor_context=e30%3D&siteid=b&flag",
            &names(),
        );
        assert_eq!(p.site, Some("b"));
        assert_eq!(p.session, Some("s1"));
        assert_eq!(p.context, Some("e30%3D"));
        assert_eq!(find("", &names()), RawParams::default());
        assert_eq!(find("visitor%5Fcontext=x", &names()).context, Some("x"));
        assert_eq!(find("siteid", &names()).site, Some(""));
        let t = find("visitor_context_token=a.b.c&visitor_context=e30", &names());
        assert_eq!((t.token, t.context), (Some("a.b.c"), Some("e30")));
    }

    #[test]
    fn ids() {
        assert_eq!(decode_id("abc-1.2_3").unwrap(), "abc-1.2_3");
        assert_eq!(decode_id("a%2Db").unwrap(), "a-b");
        assert_eq!(decode_id(&"a".repeat(128)).unwrap().len(), 128);
        for bad in ["", "a b", "a+b", "a/b", "é", "%00", "%ff", "a%2Fb"] {
            assert_eq!(decode_id(bad), Err(BadId), "{bad}");
        }
        assert_eq!(decode_id(&"a".repeat(129)), Err(BadId));
    }

    #[test]
    fn context_keeps_plus_and_is_bounded() {
        let mut out = Vec::new();
        decode_context_into("ab+c%2B%3D%3d%zz", &mut out);
        assert_eq!(out, b"ab+c+==%zz");
        decode_context_into(&"%41".repeat(MAX_RAW_BYTES * 2), &mut out);
        assert_eq!(out.len(), MAX_RAW_BYTES + 1);
        decode_context_into(&"A".repeat(MAX_RAW_BYTES * 2), &mut out);
        assert_eq!(out.len(), MAX_RAW_BYTES + 1);
        for raw in [
            "", "%", "%4", "%4g", "a%", "a%2", "%%41", "%41%", "%e9%", "x%C3%A9y", "%2b%2B+",
        ] {
            decode_context_into(raw, &mut out);
            let expected: Vec<u8> = percent_decode_str(raw).collect();
            assert_eq!(out, expected, "{raw}");
        }
    }
}
