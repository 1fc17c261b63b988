//! Shared secrets: a type that never prints its bytes, and the loaders for lists of them.
//!
//! One format everywhere a list of secrets is read:
//! - **environment** (`FLOWGATE_SIGNING_SECRET`, or a variable named in the config): secrets
//!   separated by commas, surrounding whitespace trimmed — `new-secret,old-secret`;
//! - **file**: one secret per line; blank lines and lines starting with `#` are skipped, trailing
//!   `\r` and surrounding whitespace trimmed (use a file for secrets containing commas).
//!
//! A secret is the exact bytes of its text (not hex- or base64-decoded), so PHP's
//! `hash_hmac('sha256', $msg, $secret)` uses the same key. Each must be at least
//! [`MIN_SECRET_BYTES`] long; `openssl rand -hex 32` makes a good one. The first secret of a list
//! signs; every secret of the list verifies, which is how rotation works.

use std::fmt;
use std::path::Path;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Shortest secret accepted, in bytes (HMAC-SHA256's output size).
pub(crate) const MIN_SECRET_BYTES: usize = 32;

/// A shared secret; its `Debug` never shows the bytes, and they are zeroed when it is dropped.
#[derive(Clone)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Wraps `bytes` as a secret (no length check: operator input goes through the loaders).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into().into_boxed_slice())
    }

    /// The secret's bytes, for keying a MAC.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Compared in constant time: equal secrets take as long to compare as unequal ones.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose().ct_eq(other.expose()).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Why a list of secrets could not be loaded; names where it came from, never a secret's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretError {
    /// The source held no secret at all.
    Empty {
        /// Where the list came from (`environment FLOWGATE_SIGNING_SECRET`, `file /path`).
        source: String,
    },
    /// One entry (1-based) is shorter than [`MIN_SECRET_BYTES`].
    TooShort {
        /// Where the list came from.
        source: String,
        /// 1-based position of the entry in the list.
        position: usize,
    },
    /// A file could not be read.
    Unreadable {
        /// Where the list came from.
        source: String,
        /// The I/O error's text.
        why: String,
    },
    /// An environment variable is set but not valid UTF-8.
    NotUnicode {
        /// Where the list came from.
        source: String,
    },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::Empty { source } => write!(
                f,
                "{source}: no secret found; set at least one (comma-separated in the environment, one per line in a file)"
            ),
            SecretError::TooShort { source, position } => write!(
                f,
                "{source}: secret #{position} is shorter than {MIN_SECRET_BYTES} bytes; use a longer one (e.g. `openssl rand -hex 32`)"
            ),
            SecretError::Unreadable { source, why } => {
                write!(f, "{source}: cannot read: {why}")
            }
            SecretError::NotUnicode { source } => {
                write!(f, "{source}: not valid UTF-8; secrets are text")
            }
        }
    }
}

impl std::error::Error for SecretError {}

/// Parses a comma-separated list (the environment format); `source` names it in errors.
pub(crate) fn parse_list(text: &str, source: &str) -> Result<Vec<Secret>, SecretError> {
    collect(text.split(','), source)
}

/// Parses a one-secret-per-line list (the file format); `source` names it in errors.
pub(crate) fn parse_lines(text: &str, source: &str) -> Result<Vec<Secret>, SecretError> {
    collect(
        text.lines()
            .filter(|line| !line.trim_start().starts_with('#')),
        source,
    )
}

fn collect<'a>(
    entries: impl Iterator<Item = &'a str>,
    source: &str,
) -> Result<Vec<Secret>, SecretError> {
    let mut out = Vec::new();
    for entry in entries.map(str::trim).filter(|e| !e.is_empty()) {
        if entry.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort {
                source: source.to_owned(),
                position: out.len() + 1,
            });
        }
        out.push(Secret::new(entry.as_bytes()));
    }
    if out.is_empty() {
        return Err(SecretError::Empty {
            source: source.to_owned(),
        });
    }
    Ok(out)
}

/// Reads the environment variable `name`: `Ok(None)` when it is unset or blank.
pub(crate) fn from_env(name: &str) -> Result<Option<Vec<Secret>>, SecretError> {
    let source = format!("environment {name}");
    match std::env::var(name) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(mut text) => {
            let parsed = parse_list(&text, &source);
            text.zeroize();
            parsed.map(Some)
        }
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(SecretError::NotUnicode { source }),
    }
}

/// Reads a secrets file (one per line).
pub(crate) fn from_file(path: &Path) -> Result<Vec<Secret>, SecretError> {
    let source = format!("file {}", path.display());
    let mut text = std::fs::read_to_string(path).map_err(|e| SecretError::Unreadable {
        source: source.clone(),
        why: e.to_string(),
    })?;
    let parsed = parse_lines(&text, &source);
    text.zeroize();
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = Secret::new(A);
        let shown = format!("{s:?} {:?}", vec![s.clone()]);
        assert!(!shown.contains("0123"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn comma_list_keeps_order_and_trims() {
        let list = parse_list(&format!(" {A} ,{B},"), "test").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].expose(), A.as_bytes());
        assert_eq!(list[1].expose(), B.as_bytes());
    }

    #[test]
    fn lines_skip_comments_and_blank_lines() {
        let text = format!("# current\n{A}\r\n\n  # previous\n{B}\n");
        let list = parse_lines(&text, "test").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].expose(), B.as_bytes());
    }

    #[test]
    fn short_and_empty_lists_are_errors_naming_the_source() {
        let err = parse_list(&format!("{A},short"), "environment X").unwrap_err();
        assert_eq!(
            err,
            SecretError::TooShort {
                source: "environment X".into(),
                position: 2
            }
        );
        assert!(!err.to_string().contains("short,"));
        assert!(matches!(
            parse_list(" , ", "e"),
            Err(SecretError::Empty { .. })
        ));
        assert!(matches!(
            parse_lines("# only a comment\n", "f"),
            Err(SecretError::Empty { .. })
        ));
    }
}
