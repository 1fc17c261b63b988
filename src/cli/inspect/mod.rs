//! `flowgate inspect`: what the edge does with a visitor-context payload.
//!
//! Human mode shows the accepted pairs, every dropped key with its reason (never a dropped
//! value), the pre-fill slots and the trusted header values the proxy would send.
//! `--jsonl` is the machine mode of the contract: one `{"id","b64"}` object per input line in,
//! one `{"id","pairs","prefill","reason"}` object per line out, in input order; a malformed
//! line is answered with `{"id","error"}` on its line.

mod jsonl;
mod site;

use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use crate::context::{Context, Pipeline};
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

/// Buffer size of the output: several answers per system call.
const IO_BUFFER_BYTES: usize = 1 << 16;

/// Runs `flowgate inspect`.
pub fn main(args: Args) -> ExitCode {
    let stdout = io::stdout();
    // Room for several answers per write: a 20 KB payload's answer alone exceeds the default.
    let mut out = BufWriter::with_capacity(IO_BUFFER_BYTES, stdout.lock());
    let result = if args.jsonl {
        // Read in large blocks by `jsonl::run` itself, and written in large blocks, which pass
        // the `BufWriter` unbuffered.
        jsonl::run(io::stdin().lock(), &mut out)
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

#[cfg(test)]
mod tests {
    use super::*;

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
