//! PROXY protocol v1/v2 on the listener: an L4 load balancer in front puts the client's address
//! in a header before the first byte of HTTP. It is read once per connection, before anything
//! else, and the address it names becomes the connection's peer address — what
//! `Session::client_addr()` reports to every phase, for every request on the connection.
//!
//! Plaintext connections are read here by the connection front; TLS listeners read the header
//! before the handshake through [`ProxyHeaderBeforeTls`].

use std::net::SocketAddr;

use async_trait::async_trait;
use bytes::BytesMut;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest, UniqueID};
use proxy_header::{ParseConfig, ProxyHeader};
use tokio::io::AsyncReadExt;

/// A v1 header is at most 107 bytes; a v2 header is 16 bytes plus its length field. Anything
/// larger than this is refused rather than buffered.
const MAX_HEADER: usize = 16 + 512;

/// Why a connection's PROXY header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyHeaderError {
    /// The connection closed (or failed) before sending a byte: nothing to refuse.
    Closed,
    /// The bytes are not a PROXY v1 or v2 header (or stop before one is complete).
    Invalid,
}

/// Reads one PROXY header from the start of `l4`, puts back whatever followed it, and makes
/// the source address it names the stream's peer address. A LOCAL (v2) or UNKNOWN (v1) header —
/// a load balancer's own health check — keeps the socket's address.
pub(crate) async fn accept(l4: &mut L4Stream) -> Result<(), ProxyHeaderError> {
    let (source, rest) = read_header(l4).await?;
    l4.rewind(&rest);
    if let Some(source) = source {
        let digest = SocketDigest::from_raw_fd(l4.id());
        // A fresh digest: its peer address cell is empty, so this set cannot fail.
        let _ = digest.peer_addr.set(Some(PeerAddr::Inet(source)));
        l4.set_socket_digest(digest);
    }
    Ok(())
}

/// Reads until the parser has a whole header, never more than it needs to decide; returns the
/// proxied source and the bytes read past the header.
async fn read_header(
    l4: &mut L4Stream,
) -> Result<(Option<SocketAddr>, BytesMut), ProxyHeaderError> {
    let mut buf = BytesMut::with_capacity(256);
    loop {
        match parse(&buf) {
            Parsed::Header(source, used) => {
                let rest = buf.split_off(used);
                return Ok((source, rest));
            }
            Parsed::Incomplete if buf.len() < MAX_HEADER => {
                buf.reserve(256);
                match l4.read_buf(&mut buf).await {
                    Ok(0) | Err(_) if buf.is_empty() => return Err(ProxyHeaderError::Closed),
                    Ok(0) | Err(_) => return Err(ProxyHeaderError::Invalid),
                    Ok(_) => {}
                }
            }
            Parsed::Incomplete | Parsed::Invalid => return Err(ProxyHeaderError::Invalid),
        }
    }
}

/// What the bytes so far are.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A header naming this source (`None`: LOCAL/UNKNOWN), `usize` bytes long.
    Header(Option<SocketAddr>, usize),
    /// A header may still complete with more bytes.
    Incomplete,
    /// Not a PROXY header.
    Invalid,
}

fn parse(buf: &[u8]) -> Parsed {
    let config = ParseConfig {
        include_tlvs: false,
        ..ParseConfig::default()
    };
    match ProxyHeader::parse(buf, config) {
        Ok((header, used)) => Parsed::Header(header.proxied_address().map(|a| a.source), used),
        Err(proxy_header::Error::BufferTooShort) => Parsed::Incomplete,
        Err(_) => Parsed::Invalid,
    }
}

/// The same header on a TLS listener, read between accept and the TLS handshake (Pingora calls
/// this hook only for TLS endpoints; plaintext ones are handled by the connection front).
#[derive(Debug)]
pub(crate) struct ProxyHeaderBeforeTls;

#[async_trait]
impl pingora::listeners::PreTlsProcess for ProxyHeaderBeforeTls {
    async fn process(&self, stream: &mut L4Stream) -> pingora::Result<()> {
        accept(stream).await.map_err(|_| {
            pingora::Error::explain(
                pingora::ErrorType::InvalidHTTPHeader,
                "missing or invalid PROXY header",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_name_the_source() {
        let v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 80\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(v1),
            Parsed::Header(Some("203.0.113.7:51000".parse().unwrap()), 43)
        );
        assert_eq!(parse(&v1[..20]), Parsed::Incomplete);
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Parsed::Header(None, 15));
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
        v2.extend_from_slice(&[198, 51, 100, 9, 192, 0, 2, 1, 0xcb, 0x20, 0, 80]);
        assert_eq!(
            parse(&v2),
            Parsed::Header(Some("198.51.100.9:52000".parse().unwrap()), 28)
        );
        let local = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
        assert_eq!(parse(local), Parsed::Header(None, 16));
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Parsed::Invalid);
        assert_eq!(parse(b"PROXY NOPE 1 2 3 4\r\n"), Parsed::Invalid);
        assert_eq!(parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Parsed::Invalid);
    }
}
