//! The usual input line, `{"id":N,"b64":"…"}` as PHP's `json_encode` writes it, taken apart by
//! one block scan instead of serde_json's byte-at-a-time string reader.

use super::scan::find_body_stop;

/// The id's JSON text and the base64 payload of a line of the usual shape,
/// `{"id":ID,"b64":"BODY"}` with nothing around or between, where ID is an integer
/// (`-?(0|[1-9][0-9]*)`) or a string of printable ASCII without escapes, and BODY is ASCII
/// without control bytes whose only escape is `\/` (PHP's `json_encode` writes `/` so). The
/// payload is unescaped into `scratch` when it had escapes. `None` for any other line, which
/// serde_json then reads: on the lines taken here both readings agree.
pub(super) fn usual_request<'a>(
    line: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Option<(&'a [u8], &'a [u8])> {
    let rest = line.strip_prefix(br#"{"id":"#)?;
    let id_len = match rest.first()? {
        b'"' => {
            let end = rest[1..]
                .iter()
                .position(|&b| !matches!(b, b' '..=b'~') || b == b'"' || b == b'\\')?;
            (rest[1 + end] == b'"').then_some(end + 2)?
        }
        _ => integer_len(rest)?,
    };
    let (id, rest) = rest.split_at(id_len);
    let body = rest.strip_prefix(br#","b64":""#)?.strip_suffix(br#""}"#)?;
    // Every `"`, `\`, control and non-ASCII byte is a stop, in one pass; only `\/` may be one.
    let mut copied = 0;
    let mut escaped = false;
    scratch.clear();
    while let Some(p) = find_body_stop(&body[copied..]) {
        let at = copied + p;
        if body[at] != b'\\' || body.get(at + 1) != Some(&b'/') {
            return None;
        }
        scratch.extend_from_slice(&body[copied..at]);
        scratch.push(b'/');
        copied = at + 2;
        escaped = true;
    }
    if !escaped {
        return Some((id, body));
    }
    scratch.extend_from_slice(&body[copied..]);
    Some((id, scratch))
}

/// The length of the JSON integer at the start of `s` (`-?(0|[1-9][0-9]*)`), if one is there.
pub(super) fn integer_len(s: &[u8]) -> Option<usize> {
    let sign = usize::from(s.first() == Some(&b'-'));
    let digits = s[sign..].iter().take_while(|b| b.is_ascii_digit()).count();
    match (digits, s.get(sign)) {
        (0, _) => None,
        (1, _) => Some(sign + 1),
        (_, Some(b'0')) => None,
        _ => Some(sign + digits),
    }
}
