//! The widget's query parameters: finding them, decoding them, validating the ids.
//!
//! The context value is percent-decoded *without* turning `+` into a space: base64 has no
//! spaces, and a widget that forgot to encode `+` still works. When a parameter appears more
//! than once the last occurrence wins, as in PHP's `$_GET`, which is what the backend sees.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use pingora::http::RequestHeader;

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

/// `query` without the context and token parameters, or `None` when it has neither (the common
/// case: nothing is allocated). A parameter goes when its name, percent-decoded, is one of the
/// two — or when PHP would read it as one of them (`visitor.context`, `visitor+context`,
/// `visitor_context[]`), so a backend's `$_GET` never sees a raw value either.
#[cfg(test)]
pub(crate) fn without_raw(query: &str, names: &ParamNames) -> Option<String> {
    let mut kept = String::new();
    push_kept(query, names, &[], &mut kept).then_some(kept)
}

/// Appends to `out` the pieces of `prefix`, then the pairs of `query` that are not a raw
/// parameter, joined by `&`, in one pass; returns `false` (and leaves `out` alone, allocating
/// nothing) when no pair is one.
fn push_kept(query: &str, names: &ParamNames, prefix: &[&str], out: &mut String) -> bool {
    let raw = |pair: &str| {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        same_param(name, &names.context) || same_param(name, &names.token)
    };
    // `None` until the first raw pair; then whether a kept pair was written (the next one
    // needs its `&`).
    let mut any_kept: Option<bool> = None;
    let mut offset: usize = 0;
    for pair in query.split('&') {
        match (any_kept.as_mut(), raw(pair)) {
            (None, true) => {
                // Everything before the first raw pair is kept as it is.
                let before = offset.checked_sub(1).map(|end| &query[..end]);
                out.reserve(prefix.iter().map(|p| p.len()).sum::<usize>() + query.len());
                prefix.iter().for_each(|p| out.push_str(p));
                out.push_str(before.unwrap_or(""));
                any_kept = Some(before.is_some());
            }
            (None, false) | (Some(_), true) => {}
            (Some(any), false) => {
                if *any {
                    out.push('&');
                }
                out.push_str(pair);
                *any = true;
            }
        }
        offset += pair.len() + 1;
    }
    any_kept.is_some()
}

/// Removes the context and token parameters from the query of `req` (by the rule of
/// `without_raw`), writing the new target once.
pub(crate) fn strip_raw(req: &mut RequestHeader, names: &ParamNames) {
    let Some(query) = req.uri.query() else {
        return;
    };
    let path = req.uri.path();
    let mut target = String::new();
    if !push_kept(query, names, &[path, "?"], &mut target) {
        return;
    }
    if target.len() == path.len() + 1 {
        // Nothing of the query is left: no `?` either.
        target.pop();
    }
    // The target was normalised and what remains of its query is a part of it: it parses.
    let _ = super::target::set_target_owned(req, target);
}

/// Whether the query name `raw` (still encoded) names the parameter `wanted`, by flowgate's
/// rule or by PHP's.
fn same_param(raw: &str, wanted: &str) -> bool {
    if !raw
        .bytes()
        .any(|b| matches!(b, b'%' | b'+' | b'.' | b' ' | b'['))
    {
        return raw == wanted;
    }
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    decoded == wanted || php_name(&raw.replace('+', " ")) == php_name(wanted)
}

/// The `$_GET` key PHP makes of a query name: decoded, leading spaces dropped, an array suffix
/// (`[…]`) cut, spaces and dots (and an unmatched `[`) turned into `_`.
fn php_name(raw: &str) -> String {
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    let name = decoded.trim_start_matches(' ');
    let name = match name.find('[') {
        Some(i) if name[i..].contains(']') => &name[..i],
        _ => name,
    };
    name.replace([' ', '.', '['], "_")
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
    fn raw_parameters_are_removed_in_every_spelling() {
        let n = names();
        assert_eq!(without_raw("siteid=a&jsSessionId=b", &n), None);
        assert_eq!(without_raw("", &n), None);
        for (q, want) in [
            ("siteid=a&visitor_context=e30%3D&x=1", "siteid=a&x=1"),
            ("visitor_context=a&visitor_context=b", ""),
            ("visitor_context_token=t&siteid=a", "siteid=a"),
            ("visitor%5Fcontext=a&siteid=a", "siteid=a"),
            ("visitor%5fcontext%5Ftoken=a&siteid=a", "siteid=a"),
            ("visitor.context=a&siteid=a", "siteid=a"),
            ("visitor+context=a&visitor%20context_token=b&s=1", "s=1"),
            ("visitor_context[]=a&visitor_context[x]=b&s=1", "s=1"),
            ("%20visitor_context=a&s=1", "s=1"),
            ("visitor_context&s=1", "s=1"),
            ("a=visitor_context&s=1", "a=visitor_context&s=1"),
            (
                "visitor_contextx=1&xvisitor_context=2",
                "visitor_contextx=1&xvisitor_context=2",
            ),
        ] {
            assert_eq!(
                without_raw(q, &n).as_deref(),
                Some(want).filter(|_| q != want),
                "{q}"
            );
        }
    }

    #[test]
    fn the_target_loses_the_raw_parameters_and_keeps_the_rest() {
        let n = names();
        for (target, want) in [
            (
                "/init?siteid=a&visitor_context=e30%3D&x=1",
                "/init?siteid=a&x=1",
            ),
            ("/init?visitor_context=e30&visitor_context_token=t", "/init"),
            ("/init?visitor_context=e30&&x=?", "/init?&x=?"),
            (
                "/init?siteid=a&jsSessionId=b",
                "/init?siteid=a&jsSessionId=b",
            ),
            ("/init?", "/init?"),
            ("/init", "/init"),
        ] {
            let mut req = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
            strip_raw(&mut req, &n);
            assert_eq!(req.uri.to_string(), want, "{target}");
            assert_eq!(req.raw_path(), want.as_bytes(), "{target}");
        }
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
