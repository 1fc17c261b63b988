//! Read timeouts per route class (`timeouts.init`, `.session`, `.other`) and for WebSocket
//! tunnels (`timeouts.websocket_idle_seconds`).
//!
//! Pingora reads each timeout once, where it starts the read it governs: the client's body
//! reads take the session's read timeout (set in `request_filter`; after a `101`, in
//! `response_filter`), the upstream's the peer's read timeout (set in `upstream_peer`, copied
//! once when the upstream request starts). A tunnel is governed by both, and traffic either way
//! restarts both, so an upgrade request gets the tunnel's idle bound on both sides.

use std::time::Duration;

use pingora::prelude::HttpPeer;
use pingora::proxy::Session;

use crate::config::{ClassTimeouts, Config};
use crate::metrics::RouteKind;

/// The timeouts of one route class, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resolved {
    client_read: Duration,
    upstream_read: Duration,
}

/// Every class's timeouts and the tunnel idle bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouteTimeouts {
    init: Resolved,
    session: Resolved,
    other: Resolved,
    websocket_idle: Duration,
}

impl RouteTimeouts {
    /// From the `timeouts:` section; an unset upstream read timeout is `upstream.read_timeout_ms`.
    pub(crate) fn new(config: &Config) -> RouteTimeouts {
        let resolve = |c: &ClassTimeouts| Resolved {
            client_read: c.client_read,
            upstream_read: c.upstream_read.unwrap_or(config.upstream.read_timeout),
        };
        let t = &config.timeouts;
        RouteTimeouts {
            init: resolve(&t.init),
            session: resolve(&t.session),
            other: resolve(&t.other),
            websocket_idle: t.websocket_idle,
        }
    }

    fn class(&self, route: RouteKind) -> &Resolved {
        match route {
            RouteKind::Init => &self.init,
            RouteKind::Session => &self.session,
            RouteKind::Other => &self.other,
        }
    }

    /// The client's body reads: the class's read timeout (an HTTP/2 stream has none to set).
    pub(crate) fn on_request(&self, route: RouteKind, session: &mut Session) {
        session.set_read_timeout(Some(self.class(route).client_read));
    }

    /// The upstream's reads and writes: the class's timeout, or the tunnel's idle bound for an
    /// upgrade request (it also bounds the wait for the `101`).
    pub(crate) fn on_peer(&self, route: RouteKind, upgrade: bool, peer: &mut HttpPeer) {
        let read = if upgrade {
            self.websocket_idle
        } else {
            self.class(route).upstream_read
        };
        peer.options.read_timeout = Some(read);
        peer.options.write_timeout = Some(read);
    }

    /// A `101`: from now on the client side of the tunnel is bounded by the idle timeout.
    pub(crate) fn on_tunnel(&self, session: &mut Session) {
        session.set_read_timeout(Some(self.websocket_idle));
        session.set_write_timeout(Some(self.websocket_idle));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_inherit_the_upstream_read_timeout() {
        let config = Config::from_yaml(
            "upstream: {read_timeout_ms: 120000}\n\
             timeouts: {session: {upstream_read_seconds: 90, client_read_seconds: 5}}\n",
        )
        .unwrap();
        let t = RouteTimeouts::new(&config);
        assert_eq!(t.session.upstream_read, Duration::from_secs(90));
        assert_eq!(t.session.client_read, Duration::from_secs(5));
        assert_eq!(t.init.upstream_read, Duration::from_secs(120));
        assert_eq!(t.other.client_read, Duration::from_secs(60));
        let mut peer = HttpPeer::new("127.0.0.1:1", false, String::new());
        t.on_peer(RouteKind::Session, false, &mut peer);
        assert_eq!(peer.options.read_timeout, Some(Duration::from_secs(90)));
        t.on_peer(RouteKind::Session, true, &mut peer);
        assert_eq!(peer.options.read_timeout, Some(Duration::from_secs(300)));
    }
}
