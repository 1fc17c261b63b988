//! The widget's per-session key (`Flowgate-Session-Key`): read once, hashed, and removed from the
//! request before anything else can see it.
//!
//! The key is 32 random bytes, base64url without padding (43 characters), made by the widget at
//! init and sent on the init and every session route. Only its SHA-256 is kept (beside the
//! stored context); the key itself never reaches the backend, a log line or the store. Its name
//! is outside the trusted prefix on purpose: every prefixed request header is stripped as
//! spoofed before anything reads the request. Every spelling a CGI-style backend would read as
//! the same header (`Flowgate_Session_Key`, any case) is removed too.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pingora_http::RequestHeader;
use sha2::Digest as _;

use super::spoof::fold;

/// The request header the widget sends the key in.
pub const HEADER: &str = "Flowgate-Session-Key";
/// Length of a key as sent: 32 bytes in unpadded base64url.
const ENCODED_LEN: usize = 43;

/// What a request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presented {
    /// No key header.
    Missing,
    /// A key header that is not one key of the expected form (or more than one).
    Malformed,
    /// A well-formed key: its SHA-256.
    Key([u8; 32]),
}

impl Presented {
    /// The key's hash, when a well-formed key was presented.
    pub(crate) fn hash(&self) -> Option<&[u8; 32]> {
        match self {
            Presented::Key(hash) => Some(hash),
            Presented::Missing | Presented::Malformed => None,
        }
    }
}

/// Reads the key from `req` and removes every header that names it, in any spelling.
pub(crate) fn take(req: &mut RequestHeader) -> Presented {
    if !req.headers.keys().any(|n| names_key(n.as_str().as_bytes())) {
        return Presented::Missing;
    }
    let mut values = req.headers.get_all(HEADER).iter();
    let presented = match (values.next(), values.next()) {
        (Some(value), None) => parse(value.as_bytes()),
        (None, _) => Presented::Missing,
        (Some(_), Some(_)) => Presented::Malformed,
    };
    let names: Vec<http::HeaderName> = req
        .headers
        .keys()
        .filter(|n| names_key(n.as_str().as_bytes()))
        .cloned()
        .collect();
    for name in names {
        req.remove_header(&name);
    }
    presented
}

/// Whether a header name is the key header under the spoof folding (case, every separator).
fn names_key(name: &[u8]) -> bool {
    name.len() == HEADER.len()
        && name
            .iter()
            .zip(HEADER.bytes())
            .all(|(a, b)| fold(*a) == fold(b))
}

/// Parses one header value: exactly 43 base64url characters that decode to 32 bytes.
pub(crate) fn parse(value: &[u8]) -> Presented {
    if value.len() != ENCODED_LEN {
        return Presented::Malformed;
    }
    let mut raw = [0u8; 32];
    match URL_SAFE_NO_PAD.decode_slice(value, &mut raw) {
        Ok(32) => Presented::Key(sha2::Sha256::digest(raw).into()),
        _ => Presented::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn a_key_is_43_base64url_characters_of_32_bytes() {
        let Presented::Key(hash) = parse(KEY.as_bytes()) else {
            panic!("not a key")
        };
        let raw: Vec<u8> = (0u8..32).collect();
        assert_eq!(hash, <[u8; 32]>::from(sha2::Sha256::digest(&raw)));
        for bad in [
            "",
            &KEY[..42],
            &format!("{KEY}="),
            &format!("{}+", &KEY[..42]),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9",
        ] {
            assert_eq!(parse(bad.as_bytes()), Presented::Malformed, "{bad}");
        }
    }

    #[test]
    fn every_spelling_is_removed_and_only_the_header_is_read() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("flowgate-session-key", KEY).unwrap();
        req.append_header("Flowgate_Session_Key", "x").unwrap();
        req.append_header("FLOWGATE.SESSION.KEY", "y").unwrap();
        req.append_header("Flowgate-Session-Keys", "kept").unwrap();
        assert!(matches!(take(&mut req), Presented::Key(_)));
        let left: Vec<&str> = req.headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(left, ["flowgate-session-keys"]);

        let mut twice = RequestHeader::build("GET", b"/", None).unwrap();
        twice.append_header(HEADER, KEY).unwrap();
        twice.append_header(HEADER, KEY).unwrap();
        assert_eq!(take(&mut twice), Presented::Malformed);
        assert!(twice.headers.is_empty());

        let mut other = RequestHeader::build("GET", b"/", None).unwrap();
        other.append_header("Flowgate_Session_Key", KEY).unwrap();
        assert_eq!(take(&mut other), Presented::Missing);
        assert!(other.headers.is_empty());
    }
}
