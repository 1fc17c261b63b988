//! The `Signature` header: `t=<unix seconds>,v2=<lowercase hex HMAC-SHA256>` (and `v1=` beside it
//! during a transition), so the backend can tell flowgate's requests from forged or replayed ones.
//!
//! The signed (canonical) strings, with `\n` between the parts and none at the end:
//!
//! ```text
//! v2                v1
//! <t>               <t>
//! <request id>      <path>
//! <method>          <Site>
//! <host>            <Session>
//! <target>          <Status>
//! <client address>  <Context>
//! <Site>            <Prefill>
//! <Session>
//! <Status>
//! <Context>
//! <Prefill>
//! ```
//!
//! - `request id`: the `X-Request-Id` value sent; `method`: as forwarded (`GET`); `host`: the
//!   `Host` value sent (`""` when there is none, as for an HTTP/1.0 client);
//! - `target`: the origin-form request target as forwarded: the path, then `?` and the query when
//!   the query is not empty (the empty query `/x?` signs as `/x`); `path` (v1) is the path alone;
//! - `client address`: the `X-Real-IP` value sent (`""` when there is none);
//! - each trusted header part is the exact value sent, `""` when the header is absent.
//!
//! No part can contain `\n` (header values are validated ASCII; a target has no line breaks), so
//! a string splits back unambiguously. The MAC is HMAC-SHA256 keyed with the secret's bytes;
//! flowgate signs with the first configured secret and a verifier accepts any of its list.

use std::fmt;
use std::fmt::Write as _;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Length of the hex MAC in a `v1=` or `v2=` field.
pub const MAC_HEX_LEN: usize = 64;

/// A version of the canonical string (and the name of its field in the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Path and trusted headers only (SPEC §4 before round 2); kept for transitions.
    V1,
    /// The whole request: method, host, target, client address, request id, trusted headers.
    V2,
}

impl Version {
    /// The tag that starts the canonical string and names the field: `v1`, `v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }

    /// Parses `v1` / `v2`.
    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "v1" => Some(Version::V1),
            "v2" => Some(Version::V2),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The versions flowgate emits (`signing.versions`); never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    v1: bool,
    v2: bool,
}

impl Default for Versions {
    /// `[v2]`.
    fn default() -> Self {
        Versions {
            v1: false,
            v2: true,
        }
    }
}

impl Versions {
    /// The set of `list`; `None` when it is empty.
    pub fn new(list: &[Version]) -> Option<Versions> {
        let v = Versions {
            v1: list.contains(&Version::V1),
            v2: list.contains(&Version::V2),
        };
        (v.v1 || v.v2).then_some(v)
    }

    /// Whether `version` is emitted.
    pub fn contains(self, version: Version) -> bool {
        match version {
            Version::V1 => self.v1,
            Version::V2 => self.v2,
        }
    }

    /// The emitted versions, oldest first (the order of the header's fields).
    pub fn iter(self) -> impl Iterator<Item = Version> {
        [Version::V1, Version::V2]
            .into_iter()
            .filter(move |v| self.contains(*v))
    }
}

/// What a signature covers, exactly as forwarded (`""` for an absent header).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignedFields<'a> {
    /// The request method (`GET`).
    pub method: &'a str,
    /// The `Host` value.
    pub host: &'a str,
    /// The origin-form target: path, and `?query` when the query is not empty.
    pub target: &'a str,
    /// The request id header value.
    pub request_id: &'a str,
    /// The client address header value.
    pub client_ip: &'a str,
    /// `Site` header value.
    pub site: &'a str,
    /// `Session` header value.
    pub session: &'a str,
    /// `Status` header value.
    pub status: &'a str,
    /// `Context` header value.
    pub context: &'a str,
    /// `Prefill` header value.
    pub prefill: &'a str,
}

impl<'a> SignedFields<'a> {
    /// The path part of the target (what v1 signs).
    pub fn path(&self) -> &'a str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The parts after `<version>\n<t>`, in order.
    fn parts(&self, version: Version) -> impl Iterator<Item = &'a str> {
        let (head, len): ([&'a str; 5], usize) = match version {
            Version::V1 => ([self.path(), "", "", "", ""], 1),
            Version::V2 => (
                [
                    self.request_id,
                    self.method,
                    self.host,
                    self.target,
                    self.client_ip,
                ],
                5,
            ),
        };
        let tail = [
            self.site,
            self.session,
            self.status,
            self.context,
            self.prefill,
        ];
        head.into_iter().take(len).chain(tail)
    }
}

/// The canonical target for a received path and query: `path`, plus `?query` when the query is
/// not empty. `target` may carry the query (`/x?a=1`) or not.
pub fn canonical_target(target: &str) -> &str {
    match target.split_once('?') {
        Some((path, "")) => path,
        _ => target,
    }
}

/// The canonical string of `version` for `t` and `fields` (what is MACed; for documentation,
/// tests and debugging).
pub fn canonical_string(version: Version, t: u64, fields: &SignedFields<'_>) -> String {
    let mut out = format!("{version}\n{t}");
    for part in fields.parts(version) {
        out.push('\n');
        out.push_str(part);
    }
    out
}

/// One secret, keyed once: cheap to clone and to use per request.
#[derive(Clone)]
pub struct Key(HmacSha256);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// A key for the secret's bytes (any length: checks belong to whoever loads secrets).
    pub fn new(secret: &[u8]) -> Key {
        // HMAC takes keys of any length; the error arm is unreachable for Hmac<Sha256>.
        Key(HmacSha256::new_from_slice(secret)
            .unwrap_or_else(|_| HmacSha256::new(&Default::default())))
    }

    /// The raw 32-byte MAC of the canonical string of `version`.
    pub fn mac(&self, version: Version, t: u64, fields: &SignedFields<'_>) -> [u8; 32] {
        let mut mac = self.0.clone();
        let mut digits = [0u8; 20];
        mac.update(version.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(decimal(t, &mut digits));
        for part in fields.parts(version) {
            mac.update(b"\n");
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

/// Signs with one secret and a set of versions.
#[derive(Debug, Clone)]
pub struct Signer {
    key: Key,
    versions: Versions,
}

impl Signer {
    /// A signer keyed with `secret` emitting `versions`.
    pub fn new(secret: &Secret, versions: Versions) -> Self {
        Signer {
            key: Key::new(secret.expose()),
            versions,
        }
    }

    /// The versions this signer emits.
    pub fn versions(&self) -> Versions {
        self.versions
    }

    /// The full header value `t=<t>,v2=<hex>` (`t=<t>,v1=<hex>,v2=<hex>` with both versions).
    pub fn header_value(&self, t: u64, fields: &SignedFields<'_>) -> String {
        let mut out = String::with_capacity(20 + 68 * 2);
        let _ = write!(out, "t={t}");
        for version in self.versions.iter() {
            let _ = write!(out, ",{version}=");
            push_hex(&self.key.mac(version, t, fields), &mut out);
        }
        out
    }
}

/// `t` in decimal, written into the tail of `buf` (no allocation on the hot path).
fn decimal(mut t: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (t % 10) as u8;
        t /= 10;
        if t == 0 {
            return &buf[i..];
        }
    }
}

fn push_hex(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

/// A parsed `Signature` header value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedSignature {
    /// The `t=` timestamp (unix seconds).
    pub t: u64,
    /// The `v1=` MAC, decoded.
    pub v1: Option<[u8; 32]>,
    /// The `v2=` MAC, decoded.
    pub v2: Option<[u8; 32]>,
    /// Whether a field of another version (`v3=`, …) was present.
    pub other_versions: bool,
}

impl ParsedSignature {
    /// The MAC of `version`, if present.
    pub fn mac(&self, version: Version) -> Option<&[u8; 32]> {
        match version {
            Version::V1 => self.v1.as_ref(),
            Version::V2 => self.v2.as_ref(),
        }
    }
}

/// Why a `Signature` header value could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    /// No `t=` field, more than one, or not a whole number.
    Timestamp,
    /// No version field at all (`v1=`, `v2=`, …).
    NoMac,
    /// A `v1=` or `v2=` field that is not 64 hex digits, or one that occurs twice.
    BadMac,
}

impl FormatError {
    /// A short machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            FormatError::Timestamp => "timestamp",
            FormatError::NoMac => "no_mac",
            FormatError::BadMac => "bad_mac",
        }
    }
}

/// Parses `t=<digits>,v1=<hex>,v2=<hex>`: comma-separated `key=value` items, `t` exactly once,
/// each known version at most once, unknown keys ignored (room for later versions).
pub fn parse(value: &str) -> Result<ParsedSignature, FormatError> {
    let mut t = None;
    let mut out = ParsedSignature::default();
    for field in value.split(',') {
        let Some((name, val)) = field.trim().split_once('=') else {
            continue;
        };
        let slot = match name {
            "t" => {
                let digits = !val.is_empty() && val.bytes().all(|b| b.is_ascii_digit());
                if t.is_some() || !digits {
                    return Err(FormatError::Timestamp);
                }
                t = Some(val.parse::<u64>().map_err(|_| FormatError::Timestamp)?);
                continue;
            }
            "v1" => &mut out.v1,
            "v2" => &mut out.v2,
            _ => {
                out.other_versions |= is_version_name(name);
                continue;
            }
        };
        if slot.is_some() {
            return Err(FormatError::BadMac);
        }
        *slot = Some(decode_hex(val).ok_or(FormatError::BadMac)?);
    }
    out.t = t.ok_or(FormatError::Timestamp)?;
    if out.v1.is_none() && out.v2.is_none() && !out.other_versions {
        return Err(FormatError::NoMac);
    }
    Ok(out)
}

/// `v` followed by digits: a signature version's field name.
fn is_version_name(name: &str) -> bool {
    name.strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn decode_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != MAC_HEX_LEN {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// True when any of `keys` produced `mac` over the canonical string of `version`; every key is
/// tried and each comparison is constant-time.
pub fn matches(
    keys: &[Key],
    version: Version,
    t: u64,
    mac: &[u8; 32],
    fields: &SignedFields<'_>,
) -> bool {
    let mut found = subtle::Choice::from(0);
    for key in keys {
        found |= key.mac(version, t, fields).ct_eq(mac);
    }
    found.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> SignedFields<'static> {
        SignedFields {
            method: "GET",
            host: "chat.example.com",
            target: "/public_FlowWidget/init?siteid=site1&jsSessionId=sess-1",
            request_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            client_ip: "203.0.113.7",
            site: "site1",
            session: "sess-1",
            status: "accepted",
            context: "eyJhIjoiMSJ9",
            prefill: "e30=",
        }
    }

    fn hmac_hex(key: &[u8], msg: &str) -> String {
        let mut direct = HmacSha256::new_from_slice(key).unwrap();
        direct.update(msg.as_bytes());
        let mut hex = String::new();
        push_hex(&direct.finalize().into_bytes(), &mut hex);
        hex
    }

    #[test]
    fn canonical_strings_are_the_documented_layouts() {
        assert_eq!(
            canonical_string(Version::V2, 1_700_000_000, &fields()),
            "v2\n1700000000\n4bf92f3577b34da6a3ce929d0e0e4736\nGET\nchat.example.com\n\
             /public_FlowWidget/init?siteid=site1&jsSessionId=sess-1\n203.0.113.7\n\
             site1\nsess-1\naccepted\neyJhIjoiMSJ9\ne30="
        );
        assert_eq!(
            canonical_string(Version::V1, 1_700_000_000, &fields()),
            "v1\n1700000000\n/public_FlowWidget/init\nsite1\nsess-1\naccepted\neyJhIjoiMSJ9\ne30="
        );
        let empty = SignedFields::default();
        assert_eq!(
            canonical_string(Version::V1, 5, &empty),
            "v1\n5\n\n\n\n\n\n"
        );
        assert_eq!(
            canonical_string(Version::V2, 5, &empty),
            format!("v2\n5{}", "\n".repeat(10))
        );
        assert_eq!(canonical_target("/x?"), "/x");
        assert_eq!(canonical_target("/x?a"), "/x?a");
        assert_eq!(canonical_target("/x"), "/x");
    }

    #[test]
    fn macs_equal_hmac_of_the_canonical_strings() {
        let secret = Secret::new("k".repeat(32));
        let both = Versions::new(&[Version::V2, Version::V1]).unwrap();
        let value = Signer::new(&secret, both).header_value(1_700_000_000, &fields());
        let v1 = hmac_hex(
            secret.expose(),
            &canonical_string(Version::V1, 1_700_000_000, &fields()),
        );
        let v2 = hmac_hex(
            secret.expose(),
            &canonical_string(Version::V2, 1_700_000_000, &fields()),
        );
        assert_eq!(value, format!("t=1700000000,v1={v1},v2={v2}"));
        let only_v2 =
            Signer::new(&secret, Versions::default()).header_value(1_700_000_000, &fields());
        assert_eq!(only_v2, format!("t=1700000000,v2={v2}"));
        assert_eq!(Versions::new(&[]), None);
    }

    /// The worked example of the README's trust section (and `/work/notes/signature-v2.md`):
    /// these numbers were also computed with `openssl dgst -sha256 -hmac` and Python's `hmac`.
    #[test]
    fn the_readme_worked_example() {
        let secret =
            Secret::new("3f1d9c0e7a5b4c2d8e6f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d");
        let fields = SignedFields {
            method: "GET",
            host: "chat.example.com",
            target: "/public_FlowWidget/init?siteid=site-12345&jsSessionId=sess-6f1c9a0e",
            request_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            client_ip: "203.0.113.7",
            site: "site-12345",
            session: "sess-6f1c9a0e",
            status: "accepted",
            context: "eyJhY2NvdW50X2lkIjoiVVNSLTg0OTIwIiwiaW1zX2VtYWlsIjoiamFuZUBleGFtcGxlLmNvbSJ9",
            prefill: "eyJ2aXNpdG9yX2VtYWlsIjoiamFuZUBleGFtcGxlLmNvbSIsImVtYWlsIjoiamFuZUBleGFtcGxlLmNvbSJ9",
        };
        let both = Versions::new(&[Version::V1, Version::V2]).unwrap();
        assert_eq!(
            Signer::new(&secret, both).header_value(1_767_225_600, &fields),
            "t=1767225600,\
             v1=8526d006a6e19dc3bd5168fc433373495fab3024b5cd3b6cb18c98b7fb664450,\
             v2=7e0283d66857ed8e9a19bd652ad7048e12d21ff4abd7292a25fc957cddadb7ab"
        );
    }

    #[test]
    fn decimal_covers_the_range() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(u64::MAX, &mut buf), u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn rfc4231_case_2_vector() {
        // Key "Jefe", data "what do ya want for nothing?" — checks the HMAC wiring itself.
        assert_eq!(
            hmac_hex(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn parse_round_trip_and_rejections() {
        let secret = Secret::new("k".repeat(32));
        let both = Versions::new(&[Version::V1, Version::V2]).unwrap();
        let parsed = parse(&Signer::new(&secret, both).header_value(42, &fields())).unwrap();
        assert_eq!(parsed.t, 42);
        let keys = [Key::new(secret.expose())];
        for v in [Version::V1, Version::V2] {
            assert!(matches(&keys, v, 42, parsed.mac(v).unwrap(), &fields()));
            let wrong = [Key::new(&[b'x'; 32])];
            assert!(!matches(&wrong, v, 42, parsed.mac(v).unwrap(), &fields()));
        }
        let mut other = fields();
        other.method = "POST";
        assert!(!matches(
            &keys,
            Version::V2,
            42,
            parsed.mac(Version::V2).unwrap(),
            &other
        ));
        // v1 does not cover the method: that is why v2 exists.
        assert!(matches(
            &keys,
            Version::V1,
            42,
            parsed.mac(Version::V1).unwrap(),
            &other
        ));

        let mac = "0".repeat(64);
        assert_eq!(parse("v2=00"), Err(FormatError::BadMac));
        assert_eq!(parse(&format!("v2={mac}")), Err(FormatError::Timestamp));
        assert_eq!(parse("t=1"), Err(FormatError::NoMac));
        assert_eq!(parse("t=1,x=2"), Err(FormatError::NoMac));
        assert_eq!(parse("t=-1,v2=x"), Err(FormatError::Timestamp));
        assert_eq!(parse("t=1,t=2,v2=x"), Err(FormatError::Timestamp));
        assert_eq!(
            parse(&format!("t=1,v2={mac},v2={mac}")),
            Err(FormatError::BadMac)
        );
        let future = parse(&format!("t=7,v3=zz,v2={mac}")).unwrap();
        assert!(future.other_versions && future.v2.is_some() && future.v1.is_none());
        assert!(parse("t=7,v9=whatever").unwrap().other_versions);
    }
}
