//! Keys and values as stored in Redis.
//!
//! Key: `<prefix>{<site>:<session>}`. Site and session ids are `[A-Za-z0-9._-]{1,128}`, so `:`
//! can never appear inside either and the key is unambiguous; the braces make the pair a Cluster
//! hash tag, so everything about one session lives on one slot.
//!
//! Value: the exact header values session routes re-attach, length-prefixed:
//! `0x01` (format version), then for `context`, `prefill`, `status` a LEB128 length and the
//! bytes. Decoding is a few slice splits — no JSON, no base64 work per request. An entry bound
//! to a session key starts `0x02` instead, followed by the key's 32-byte SHA-256, then the same
//! fields: values written before keys existed still decode (unbound), and the bound-write script
//! ([`BOUND_WRITE`]) reads the hash at a fixed offset.

use crate::store::{KeyHash, SessionEntry, SessionKey, StoreError};

/// Format version byte of an entry without a key hash.
const VERSION: u8 = 1;
/// Format version byte of an entry bound to a session key.
const VERSION_BOUND: u8 = 2;

/// The atomic bound write (`EVAL`, one key): leaves a value bound to another key hash alone
/// (`0`); otherwise `SET` (`ARGV[2]` the value, `ARGV[3]`/`ARGV[4]` the expiry) or, with an
/// empty `ARGV[2]`, `DEL` (`1`). `ARGV[1]` is the presented key's hash. The hash is not a secret
/// (it is the SHA-256 of a 256-bit random key), so Lua's string comparison is fine here.
pub(crate) const BOUND_WRITE: &str = "local v = redis.call('GET', KEYS[1])
if v and string.byte(v, 1) == 2 and string.sub(v, 2, 33) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], ARGV[2], ARGV[3], ARGV[4]) end
return 1";

/// Longest accepted key prefix, in bytes.
pub(crate) const MAX_PREFIX_LEN: usize = 64;

/// Checks an operator-supplied key prefix; the message says what to change.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(format!(
            "the key prefix is {} bytes; use at most {MAX_PREFIX_LEN}",
            prefix.len()
        ));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '{' | '}'))
    {
        return Err(format!(
            "the key prefix contains {c:?}; use printable ASCII without spaces, `{{` or `}}` \
             (braces would change the Cluster hash tag)"
        ));
    }
    Ok(())
}

/// The Redis key of one session.
pub(crate) fn session_key(prefix: &str, key: SessionKey<'_>) -> String {
    let mut out = String::with_capacity(prefix.len() + key.site.len() + key.session.len() + 3);
    out.push_str(prefix);
    out.push('{');
    out.push_str(key.site);
    out.push(':');
    out.push_str(key.session);
    out.push('}');
    out
}

/// Encodes an entry into its stored form.
pub fn encode(entry: &SessionEntry) -> Vec<u8> {
    let fields = [&entry.context, &entry.prefill, &entry.status];
    let mut out = Vec::with_capacity(33 + fields.iter().map(|f| f.len() + 3).sum::<usize>());
    match &entry.key_hash {
        Some(hash) => {
            out.push(VERSION_BOUND);
            out.extend_from_slice(hash);
        }
        None => out.push(VERSION),
    }
    for field in fields {
        put_len(&mut out, field.len());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// Decodes a stored value; anything malformed — or not a valid header value — is `Corrupt`.
pub(crate) fn decode(bytes: &[u8]) -> Result<SessionEntry, StoreError> {
    let (&version, mut rest) = bytes.split_first().ok_or(StoreError::Corrupt)?;
    let key_hash = match version {
        VERSION => None,
        VERSION_BOUND => {
            let (hash, tail) = rest.split_first_chunk::<32>().ok_or(StoreError::Corrupt)?;
            rest = tail;
            Some(KeyHash::from(*hash))
        }
        _ => return Err(StoreError::Corrupt),
    };
    let mut field = || -> Result<String, StoreError> {
        let len = take_len(&mut rest)?;
        if len > rest.len() {
            return Err(StoreError::Corrupt);
        }
        let (value, tail) = rest.split_at(len);
        rest = tail;
        // Header values are visible ASCII and spaces; anything else would not be one we wrote.
        if !value.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(StoreError::Corrupt);
        }
        String::from_utf8(value.to_vec()).map_err(|_| StoreError::Corrupt)
    };
    let entry = SessionEntry {
        context: field()?,
        prefill: field()?,
        status: field()?,
        key_hash,
    };
    if !rest.is_empty() {
        return Err(StoreError::Corrupt);
    }
    Ok(entry)
}

fn put_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn take_len(rest: &mut &[u8]) -> Result<usize, StoreError> {
    let mut len = 0usize;
    for shift in (0..35).step_by(7) {
        let (&byte, tail) = rest.split_first().ok_or(StoreError::Corrupt)?;
        *rest = tail;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(len);
        }
    }
    // Five bytes cover far more than any value Redis would hand back.
    Err(StoreError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(c: &str, p: &str, s: &str) -> SessionEntry {
        SessionEntry {
            context: c.into(),
            prefill: p.into(),
            status: s.into(),
            key_hash: None,
        }
    }

    #[test]
    fn key_is_a_hash_tag_and_unambiguous() {
        let k = |site, session| session_key("fg:", SessionKey { site, session });
        assert_eq!(k("s1", "abc"), "fg:{s1:abc}");
        // ids may contain `.`, `-`, `_` but never `:`, so these cannot collide.
        assert_ne!(k("a.b", "c"), k("a", "b.c"));
        assert_ne!(k("a-b", "c"), k("a", "b-c"));
        assert_ne!(k("a_b", "c"), k("a", "b_c"));
    }

    #[test]
    fn prefix_rules() {
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("flowgate:").is_ok());
        assert!(validate_prefix("a{b").unwrap_err().contains("hash tag"));
        assert!(validate_prefix("a b").is_err());
        assert!(validate_prefix(&"x".repeat(65)).is_err());
    }

    #[test]
    fn round_trip() {
        for e in [
            entry("", "", "absent"),
            entry("eyJhIjoiMSJ9", "e30=", "accepted"),
            entry(
                &"Q".repeat(70_000),
                &"P".repeat(200),
                "discarded; reason=json",
            ),
        ] {
            let bytes = encode(&e);
            assert_eq!(decode(&bytes).unwrap(), e);
        }
        let small = encode(&entry("ab", "c", "accepted"));
        assert_eq!(small, b"\x01\x02ab\x01c\x08accepted");
        let bound = SessionEntry {
            key_hash: Some([7; 32]),
            ..entry("ab", "c", "accepted")
        };
        let bytes = encode(&bound);
        assert_eq!((bytes[0], &bytes[1..33]), (2, &[7u8; 32][..]));
        assert_eq!(&bytes[33..], &small[1..]);
        assert_eq!(decode(&bytes).unwrap(), bound);
        assert_eq!(decode(&bytes[..20]), Err(StoreError::Corrupt));
    }

    #[test]
    fn malformed_values_are_corrupt() {
        let good = encode(&entry("ab", "c", "accepted"));
        assert_eq!(decode(&[]), Err(StoreError::Corrupt));
        assert_eq!(decode(b"\x02\x00\x00\x00"), Err(StoreError::Corrupt));
        assert_eq!(decode(&good[..good.len() - 1]), Err(StoreError::Corrupt));
        let mut longer = good.clone();
        longer.push(b'x');
        assert_eq!(decode(&longer), Err(StoreError::Corrupt));
        assert_eq!(decode(b"\x01\x02a\n\x00\x00"), Err(StoreError::Corrupt));
        assert_eq!(
            decode(b"\x01\xff\xff\xff\xff\xff"),
            Err(StoreError::Corrupt)
        );
        assert_eq!(decode(b"{\"context\":\"x\"}"), Err(StoreError::Corrupt));
    }
}
