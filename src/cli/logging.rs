//! Logging: `tracing` with text or JSON lines, Pingora's `log` output bridged in, and Pingora's
//! client-disconnect noise filtered out.
//!
//! Pingora logs every client that disconnects before its request was read at ERROR level
//! (`Fail to proxy: Downstream ReadError …`). A visitor closing a tab is not an operator's
//! error, so those lines are dropped; flowgate's own phases already keep such failures out of
//! the error log (`suppress_error_log`).

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber; `RUST_LOG` overrides `log.level`. Call once.
pub(crate) fn init(config: &LogConfig) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| config.level.clone());
    let filter =
        EnvFilter::try_new(cap_pingora(&directives)).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry()
        .with(QuietClientDisconnects)
        .with(filter);
    let ansi = std::io::stderr().is_terminal();
    let result = match config.format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // A second init (tests, the demo) keeps the first subscriber.
    let _ = result;
}

/// Pingora's debug and trace lines dump request lines and headers — visitor values — so they
/// stay at `info` unless the directives name Pingora explicitly (`debug,pingora=debug`).
pub(crate) fn cap_pingora(directives: &str) -> String {
    let verbose = directives.contains("debug") || directives.contains("trace");
    if verbose && !directives.contains("pingora") {
        format!("{directives},pingora=info")
    } else {
        directives.to_owned()
    }
}

/// Drops Pingora's ERROR lines about clients that went away.
struct QuietClientDisconnects;

impl<S: Subscriber> tracing_subscriber::Layer<S> for QuietClientDisconnects {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR {
            return true;
        }
        // Bridged `log` records carry their module path in the `log.target` field, not in
        // the metadata target (which is "log").
        let mut seen = Seen::default();
        event.record(&mut seen);
        let from_pingora =
            meta.target().starts_with("pingora") || seen.target.starts_with("pingora");
        !(from_pingora && is_client_disconnect(&seen.message))
    }
}

#[derive(Default)]
struct Seen {
    message: String,
    target: String,
}

impl Visit for Seen {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "log.target" => self.target.push_str(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "log.target" => {
                let _ = write!(self.target, "{value:?}");
            }
            _ => {}
        }
    }
}

/// Whether a Pingora error line is about a client that disconnected.
fn is_client_disconnect(message: &str) -> bool {
    message.contains("Downstream")
        && [
            "ConnectionClosed",
            "ReadError",
            "WriteError",
            "ReadTimedout",
            "WriteTimedout",
        ]
        .iter()
        .any(|kind| message.contains(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pingora_stays_at_info_unless_named() {
        assert_eq!(cap_pingora("info"), "info");
        assert_eq!(cap_pingora("debug"), "debug,pingora=info");
        assert_eq!(
            cap_pingora("warn,flowgate=trace"),
            "warn,flowgate=trace,pingora=info"
        );
        assert_eq!(
            cap_pingora("debug,pingora_proxy=debug"),
            "debug,pingora_proxy=debug"
        );
    }

    #[test]
    fn recognises_client_disconnects() {
        assert!(is_client_disconnect(
            "Fail to proxy: Downstream ReadError context: while reading, downstream session type: HTTP/1.1"
        ));
        assert!(!is_client_disconnect(
            "Fail to proxy: Upstream ConnectRefused context: Peer: 127.0.0.1:1"
        ));
    }
}
