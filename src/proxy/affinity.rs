//! What `balance: session` hashes for a request: the site and session ids of a widget route, or
//! else the client address. Pure: the query, the route and the address in, the key out.
//!
//! The key is made of the ids as the backend reads them (percent-decoded, validated), so a
//! widget and a Socket.IO client that encode the same id differently still meet on one node.
//! The key is never logged: it is a visitor's session id.

use std::net::IpAddr;

use super::params::{self, MAX_ID_LEN};
use crate::config::ParamNames;
use crate::metrics::{RouteKind, UpstreamPick};

/// Room for a site id, a separator and a session id, each id at most [`MAX_ID_LEN`] bytes.
const KEY_CAP: usize = 2 * MAX_ID_LEN + 1;

/// The bytes hashed onto the ring, on the stack (no allocation per request).
pub(crate) struct Key {
    buf: [u8; KEY_CAP],
    len: usize,
}

impl Key {
    fn new() -> Key {
        Key {
            buf: [0; KEY_CAP],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let end = (self.len + bytes.len()).min(KEY_CAP);
        self.buf[self.len..end].copy_from_slice(&bytes[..end - self.len]);
        self.len = end;
    }

    /// The key's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The key of a request and what it was made of: `siteid` + `jsSessionId` (by their configured
/// names) on an init or session route when both are present and valid; the client address
/// otherwise (empty when there is none, on a Unix socket).
pub(crate) fn key(
    route: RouteKind,
    query: Option<&str>,
    names: &ParamNames,
    client: Option<IpAddr>,
) -> (Key, UpstreamPick) {
    let mut key = Key::new();
    if route != RouteKind::Other
        && let Some(query) = query
    {
        let raw = params::find(query, names);
        if let (Some(site), Some(session)) = (raw.site, raw.session)
            && let (Ok(site), Ok(session)) = (params::decode_id(site), params::decode_id(session))
        {
            // Ids are `[A-Za-z0-9._-]`: a newline cannot be part of either.
            key.push(site.as_bytes());
            key.push(b"\n");
            key.push(session.as_bytes());
            return (key, UpstreamPick::Session);
        }
    }
    match client.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => key.push(&v4.octets()),
        Some(IpAddr::V6(v6)) => key.push(&v6.octets()),
        None => {}
    }
    (key, UpstreamPick::ClientAddress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn names() -> ParamNames {
        Config::default().params
    }

    fn of(route: RouteKind, query: &str, client: Option<IpAddr>) -> (Vec<u8>, UpstreamPick) {
        let (k, how) = key(route, Some(query), &names(), client);
        (k.bytes().to_vec(), how)
    }

    #[test]
    fn widget_routes_hash_on_both_ids_as_decoded() {
        let client = Some("192.0.2.1".parse().unwrap());
        let want = (b"s1\nj-2".to_vec(), UpstreamPick::Session);
        for route in [RouteKind::Init, RouteKind::Session] {
            assert_eq!(of(route, "siteid=s1&jsSessionId=j-2", client), want);
            assert_eq!(
                of(route, "EIO=4&jsSessionId=j%2D2&siteid=%731&t=x", client),
                want
            );
        }
    }

    #[test]
    fn without_both_valid_ids_the_client_address_is_the_key() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let want = (vec![192, 0, 2, 1], UpstreamPick::ClientAddress);
        for (route, query) in [
            (RouteKind::Session, "siteid=s"),
            (RouteKind::Session, "jsSessionId=j"),
            (RouteKind::Init, "siteid=s&jsSessionId=bad%20id"),
            (RouteKind::Init, ""),
            // Other routes are not the widget's: their ids mean nothing to flowgate.
            (RouteKind::Other, "siteid=s&jsSessionId=j"),
        ] {
            assert_eq!(of(route, query, Some(v4)), want, "{route:?} {query}");
        }
        // An IPv4 client seen as an IPv4-mapped IPv6 address is the same client.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(of(RouteKind::Other, "", Some(mapped)), want);
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        let (k, how) = of(RouteKind::Other, "", Some(v6));
        assert_eq!((k.len(), how), (16, UpstreamPick::ClientAddress));
        let (k, _) = key(RouteKind::Session, None, &names(), None);
        assert!(k.bytes().is_empty());
    }

    #[test]
    fn the_longest_ids_fit() {
        let long = "a".repeat(MAX_ID_LEN);
        let query = format!("siteid={long}&jsSessionId={long}");
        let (k, how) = of(RouteKind::Session, &query, None);
        assert_eq!((k.len(), how), (KEY_CAP, UpstreamPick::Session));
    }
}
