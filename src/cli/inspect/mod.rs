//! `flowgate inspect`: what the edge does with a visitor-context payload.
//!
//! Human mode shows the accepted pairs, every dropped key with its reason (never a dropped
//! value), the pre-fill slots and the trusted header values the proxy would send.
//! `--jsonl` is the machine mode of the contract: one `{"id","b64"}` object per input line in,
//! one `{"id","pairs","prefill","reason"}` object per line out, in input order; a malformed
//! line is answered with `{"id","error"}` on its line.

mod site;

use std::borrow::Cow;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::process::ExitCode;

use serde::Deserialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer as _};
use serde_json::value::RawValue;

use crate::context::{Context, Discard, Pipeline};
use crate::headers::{self, Status};
use crate::prefill::prefill;

/// Arguments of `flowgate inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The context value as the proxy sees it after URL decoding (base64); `-` or nothing
    /// reads it from stdin (one trailing line ending is ignored).
    pub(crate) payload: Option<String>,
    /// Read `{"id":…,"b64":…}` lines from stdin and write one JSON result line for each.
    #[arg(long, conflicts_with = "payload")]
    pub(crate) jsonl: bool,
    /// Header name prefix to show in human mode.
    #[arg(long, default_value = headers::DEFAULT_PREFIX)]
    pub(crate) prefix: String,
    /// Site id of the init request: decides the signed-context mode (see `--config`).
    #[arg(long, conflicts_with = "jsonl")]
    pub(crate) site: Option<String>,
    /// Signed-context token (`visitor_context_token`) to verify for `--site`.
    #[arg(long, requires = "site")]
    pub(crate) token: Option<String>,
    /// Chat session id (`jsSessionId`) of the init request, which a token's `sid` must equal.
    #[arg(long, requires = "site")]
    pub(crate) session: Option<String>,
    /// Configuration file whose `sites:` section holds the site's mode and keys.
    #[arg(short = 'c', long = "config", requires = "site")]
    pub(crate) config: Option<std::path::PathBuf>,
    /// The init's `Origin` header, checked against the site's `origins`.
    #[arg(long, requires = "site")]
    pub(crate) origin: Option<String>,
}

/// Runs `flowgate inspect`.
pub fn main(args: Args) -> ExitCode {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = if args.jsonl {
        jsonl(io::stdin().lock(), &mut out)
    } else {
        human(&args, &mut out)
    };
    match result.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowgate inspect: {e}");
            ExitCode::FAILURE
        }
    }
}

fn human(args: &Args, out: &mut impl Write) -> io::Result<()> {
    if let Some(site) = args.site.as_deref() {
        // With a token, an absent payload means "no unsigned context", not "read stdin".
        let context = match (args.payload.as_deref(), &args.token) {
            (Some(p), _) if p != "-" => Some(p.as_bytes().to_vec()),
            (None, Some(_)) => None,
            _ => Some(read_stdin_payload()?),
        };
        let req = site::Request {
            site,
            session: args.session.as_deref(),
            token: args.token.as_deref(),
            context: context.as_deref(),
            config: args.config.as_deref(),
            prefix: &args.prefix,
            origin: args.origin.as_deref(),
        };
        return site::write_report(&req, out);
    }
    let raw: Vec<u8> = match args.payload.as_deref() {
        Some(p) if p != "-" => p.as_bytes().to_vec(),
        _ => read_stdin_payload()?,
    };
    write_report(&raw, &args.prefix, out)
}

fn read_stdin_payload() -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io::stdin().lock().read_to_end(&mut buf)?;
    if buf.ends_with(b"\n") {
        buf.pop();
        if buf.ends_with(b"\r") {
            buf.pop();
        }
    }
    Ok(buf)
}

/// Writes the human report for one raw payload.
pub(crate) fn write_report(raw: &[u8], prefix: &str, out: &mut impl Write) -> io::Result<()> {
    let mut ctx = Context::new();
    let result = Pipeline::new().run(raw, &mut ctx);
    let status = match result {
        Ok(()) => Status::Accepted,
        Err(reason) => Status::Discarded(reason),
    };
    writeln!(out, "input: {} bytes", raw.len())?;
    writeln!(out, "status: {status}")?;
    if result.is_ok() {
        write_pairs(&ctx, out)?;
    }
    writeln!(out, "\nheaders:")?;
    writeln!(out, "  {prefix}{}: {status}", headers::STATUS)?;
    if result.is_ok() {
        write_context_headers(&ctx, prefix, out)?;
    }
    Ok(())
}

/// Writes the accepted pairs, each dropped key with its reason (never its value), and the
/// pre-fill slots.
pub(crate) fn write_pairs(ctx: &Context, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "\naccepted pairs ({}):", ctx.len())?;
    for (k, v) in ctx.pairs() {
        writeln!(out, "  {k} = {v:?}")?;
    }
    let dropped = ctx.dropped();
    writeln!(out, "\ndropped pairs ({}):", dropped.len())?;
    for (k, reason) in dropped {
        writeln!(out, "  {k:?}: {reason}")?;
    }
    let p = prefill(ctx);
    writeln!(out, "\npre-fill slots ({}):", p.slots().count())?;
    for (slot, v) in p.slots() {
        writeln!(out, "  {slot} = {v:?}")?;
    }
    Ok(())
}

/// Writes the `Context` and `Prefill` header lines the proxy would send for `ctx`.
pub(crate) fn write_context_headers(
    ctx: &Context,
    prefix: &str,
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(
        out,
        "  {prefix}{}: {}",
        headers::CONTEXT,
        headers::context_value(ctx)
    )?;
    writeln!(
        out,
        "  {prefix}{}: {}",
        headers::PREFILL,
        headers::prefill_value(&prefill(ctx))
    )
}

/// One well-formed input line of `--jsonl`, read in one pass; other fields are ignored.
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

/// `--jsonl`: reads `input` line by line and writes one result line per input line.
pub(crate) fn jsonl(mut input: impl BufRead, out: &mut impl Write) -> io::Result<()> {
    let mut pipeline = Pipeline::new();
    let mut ctx = Context::new();
    let mut line = Vec::new();
    let mut buf = Vec::new();
    loop {
        line.clear();
        let complete = match read_line_bounded(&mut input, &mut line)? {
            None => return Ok(()),
            Some(complete) => complete,
        };
        buf.clear();
        if complete {
            answer_line(&line, &mut pipeline, &mut ctx, &mut buf);
        } else {
            write_error(&mut buf, None, "input line longer than 1 MiB");
        }
        buf.push(b'\n');
        out.write_all(&buf)?;
    }
}

/// Longest input line read; a payload is at most 20,000 bytes, so this leaves room for ids.
const MAX_LINE_BYTES: usize = 1 << 20;

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

fn answer_line(line: &[u8], pipeline: &mut Pipeline, ctx: &mut Context, buf: &mut Vec<u8>) {
    if let Ok(request) = serde_json::from_slice::<Request>(line) {
        let result = pipeline.run(request.b64.as_bytes(), ctx);
        return write_result(buf, request.id, ctx, result);
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
    write_result(buf, line.id, ctx, result);
}

/// The string a raw JSON value holds, borrowed when it has no escapes.
fn read_string(raw: &str) -> Option<Cow<'_, str>> {
    if let Ok(s) = serde_json::from_str::<&str>(raw) {
        return Some(Cow::Borrowed(s));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

fn write_result(
    buf: &mut Vec<u8>,
    id: Option<&RawValue>,
    ctx: &Context,
    result: Result<(), Discard>,
) {
    let null = RawValue::NULL;
    let mut ser = serde_json::Serializer::new(&mut *buf);
    // Serialising into a Vec cannot fail; the `let _` keeps clippy quiet without unwrap.
    let _ = (|| -> serde_json::Result<()> {
        let mut map = ser.serialize_map(Some(4))?;
        map.serialize_entry("id", id.unwrap_or(null))?;
        match result {
            Ok(()) => {
                map.serialize_entry("pairs", &PairList(ctx))?;
                map.serialize_entry("prefill", &SlotMap(ctx))?;
                map.serialize_entry("reason", &None::<&str>)?;
            }
            Err(reason) => {
                map.serialize_entry("pairs", &None::<()>)?;
                map.serialize_entry("prefill", &SlotMap(&Context::new()))?;
                map.serialize_entry("reason", reason.as_str())?;
            }
        }
        SerializeMap::end(map)
    })();
}

fn write_error(buf: &mut Vec<u8>, id: Option<&RawValue>, message: &str) {
    let mut ser = serde_json::Serializer::new(&mut *buf);
    let _ = (|| -> serde_json::Result<()> {
        let mut map = ser.serialize_map(Some(2))?;
        map.serialize_entry("id", id.unwrap_or(RawValue::NULL))?;
        map.serialize_entry("error", message)?;
        SerializeMap::end(map)
    })();
}

/// `[[key, value], …]` of the accepted pairs.
struct PairList<'a>(&'a Context);

impl serde::Serialize for PairList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for pair in self.0.pairs() {
            seq.serialize_element(&[pair.0, pair.1])?;
        }
        seq.end()
    }
}

/// `{slot: value, …}` of the pre-fill.
struct SlotMap<'a>(&'a Context);

impl serde::Serialize for SlotMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(prefill(self.0).slots())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> String {
        let mut out = Vec::new();
        jsonl(input.as_bytes(), &mut out).unwrap_or_default();
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn jsonl_shape() {
        let got = run(concat!(
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
        let got = run(&format!("{long}{{\"id\":2,\"b64\":\"e30=\"}}"));
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
        let got = run("not json\n\n{\"id\":1}\n{\"id\":2,\"b64\":5}\n{\"b64\":\"e30=\"}");
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

    #[test]
    fn human_report_never_shows_dropped_values() {
        // {"ok":"v","bad key":"secret-value"}
        let mut out = Vec::new();
        write_report(
            b"eyJvayI6InYiLCJiYWQga2V5Ijoic2VjcmV0LXZhbHVlIn0=",
            "X-Flowgate-",
            &mut out,
        )
        .unwrap_or_default();
        let text = String::from_utf8(out).unwrap_or_default();
        assert!(text.contains("\"bad key\": key_invalid"), "{text}");
        assert!(!text.contains("secret-value"), "{text}");
        assert!(text.contains("X-Flowgate-Status: accepted"), "{text}");
    }
}
