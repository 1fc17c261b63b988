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
    usual_object(line, scratch)
        .and_then(|(id, payload, len)| (len == line.len()).then_some((id, payload)))
}

/// [`usual_request`] on the line at the start of `pending` (the unread input), found without a
/// search for its `\n` first: the payload's scan stops at the first control byte, so the `\n`
/// right after the object is the line's end exactly when the object is followed by one. Also
/// returns the line's length (without the `\n`). `None` when the line is not a usual one, or is
/// not wholly in `pending`.
pub(super) fn usual_line<'a>(
    pending: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Option<(&'a [u8], &'a [u8], usize)> {
    usual_object(pending, scratch).filter(|&(_, _, len)| pending.get(len) == Some(&b'\n'))
}

/// The usual object at the start of `text`, which may go on after it: its id, its payload, and
/// its length.
fn usual_object<'a>(
    text: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Option<(&'a [u8], &'a [u8], usize)> {
    let rest = text.strip_prefix(br#"{"id":"#)?;
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
    let body = rest.strip_prefix(br#","b64":""#)?;
    let body_start = text.len() - body.len();
    // Every `"`, `\`, control and non-ASCII byte is a stop, in one pass; only `\/` may be one,
    // and the first `"` must close the object.
    let mut copied = 0;
    let mut escaped = false;
    scratch.clear();
    loop {
        let at = copied + find_body_stop(&body[copied..])?;
        match (body[at], body.get(at + 1)) {
            (b'"', Some(b'}')) => {
                let len = body_start + at + 2;
                if !escaped {
                    return Some((id, &body[..at], len));
                }
                scratch.extend_from_slice(&body[copied..at]);
                return Some((id, scratch, len));
            }
            (b'\\', Some(b'/')) => {
                scratch.extend_from_slice(&body[copied..at]);
                scratch.push(b'/');
                copied = at + 2;
                escaped = true;
            }
            _ => return None,
        }
    }
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
