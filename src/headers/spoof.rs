//! Anti-spoofing: client request headers and upstream response headers that look like trusted
//! headers are removed before anything else happens.
//!
//! A header "looks like" a trusted one when its name, compared case-insensitively with every
//! byte that is not an ASCII letter or digit treated as `-`, starts with the trusted prefix.
//! Backends behind CGI-style gateways (PHP's `$_SERVER`, CGI, FastCGI, WSGI) turn every such
//! byte into `_`: `X_Flowgate_Context`, `X.Flowgate.Context` and `X~Flowgate~Context` all become
//! `HTTP_X_FLOWGATE_CONTEXT`, exactly like `X-Flowgate-Context`, so all of them must go.

use pingora_http::{RequestHeader, ResponseHeader};

/// Matches header names against the trusted prefix; built once from the configured prefix.
#[derive(Debug, Clone)]
pub(crate) struct SpoofMatcher {
    /// The prefix, lower-cased, with every byte other than a letter or digit folded to `-`.
    folded_prefix: Box<[u8]>,
}

impl SpoofMatcher {
    /// A matcher for `prefix` (e.g. `X-Flowgate-`).
    pub(crate) fn new(prefix: &str) -> SpoofMatcher {
        SpoofMatcher {
            folded_prefix: prefix.bytes().map(fold).collect(),
        }
    }

    /// Whether a header named `name` must be removed.
    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        name.len() >= self.folded_prefix.len()
            && name
                .iter()
                .zip(self.folded_prefix.iter())
                .all(|(a, b)| fold(*a) == *b)
    }

    /// Removes every matching client header (every duplicate); returns how many values went.
    pub(crate) fn strip_request(&self, req: &mut RequestHeader) -> usize {
        // The common case is a clean request: scan without allocating first.
        if !req
            .headers
            .keys()
            .any(|n| self.matches(n.as_str().as_bytes()))
        {
            return 0;
        }
        let mut removed = 0;
        for name in self.matching(&req.headers) {
            removed += req.headers.get_all(&name).iter().count();
            req.remove_header(&name);
        }
        removed
    }

    /// Removes every matching upstream response header; returns how many values went.
    pub(crate) fn strip_response(&self, resp: &mut ResponseHeader) -> usize {
        if !resp
            .headers
            .keys()
            .any(|n| self.matches(n.as_str().as_bytes()))
        {
            return 0;
        }
        let mut removed = 0;
        for name in self.matching(&resp.headers) {
            removed += resp.headers.get_all(&name).iter().count();
            resp.remove_header(&name);
        }
        removed
    }

    fn matching(&self, headers: &http::HeaderMap) -> Vec<http::HeaderName> {
        headers
            .keys()
            .filter(|n| self.matches(n.as_str().as_bytes()))
            .cloned()
            .collect()
    }
}

/// One byte of a header name as spoof matching compares it: letters lower-cased, every byte
/// that is not a letter or digit equal to `-` (CGI and PHP map all of them to `_`, SPEC §6).
pub(crate) fn fold(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() {
        b.to_ascii_lowercase()
    } else {
        b'-'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_every_separator() {
        let m = SpoofMatcher::new("X-Flowgate-");
        for name in [
            "x-flowgate-context",
            "X_Flowgate_Context",
            "X-FLOWGATE-STATUS",
            "x_flowgate-",
            "x-flowgate-anything-else",
            "X.Flowgate.Context",
            "X~Flowgate~Status",
            "X.Flowgate.Status",
            "x!flowgate#context",
            "X-Flowgate'Session",
        ] {
            assert!(m.matches(name.as_bytes()), "{name}");
        }
        for name in [
            "x-flowgate",
            "x-flowgat-context",
            "flowgate-context",
            "x-flowgates",
            "xflowgate-context",
            "x--flowgate-context",
        ] {
            assert!(!m.matches(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn strips_every_duplicate_and_keeps_the_rest() {
        let m = SpoofMatcher::new("X-Flowgate-");
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("X-Flowgate-Status", "accepted").unwrap();
        req.append_header("x-flowgate-status", "accepted").unwrap();
        req.append_header("X_Flowgate_Context", "e30=").unwrap();
        req.append_header("Accept", "*/*").unwrap();
        assert_eq!(m.strip_request(&mut req), 3);
        assert_eq!(req.headers.len(), 1);
        assert!(req.headers.contains_key("accept"));
        assert_eq!(m.strip_request(&mut req), 0);
    }

    #[test]
    fn strips_response_headers() {
        let m = SpoofMatcher::new("X-Flowgate-");
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header("X-Flowgate-Context", "e30=").unwrap();
        resp.append_header("Content-Type", "text/plain").unwrap();
        assert_eq!(m.strip_response(&mut resp), 1);
        assert_eq!(resp.headers.len(), 1);
    }
}
