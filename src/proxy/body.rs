//! The body limit while a body streams: a chunked HTTP/1.1 body or an HTTP/2 body without
//! `Content-Length` declares no length `request_filter` could check, so its bytes are counted
//! as they pass, and the one past the route class's limit ends the transfer with [`TOO_LARGE`].
//! `fail_to_proxy` then answers `413` if nothing of the response has been sent yet (as nginx's
//! `client_max_body_size` answers a chunked body), otherwise aborts; either way the upstream
//! connection is dropped without the body's end, so the upstream never takes a cut body for a
//! whole one. The bytes of a WebSocket tunnel (after its `101`) are not a body.

use pingora::prelude::*;

use super::limits::{BodyVerdict, Limits};
use crate::metrics::RouteKind;

/// The error that ends a request whose body has passed its limit.
pub(crate) const TOO_LARGE: ErrorType = ErrorType::Custom("request body too large");

/// Whether `e` is the body limit's.
pub(crate) fn is_too_large(e: &Error) -> bool {
    *e.etype() == TOO_LARGE
}

/// The body bytes of one request read so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BodyCount {
    read: u64,
}

impl BodyCount {
    /// Counts `chunk` of a request of `route`; [`TOO_LARGE`] once the total passes the limit.
    pub(crate) fn count(&mut self, limits: &Limits, route: RouteKind, chunk: usize) -> Result<()> {
        self.read = self
            .read
            .saturating_add(u64::try_from(chunk).unwrap_or(u64::MAX));
        match limits.body(route, self.read) {
            BodyVerdict::Fits => Ok(()),
            BodyVerdict::TooLarge => Err(Error::new_down(TOO_LARGE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BodyLimits, LimitsConfig};
    use pingora::ErrorSource;

    #[test]
    fn the_byte_past_the_limit_ends_the_transfer() {
        let limits = Limits::new(&LimitsConfig {
            max_body_bytes: BodyLimits {
                default: 10,
                session: Some(0),
                ..BodyLimits::default()
            },
            ..LimitsConfig::default()
        });
        let mut n = BodyCount::default();
        assert!(n.count(&limits, RouteKind::Other, 6).is_ok());
        assert!(n.count(&limits, RouteKind::Other, 4).is_ok());
        let e = n.count(&limits, RouteKind::Other, 1).unwrap_err();
        assert!(is_too_large(&e));
        assert_eq!(*e.esource(), ErrorSource::Downstream);
        let mut s = BodyCount::default();
        assert!(s.count(&limits, RouteKind::Session, usize::MAX).is_ok());
    }
}
