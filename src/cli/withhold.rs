//! The last line of defence of the value-free log: a line from a library (anything but
//! flowgate's own targets and Pingora's server lifecycle) is written with everything from its
//! error's context on withheld.
//!
//! The level cap keeps the libraries' DEBUG and TRACE lines out, and flowgate suppresses
//! Pingora's proxy failure lines at their source; what is left are WARN and ERROR lines that
//! print a Pingora `Error` — whose context and cause can hold raw request or response bytes
//! (`buf: "GET /…?q=…"`) and the request summary. Their first words (what failed, the error
//! type) are kept; the rest is replaced by a marker, in text and in JSON lines alike.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Where the value-bearing part of a library's message starts.
const MARKERS: [&str; 3] = [" context: ", " cause: ", "buf: "];
/// What replaces it.
const WITHHELD: &str = " [details withheld]";

/// A line formatter that withholds the details of library lines (see the module docs).
pub(crate) struct Withhold<F>(pub(crate) F);

impl<S, N, F> FormatEvent<S, N> for Withhold<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if trusted(&target_of(event)) {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&withhold_line(&line))
    }
}

/// Targets whose lines carry no values: flowgate's own (a rule of the code) and Pingora's
/// server and service lifecycle (signals, listeners, accept errors, runtimes).
pub(crate) fn trusted(target: &str) -> bool {
    target == "flowgate"
        || target.starts_with("flowgate::")
        || target.starts_with("pingora_core::server")
        || target.starts_with("pingora_core::services")
}

/// The event's real target: bridged `log` records carry it in their `log.target` field.
fn target_of(event: &Event<'_>) -> String {
    struct LogTarget(Option<String>);
    impl Visit for LogTarget {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "log.target" {
                self.0 = Some(value.to_owned());
            }
        }
        fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
    }
    let mut seen = LogTarget(None);
    event.record(&mut seen);
    seen.0
        .unwrap_or_else(|| event.metadata().target().to_owned())
}

/// One formatted line (text, or a JSON object) with its message's details withheld.
fn withhold_line(line: &str) -> String {
    let trimmed = line.trim_end_matches('\n');
    if trimmed.starts_with('{')
        && let Ok(mut object) = serde_json::from_str::<serde_json::Value>(trimmed)
    {
        if let Some(serde_json::Value::String(message)) = object.get_mut("message") {
            *message = withhold(message);
        }
        return format!("{object}\n");
    }
    format!("{}\n", withhold(trimmed))
}

/// `text` up to the first marker, then the withheld marker.
fn withhold(text: &str) -> String {
    match MARKERS.iter().filter_map(|m| text.find(m)).min() {
        Some(at) => format!("{}{WITHHELD}", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_after_an_errors_context_are_withheld() {
        let line = "2026 ERROR pingora_core::apps::http_app: HTTP server fails to read from \
                    downstream:  InvalidHTTPHeader context: buf: \"GET /?q=secret\" cause: invalid\n";
        assert_eq!(
            withhold_line(line),
            "2026 ERROR pingora_core::apps::http_app: HTTP server fails to read from \
             downstream:  InvalidHTTPHeader [details withheld]\n"
        );
        let json = r#"{"level":"ERROR","message":"x: WriteError cause: Broken pipe, GET /?q=secret","target":"log"}"#;
        let out = withhold_line(json);
        assert!(!out.contains("secret"), "{out}");
        assert!(
            out.contains(r#""message":"x: WriteError [details withheld]""#),
            "{out}"
        );
        assert_eq!(withhold_line("plain line\n"), "plain line\n");
    }

    #[test]
    fn only_libraries_are_redacted() {
        assert!(trusted("flowgate::access"));
        assert!(trusted("pingora_core::services::listening"));
        assert!(!trusted("pingora_core::apps::http_app"));
        assert!(!trusted("pingora_proxy"));
        assert!(!trusted("h2::proto"));
    }
}
