//! `flowgate inspect --jsonl`, the machine mode of the contract: one `{"id","b64"}` object per
//! input line in, one `{"id","pairs","prefill","reason"}` object per line out, in input order; a
//! malformed line is answered with `{"id","error"}` on its line.
//!
//! A line of the usual shape (see [`usual_request`]) is read by a direct scan, and every
//! answer is written directly, byte for byte what serde_json writes: on a 20 KB payload,
//! serde_json's byte-at-a-time string handling cost more than the pipeline itself. Any other
//! line goes through serde_json.

mod input;
mod scan;
#[cfg(test)]
mod tests;
mod usual;
mod write;

use std::borrow::Cow;
use std::io::{self, Read, Write};

use serde::Deserialize;
use serde_json::value::RawValue;

use self::input::{Line, Lines};
use self::usual::{usual_line, usual_request};
use self::write::{write_answer, write_error};
use crate::context::{Context, Pipeline};

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
struct AnyLine<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    b64: Option<&'a RawValue>,
}

/// Reads `input` line by line and writes one result line per input line.
///
/// `input` is read in large blocks and `out` written in blocks of about [`OUT_BYTES`]: neither
/// needs a buffer of its own.
pub(crate) fn run(input: impl Read, out: &mut impl Write) -> io::Result<()> {
    let mut lines = Lines::new(input);
    let mut pipeline = Pipeline::new();
    let mut ctx = Context::new();
    let mut scratch = Vec::new();
    let mut buf = Vec::with_capacity(2 * OUT_BYTES);
    loop {
        // The usual line is taken apart where it lies, its end found by that same scan: on a
        // 20 KB line a separate search for the `\n` cost a fifth of the line's handling.
        let pending = lines.pending();
        if let Some((id, payload, len)) = usual_line(pending, &mut scratch)
            && len <= MAX_LINE_BYTES
        {
            let result = pipeline.run(payload, &mut ctx);
            write_answer(&mut buf, id, &ctx, result);
            lines.consume(len + 1);
        } else {
            match lines.next_line()? {
                Some(Line::Complete(line)) => {
                    answer_line(line, &mut scratch, &mut pipeline, &mut ctx, &mut buf);
                }
                Some(Line::TooLong) => {
                    write_error(&mut buf, None, "input line longer than 1 MiB");
                }
                None => break,
            }
        }
        buf.push(b'\n');
        if buf.len() >= OUT_BYTES {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

/// Longest input line read; a payload is at most 20,000 bytes, so this leaves room for ids.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// Answers are collected up to about this many bytes per write.
const OUT_BYTES: usize = 1 << 16;

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
            serde_json::from_str::<AnyLine>(text)
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

/// The string a raw JSON value holds, borrowed when it has no escapes.
fn read_string(raw: &str) -> Option<Cow<'_, str>> {
    if let Ok(s) = serde_json::from_str::<&str>(raw) {
        return Some(Cow::Borrowed(s));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}
