//! The numbers of the contract, in one place.

/// Largest raw (URL-decoded) context value accepted, in bytes.
pub const MAX_RAW_BYTES: usize = 20_000;
/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 100;
/// Values are cut to this many Unicode code points.
pub const MAX_VALUE_CHARS: usize = 500;
/// At most this many pairs are accepted.
pub const MAX_PAIRS: usize = 50;
/// `json_decode`'s default depth: at most 511 nested containers, the top level included.
pub(crate) const MAX_JSON_DEPTH: usize = 512;
