//! Init rate limits and the request body limit per route class: the decisions, without I/O.
//!
//! Each scope counts inits in one-second windows on `pingora_limits::rate::Rate` (a count-min
//! estimator: bounded memory whatever the number of clients or sites). An init is over the limit
//! when its window already holds `rate + burst` inits of its client address or of its site.
//! The counters live in the [`crate::proxy::Runtime`], so a reload starts them afresh.

use std::net::IpAddr;
use std::time::Duration;

use pingora_limits::rate::Rate;

use crate::config::{LimitMode, LimitsConfig};
use crate::metrics::LimitScope as Scope;
use crate::metrics::RouteKind;

/// One scope's counter and how many inits a window may hold (`rate + burst`).
struct Window {
    rate: Rate,
    allowed: isize,
}

impl Window {
    fn new(per_second: u32, burst: u32) -> Option<Window> {
        (per_second > 0).then(|| Window {
            rate: Rate::new(Duration::from_secs(1)),
            allowed: isize::try_from(u64::from(per_second) + u64::from(burst))
                .unwrap_or(isize::MAX),
        })
    }

    /// Counts one init of `key`; whether it is over the window's allowance.
    fn over<K: std::hash::Hash>(&self, key: &K) -> bool {
        self.rate.observe(key, 1) > self.allowed
    }
}

/// The limits in force, built from `limits:`.
pub(crate) struct Limits {
    per_client: Option<Window>,
    per_site: Option<Window>,
    mode: LimitMode,
    body: BodyBounds,
}

/// The largest body of each route class; `None`: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BodyBounds {
    init: Option<u64>,
    session: Option<u64>,
    other: Option<u64>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("per_client", &self.per_client.as_ref().map(|w| w.allowed))
            .field("per_site", &self.per_site.as_ref().map(|w| w.allowed))
            .field("mode", &self.mode)
            .field("body", &self.body)
            .finish()
    }
}

/// What the body limit says about a request's declared length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyVerdict {
    /// Within the limit (or no limit).
    Fits,
    /// Longer than `max_body_bytes`: answer `413`.
    TooLarge,
}

impl Limits {
    /// The limits `config` describes.
    pub(crate) fn new(config: &LimitsConfig) -> Limits {
        Limits {
            per_client: Window::new(config.per_client, config.burst),
            per_site: Window::new(config.per_site, config.burst),
            mode: config.mode,
            body: {
                let b = &config.max_body_bytes;
                let bound =
                    |class: Option<u64>| Some(class.unwrap_or(b.default)).filter(|n| *n > 0);
                BodyBounds {
                    init: bound(b.init),
                    session: bound(b.session),
                    other: bound(b.other),
                }
            },
        }
    }

    /// Counts one init from `client` for `site`; the scope it went over, if any. The client
    /// is counted first: one noisy client does not use up its site's allowance.
    pub(crate) fn init(&self, client: Option<IpAddr>, site: &str) -> Option<Scope> {
        if let (Some(w), Some(addr)) = (&self.per_client, client)
            && w.over(&addr)
        {
            return Some(Scope::Client);
        }
        match &self.per_site {
            Some(w) if w.over(&site) => Some(Scope::Site),
            _ => None,
        }
    }

    /// Whether an init over a limit is answered `429` instead of proxied without context.
    pub(crate) fn rejects(&self) -> bool {
        self.mode == LimitMode::Reject
    }

    /// The body limit's verdict on `length` bytes (declared, or read so far) of a request of
    /// `route`'s class.
    pub(crate) fn body(&self, route: RouteKind, length: u64) -> BodyVerdict {
        let max = match route {
            RouteKind::Init => self.body.init,
            RouteKind::Session => self.body.session,
            RouteKind::Other => self.body.other,
        };
        match max {
            Some(max) if length > max => BodyVerdict::TooLarge,
            _ => BodyVerdict::Fits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BodyLimits;

    const OTHER: RouteKind = RouteKind::Other;

    fn limits(per_client: u32, per_site: u32, burst: u32) -> Limits {
        Limits::new(&LimitsConfig {
            per_client,
            per_site,
            burst,
            max_body_bytes: BodyLimits {
                default: 10,
                ..BodyLimits::default()
            },
            ..LimitsConfig::default()
        })
    }

    #[test]
    fn client_then_site_each_with_burst() {
        let l = limits(2, 5, 1);
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        for _ in 0..3 {
            assert_eq!(l.init(a, "s"), None);
        }
        assert_eq!(l.init(a, "s"), Some(Scope::Client));
        for _ in 0..3 {
            assert_eq!(l.init(b, "s"), None);
        }
        assert_eq!(l.init(None, "s"), Some(Scope::Site));
        assert_eq!(l.init(None, "t"), None);
    }

    #[test]
    fn zero_is_off() {
        let l = limits(0, 0, 0);
        assert!((0..100).all(|_| l.init(None, "s").is_none()));
        assert!(!l.rejects());
        assert_eq!(l.body(OTHER, 10), BodyVerdict::Fits);
        assert_eq!(l.body(OTHER, 11), BodyVerdict::TooLarge);
        assert_eq!(limits(0, 0, 0).body(OTHER, u64::MAX), BodyVerdict::TooLarge);
        let off = Limits::new(&LimitsConfig::default());
        assert_eq!(off.body(OTHER, u64::MAX), BodyVerdict::Fits);
    }

    #[test]
    fn each_class_has_its_own_body_limit_or_the_default() {
        let l = Limits::new(&LimitsConfig {
            max_body_bytes: BodyLimits {
                default: 100,
                init: Some(10),
                session: Some(0),
                other: None,
            },
            ..LimitsConfig::default()
        });
        assert_eq!(l.body(RouteKind::Init, 11), BodyVerdict::TooLarge);
        assert_eq!(l.body(RouteKind::Init, 10), BodyVerdict::Fits);
        assert_eq!(l.body(RouteKind::Session, u64::MAX), BodyVerdict::Fits);
        assert_eq!(l.body(OTHER, 100), BodyVerdict::Fits);
        assert_eq!(l.body(OTHER, 101), BodyVerdict::TooLarge);
    }
}
