//! The visitor-context pipeline: the raw `visitor_context` value → accepted pairs, or a discard.
//!
//! Pure and I/O-free; the proxy and `flowgate inspect` both call it. Reference semantics are
//! PHP 8.2's (`base64_decode(.., true)`, `json_decode`, `(string)`, `html_entity_decode`,
//! `strip_tags`, `mb_substr`), with keys anchored by `\z` instead of `$`.

pub mod base64;
pub mod html;
pub mod json;
pub mod limits;

/// Why a whole context was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Discard {
    /// More than [`limits::MAX_RAW_BYTES`] bytes.
    Size,
    /// Not PHP-strict base64.
    Base64,
    /// Not valid JSON (or PHP's `json_decode` would fail on it).
    Json,
    /// Valid JSON whose top-level value is not an object.
    NotObject,
}

impl Discard {
    /// Every discard reason, in a stable order (for metrics).
    pub const ALL: [Discard; 4] = [
        Discard::Size,
        Discard::Base64,
        Discard::Json,
        Discard::NotObject,
    ];

    /// The stable snake_case name used in metrics, headers and `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Discard::Size => "size",
            Discard::Base64 => "base64",
            Discard::Json => "json",
            Discard::NotObject => "not_object",
        }
    }
}

/// Why one key–value pair was dropped while the rest of the context was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Key longer than [`limits::MAX_KEY_BYTES`] bytes.
    KeyTooLong,
    /// Key not matching `^[A-Za-z0-9_-]+\z`.
    KeyInvalid,
    /// Value is `null`, an array or an object.
    ValueType,
    /// The pair came after [`limits::MAX_PAIRS`] pairs had been accepted.
    OverCap,
}

impl DropReason {
    /// Every drop reason, in a stable order (for metrics).
    pub const ALL: [DropReason; 4] = [
        DropReason::KeyTooLong,
        DropReason::KeyInvalid,
        DropReason::ValueType,
        DropReason::OverCap,
    ];

    /// The stable snake_case name used in metrics and `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::KeyTooLong => "key_too_long",
            DropReason::KeyInvalid => "key_invalid",
            DropReason::ValueType => "value_type",
            DropReason::OverCap => "over_cap",
        }
    }
}
