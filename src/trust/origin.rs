//! Web origins as a site lists them (`https://shop.example.com`, `https://*.example.com:8443`)
//! and as a browser sends them (`Origin`, or the origin of a `Referer`).
//!
//! Scheme and port matter; the host is compared without case; a wildcard stands for exactly one
//! DNS label (`https://*.example.com` matches `https://a.example.com`, not `https://example.com`
//! nor `https://a.b.example.com`).

use std::fmt;

/// One allowed origin of a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: &'static str,
    /// Lower-case host; without the `*.` of a wildcard.
    host: String,
    wildcard: bool,
    port: u16,
}

/// An origin a request came from, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin {
    scheme: &'static str,
    host: String,
    port: u16,
}

fn scheme_and_rest(s: &str) -> Option<(&'static str, u16, &str)> {
    let lower = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    if lower("https://") {
        Some(("https", 443, &s[8..]))
    } else if lower("http://") {
        Some(("http", 80, &s[7..]))
    } else {
        None
    }
}

/// A DNS host name: dot-separated labels of ASCII letters, digits and `-`, at most 63 bytes each
/// and 253 in all. Shared with the TLS certificate names of the configuration.
pub(crate) fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `host[:port]` → (lower-case host, port); `None` when either is malformed.
fn host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (h, p.parse::<u16>().ok().filter(|p| *p != 0)?)
        }
        None => (authority, default_port),
    };
    Some((host.to_ascii_lowercase(), port))
}

impl OriginPattern {
    /// Parses a configured origin: `http(s)://host[:port]` or `http(s)://*.host[:port]`, with
    /// nothing after it (no path, no trailing `/`).
    pub fn parse(s: &str) -> Result<OriginPattern, &'static str> {
        const SHAPE: &str = "must be scheme://host[:port] (http or https, no path), the host optionally starting with `*.`";
        let (scheme, default_port, rest) = scheme_and_rest(s).ok_or(SHAPE)?;
        if rest.contains(['/', '?', '#', '@']) {
            return Err(SHAPE);
        }
        let (host, port) = host_port(rest, default_port).ok_or(SHAPE)?;
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(h) => (h.to_owned(), true),
            None => (host, false),
        };
        if !is_host(&host) {
            return Err(SHAPE);
        }
        if wildcard && !host.contains('.') {
            return Err("a wildcard needs at least two labels after `*.` (https://*.example.com)");
        }
        Ok(OriginPattern {
            scheme,
            host,
            wildcard,
            port,
        })
    }

    /// Whether a request from `origin` is allowed by this pattern.
    pub fn matches(&self, origin: &RequestOrigin) -> bool {
        if self.scheme != origin.scheme || self.port != origin.port {
            return false;
        }
        if !self.wildcard {
            return self.host == origin.host;
        }
        origin
            .host
            .strip_suffix(self.host.as_str())
            .and_then(|label| label.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.'))
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let star = if self.wildcard { "*." } else { "" };
        write!(f, "{}://{star}{}:{}", self.scheme, self.host, self.port)
    }
}

impl RequestOrigin {
    /// Parses an `Origin` header value; `null` and anything malformed give `None`.
    pub fn from_origin(value: &[u8]) -> Option<RequestOrigin> {
        let s = std::str::from_utf8(value).ok()?.trim();
        let (scheme, default_port, rest) = scheme_and_rest(s)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return None;
        }
        Self::from_authority(scheme, default_port, rest)
    }

    /// The origin of a `Referer` header value (`https://shop.example.com/cart?x` →
    /// `https://shop.example.com`).
    pub fn from_referer(value: &[u8]) -> Option<RequestOrigin> {
        let s = std::str::from_utf8(value).ok()?.trim();
        let (scheme, default_port, rest) = scheme_and_rest(s)?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.contains('@') {
            return None;
        }
        Self::from_authority(scheme, default_port, authority)
    }

    fn from_authority(scheme: &'static str, default_port: u16, a: &str) -> Option<RequestOrigin> {
        let (host, port) = host_port(a, default_port)?;
        is_host(&host).then_some(RequestOrigin { scheme, host, port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(pattern: &str, origin: &str) -> bool {
        let p = OriginPattern::parse(pattern).unwrap();
        RequestOrigin::from_origin(origin.as_bytes()).is_some_and(|o| p.matches(&o))
    }

    #[test]
    fn exact_and_wildcard() {
        assert!(allowed(
            "https://shop.example.com",
            "https://shop.example.com"
        ));
        assert!(allowed(
            "https://shop.example.com",
            "HTTPS://Shop.Example.com:443"
        ));
        assert!(!allowed(
            "https://shop.example.com",
            "http://shop.example.com"
        ));
        assert!(!allowed(
            "https://shop.example.com",
            "https://shop.example.com:8443"
        ));
        assert!(allowed("http://127.0.0.1:8080", "http://127.0.0.1:8080"));
        assert!(!allowed("http://127.0.0.1:8080", "http://127.0.0.1:8081"));
        assert!(allowed("https://*.example.com", "https://a.example.com"));
        assert!(!allowed("https://*.example.com", "https://example.com"));
        assert!(!allowed("https://*.example.com", "https://a.b.example.com"));
        assert!(!allowed("https://*.example.com", "https://evilexample.com"));
        assert!(!allowed(
            "https://*.example.com",
            "https://a.example.com.evil.net"
        ));
        assert!(!allowed("https://shop.example.com", "null"));
    }

    #[test]
    fn bad_patterns_and_referers() {
        for bad in [
            "shop.example.com",
            "https://",
            "https://shop.example.com/",
            "https://*.com",
            "https://a.*.com",
            "ftp://x.example.com",
            "https://x.example.com:0",
            "https://u@x.example.com",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
        let r = RequestOrigin::from_referer(b"https://shop.example.com/cart?a=1").unwrap();
        assert!(
            OriginPattern::parse("https://shop.example.com")
                .unwrap()
                .matches(&r)
        );
        assert!(RequestOrigin::from_referer(b"https://a@evil.com/").is_none());
    }
}
