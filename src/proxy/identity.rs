//! Client identity: who the client is (the real client address), the request id, and the
//! `X-Forwarded-*`, `X-Real-IP`, `X-Request-Id` (and optional RFC 7239 `Forwarded`) headers
//! the backend receives.
//!
//! A peer inside `client_ip.trusted_proxies` (a load balancer) has its chain kept: the client
//! address is the right-most untrusted address of its `X-Forwarded-For` (or, without a chain,
//! its `X-Real-IP`), its request id, `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded`
//! are passed on when valid. From anyone else all of them are replaced: the client address is
//! the peer (the PROXY-protocol source when the listener reads one). Either way every client
//! spelling of these headers (`X_Forwarded_For`, `x.real.ip`, any case) is removed first, as
//! spoofed trusted headers are, so nothing reaches the backend but what is decided here.

use std::net::IpAddr;

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use crate::config::ClientIpConfig;
use crate::headers::forwarded::{
    TrustedProxies, forwarded_element, is_valid_host, is_valid_request_id, parse_entry,
    request_id_hex,
};
use crate::headers::spoof::fold;

/// RFC 7239's header.
const FORWARDED: &str = "Forwarded";

/// The configured names and trusted proxies, built once per runtime.
#[derive(Debug, Clone)]
pub(crate) struct ClientIp {
    trusted: TrustedProxies,
    /// X-Real-IP, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id,
    /// Forwarded: spelt as configured.
    names: [Bytes; 6],
    /// The same names lower-cased with every separator folded, for spelling-blind stripping.
    folded: [Box<[u8]>; 6],
    forwarded: bool,
}

const REAL_IP: usize = 0;
const FORWARDED_FOR: usize = 1;
const PROTO: usize = 2;
const HOST: usize = 3;
const REQUEST_ID: usize = 4;
const FORWARDED_RFC: usize = 5;

impl ClientIp {
    /// From the validated `client_ip:` section.
    pub(crate) fn new(c: &ClientIpConfig) -> ClientIp {
        let names = [
            c.real_ip_header.as_str(),
            &c.forwarded_for_header,
            &c.forwarded_proto_header,
            &c.forwarded_host_header,
            &c.request_id_header,
            FORWARDED,
        ];
        ClientIp {
            trusted: TrustedProxies::new(c.trusted_proxies.clone()),
            names: names.map(|n| Bytes::from(n.to_owned())),
            folded: names.map(|n| n.bytes().map(fold).collect()),
            forwarded: c.forwarded,
        }
    }

    fn get<'r>(&self, req: &'r RequestHeader, which: usize) -> impl Iterator<Item = &'r str> {
        let name = std::str::from_utf8(&self.names[which]).unwrap_or_default();
        req.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn single<'r>(&self, req: &'r RequestHeader, which: usize) -> Option<&'r str> {
        let mut values = self.get(req, which);
        let first = values.next();
        values.next().is_none().then_some(first).flatten()
    }

    /// Removes every spelling of the identity headers; returns how many values went.
    fn strip(&self, req: &mut RequestHeader) -> usize {
        let is_ours = |name: &[u8]| {
            self.folded.iter().any(|f| {
                f.len() == name.len() && name.iter().zip(f.iter()).all(|(a, b)| fold(*a) == *b)
            })
        };
        let names: Vec<http::HeaderName> = req
            .headers
            .keys()
            .filter(|n| is_ours(n.as_str().as_bytes()))
            .cloned()
            .collect();
        let mut removed = 0;
        for name in names {
            removed += req.headers.get_all(&name).iter().count();
            req.remove_header(&name);
        }
        removed
    }
}

/// Who sent one request and what the backend is told about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientIdentity {
    /// The connection's peer (or PROXY-protocol source); `None` on a Unix socket.
    pub(crate) peer: Option<IpAddr>,
    /// The real client address (see the module docs).
    pub(crate) client: Option<IpAddr>,
    /// The request id sent upstream and logged.
    pub(crate) request_id: String,
    /// `client`, formatted.
    client_text: Option<String>,
    forwarded_for: Option<String>,
    proto: &'static str,
    kept_host: Option<String>,
    prior_forwarded: Option<String>,
    tls: bool,
}

/// Decides the request's identity from its connection and (trusted peers only) its headers,
/// then removes every client spelling of the identity headers. Runs right after spoof
/// stripping, before anything reads the request.
pub(crate) fn resolve(session: &mut Session, c: &ClientIp) -> ClientIdentity {
    let peer = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_canonical());
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    let req = session.req_header_mut();
    let mut id = ClientIdentity {
        peer,
        client: peer,
        proto: if tls { "https" } else { "http" },
        tls,
        ..ClientIdentity::default()
    };
    if let Some(peer) = peer.filter(|p| c.trusted.contains(*p)) {
        let chain: Vec<&str> = c.get(req, FORWARDED_FOR).collect();
        if chain.is_empty() {
            id.client = c.single(req, REAL_IP).and_then(parse_entry).or(Some(peer));
        } else {
            id.client = Some(c.trusted.client_behind(peer, chain.iter().copied()));
            id.forwarded_for = Some(format!("{}, {peer}", chain.join(", ")));
        }
        id.request_id = c
            .single(req, REQUEST_ID)
            .filter(|r| is_valid_request_id(r))
            .map(str::to_owned)
            .unwrap_or_default();
        match c.single(req, PROTO) {
            Some(p) if p.eq_ignore_ascii_case("https") => id.proto = "https",
            Some(p) if p.eq_ignore_ascii_case("http") => id.proto = "http",
            _ => {}
        }
        id.kept_host = c
            .single(req, HOST)
            .filter(|h| is_valid_host(h))
            .map(str::to_owned);
        let prior: Vec<&str> = c.get(req, FORWARDED_RFC).collect();
        id.prior_forwarded = (!prior.is_empty()).then(|| prior.join(", "));
    }
    // Formatted once: the peer is usually also the client, and both headers carry it.
    let peer_text = peer.map(|p| p.to_string());
    id.client_text = if id.client == peer {
        peer_text.clone()
    } else {
        id.client.map(|c| c.to_string())
    };
    if id.forwarded_for.is_none() {
        id.forwarded_for = peer_text;
    }
    if id.request_id.is_empty() {
        id.request_id = new_request_id();
    }
    c.strip(req);
    id
}

impl ClientIdentity {
    /// The `X-Real-IP` value sent (and signed): the client address, `""` without one.
    pub(crate) fn real_ip(&self) -> Option<&str> {
        self.client_text.as_deref()
    }
}

/// Writes the identity headers onto the upstream request. `host` is the `Host` value the
/// upstream request carries (the original host unless a trusted proxy said otherwise).
pub(crate) fn apply(
    c: &ClientIp,
    id: &ClientIdentity,
    real_ip: Option<&str>,
    upstream: &mut RequestHeader,
) -> Result<()> {
    let host = upstream
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_valid_host(h))
        .map(str::to_owned);
    if let Some(v) = &id.forwarded_for {
        upstream.insert_header(c.names[FORWARDED_FOR].clone(), v.as_str())?;
    }
    if let Some(v) = real_ip {
        upstream.insert_header(c.names[REAL_IP].clone(), v)?;
    }
    upstream.insert_header(c.names[PROTO].clone(), id.proto)?;
    if let Some(v) = id.kept_host.as_ref().or(host.as_ref()) {
        upstream.insert_header(c.names[HOST].clone(), v.as_str())?;
    }
    upstream.insert_header(c.names[REQUEST_ID].clone(), id.request_id.as_str())?;
    if c.forwarded {
        let listener = if id.tls { "https" } else { "http" };
        let hop = forwarded_element(id.peer, host.as_deref(), listener);
        let value = match &id.prior_forwarded {
            Some(prior) => format!("{prior}, {hop}"),
            None => hop,
        };
        upstream.insert_header(c.names[FORWARDED_RFC].clone(), value)?;
    }
    Ok(())
}

/// 128 random bits as 32 lowercase hex characters; the randomness is read in 4 KiB blocks, so
/// one system call serves 256 requests.
fn new_request_id() -> String {
    use std::cell::RefCell;
    const BLOCK: usize = 4096;
    thread_local! {
        static POOL: RefCell<(Box<[u8; BLOCK]>, usize)> = RefCell::new((Box::new([0; BLOCK]), BLOCK));
    }
    let mut id = [0u8; 16];
    POOL.with(|pool| {
        let Ok(mut pool) = pool.try_borrow_mut() else {
            let _ = getrandom::fill(&mut id);
            return;
        };
        let (bytes, used) = &mut *pool;
        if *used + 16 > BLOCK {
            if getrandom::fill(&mut bytes[..]).is_err() {
                fallback(&mut id);
                return;
            }
            *used = 0;
        }
        id.copy_from_slice(&bytes[*used..*used + 16]);
        *used += 16;
    });
    request_id_hex(&id)
}

/// Unique within the process when the system has no randomness to give (never on Linux):
/// the clock, the process id and a counter.
fn fallback(id: &mut [u8; 16]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) ^ u64::from(std::process::id()) << 40;
    id[..8].copy_from_slice(&nanos.to_be_bytes());
    id[8..].copy_from_slice(&n.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn request_ids_are_fresh_hex() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|i| i.len() == 32 && is_valid_request_id(i)));
    }

    #[test]
    fn every_spelling_is_stripped_and_nothing_else() {
        let c = ClientIp::new(&Config::default().client_ip);
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (n, v) in [
            ("X-Forwarded-For", "6.6.6.6"),
            ("x_forwarded_for", "6.6.6.6"),
            ("X-REAL-IP", "6.6.6.6"),
            ("x.real.ip", "6.6.6.6"),
            ("X-Request-Id", "evil"),
            ("x-forwarded-proto", "https"),
            ("X_Forwarded_Host", "evil"),
            ("Forwarded", "for=6.6.6.6"),
            ("X-Forwarded-Server", "kept"),
            ("X-Real-IPs", "kept"),
            ("Accept", "*/*"),
        ] {
            req.append_header(n.to_owned(), v).unwrap();
        }
        assert_eq!(c.strip(&mut req), 8);
        let mut left: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-forwarded-server", "x-real-ips"]);
    }
}
