//! Fuzzes the anti-spoof strip over raw heads: bytes are parsed as Pingora parses a request
//! (and, separately, an upstream response), built into Pingora's header type the way Pingora
//! builds it, stripped by flowgate's matcher, and written out as Pingora forwards it. The
//! forwarded head, parsed again as a backend would, must hold no header name that any common
//! mapping turns into the trusted prefix: CGI/PHP (upper case, every other byte `_`), Rack and
//! Node style (`_` read as `-`), nginx (names with `_` dropped unless allowed, the rest as sent).
#![no_main]
#![allow(dead_code)]

#[path = "../../src/headers/spoof.rs"]
mod spoof;

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use pingora_http::{IntoCaseHeaderName, RequestHeader, ResponseHeader};
use spoof::SpoofMatcher;

/// Pingora's own limit on header lines (`MAX_HEADERS`).
const MAX_HEADERS: usize = 256;
const PREFIX: &str = "X-Flowgate-";

/// Every way a backend might name the header `name`, in the form its prefix check would see.
fn mapped(name: &[u8]) -> [String; 3] {
    let cgi = name
        .iter()
        .map(|b| if b.is_ascii_alphanumeric() { b.to_ascii_uppercase() as char } else { '_' })
        .collect();
    let dashed = name
        .iter()
        .map(|b| if *b == b'_' { '-' } else { b.to_ascii_lowercase() as char })
        .collect();
    let as_sent = String::from_utf8_lossy(name).to_ascii_lowercase();
    [cgi, dashed, as_sent]
}

fn assert_clean(name: &[u8]) {
    let [cgi, dashed, as_sent] = mapped(name);
    let n = String::from_utf8_lossy(name);
    assert!(!cgi.starts_with("X_FLOWGATE_"), "{n:?} survived (CGI {cgi})");
    assert!(!dashed.starts_with("x-flowgate-"), "{n:?} survived ({dashed})");
    assert!(!as_sent.starts_with("x-flowgate-"), "{n:?} survived");
}

/// The header lines `wire` holds, parsed as a backend would (after a request line it supplies);
/// `None` when they do not parse.
fn reparse_names(wire: &[u8], lenient: bool) -> Option<Vec<Vec<u8>>> {
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    head.extend_from_slice(wire);
    head.extend_from_slice(b"\r\n");
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADERS + 8];
    let mut resp = httparse::Response::new(&mut headers);
    let mut config = httparse::ParserConfig::default();
    config.allow_obsolete_multiline_headers_in_responses(lenient);
    match config.parse_response(&mut resp, &head) {
        Ok(httparse::Status::Complete(_)) => {
            Some(resp.headers.iter().map(|h| h.name.as_bytes().to_vec()).collect())
        }
        _ => None,
    }
}

fn request(data: &[u8], matcher: &SpoofMatcher) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else {
        return;
    };
    let count = req.headers.len();
    let Ok(mut head) = RequestHeader::build(
        req.method.unwrap_or(""),
        req.path.unwrap_or("").as_bytes(),
        Some(count),
    ) else {
        return;
    };
    for h in req.headers.iter().filter(|h| !h.name.is_empty()) {
        let name = bytes::Bytes::copy_from_slice(h.name.as_bytes()).into_case_header_name();
        let Ok(value) = HeaderValue::from_bytes(h.value) else {
            return;
        };
        // Pingora refuses the request (400) when a header cannot be added.
        if head.append_header(name, value).is_err() {
            return;
        }
    }
    let before = head.headers.len();
    let removed = matcher.strip_request(&mut head);
    assert_eq!(head.headers.len() + removed, before);
    assert_eq!(matcher.strip_request(&mut head), 0, "the strip is not idempotent");
    let mut wire = Vec::new();
    head.header_to_h1_wire(&mut wire);
    let names = reparse_names(&wire, false).expect("the forwarded request head does not parse");
    assert_eq!(names.len(), head.headers.len(), "the forwarded head has other lines");
    for name in names {
        assert_clean(&name);
    }
}

fn response(data: &[u8], matcher: &SpoofMatcher) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    // Pingora's upstream parser is lenient in two ways (v1/client.rs).
    let mut config = httparse::ParserConfig::default();
    config.allow_spaces_after_header_name_in_responses(true);
    config.allow_obsolete_multiline_headers_in_responses(true);
    let Ok(httparse::Status::Complete(_)) = config.parse_response(&mut resp, data) else {
        return;
    };
    let Ok(mut head) = ResponseHeader::build(resp.code.unwrap_or(200), Some(resp.headers.len()))
    else {
        return;
    };
    for h in resp.headers.iter().filter(|h| !h.name.is_empty()) {
        let name = bytes::Bytes::copy_from_slice(h.name.as_bytes()).into_case_header_name();
        let value = pingora_http::header_value_from_raw(h.value.to_vec());
        if head.append_header(name, value).is_err() {
            return;
        }
    }
    matcher.strip_response(&mut head);
    let mut wire = Vec::new();
    head.header_to_h1_wire(&mut wire);
    // An upstream's folded header reaches the client folded: read it the lenient way.
    if let Some(names) = reparse_names(&wire, true) {
        for name in names {
            assert_clean(&name);
        }
    }
    for name in head.headers.keys() {
        assert_clean(name.as_str().as_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static MATCHER: SpoofMatcher = SpoofMatcher::new(PREFIX);
    }
    MATCHER.with(|m| {
        request(data, m);
        response(data, m);
    });
});
