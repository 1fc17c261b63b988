//! Request-target normalisation, before anything classifies or signs the path: what the route
//! table matches, what the signature covers and what the backend receives are one string.
//!
//! - **absolute-form** (`GET http://host/p?q`) becomes origin-form (`/p?q`) and `Host` becomes
//!   the target's authority (RFC 9112 §3.2.2: the authority wins over a `Host` header);
//! - percent-encoded **unreserved** characters are decoded (`%2e` → `.`, `%69` → `i`; RFC 3986
//!   §6.2.2.2 makes them equal), so `%2e%2e` is a dot segment like `..`;
//! - **dot segments** are resolved (RFC 3986 §5.2.4: `/a/./b/../c` → `/a/c`, never above `/`)
//!   and **empty segments** merged (`//` → `/`, as nginx's `merge_slashes`);
//! - an empty query is dropped (`/x?` → `/x`).
//!
//! Refused with `400` (nothing can say how every backend would read them):
//! - `ambiguous_path`: an encoded `/` or `\` (`%2F`, `%5C`), a raw `\`, an encoded NUL (`%00`),
//!   or a segment that is a dot segment once a `;parameter` is cut (`..;x`, Tomcat-style);
//! - `bad_target`: a byte outside visible ASCII, an absolute-form target that is not `http(s)`,
//!   ambiguous, or carries userinfo, or any other form than origin, absolute or `*`;
//! - `bad_host`: more than one `Host` header.

use bytes::Bytes;
use pingora::http::authority::{RawTargetAuthority, raw_target_authority};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

/// Body of the 400 sent for a refused target.
const REFUSED_BODY: &[u8] = b"flowgate: request target refused (see the README's path rules)\n";

/// Why a request target was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Encoded separators, NUL, or a dot segment hidden behind a path parameter.
    AmbiguousPath,
    /// Not a target flowgate forwards (see the module docs).
    BadTarget,
    /// More than one `Host` header.
    BadHost,
}

impl Refusal {
    /// Every reason, in a stable order (for metrics).
    pub(crate) const ALL: [Refusal; 3] =
        [Refusal::AmbiguousPath, Refusal::BadTarget, Refusal::BadHost];

    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::AmbiguousPath => "ambiguous_path",
            Refusal::BadTarget => "bad_target",
            Refusal::BadHost => "bad_host",
        }
    }
}

/// Answers a refused target: `400` with a short plain-text body, and the connection closed (a
/// client that sends such targets is probing, not browsing).
pub(crate) async fn refuse(session: &mut Session) {
    let answer = async {
        let mut resp = ResponseHeader::build(400, Some(4))?;
        resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
        resp.insert_header("Content-Length", REFUSED_BODY.len().to_string())?;
        resp.insert_header("Cache-Control", "no-store")?;
        session.set_keepalive(None);
        session.write_response_header(Box::new(resp), false).await?;
        session
            .write_response_body(Some(Bytes::from_static(REFUSED_BODY)), true)
            .await
    };
    let _: pingora::Result<()> = answer.await;
}

/// Normalises `req`'s target in place (origin-form, resolved path, `Host` from an absolute-form
/// authority), or says why it is refused. A target that is already normal is not touched.
pub(crate) fn normalize(req: &mut RequestHeader) -> Result<(), Refusal> {
    if req.headers.get_all(http::header::HOST).iter().count() > 1 {
        return Err(Refusal::BadHost);
    }
    let raw = req.raw_path();
    if !raw.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(Refusal::BadTarget);
    }
    // Visible ASCII is valid UTF-8.
    let raw = std::str::from_utf8(raw).map_err(|_| Refusal::BadTarget)?;
    let (origin, authority) = if raw.starts_with('/') {
        (raw, None)
    } else if raw == "*" {
        return Ok(());
    } else {
        match raw_target_authority(raw.as_bytes()) {
            RawTargetAuthority::Absolute {
                scheme,
                authority,
                path_and_query,
            } => {
                let http = [b"http".as_slice(), b"https"]
                    .iter()
                    .any(|s| scheme.eq_ignore_ascii_case(s));
                let authority = std::str::from_utf8(authority).map_err(|_| Refusal::BadTarget)?;
                let parsed = http::uri::Authority::try_from(authority);
                if !http || authority.contains('@') || parsed.is_err() {
                    return Err(Refusal::BadTarget);
                }
                let rest = std::str::from_utf8(path_and_query).map_err(|_| Refusal::BadTarget)?;
                (rest, Some(authority.to_owned()))
            }
            _ => return Err(Refusal::BadTarget),
        }
    };
    let (path, query) = match origin.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (origin, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    let normal = normalize_path(path)?;
    let query = query.filter(|q| !q.is_empty());
    let changed = authority.is_some()
        || normal.is_some()
        || (query.is_none() && origin.contains('?'))
        || origin.is_empty();
    if !changed {
        return Ok(());
    }
    let mut target = normal.unwrap_or_else(|| path.to_owned());
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    if let Some(authority) = authority {
        req.insert_header(http::header::HOST, authority)
            .map_err(|_| Refusal::BadTarget)?;
    }
    set_target(req, &target).map_err(|_| Refusal::BadTarget)
}

/// Replaces the path and query of `req`, keeping a URI authority (an HTTP/2 request's
/// `:authority`, which becomes the upstream `Host`).
pub(crate) fn set_target(req: &mut RequestHeader, path_and_query: &str) -> Result<(), ()> {
    if req.uri.authority().is_some() {
        let mut parts = http::uri::Parts::default();
        parts.scheme = req.uri.scheme().cloned();
        parts.authority = req.uri.authority().cloned();
        parts.path_and_query = Some(path_and_query.parse().map_err(|_| ())?);
        let uri = http::Uri::from_parts(parts).map_err(|_| ())?;
        req.set_uri(uri);
        Ok(())
    } else {
        req.set_raw_path(path_and_query.as_bytes()).map_err(|_| ())
    }
}

/// [`set_target`] for a target already owned: an origin-form one (no authority to keep) is
/// moved into the URI as it is, without the copy and the URI builder that
/// `RequestHeader::set_raw_path` goes through (the query rewrite runs on every init request).
pub(crate) fn set_target_owned(req: &mut RequestHeader, path_and_query: String) -> Result<(), ()> {
    if req.uri.authority().is_some() || !path_and_query.starts_with('/') {
        return set_target(req, &path_and_query);
    }
    let path_and_query =
        http::uri::PathAndQuery::from_maybe_shared(Bytes::from(path_and_query)).map_err(|_| ())?;
    req.set_uri(http::Uri::from(path_and_query));
    Ok(())
}

/// The normal form of an origin-form path (starting with `/`), or `None` when it already is.
pub(crate) fn normalize_path(path: &str) -> Result<Option<String>, Refusal> {
    let bytes = path.as_bytes();
    let simple = !bytes.contains(&b'%')
        && !bytes.contains(&b'\\')
        && memchr::memmem::find(bytes, b"//").is_none()
        && memchr::memmem::find(bytes, b"/.").is_none();
    if simple {
        return Ok(None);
    }
    let decoded = decode_unreserved(path)?;
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = decoded.split('/').skip(1).collect();
    let mut trailing_slash = false;
    for (i, seg) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let bare = seg.split(';').next().unwrap_or_default();
        if *seg != bare && matches!(bare, "." | "..") {
            return Err(Refusal::AmbiguousPath);
        }
        match *seg {
            "" | "." => trailing_slash = last,
            ".." => {
                segments.pop();
                trailing_slash = last;
            }
            s => {
                segments.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    Ok((out != path).then_some(out))
}

/// `%XX` of an unreserved character decoded; `%2F`, `%5C`, `%00` and a raw `\` refused; other
/// escapes (and a `%` without two hex digits) kept as written.
fn decode_unreserved(path: &str) -> Result<String, Refusal> {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => return Err(Refusal::AmbiguousPath),
            b'%' => {
                let decoded = match (b.get(i + 1), b.get(i + 2)) {
                    (Some(h), Some(l)) => hex(*h).zip(hex(*l)).map(|(h, l)| h << 4 | l),
                    _ => None,
                };
                match decoded {
                    Some(0 | b'/' | b'\\') => return Err(Refusal::AmbiguousPath),
                    Some(c)
                        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') =>
                    {
                        out.push(char::from(c));
                        i += 3;
                        continue;
                    }
                    _ => out.push('%'),
                }
            }
            c => out.push(char::from(c)),
        }
        i += 1;
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(path: &str) -> Result<String, Refusal> {
        normalize_path(path).map(|n| n.unwrap_or_else(|| path.to_owned()))
    }

    #[test]
    fn paths() {
        for (input, want) in [
            ("/", "/"),
            ("/public_FlowWidget/init", "/public_FlowWidget/init"),
            ("/public_FlowWidget/../admin", "/admin"),
            ("/public_FlowWidget/%2e%2e/admin", "/admin"),
            ("/public_FlowWidget/%2E%2e/admin", "/admin"),
            ("/public_FlowWidget/.%2e/admin", "/admin"),
            ("/a/./b/../c", "/a/c"),
            ("/../../x", "/x"),
            ("/a/..", "/"),
            ("/a/.", "/a/"),
            ("/a/b/..", "/a/"),
            ("//public_FlowWidget//init", "/public_FlowWidget/init"),
            ("/a//", "/a/"),
            ("/public_FlowWidget/%69nit", "/public_FlowWidget/init"),
            ("/a%20b/%41", "/a%20b/A"),
            ("/a/%zz/%4", "/a/%zz/%4"),
            ("/a/.b/..c/...", "/a/.b/..c/..."),
            ("/a;x/b", "/a;x/b"),
            ("/%252e%252e/x", "/%252e%252e/x"),
        ] {
            assert_eq!(norm(input), Ok(want.to_owned()), "{input}");
        }
        assert_eq!(normalize_path("/public_FlowWidget/init"), Ok(None));
        for bad in [
            "/public_FlowWidget%2Finit",
            "/public_FlowWidget%2f..%2fadmin",
            "/a%5Cb",
            "/a\\b",
            "/a%00b",
            "/public_FlowWidget/..;/admin",
            "/a/.;x/b",
        ] {
            assert_eq!(norm(bad), Err(Refusal::AmbiguousPath), "{bad}");
        }
    }

    fn target(raw: &str, host: Option<&str>) -> (Result<(), Refusal>, String, Option<String>) {
        let mut req = RequestHeader::build("GET", raw.as_bytes(), None).unwrap();
        if let Some(h) = host {
            req.append_header("Host", h).unwrap();
        }
        let r = normalize(&mut req);
        let host = req
            .headers
            .get("host")
            .map(|h| h.to_str().unwrap().to_owned());
        (r, String::from_utf8(req.raw_path().to_vec()).unwrap(), host)
    }

    #[test]
    fn reasons_match_the_metric_labels() {
        let labels: Vec<&str> = Refusal::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels, crate::metrics::TARGET_REFUSALS);
    }

    #[test]
    fn targets() {
        let (r, t, h) = target(
            "http://chat.example.com:8080/public_FlowWidget/init?siteid=a",
            Some("other"),
        );
        assert_eq!(r, Ok(()));
        assert_eq!(t, "/public_FlowWidget/init?siteid=a");
        assert_eq!(h.as_deref(), Some("chat.example.com:8080"));
        let (r, t, h) = target("HTTPS://h", None);
        assert_eq!((r, t.as_str(), h.as_deref()), (Ok(()), "/", Some("h")));
        let (_, t, _) = target("http://h/a/../b?", None);
        assert_eq!(t, "/b");
        let (_, t, h) = target("/x?", Some("h"));
        assert_eq!((t.as_str(), h.as_deref()), ("/x", Some("h")));
        let (_, t, _) = target("/x?a=%2F..", Some("h"));
        assert_eq!(t, "/x?a=%2F..");
        assert_eq!(target("*", None).0, Ok(()));
        for bad in ["ftp://h/x", "http://u@h/x", "http:/h/x", "h:80", "foo"] {
            assert_eq!(target(bad, None).0, Err(Refusal::BadTarget), "{bad}");
        }
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("Host", "a").unwrap();
        req.append_header("Host", "b").unwrap();
        assert_eq!(normalize(&mut req), Err(Refusal::BadHost));
    }
}
