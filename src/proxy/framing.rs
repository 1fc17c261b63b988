//! Message framing the edge makes unambiguous: the request's `Content-Length` goes upstream as
//! the one value Pingora framed the body with, and an HTTP/1.0 client never gets chunked
//! framing it cannot read.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderValue, Version};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;

/// Rewrites `Content-Length: 5, 5`, repeated `Content-Length: 5` lines and `Content-Length:
/// 0145` to the single decimal value Pingora read the body by (RFC 9112 §6.3, RFC 9110 §8.6), so
/// an upstream that parses lists, leading zeros or repeats differently cannot frame the body
/// differently. Pingora has already refused conflicting values with a `400`; anything it let
/// through that is still not one number (an HTTP/2 request) is refused here, before any body
/// byte is read. With `Transfer-Encoding` present Pingora already dropped the length.
pub(crate) fn normalise_content_length(req: &mut RequestHeader) -> Result<()> {
    let mut values = req.headers.get_all(CONTENT_LENGTH).iter();
    let Some(first) = values.next() else {
        return Ok(());
    };
    let single = values.next().is_none();
    if single && is_canonical(first.as_bytes()) {
        return Ok(());
    }
    let Some(length) = agreed_length(req.headers.get_all(CONTENT_LENGTH).iter()) else {
        return Error::e_explain(
            ErrorType::HTTPStatus(400),
            "content-length is not one decimal number",
        );
    };
    req.insert_header(CONTENT_LENGTH, HeaderValue::from(length))
}

/// `0`, or digits without a leading zero.
/// The request's declared body length (after [`normalise_content_length`]); 0 without one.
pub(crate) fn declared_length(req: &RequestHeader) -> u64 {
    req.headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn is_canonical(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= 19
        && v.iter().all(u8::is_ascii_digit)
        && (v[0] != b'0' || v.len() == 1)
}

/// The one length every comma-separated element of every line states, if they all state the
/// same digits-only number.
fn agreed_length<'a>(lines: impl Iterator<Item = &'a HeaderValue>) -> Option<u64> {
    let mut agreed = None;
    for line in lines {
        for part in line.as_bytes().split(|b| *b == b',') {
            let digits = part.trim_ascii();
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
            if agreed.is_some_and(|a| a != n) {
                return None;
            }
            agreed = Some(n);
        }
    }
    agreed
}

/// An HTTP/1.0 client cannot read chunked framing: without `Transfer-Encoding` (and with no
/// length) Pingora sends the body close-delimited and turns keep-alive off, as nginx does.
/// Pingora has already turned a close-delimited upstream body into chunked by now.
pub(crate) fn for_http10_client(version: Version, resp: &mut ResponseHeader) {
    if version < Version::HTTP_11 {
        resp.remove_header(&TRANSFER_ENCODING);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lines: &[&str]) -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/", None).unwrap();
        for l in lines {
            req.append_header(CONTENT_LENGTH, *l).unwrap();
        }
        req
    }

    fn lengths(req: &RequestHeader) -> Vec<&str> {
        req.headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn lists_repeats_and_leading_zeros_become_one_number() {
        for (sent, want) in [
            (&["5, 5"][..], "5"),
            (&["5", "5"][..], "5"),
            (&["0145"][..], "145"),
            (&["00"][..], "0"),
            (&[" 7 ,7"][..], "7"),
        ] {
            let mut req = request(sent);
            normalise_content_length(&mut req).unwrap();
            assert_eq!(lengths(&req), [want], "{sent:?}");
        }
    }

    #[test]
    fn plain_values_are_left_alone_and_disagreement_is_refused() {
        let mut req = request(&["42"]);
        normalise_content_length(&mut req).unwrap();
        assert_eq!(lengths(&req), ["42"]);
        let mut none = request(&[]);
        normalise_content_length(&mut none).unwrap();
        for bad in [&["5, 6"][..], &["5", "6"][..], &["+5"][..], &["5,"][..]] {
            let mut req = request(bad);
            assert!(normalise_content_length(&mut req).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn http10_clients_get_no_chunked_framing() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header(TRANSFER_ENCODING, "chunked").unwrap();
        for_http10_client(Version::HTTP_11, &mut resp);
        assert!(resp.headers.contains_key(TRANSFER_ENCODING));
        for_http10_client(Version::HTTP_10, &mut resp);
        assert!(!resp.headers.contains_key(TRANSFER_ENCODING));
    }
}
