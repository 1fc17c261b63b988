//! The `Signature` header: `t=<unix seconds>,v1=<lowercase hex HMAC-SHA256>` over the trusted
//! headers, so the backend can tell flowgate's headers from forged ones.
//!
//! The signed (canonical) string is, with `\n` between the parts and none at the end:
//!
//! ```text
//! v1
//! <t>
//! <path>
//! <Site>
//! <Session>
//! <Status>
//! <Context>
//! <Prefill>
//! ```
//!
//! `path` is the request path exactly as forwarded, without the query; each header part is the
//! exact value sent, empty when the header is absent. No part can contain `\n` (header values are
//! ASCII without line breaks; a path has none), so the string splits back unambiguously.
//! The MAC is HMAC-SHA256 keyed with the secret's bytes; flowgate signs with the first configured
//! secret and a verifier accepts any of its list (rotation).

use std::fmt::Write as _;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Version tag that starts the canonical string and names the `v1=` field.
pub const VERSION: &str = "v1";
/// Length of the hex MAC in a `v1=` field.
pub const MAC_HEX_LEN: usize = 64;

/// The values a signature covers, exactly as sent (`""` for an absent header).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignedFields<'a> {
    /// Request path without the query, exactly as forwarded.
    pub path: &'a str,
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

impl SignedFields<'_> {
    fn parts(&self) -> [&str; 6] {
        [
            self.path,
            self.site,
            self.session,
            self.status,
            self.context,
            self.prefill,
        ]
    }
}

/// The canonical string for `t` and `fields` (what is MACed; for documentation and debugging).
pub fn canonical_string(t: u64, fields: &SignedFields<'_>) -> String {
    let mut out = format!("{VERSION}\n{t}");
    for part in fields.parts() {
        out.push('\n');
        out.push_str(part);
    }
    out
}

/// Signs with one secret; keyed once, cheap to clone and to use per request.
#[derive(Clone)]
pub struct Signer {
    keyed: HmacSha256,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    /// A signer keyed with `secret`.
    pub fn new(secret: &Secret) -> Self {
        Signer {
            keyed: keyed(secret.expose()),
        }
    }

    /// The raw 32-byte MAC of the canonical string for `t` and `fields`.
    pub fn mac(&self, t: u64, fields: &SignedFields<'_>) -> [u8; 32] {
        mac_with(self.keyed.clone(), t, fields)
    }

    /// The full header value `t=<t>,v1=<hex>`.
    pub fn header_value(&self, t: u64, fields: &SignedFields<'_>) -> String {
        let mut out = String::with_capacity(16 + MAC_HEX_LEN);
        self.write_header_value(t, fields, &mut out);
        out
    }

    /// Appends the header value to `out` (reuses its allocation on the hot path).
    pub fn write_header_value(&self, t: u64, fields: &SignedFields<'_>, out: &mut String) {
        let mac = self.mac(t, fields);
        let _ = write!(out, "t={t},{VERSION}=");
        push_hex(&mac, out);
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; the error arm is unreachable for Hmac<Sha256>.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

fn mac_with(mut mac: HmacSha256, t: u64, fields: &SignedFields<'_>) -> [u8; 32] {
    let mut digits = [0u8; 20];
    mac.update(VERSION.as_bytes());
    mac.update(b"\n");
    mac.update(decimal(t, &mut digits));
    for part in fields.parts() {
        mac.update(b"\n");
        mac.update(part.as_bytes());
    }
    mac.finalize().into_bytes().into()
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    /// The `t=` timestamp (unix seconds).
    pub t: u64,
    /// Every `v1=` MAC, decoded (a value may carry several; one match is enough).
    pub v1: Vec<[u8; 32]>,
}

/// Why a `Signature` header value could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    /// No `t=` field, or more than one.
    Timestamp,
    /// No `v1=` field.
    NoMac,
    /// A `v1=` field that is not 64 hex digits.
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

/// Parses `t=<digits>,v1=<hex>[,v1=<hex>…]`; fields with other names are ignored so a later
/// scheme can be added beside `v1` without breaking verifiers.
pub fn parse(value: &str) -> Result<ParsedSignature, FormatError> {
    let mut t = None;
    let mut v1 = Vec::new();
    for field in value.split(',') {
        let field = field.trim();
        let Some((name, val)) = field.split_once('=') else {
            continue;
        };
        match name {
            "t" => {
                if t.is_some() || val.is_empty() || !val.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(FormatError::Timestamp);
                }
                t = Some(val.parse::<u64>().map_err(|_| FormatError::Timestamp)?);
            }
            VERSION => v1.push(decode_hex(val).ok_or(FormatError::BadMac)?),
            _ => {}
        }
    }
    let t = t.ok_or(FormatError::Timestamp)?;
    if v1.is_empty() {
        return Err(FormatError::NoMac);
    }
    Ok(ParsedSignature { t, v1 })
}

fn decode_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != MAC_HEX_LEN {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        let hi = hex_digit(pair[0])?;
        let lo = hex_digit(pair[1])?;
        out[i] = (hi << 4) | lo;
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

/// True when any of `secrets` produced any of the MACs in `sig` over `fields`; each comparison
/// is constant-time.
pub fn matches<S: AsRef<[u8]>>(
    secrets: &[S],
    sig: &ParsedSignature,
    fields: &SignedFields<'_>,
) -> bool {
    let mut found = subtle::Choice::from(0);
    for secret in secrets {
        let expected = mac_with(keyed(secret.as_ref()), sig.t, fields);
        for given in &sig.v1 {
            found |= expected.ct_eq(given);
        }
    }
    found.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> SignedFields<'static> {
        SignedFields {
            path: "/public_FlowWidget/init",
            site: "site1",
            session: "sess-1",
            status: "accepted",
            context: "eyJhIjoiMSJ9",
            prefill: "e30=",
        }
    }

    #[test]
    fn canonical_string_is_the_documented_layout() {
        assert_eq!(
            canonical_string(1_700_000_000, &fields()),
            "v1\n1700000000\n/public_FlowWidget/init\nsite1\nsess-1\naccepted\neyJhIjoiMSJ9\ne30="
        );
        assert_eq!(
            canonical_string(5, &SignedFields::default()),
            "v1\n5\n\n\n\n\n\n"
        );
    }

    #[test]
    fn mac_equals_hmac_of_the_canonical_string() {
        let secret = Secret::new("k".repeat(32));
        let signer = Signer::new(&secret);
        let value = signer.header_value(1_700_000_000, &fields());
        let mut direct = HmacSha256::new_from_slice(secret.expose()).unwrap();
        direct.update(canonical_string(1_700_000_000, &fields()).as_bytes());
        let mut hex = String::new();
        push_hex(&direct.finalize().into_bytes(), &mut hex);
        assert_eq!(value, format!("t=1700000000,v1={hex}"));
    }

    #[test]
    fn decimal_covers_the_range() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(u64::MAX, &mut buf), u64::MAX.to_string().as_bytes());
        assert_eq!(decimal(1_700_000_000, &mut buf), b"1700000000");
    }

    #[test]
    fn rfc4231_case_2_vector() {
        // Key "Jefe", data "what do ya want for nothing?" — checks the HMAC wiring itself.
        let mut mac = keyed(b"Jefe");
        mac.update(b"what do ya want for nothing?");
        let mut hex = String::new();
        push_hex(&mac.finalize().into_bytes(), &mut hex);
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn parse_round_trip_and_rejections() {
        let secret = Secret::new("k".repeat(32));
        let value = Signer::new(&secret).header_value(42, &fields());
        let parsed = parse(&value).unwrap();
        assert_eq!(parsed.t, 42);
        assert!(matches(&[&secret], &parsed, &fields()));
        assert!(!matches(&[Secret::new("x".repeat(32))], &parsed, &fields()));
        let mut other = fields();
        other.status = "absent";
        assert!(!matches(&[&secret], &parsed, &other));

        assert_eq!(parse("v1=00"), Err(FormatError::BadMac));
        assert_eq!(
            parse(&format!("v1={}", "0".repeat(64))),
            Err(FormatError::Timestamp)
        );
        assert_eq!(parse("t=1"), Err(FormatError::NoMac));
        assert_eq!(parse("t=-1,v1=x"), Err(FormatError::Timestamp));
        assert_eq!(parse("t=1,t=2,v1=x"), Err(FormatError::Timestamp));
        let two = format!("t=7,v2=zz,v1={},v1={}", "0".repeat(64), "a".repeat(64));
        assert_eq!(parse(&two).unwrap().v1.len(), 2);
    }

    #[test]
    fn any_secret_of_the_list_verifies() {
        let old = Secret::new("o".repeat(32));
        let new = Secret::new("n".repeat(32));
        let parsed = parse(&Signer::new(&old).header_value(9, &fields())).unwrap();
        assert!(matches(&[&new, &old], &parsed, &fields()));
    }
}
