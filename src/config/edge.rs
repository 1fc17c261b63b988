//! The connection layer's keys: `listen_proxy_protocol`, the client-connection bounds under
//! `server:` (idle, head deadline, request-target limit, WebSocket drain) and the `timeouts:`
//! section (read timeouts per route class, WebSocket idle). Read through the same walker as
//! every section; checked with the rest in `check`.

use std::time::Duration;

use super::table::Table;
use super::{ClassTimeouts, Config, Problems, ServerSettings, TimeoutsConfig, defaults};

/// Largest request target the proxy can represent at all (the `http` crate's URI limit).
const TARGET_CEILING: usize = defaults::MAX_REQUEST_TARGET_BYTES;
/// Smallest request-target limit accepted: below it, ordinary widget requests would fail.
const TARGET_FLOOR: usize = 1024;
/// Longest timeout accepted anywhere in this section (a day): a sanity bound on typos.
const MAX_SECONDS: u64 = 86_400;

/// Reads the top-level `listen_proxy_protocol` key and the `timeouts:` section.
pub(super) fn read_edge(config: &mut Config, top: &mut Table<'_>, problems: &mut Problems) {
    if let Some(v) = top.field::<bool>("listen_proxy_protocol", "true or false", problems) {
        config.listen_proxy_protocol = v;
    }
    let mut t = top.table("timeouts", problems);
    read_timeouts(&mut config.timeouts, &mut t, problems);
    t.finish(problems);
}

/// Reads the connection keys of the `server:` table `t` (the caller finishes the table).
pub(super) fn read_server_edge(s: &mut ServerSettings, t: &mut Table<'_>, problems: &mut Problems) {
    let seconds = "a whole number of seconds";
    if let Some(v) = t.field::<u64>("idle_timeout_seconds", seconds, problems) {
        s.idle_timeout_seconds = v;
    }
    if let Some(v) = t.field::<u64>("header_timeout_seconds", seconds, problems) {
        s.header_timeout_seconds = v;
    }
    if let Some(v) = t.field::<usize>("max_request_target_bytes", "a whole number", problems) {
        s.max_request_target_bytes = v;
    }
    if let Some(v) = t.field::<u64>("websocket_drain_seconds", seconds, problems) {
        s.websocket_drain_seconds = v;
    }
}

fn read_timeouts(timeouts: &mut TimeoutsConfig, t: &mut Table<'_>, problems: &mut Problems) {
    if let Some(v) = t.field::<u64>(
        "websocket_idle_seconds",
        "a whole number of seconds",
        problems,
    ) {
        timeouts.websocket_idle = Duration::from_secs(v);
    }
    for (key, class) in [
        ("init", &mut timeouts.init),
        ("session", &mut timeouts.session),
        ("other", &mut timeouts.other),
    ] {
        let mut c = t.table(key, problems);
        read_class(class, &mut c, problems);
        c.finish(problems);
    }
}

fn read_class(class: &mut ClassTimeouts, t: &mut Table<'_>, problems: &mut Problems) {
    let seconds = "a whole number of seconds";
    if let Some(v) = t.field::<u64>("client_read_seconds", seconds, problems) {
        class.client_read = Duration::from_secs(v);
    }
    if let Some(v) = t.field::<u64>("upstream_read_seconds", seconds, problems) {
        class.upstream_read = Some(Duration::from_secs(v));
    }
}

impl Config {
    /// Checks of the connection layer's keys.
    pub(super) fn check_edge(&self, problems: &mut Problems) {
        let s = &self.server;
        for (key, value, default) in [
            (
                "server.idle_timeout_seconds",
                s.idle_timeout_seconds,
                defaults::IDLE_TIMEOUT_SECONDS,
            ),
            (
                "server.header_timeout_seconds",
                s.header_timeout_seconds,
                defaults::HEADER_TIMEOUT_SECONDS,
            ),
        ] {
            if value == 0 || value > MAX_SECONDS {
                problems.push(
                    key,
                    format!("must be between 1 and {MAX_SECONDS} seconds (default {default})"),
                );
            }
        }
        if s.websocket_drain_seconds > MAX_SECONDS {
            problems.push(
                "server.websocket_drain_seconds",
                format!(
                    "must be at most {MAX_SECONDS} seconds (default {}; 0 closes tunnels with the other connections)",
                    defaults::WEBSOCKET_DRAIN_SECONDS
                ),
            );
        }
        if !(TARGET_FLOOR..=TARGET_CEILING).contains(&s.max_request_target_bytes) {
            problems.push(
                "server.max_request_target_bytes",
                format!(
                    "must be between {TARGET_FLOOR} and {TARGET_CEILING} (default {TARGET_CEILING}, the most a request target can be)"
                ),
            );
        }
        let t = &self.timeouts;
        if t.websocket_idle.is_zero() || t.websocket_idle.as_secs() > MAX_SECONDS {
            problems.push(
                "timeouts.websocket_idle_seconds",
                format!(
                    "must be between 1 and {MAX_SECONDS} seconds (default {})",
                    defaults::WEBSOCKET_IDLE_SECONDS
                ),
            );
        }
        for (name, class) in [
            ("init", &t.init),
            ("session", &t.session),
            ("other", &t.other),
        ] {
            let reads = [
                ("client_read_seconds", Some(class.client_read)),
                ("upstream_read_seconds", class.upstream_read),
            ];
            for (key, value) in reads {
                if value.is_some_and(|d| d.is_zero() || d.as_secs() > MAX_SECONDS) {
                    problems.push(
                        format!("timeouts.{name}.{key}"),
                        format!(
                            "must be between 1 and {MAX_SECONDS} seconds (client_read default {}, upstream_read default upstream.read_timeout_ms)",
                            defaults::CLIENT_READ_SECONDS
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key() {
        let c = Config::from_yaml(
            "listen_proxy_protocol: true\n\
             server: {idle_timeout_seconds: 5, header_timeout_seconds: 3, \
             max_request_target_bytes: 8192, websocket_drain_seconds: 0}\n\
             timeouts:\n  websocket_idle_seconds: 600\n  session: {upstream_read_seconds: 90}\n  \
             other: {client_read_seconds: 7}\n",
        )
        .unwrap();
        assert!(c.listen_proxy_protocol);
        assert_eq!(c.server.idle_timeout_seconds, 5);
        assert_eq!(c.server.header_timeout_seconds, 3);
        assert_eq!(c.server.max_request_target_bytes, 8192);
        assert_eq!(c.server.websocket_drain_seconds, 0);
        assert_eq!(c.timeouts.websocket_idle, Duration::from_secs(600));
        assert_eq!(
            c.timeouts.session.upstream_read,
            Some(Duration::from_secs(90))
        );
        assert_eq!(c.timeouts.other.client_read, Duration::from_secs(7));
        assert_eq!(c.timeouts.init, ClassTimeouts::default());
    }

    #[test]
    fn the_shipped_file_is_the_defaults() {
        let shipped = include_str!("../../conf/flowgate.yaml");
        assert_eq!(Config::from_yaml(shipped).unwrap(), Config::default());
        for key in [
            "listen_proxy_protocol:",
            "websocket_idle_seconds:",
            "client_read_seconds:",
            "upstream_read_seconds:",
            "idle_timeout_seconds:",
            "header_timeout_seconds:",
            "max_request_target_bytes:",
            "websocket_drain_seconds:",
        ] {
            assert!(shipped.contains(key), "{key} missing in conf/flowgate.yaml");
        }
    }

    #[test]
    fn problems_name_the_key_and_the_bounds() {
        let err = Config::from_yaml(
            "server: {idle_timeout_seconds: 0, max_request_target_bytes: 70000}\n\
             timeouts: {websocket_idle_seconds: 0, init: {upstream_read_second: 1}, \
             other: {client_read_seconds: 0}}\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for key in [
            "server.idle_timeout_seconds",
            "server.max_request_target_bytes",
            "timeouts.websocket_idle_seconds",
            "timeouts.init.upstream_read_second",
            "timeouts.other.client_read_seconds",
        ] {
            assert!(text.contains(key), "{key} missing in {text}");
        }
        assert!(
            text.contains("did you mean `upstream_read_seconds`"),
            "{text}"
        );
    }
}
