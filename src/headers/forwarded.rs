//! Client identity values, pure: trusted-proxy ranges, the `X-Forwarded-For` chain and the client
//! address it gives, request ids, RFC 7239 `Forwarded` elements.
//!
//! The client address of a request from a trusted proxy is the right-most address of the chain
//! (the proxy's own address appended) that is not itself a trusted proxy, as nginx's
//! `real_ip_recursive on` finds it. An entry that is not an IP address stops the walk: the
//! client address is then the trusted hop nearest to it, never a value flowgate cannot check.

use std::fmt;
use std::net::IpAddr;

/// Most chain entries examined from the right (a chain is bounded by the header size anyway;
/// more trusted hops than this is a misconfiguration, not a network).
pub const MAX_CHAIN_HOPS: usize = 64;

/// Longest request id kept from a trusted peer.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// An address range: `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a range could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrError {
    /// Not an IP address (before the `/`).
    Address,
    /// The prefix length is not a number within the family's width.
    Prefix,
    /// Bits after the prefix are set (`10.0.0.1/8`): probably not the range meant.
    HostBits,
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CidrError::Address => "is not an IP address or ADDRESS/PREFIX range",
            CidrError::Prefix => "has a prefix length beyond the address width (32 or 128)",
            CidrError::HostBits => "has bits set after the prefix length",
        })
    }
}

impl Cidr {
    /// Parses `ADDRESS` or `ADDRESS/PREFIX`.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| CidrError::Address)?;
        let width = width(network);
        let prefix = match prefix {
            None => width,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= width => n,
                _ => return Err(CidrError::Prefix),
            },
        };
        let cidr = Cidr { network, prefix };
        if bits(network) & !mask(prefix, width) != 0 {
            return Err(CidrError::HostBits);
        }
        Ok(cidr)
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        let m = mask(self.prefix, width(ip));
        bits(ip) & m == bits(self.network) & m
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        let full = if width == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        full & !(full >> prefix)
    }
}

/// The configured trusted proxies (`client_ip.trusted_proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// The list of ranges.
    pub fn new(ranges: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies(ranges)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// Whether no proxy is trusted (every chain is replaced).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The client address behind a trusted `peer`, from the `X-Forwarded-For` header lines it
    /// sent (in order): the right-most chain address that is not trusted; when every address is
    /// trusted, the left-most; when an entry is not an address, the trusted hop right of it.
    pub fn client_behind<'a>(&self, peer: IpAddr, chain: impl Iterator<Item = &'a str>) -> IpAddr {
        let mut lines: Vec<&str> = chain.collect();
        let mut client = peer;
        let mut hops = 0;
        while let Some(line) = lines.pop() {
            for entry in line.rsplit(',') {
                let entry = entry.trim();
                if entry.is_empty() {
                    continue;
                }
                if !self.contains(client) || hops == MAX_CHAIN_HOPS {
                    return client;
                }
                hops += 1;
                match parse_entry(entry) {
                    Some(ip) => client = ip,
                    None => return client,
                }
            }
        }
        client
    }
}

/// One chain entry: `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::7`, `[2001:db8::7]`,
/// `[2001:db8::7]:4711`; anything else (`unknown`, obfuscated ids) is `None`.
pub fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok());
        return port_ok.then(|| inside.parse::<IpAddr>().ok()).flatten();
    }
    let (addr, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A request id kept from a trusted peer: 1–128 characters of `[A-Za-z0-9._:-]`.
pub fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// 32 lowercase hex characters for 16 random bytes.
pub fn request_id_hex(bytes: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// A `Host` value that may be passed on as `X-Forwarded-Host`: a host name or address with an
/// optional port, nothing else (no spaces, commas, quotes or userinfo).
pub fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// One RFC 7239 `Forwarded` element for this hop: `for=…;host=…;proto=…` (IPv6 and hosts with a
/// port quoted, as the RFC's grammar requires).
pub fn forwarded_element(client: Option<IpAddr>, host: Option<&str>, proto: &str) -> String {
    let mut out = String::with_capacity(64);
    match client {
        Some(IpAddr::V4(v4)) => out.push_str(&format!("for={v4}")),
        Some(IpAddr::V6(v6)) => out.push_str(&format!("for=\"[{v6}]\"")),
        None => out.push_str("for=unknown"),
    }
    if let Some(host) = host {
        if host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        {
            out.push_str(&format!(";host={host}"));
        } else {
            out.push_str(&format!(";host=\"{host}\""));
        }
    }
    out.push_str(&format!(";proto={proto}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let lan = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(lan.contains(ip("10.255.1.2")));
        assert!(!lan.contains(ip("11.0.0.1")));
        assert!(lan.contains(ip("::ffff:10.1.2.3")));
        let one = Cidr::parse("192.0.2.7").unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        assert_eq!(Cidr::parse("10.0.0.1/8"), Err(CidrError::HostBits));
        assert_eq!(Cidr::parse("10.0.0.0/33"), Err(CidrError::Prefix));
        assert_eq!(Cidr::parse("10.0.0.0/x"), Err(CidrError::Prefix));
        assert_eq!(Cidr::parse("lan"), Err(CidrError::Address));
        assert_eq!(lan.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn chain_entries() {
        for (entry, want) in [
            ("192.0.2.7", Some("192.0.2.7")),
            ("192.0.2.7:4711", Some("192.0.2.7")),
            ("2001:db8::7", Some("2001:db8::7")),
            ("[2001:db8::7]", Some("2001:db8::7")),
            ("[2001:db8::7]:4711", Some("2001:db8::7")),
            ("::ffff:192.0.2.7", Some("192.0.2.7")),
            ("unknown", None),
            ("_hidden", None),
            ("[2001:db8::7]x", None),
            ("192.0.2.7:port", None),
            ("", None),
        ] {
            assert_eq!(parse_entry(entry), want.map(ip), "{entry}");
        }
    }

    #[test]
    fn client_behind_trusted_proxies() {
        let t = TrustedProxies::new(vec![
            Cidr::parse("10.0.0.0/8").unwrap(),
            Cidr::parse("127.0.0.1").unwrap(),
        ]);
        let peer = ip("127.0.0.1");
        let find = |lines: &[&str]| t.client_behind(peer, lines.iter().copied());
        assert_eq!(find(&[]), peer);
        assert_eq!(find(&["203.0.113.7"]), ip("203.0.113.7"));
        // The right-most untrusted: the forged left part is never taken.
        assert_eq!(find(&["6.6.6.6, 203.0.113.7, 10.1.1.1"]), ip("203.0.113.7"));
        assert_eq!(
            find(&["6.6.6.6", "203.0.113.7", "10.1.1.1, 10.2.2.2"]),
            ip("203.0.113.7")
        );
        // All trusted: the left-most.
        assert_eq!(find(&["10.9.9.9, 10.1.1.1"]), ip("10.9.9.9"));
        // Garbage stops the walk at the trusted hop right of it.
        assert_eq!(find(&["203.0.113.7, unknown, 10.1.1.1"]), ip("10.1.1.1"));
        assert_eq!(find(&[" , 203.0.113.7 ,, "]), ip("203.0.113.7"));
        // An untrusted peer is the client whatever it says.
        assert_eq!(
            t.client_behind(ip("198.51.100.1"), ["203.0.113.7"].into_iter()),
            ip("198.51.100.1")
        );
        let long = vec!["10.0.0.1"; 1000].join(",");
        assert_eq!(find(&[long.as_str()]), ip("10.0.0.1"));
    }

    #[test]
    fn request_ids_hosts_and_forwarded() {
        assert!(is_valid_request_id("abc-1.2_3:4"));
        assert!(is_valid_request_id(&"a".repeat(128)));
        for bad in ["", "a b", "a\"b", "é", "a,b"] {
            assert!(!is_valid_request_id(bad), "{bad}");
        }
        assert!(!is_valid_request_id(&"a".repeat(129)));
        assert_eq!(request_id_hex(&[0xab; 16]), "ab".repeat(16));
        assert!(is_valid_host("chat.example.com:8443") && is_valid_host("[::1]:80"));
        assert!(!is_valid_host("a b") && !is_valid_host("u@h") && !is_valid_host(""));
        assert_eq!(
            forwarded_element(Some(ip("203.0.113.7")), Some("chat.example.com"), "http"),
            "for=203.0.113.7;host=chat.example.com;proto=http"
        );
        assert_eq!(
            forwarded_element(Some(ip("2001:db8::7")), Some("h:8080"), "https"),
            "for=\"[2001:db8::7]\";host=\"h:8080\";proto=https"
        );
        assert_eq!(
            forwarded_element(None, None, "http"),
            "for=unknown;proto=http"
        );
    }
}
