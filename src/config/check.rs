//! The semantic checks: what a value means, once it has been read (ranges, forms, values that
//! must differ). They run after the file is read and again after command-line overrides.

use std::net::SocketAddr;
use std::time::Duration;

use super::defaults;
use super::{Config, Problems};
use crate::headers::DEFAULT_PREFIX;
use crate::headers::spoof::{SpoofMatcher, fold};

/// Longest init path, session prefix or header prefix accepted (a sanity bound, not a policy).
const MAX_PATH_LEN: usize = 1024;

impl Config {
    /// Re-validates after command-line overrides.
    pub(crate) fn validate(&self) -> Result<(), Problems> {
        let mut problems = Problems::default();
        self.check(&mut problems);
        problems.or(())
    }

    /// Semantic checks that do not depend on how a value was written.
    pub(super) fn check(&self, problems: &mut Problems) {
        if self.upstreams.is_empty() {
            problems.push(
                "upstreams",
                "no upstream configured; list at least one chat backend as host:port",
            );
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            if let Err(why) = check_host_port(super::tls::upstream_address(u).host_port) {
                problems.push(
                    format!("upstreams[{i}]"),
                    format!(
                        "{why}; write it as host:port or https://host:port, e.g. 127.0.0.1:8000"
                    ),
                );
            }
        }
        if let Some(admin) = self.admin
            && Some(admin) == self.listen
        {
            problems.push(
                "admin",
                format!("same address as listen ({admin}); give the admin listener its own port"),
            );
        }
        self.check_tls(problems);
        check_path(&self.routes.init_path, "routes.init_path", problems);
        for (i, p) in self.routes.session_prefixes.iter().enumerate() {
            check_path(p, &format!("routes.session_prefixes[{i}]"), problems);
        }
        for (key, name) in [
            ("params.site", &self.params.site),
            ("params.session", &self.params.session),
            ("params.context", &self.params.context),
            ("params.token", &self.params.token),
        ] {
            if name.is_empty() || name.len() > 128 || !name.bytes().all(is_param_byte) {
                problems.push(
                    key,
                    "must be 1–128 characters of A-Z a-z 0-9 . _ - [ ]; use the name the widget sends",
                );
            }
        }
        let p = &self.params;
        if p.site == p.session || p.site == p.context || p.session == p.context {
            problems.push(
                "params",
                "site, session and context parameters must have three different names",
            );
        }
        if [&p.site, &p.session, &p.context].contains(&&p.token) {
            problems.push(
                "params.token",
                "must differ from the site, session and context parameter names",
            );
        }
        let prefix = &self.headers.prefix;
        if prefix.is_empty()
            || prefix.len() > MAX_PATH_LEN
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            problems.push(
                "headers.prefix",
                format!(
                    "must be letters, digits and '-' (default {}); pick a prefix no client header legitimately uses",
                    DEFAULT_PREFIX
                ),
            );
        }
        self.check_client_ip(problems);
        if self.store.ttl.is_zero() {
            problems.push("store.ttl_seconds", "must be at least 1 (default 86400)");
        }
        if self.store.deadline.is_zero() || self.store.deadline > Duration::from_secs(10) {
            problems.push(
                "store.deadline_ms",
                "must be between 1 and 10000 milliseconds (default 50)",
            );
        }
        if !self.store.redis.url.is_empty() {
            // `store.*` keys are checked above; report the `redis.*` ones.
            for e in self.store.redis_settings().check() {
                if e.key().starts_with("redis.") {
                    problems.push(e.key(), e.to_string());
                }
            }
        }
        if self.store.memory_max_bytes < 1024 * 1024 {
            problems.push(
                "store.memory_max_bytes",
                "must be at least 1048576 (1 MiB; default 67108864 = 64 MiB)",
            );
        }
        if self.upstream.connect_timeout.is_zero() {
            problems.push(
                "upstream.connect_timeout_ms",
                "must be at least 1 (default 1000)",
            );
        }
        if self.upstream.read_timeout.is_zero() {
            problems.push(
                "upstream.read_timeout_ms",
                "must be at least 1 (default 60000)",
            );
        }
        if self.upstream.health_check_interval < Duration::from_millis(100) {
            problems.push(
                "upstream.health_check_interval_ms",
                "must be at least 100 (default 5000)",
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(
                "log.level",
                "not a level filter; use error, warn, info, debug or trace (or target=level pairs)",
            );
        }
        if self.server.threads == 0 || self.server.threads > 1024 {
            problems.push("server.threads", "must be between 1 and 1024 (default 1)");
        }
        if self.server.pid_file.is_empty() {
            problems.push(
                "server.pid_file",
                format!("must not be empty (default {})", defaults::PID_FILE),
            );
        }
        if self.server.upgrade_sock.is_empty() {
            problems.push(
                "server.upgrade_sock",
                format!("must not be empty (default {})", defaults::UPGRADE_SOCK),
            );
        }
        if self.server.upstream_keepalive_pool_size == 0 {
            problems.push(
                "server.upstream_keepalive_pool_size",
                "must be at least 1 (default 128)",
            );
        }
        self.check_edge(problems);
    }
}

impl Config {
    /// The client identity header names: header-name tokens, distinct from each other (spelt
    /// any way), from the trusted prefix and from the headers HTTP itself owns.
    fn check_client_ip(&self, problems: &mut Problems) {
        let c = &self.client_ip;
        let names = [
            (
                "client_ip.real_ip_header",
                &c.real_ip_header,
                defaults::REAL_IP_HEADER,
            ),
            (
                "client_ip.forwarded_for_header",
                &c.forwarded_for_header,
                defaults::FORWARDED_FOR_HEADER,
            ),
            (
                "client_ip.forwarded_proto_header",
                &c.forwarded_proto_header,
                defaults::FORWARDED_PROTO_HEADER,
            ),
            (
                "client_ip.forwarded_host_header",
                &c.forwarded_host_header,
                defaults::FORWARDED_HOST_HEADER,
            ),
            (
                "client_ip.request_id_header",
                &c.request_id_header,
                defaults::REQUEST_ID_HEADER,
            ),
        ];
        let prefix = SpoofMatcher::new(&self.headers.prefix);
        let folded = |n: &str| n.bytes().map(fold).collect::<Vec<u8>>();
        for (i, (key, name, default)) in names.iter().enumerate() {
            let token = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !token {
                problems.push(
                    *key,
                    format!("must be a header name of letters, digits and '-' (default {default})"),
                );
            } else if prefix.matches(name.as_bytes()) {
                problems.push(
                    *key,
                    format!("starts with headers.prefix ({}), whose headers flowgate owns; use another name (default {default})", self.headers.prefix),
                );
            } else if RESERVED.iter().any(|r| folded(r) == folded(name)) {
                problems.push(
                    *key,
                    format!(
                        "{name} is a header HTTP itself uses; use another name (default {default})"
                    ),
                );
            } else if names[..i]
                .iter()
                .any(|(_, other, _)| folded(other) == folded(name))
            {
                problems.push(
                    *key,
                    format!(
                        "{name} is already used by another client_ip header; give each its own name"
                    ),
                );
            }
        }
    }
}

/// Header names a client identity header must not take: HTTP's own, and RFC 7239's.
const RESERVED: [&str; 12] = [
    "host",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "transfer-encoding",
    "content-length",
    "content-type",
    "keep-alive",
    "proxy-connection",
    "cookie",
    "forwarded",
];

fn is_param_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'[' | b']')
}

fn check_path(path: &str, key: &str, problems: &mut Problems) {
    if !path.starts_with('/') || path.len() > MAX_PATH_LEN {
        problems.push(key, "must be a path starting with '/'");
    } else if path.contains(['?', '#', ' ', '%']) {
        problems.push(
            key,
            "must be a plain path without '?', '#', '%' or spaces; the query is matched separately",
        );
    }
}

fn check_host_port(s: &str) -> Result<(), String> {
    if s.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} has no port"));
    };
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("{s:?} has no valid port"));
    }
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if host_ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a host name or IP address with a port"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_checks() {
        assert!(check_host_port("127.0.0.1:80").is_ok());
        assert!(check_host_port("[::1]:80").is_ok());
        assert!(check_host_port("chat.internal:8080").is_ok());
        assert!(check_host_port("chat.internal").is_err());
        assert!(check_host_port("chat internal:80").is_err());
        assert!(check_host_port("x:0").is_err());
    }
}
