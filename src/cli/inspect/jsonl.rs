//! `flowgate inspect --jsonl`, the machine mode of the contract: one `{"id","b64"}` object per
//! input line in, one `{"id","pairs","prefill","reason"}` object per line out, in input order; a
//! malformed line is answered with `{"id","error"}` on its line.
//!
//! A line of the usual shape (see [`usual_request`]) is read by a direct scan, and every
//! answer is written directly, byte for byte what serde_json writes: on a 20 KB payload,
//! serde_json's byte-at-a-time string handling cost more than the pipeline itself. Any other
//! line goes through serde_json.

use std::borrow::Cow;
use std::io::{self, BufRead, Write};

use serde::Deserialize;
use serde::ser::{SerializeMap, Serializer as _};
use serde_json::value::RawValue;

use crate::context::json::find_string_stop;
use crate::context::{Context, Discard, Pipeline};
use crate::headers::write_json_string;
use crate::prefill::prefill;

/// One well-formed input line, read in one pass; other fields are ignored.
#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    b64: Cow<'a, str>,
}

/// Any JSON object line, to say what is wrong with one that is not a [`Request`].
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    b64: Option<&'a RawValue>,
}

/// Reads `input` line by line and writes one result line per input line.
pub(crate) fn run(mut input: impl BufRead, out: &mut impl Write) -> io::Result<()> {
    let mut pipeline = Pipeline::new();
    let mut ctx = Context::new();
    let mut line = Vec::new();
    let mut b64 = Vec::new();
    let mut buf = Vec::new();
    loop {
        line.clear();
        let complete = match read_line_bounded(&mut input, &mut line)? {
            None => return Ok(()),
            Some(complete) => complete,
        };
        buf.clear();
        if complete {
            answer_line(&line, &mut b64, &mut pipeline, &mut ctx, &mut buf);
        } else {
            write_error(&mut buf, None, "input line longer than 1 MiB");
        }
        buf.push(b'\n');
        out.write_all(&buf)?;
    }
}

/// Longest input line read; a payload is at most 20,000 bytes, so this leaves room for ids.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// Reads one line (without its `\n`) into `line`, keeping at most [`MAX_LINE_BYTES`]; the rest
/// of a longer line is skipped. `None` at the end of input, else whether the line was complete.
fn read_line_bounded(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    let mut read_any = false;
    let mut complete = true;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(read_any.then_some(complete));
        }
        read_any = true;
        let (part, found_newline) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (&chunk[..i], true),
            None => (chunk, false),
        };
        if complete && line.len() + part.len() <= MAX_LINE_BYTES {
            line.extend_from_slice(part);
        } else {
            complete = false;
        }
        let used = part.len() + usize::from(found_newline);
        input.consume(used);
        if found_newline {
            return Ok(Some(complete));
        }
    }
}

fn answer_line(
    line: &[u8],
    b64: &mut Vec<u8>,
    pipeline: &mut Pipeline,
    ctx: &mut Context,
    buf: &mut Vec<u8>,
) {
    if let Some((id, payload)) = usual_request(line, b64) {
        let result = pipeline.run(payload, ctx);
        return write_answer(buf, id, ctx, result);
    }
    if let Ok(request) = serde_json::from_slice::<Request>(line) {
        let result = pipeline.run(request.b64.as_bytes(), ctx);
        return write_answer(buf, raw_id(request.id), ctx, result);
    }
    let parsed = std::str::from_utf8(line)
        .map_err(|_| "input line is not UTF-8".to_owned())
        .and_then(|text| {
            serde_json::from_str::<Line>(text)
                .map_err(|e| format!("input line is not a JSON object: {e}"))
        });
    let line = match parsed {
        Ok(line) => line,
        Err(message) => return write_error(buf, None, &message),
    };
    let b64: Cow<str> = match line.b64.map(|raw| read_string(raw.get())) {
        Some(Some(s)) => s,
        Some(None) => return write_error(buf, line.id, "field `b64` is not a string"),
        None => return write_error(buf, line.id, "missing field `b64`"),
    };
    let result = pipeline.run(b64.as_bytes(), ctx);
    write_answer(buf, raw_id(line.id), ctx, result);
}

/// The JSON text of an id as serde_json writes it back (`null` when absent).
fn raw_id(id: Option<&RawValue>) -> &[u8] {
    id.map_or(b"null", |raw| raw.get().as_bytes())
}

/// The id's JSON text and the base64 payload of a line of the usual shape,
/// `{"id":ID,"b64":"BODY"}` with nothing around or between, where ID is an integer
/// (`-?(0|[1-9][0-9]*)`) or a string of printable ASCII without escapes, and BODY is ASCII
/// without control bytes whose only escape is `\/` (PHP's `json_encode` writes `/` so). The
/// payload is unescaped into `scratch` when it had escapes. `None` for any other line, which
/// serde_json then reads: on the lines taken here both readings agree.
fn usual_request<'a>(line: &'a [u8], scratch: &'a mut Vec<u8>) -> Option<(&'a [u8], &'a [u8])> {
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
    if !body.is_ascii() {
        return None;
    }
    // Every `"`, `\` and control byte is a stop; only `\/` may be one.
    let mut copied = 0;
    let mut escaped = false;
    scratch.clear();
    while let Some(p) = find_string_stop(&body[copied..]) {
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
fn integer_len(s: &[u8]) -> Option<usize> {
    let sign = usize::from(s.first() == Some(&b'-'));
    let digits = s[sign..].iter().take_while(|b| b.is_ascii_digit()).count();
    match (digits, s.get(sign)) {
        (0, _) => None,
        (1, _) => Some(sign + 1),
        (_, Some(b'0')) => None,
        _ => Some(sign + digits),
    }
}

/// The string a raw JSON value holds, borrowed when it has no escapes.
fn read_string(raw: &str) -> Option<Cow<'_, str>> {
    if let Ok(s) = serde_json::from_str::<&str>(raw) {
        return Some(Cow::Borrowed(s));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

/// Appends `{"id":…,"pairs":…,"prefill":…,"reason":…}`, as serde_json writes it.
fn write_answer(buf: &mut Vec<u8>, id: &[u8], ctx: &Context, result: Result<(), Discard>) {
    buf.extend_from_slice(br#"{"id":"#);
    buf.extend_from_slice(id);
    let reason = match result {
        Ok(()) => {
            buf.extend_from_slice(br#","pairs":["#);
            for (i, (key, value)) in ctx.pairs().enumerate() {
                buf.extend_from_slice(if i == 0 { b"[" } else { b",[" });
                write_json_string(buf, key);
                buf.push(b',');
                write_json_string(buf, value);
                buf.push(b']');
            }
            buf.extend_from_slice(br#"],"prefill":{"#);
            for (i, (slot, value)) in prefill(ctx).slots().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_json_string(buf, slot);
                buf.push(b':');
                write_json_string(buf, value);
            }
            buf.extend_from_slice(br#"},"reason":null}"#);
            return;
        }
        Err(reason) => reason,
    };
    buf.extend_from_slice(br#","pairs":null,"prefill":{},"reason":"#);
    write_json_string(buf, reason.as_str());
    buf.push(b'}');
}

fn write_error(buf: &mut Vec<u8>, id: Option<&RawValue>, message: &str) {
    let mut ser = serde_json::Serializer::new(&mut *buf);
    // Serialising into a Vec cannot fail; the `let _` keeps clippy quiet without unwrap.
    let _ = (|| -> serde_json::Result<()> {
        let mut map = ser.serialize_map(Some(2))?;
        map.serialize_entry("id", id.unwrap_or(RawValue::NULL))?;
        map.serialize_entry("error", message)?;
        SerializeMap::end(map)
    })();
}

#[cfg(test)]
mod tests {
    use serde::ser::SerializeSeq;

    use super::*;

    fn run_str(input: &str) -> String {
        let mut out = Vec::new();
        run(input.as_bytes(), &mut out).unwrap_or_default();
        String::from_utf8(out).unwrap_or_default()
    }

    /// The answer to `line` as serde_json reads and writes it: the reference for the direct
    /// reader and writer.
    fn serde_answer(line: &str) -> String {
        struct Pairs<'a>(&'a Context);
        impl serde::Serialize for Pairs<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for pair in self.0.pairs() {
                    seq.serialize_element(&[pair.0, pair.1])?;
                }
                seq.end()
            }
        }
        struct Slots<'a>(&'a Context);
        impl serde::Serialize for Slots<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(prefill(self.0).slots())
            }
        }
        let Ok(request) = serde_json::from_str::<Request>(line) else {
            return "unreadable".to_owned();
        };
        let mut ctx = Context::new();
        let result = Pipeline::new().run(request.b64.as_bytes(), &mut ctx);
        let mut buf = Vec::new();
        let mut ser = serde_json::Serializer::new(&mut buf);
        let _ = (|| -> serde_json::Result<()> {
            let mut map = ser.serialize_map(Some(4))?;
            map.serialize_entry("id", request.id.unwrap_or(RawValue::NULL))?;
            match result {
                Ok(()) => {
                    map.serialize_entry("pairs", &Pairs(&ctx))?;
                    map.serialize_entry("prefill", &Slots(&ctx))?;
                    map.serialize_entry("reason", &None::<&str>)?;
                }
                Err(reason) => {
                    map.serialize_entry("pairs", &None::<()>)?;
                    map.serialize_entry("prefill", &Slots(&Context::new()))?;
                    map.serialize_entry("reason", reason.as_str())?;
                }
            }
            SerializeMap::end(map)
        })();
        buf.push(b'\n');
        String::from_utf8(buf).unwrap_or_default()
    }

    #[test]
    fn direct_reading_and_writing_match_serde_json() {
        let vectors = include_str!("../../../tests/fixtures/vectors.jsonl");
        let mut payloads: Vec<String> = vectors
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["b64"].as_str().map(str::to_owned))
            .collect();
        assert!(payloads.len() > 200);
        payloads.extend(
            [
                "", "e30=", "e30-", "////", "a\\/", "a\"b", "é", "\t", "\u{7f}",
            ]
            .map(String::from),
        );
        let ids = [
            "0",
            "-7",
            "42",
            "123456789012345678901234567890",
            "\"\"",
            "\"a b~\"",
        ];
        let mut usual = 0;
        for (n, b64) in payloads.iter().enumerate() {
            let id = ids[n % ids.len()];
            let body = serde_json::to_string(b64).unwrap_or_default();
            // As serde_json writes it, and as PHP's `json_encode` does (`/` as `\/`).
            for body in [body.clone(), body.replace('/', "\\/")] {
                let line = format!(r#"{{"id":{id},"b64":{body}}}"#);
                let mut scratch = Vec::new();
                usual += usize::from(usual_request(line.as_bytes(), &mut scratch).is_some());
                assert_eq!(run_str(&format!("{line}\n")), serde_answer(&line), "{line}");
            }
        }
        assert!(usual > 400, "{usual}");
    }

    #[test]
    fn unusual_lines_are_left_to_serde_json() {
        let mut scratch = Vec::new();
        for line in [
            r#"{"id":1,"b64":"e30="} "#,
            r#"{"id":01,"b64":"e30="}"#,
            r#"{"id":1.5,"b64":"e30="}"#,
            r#"{"id":"\n","b64":"e30="}"#,
            r#"{"id":"é","b64":"e30="}"#,
            r#"{"id":-,"b64":"e30="}"#,
            r#"{"id":1,"b64":"e30\u003d"}"#,
            r#"{"id":1,"b64":"é"}"#,
            "{\"id\":1,\"b64\":\"e\t\"}",
            r#"{"id":1,"b64":"a"b"}"#,
            r#"{"id":1,"b64":"e30=","b64":"e30-"}"#,
            r#"{"b64":"e30=","id":1}"#,
            r#"{"id":1,"b64":"e30=\"}"#,
        ] {
            assert!(
                usual_request(line.as_bytes(), &mut scratch).is_none(),
                "{line}"
            );
        }
        let line = r#"{"id":"x","b64":"e3\/9"}"#;
        assert_eq!(
            usual_request(line.as_bytes(), &mut scratch),
            Some((&br#""x""#[..], &b"e3/9"[..]))
        );
    }

    #[test]
    fn jsonl_shape() {
        let got = run_str(concat!(
            r#"{"id":"a","b64":"eyJpbXNfZW1haWwiOiJ4QHkiLCJiIGIiOjF9"}"#,
            "\n",
            r#"{"id":7,"b64":"e30-"}"#,
            "\n"
        ));
        assert_eq!(
            got,
            concat!(
                r#"{"id":"a","pairs":[["ims_email","x@y"]],"prefill":{"visitor_email":"x@y","email":"x@y"},"reason":null}"#,
                "\n",
                r#"{"id":7,"pairs":null,"prefill":{},"reason":"base64"}"#,
                "\n"
            )
        );
    }

    #[test]
    fn overlong_lines_are_answered_and_skipped() {
        let long = format!("{{\"id\":1,\"b64\":\"{}\"}}\n", "A".repeat(MAX_LINE_BYTES));
        let got = run_str(&format!("{long}{{\"id\":2,\"b64\":\"e30=\"}}"));
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("\"error\""), "{}", lines[0]);
        assert!(
            lines[1].starts_with("{\"id\":2,\"pairs\":[]"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn malformed_lines_get_an_error_object_each() {
        let got = run_str("not json\n\n{\"id\":1}\n{\"id\":2,\"b64\":5}\n{\"b64\":\"e30=\"}");
        let lines: Vec<serde_json::Value> = got
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0]["error"].is_string() && lines[0]["id"].is_null());
        assert!(lines[1]["error"].is_string());
        assert_eq!(lines[2]["id"], 1);
        assert!(lines[2]["error"].is_string());
        assert_eq!(lines[3]["id"], 2);
        assert!(lines[3]["error"].is_string());
        assert_eq!(lines[4]["pairs"], serde_json::json!([]));
    }
}
