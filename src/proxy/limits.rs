//! Init rate limits and the request body limit: the decisions, without I/O.
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
    max_body_bytes: Option<u64>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("per_client", &self.per_client.as_ref().map(|w| w.allowed))
            .field("per_site", &self.per_site.as_ref().map(|w| w.allowed))
            .field("mode", &self.mode)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// What the body limit says about a request's declared length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyVerdict {
    /// Within the limit (or no limit, or no declared length).
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
            max_body_bytes: (config.max_body_bytes > 0).then_some(config.max_body_bytes),
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

    /// The body limit's verdict on `length` bytes (declared or read so far).
    pub(crate) fn body(&self, length: u64) -> BodyVerdict {
        match self.max_body_bytes {
            Some(max) if length > max => BodyVerdict::TooLarge,
            _ => BodyVerdict::Fits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_client: u32, per_site: u32, burst: u32) -> Limits {
        Limits::new(&LimitsConfig {
            per_client,
            per_site,
            burst,
            max_body_bytes: 10,
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
        assert_eq!(l.body(10), BodyVerdict::Fits);
        assert_eq!(l.body(11), BodyVerdict::TooLarge);
        assert_eq!(limits(0, 0, 0).body(u64::MAX), BodyVerdict::TooLarge);
        let off = Limits::new(&LimitsConfig::default());
        assert_eq!(off.body(u64::MAX), BodyVerdict::Fits);
    }
}
