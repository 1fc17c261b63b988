//! Logging: `tracing` with text or JSON lines, Pingora's `log` output bridged in, no value in
//! any line whatever the level, and Pingora's client-disconnect noise filtered out.
//!
//! No log level or target spelling may print a query string, a header value, an id or a context
//! value. flowgate's own lines never carry one (a rule of the code); the libraries' do below
//! WARN — Pingora's DEBUG and TRACE lines dump request lines, headers and body bytes, h2's DEBUG
//! lines malformed paths — so [`value_safe`] caps every other target at WARN (Pingora's server
//! lifecycle lines at INFO) *before* `RUST_LOG` or `log.level` is consulted: `DEBUG`, `TRACE`,
//! `5`, `pingora_core=trace`, `h2=trace`, `*=trace` and every other spelling end at that cap. The
//! WARN and ERROR lines that carry bytes (Pingora's `Fail to proxy: …` with the error's context)
//! are suppressed at their source (`ProxyHttp::suppress_error_log`) and replaced by flowgate's own;
//! whatever library line is left is written with its error's details withheld (`withhold`).
//!
//! Pingora logs every client that disconnects before its request was read at ERROR level
//! (`Fail to proxy: Downstream ReadError …`). A visitor closing a tab is not an operator's
//! error, so those lines are dropped.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use super::withhold::Withhold;
use crate::config::{LogConfig, LogFormat};

/// Replaces the level filter of the installed subscriber (set once by [`init`]).
type LevelSetter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

static LEVEL: OnceLock<LevelSetter> = OnceLock::new();

/// `RUST_LOG` when set and not blank: it wins over `log.level`, at start and on reload.
fn rust_log() -> Option<String> {
    std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Installs the global subscriber; `RUST_LOG` overrides `log.level`. Call once.
pub(crate) fn init(config: &LogConfig) {
    let directives = rust_log().unwrap_or_else(|| config.level.clone());
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let _ = LEVEL.set(Box::new(move |f| {
        handle.reload(f).map_err(|e| e.to_string())
    }));
    let registry = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::filter_fn(value_safe))
        .with(QuietClientDisconnects)
        .with(filter);
    let ansi = std::io::stderr().is_terminal();
    let result = match config.format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(Withhold(tracing_subscriber::fmt::format()))
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                    .event_format(Withhold(
                        tracing_subscriber::fmt::format().json().flatten_event(true),
                    ))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // A second init (tests, the demo) keeps the first subscriber.
    let _ = result;
}

/// Applies `log.level` of a reloaded configuration to the running subscriber; nothing when
/// `RUST_LOG` is set (it keeps winning) or when no subscriber of ours is installed. The value
/// cap of [`value_safe`] stays in front of whatever the new level says.
pub(crate) fn set_level(level: &str) {
    if rust_log().is_some() {
        return;
    }
    let (Some(set), Ok(filter)) = (LEVEL.get(), EnvFilter::try_new(level)) else {
        return;
    };
    if let Err(e) = set(filter) {
        tracing::warn!(error = %e, "log.level: the new level could not be applied");
    }
}

/// Whether a line may be written at all, before any directive is consulted: flowgate's own
/// targets at every level; Pingora's server and service lifecycle (signals, listeners, runtimes)
/// down to INFO; everything else — request handling in Pingora, h2, hyper, redis — at WARN and
/// above only. Bridged `log` records are checked with their real target.
pub(crate) fn value_safe(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    if target == "flowgate" || target.starts_with("flowgate::") {
        return true;
    }
    let lifecycle = ["pingora_core::server", "pingora_core::services"]
        .iter()
        .any(|t| target.starts_with(t));
    *meta.level() <= if lifecycle { Level::INFO } else { Level::WARN }
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
    fn other_targets_never_go_below_their_cap() {
        use tracing::callsite::Identifier;
        use tracing::field::FieldSet;
        use tracing::metadata::Kind;
        struct Site;
        impl tracing::Callsite for Site {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                unreachable!()
            }
        }
        static SITE: Site = Site;
        let meta = |target: &'static str, level: Level| {
            Metadata::new(
                "event",
                target,
                level,
                None,
                None,
                None,
                FieldSet::new(&[], Identifier(&SITE)),
                Kind::EVENT,
            )
        };
        assert!(value_safe(&meta("flowgate::access", Level::TRACE)));
        assert!(value_safe(&meta("flowgate", Level::DEBUG)));
        assert!(!value_safe(&meta("flowgatex", Level::DEBUG)));
        assert!(value_safe(&meta("pingora_core::server", Level::INFO)));
        assert!(!value_safe(&meta("pingora_core::server", Level::DEBUG)));
        for target in [
            "pingora_proxy",
            "pingora_core::protocols::http::v1::server",
            "h2::server",
            "hyper",
            "log",
        ] {
            assert!(value_safe(&meta(target, Level::WARN)), "{target}");
            assert!(!value_safe(&meta(target, Level::INFO)), "{target}");
            assert!(!value_safe(&meta(target, Level::TRACE)), "{target}");
        }
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
