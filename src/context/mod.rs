//! The visitor-context pipeline: the raw `visitor_context` value → accepted pairs, or a discard.
//!
//! Pure and I/O-free; the proxy and `flowgate inspect` both call it. Reference semantics are
//! PHP 8.2's (`base64_decode(.., true)`, `json_decode`, `(string)`, `html_entity_decode`,
//! `strip_tags`, `mb_substr`), with keys anchored by `\z` instead of `$`.

pub(crate) mod base64;
pub mod html;
pub(crate) mod json;
pub mod limits;
pub(crate) mod scalar;
mod simd;
pub mod strict;
mod word;

use std::fmt;

use self::json::{JsonError, Value};
use self::limits::{MAX_KEY_BYTES, MAX_PAIRS, MAX_RAW_BYTES, MAX_VALUE_CHARS};

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
    /// A signed-context token was present but did not verify (see [`crate::trust`]).
    BadSignature,
    /// The init came faster than its rate limit allows; the context was not read.
    RateLimited,
    /// The init came from an origin the site does not list (`sites.<id>.origins`).
    Origin,
    /// A signed-context token is bound to another chat session (`sid`), or has no `sid` on a
    /// site that binds tokens to sessions.
    WrongSession,
    /// A one-time signed-context token (`jti`) was used before.
    Replayed,
    /// A one-time token's use could not be checked: the session store did not answer.
    ReplayUnchecked,
    /// `sessions.bind: key`: the request presented no valid `Flowgate-Session-Key`, or not the
    /// one the stored context is bound to; nothing stored was read, replaced or deleted.
    SessionKey,
}

impl Discard {
    /// Every discard reason, in a stable order (for metrics).
    pub(crate) const ALL: [Discard; 11] = [
        Discard::Size,
        Discard::Base64,
        Discard::Json,
        Discard::NotObject,
        Discard::BadSignature,
        Discard::RateLimited,
        Discard::Origin,
        Discard::WrongSession,
        Discard::Replayed,
        Discard::ReplayUnchecked,
        Discard::SessionKey,
    ];

    /// The stable snake_case name used in metrics, headers and `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Discard::Size => "size",
            Discard::Base64 => "base64",
            Discard::Json => "json",
            Discard::NotObject => "not_object",
            Discard::BadSignature => "bad_signature",
            Discard::RateLimited => "rate_limited",
            Discard::Origin => "origin",
            Discard::WrongSession => "wrong_session",
            Discard::Replayed => "replayed",
            Discard::ReplayUnchecked => "replay_unchecked",
            Discard::SessionKey => "session_key",
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
    /// An `ims_*` key of an unsigned context on a site that requires signed identity.
    UnverifiedIdentity,
    /// A key outside the site's `keys.allow` list.
    KeyNotAllowed,
    /// A key in the site's `keys.signed_only` list that did not come from a verified token.
    UnverifiedKey,
}

impl DropReason {
    /// Every drop reason, in a stable order (for metrics).
    pub(crate) const ALL: [DropReason; 7] = [
        DropReason::KeyTooLong,
        DropReason::KeyInvalid,
        DropReason::ValueType,
        DropReason::OverCap,
        DropReason::UnverifiedIdentity,
        DropReason::KeyNotAllowed,
        DropReason::UnverifiedKey,
    ];

    /// The stable snake_case name used in metrics and `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::KeyTooLong => "key_too_long",
            DropReason::KeyInvalid => "key_invalid",
            DropReason::ValueType => "value_type",
            DropReason::OverCap => "over_cap",
            DropReason::UnverifiedIdentity => "unverified_identity",
            DropReason::KeyNotAllowed => "key_not_allowed",
            DropReason::UnverifiedKey => "unverified_key",
        }
    }
}

impl fmt::Display for Discard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of the pipeline for one payload: accepted pairs in order, dropped keys.
///
/// Reusable: [`Context::clear`] keeps the capacity, so a hot loop allocates nothing once warm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Keys and values of accepted pairs, back to back.
    text: String,
    /// Per accepted pair: key start, key end (= value start), value end, in `text`.
    pairs: Vec<(u32, u32, u32)>,
    /// Keys of dropped pairs, back to back.
    dropped_text: String,
    /// Per dropped pair: key start, key end in `dropped_text`, and why.
    dropped: Vec<(u32, u32, DropReason)>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the context, keeping its buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.pairs.clear();
        self.dropped_text.clear();
        self.dropped.clear();
    }

    /// The accepted pairs, in document order.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        self.pairs.iter().map(|&(k, v, end)| {
            (
                &self.text[k as usize..v as usize],
                &self.text[v as usize..end as usize],
            )
        })
    }

    /// The dropped pairs' keys (never their values), in document order, with the reason.
    pub fn dropped(&self) -> impl ExactSizeIterator<Item = (&str, DropReason)> + Clone + '_ {
        self.dropped
            .iter()
            .map(|&(s, e, r)| (&self.dropped_text[s as usize..e as usize], r))
    }

    /// The value of an accepted key, if any (case-sensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether no pair was accepted.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The number of accepted pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Drops every accepted pair whose key matches `pred`, recording `reason`; order is kept.
    pub(crate) fn drop_where(&mut self, mut pred: impl FnMut(&str) -> bool, reason: DropReason) {
        let mut kept = 0;
        for i in 0..self.pairs.len() {
            let (k, v, end) = self.pairs[i];
            let key = &self.text[k as usize..v as usize];
            if pred(key) {
                let start = self.dropped_text.len() as u32;
                self.dropped_text.push_str(key);
                self.dropped
                    .push((start, self.dropped_text.len() as u32, reason));
            } else {
                self.pairs[kept] = (k, v, end);
                kept += 1;
            }
        }
        self.pairs.truncate(kept);
    }

    /// Rewrites accepted values in place: `f(value, scratch)` returns `true` when it wrote a
    /// replacement into `scratch`. Keys and order are kept.
    pub(crate) fn rewrite_values(&mut self, mut f: impl FnMut(&str, &mut String) -> bool) {
        let mut scratch = String::new();
        let mut text = String::with_capacity(self.text.len());
        for pair in &mut self.pairs {
            let (k, v, end) = *pair;
            let key = &self.text[k as usize..v as usize];
            let value = &self.text[v as usize..end as usize];
            let start = text.len() as u32;
            text.push_str(key);
            let value_start = text.len() as u32;
            if f(value, &mut scratch) {
                text.push_str(&scratch);
            } else {
                text.push_str(value);
            }
            *pair = (start, value_start, text.len() as u32);
        }
        self.text = text;
    }

    fn push_dropped(&mut self, key: &str, reason: DropReason) {
        let start = self.dropped_text.len() as u32;
        self.dropped_text.push_str(key);
        self.dropped
            .push((start, self.dropped_text.len() as u32, reason));
    }
}

/// The pipeline with its reusable buffers; keep one per thread on the hot path.
#[derive(Debug, Default)]
pub struct Pipeline {
    base64: base64::Decoder,
    object: json::Object,
    /// A member's value as PHP's `(string)` gives it (or a string value unescaped).
    value: String,
    /// The value after `html_entity_decode`.
    decoded: String,
    /// Float formatting.
    digits: String,
}

impl Pipeline {
    /// A pipeline with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the whole pipeline on a raw (URL-decoded) `visitor_context` value.
    ///
    /// `out` is cleared first; on a discard it is left empty.
    pub fn run(&mut self, raw: &[u8], out: &mut Context) -> Result<(), Discard> {
        out.clear();
        if raw.len() > MAX_RAW_BYTES {
            return Err(Discard::Size);
        }
        let mut decoder = std::mem::take(&mut self.base64);
        let result = match decoder.decode(raw) {
            Ok(json) => self.run_json(json, out),
            Err(_) => Err(Discard::Base64),
        };
        self.base64 = decoder;
        result
    }

    /// Runs the pipeline from the JSON step on (the input is already base64-decoded).
    ///
    /// `out` is cleared first; on a discard it is left empty.
    pub fn run_json(&mut self, json: &[u8], out: &mut Context) -> Result<(), Discard> {
        out.clear();
        let json = self.object.parse(json).map_err(|e| match e {
            JsonError::Invalid => Discard::Json,
            JsonError::NotObject => Discard::NotObject,
        })?;

        for member in self.object.members() {
            let key = self.object.text(json, member.key);
            if out.len() == MAX_PAIRS {
                out.push_dropped(key, DropReason::OverCap);
                continue;
            }
            if key.len() > MAX_KEY_BYTES {
                out.push_dropped(key, DropReason::KeyTooLong);
                continue;
            }
            if !is_valid_key(key) {
                out.push_dropped(key, DropReason::KeyInvalid);
                continue;
            }
            let value: &str = match member.value {
                Value::Str(raw) => self.object.string(json, raw, &mut self.value),
                Value::Int(i) => {
                    self.value.clear();
                    scalar::push_int(&mut self.value, i);
                    &self.value
                }
                Value::Float(f) => {
                    self.value.clear();
                    scalar::push_float(&mut self.value, f, &mut self.digits);
                    &self.value
                }
                Value::Bool(b) => {
                    self.value.clear();
                    scalar::push_bool(&mut self.value, b);
                    &self.value
                }
                Value::Other => {
                    out.push_dropped(key, DropReason::ValueType);
                    continue;
                }
            };
            let key_start = out.text.len() as u32;
            out.text.push_str(key);
            let value_start = out.text.len() as u32;
            sanitize_value_into(value, &mut self.decoded, &mut out.text);
            out.pairs
                .push((key_start, value_start, out.text.len() as u32));
        }
        Ok(())
    }
}

/// Runs the pipeline once with fresh buffers (convenience; the hot path reuses a [`Pipeline`]).
pub fn sanitize(raw: &[u8]) -> Result<Context, Discard> {
    let mut out = Context::new();
    Pipeline::new().run(raw, &mut out)?;
    Ok(out)
}

/// `^[A-Za-z0-9_-]+\z`.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| KEY_BYTES[usize::from(b)])
}

/// The bytes of a valid key, as a table: one load per byte.
static KEY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    table
};

/// Appends the sanitised `value`: `html_entity_decode` → `strip_tags` → first 500 code points.
pub(crate) fn sanitize_value_into(value: &str, decoded: &mut String, out: &mut String) {
    // Both steps are the identity on text without their trigger bytes.
    if !html::has_trigger(value) {
        out.push_str(truncate_chars(value, MAX_VALUE_CHARS));
        return;
    }
    let start = out.len();
    // Stops early on long values once the 500 code points kept are certain.
    html::sanitize_prefix_into(value, MAX_VALUE_CHARS, decoded, out);
    let kept = truncate_chars(&out[start..], MAX_VALUE_CHARS).len();
    out.truncate(start + kept);
}

/// The first `max` Unicode code points of `s` (PHP `mb_substr($s, 0, $max)`).
pub(crate) fn truncate_chars(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let bytes = s.as_bytes();
    // Eight bytes at a time while a whole word cannot hold the cut: a code point starts at
    // every byte that is not a continuation byte (`10xxxxxx`).
    let mut chars = 0;
    let mut i = 0;
    while chars + 8 <= max
        && let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>)
    {
        let word = u64::from_le_bytes(*chunk);
        // Bit 7 of each continuation byte: its bit 7 set and its bit 6 (shifted up) clear.
        let continuation = word & !(word << 1) & 0x8080_8080_8080_8080;
        // Their number, summed into the top byte.
        let skipped = ((continuation >> 7).wrapping_mul(0x0101_0101_0101_0101) >> 56) as usize;
        chars += 8 - skipped;
        i += 8;
    }
    for (offset, &b) in bytes[i..].iter().enumerate() {
        if b & 0xC0 != 0x80 {
            if chars == max {
                return &s[..i + offset];
            }
            chars += 1;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::base64::Engine as _;

    fn b64(json: &str) -> String {
        ::base64::engine::general_purpose::STANDARD.encode(json)
    }

    fn pairs(json: &str) -> Result<Vec<(String, String)>, Discard> {
        let ctx = sanitize(b64(json).as_bytes())?;
        Ok(ctx
            .pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    fn dropped(json: &str) -> Vec<(String, DropReason)> {
        let ctx = sanitize(b64(json).as_bytes()).unwrap_or_default();
        ctx.dropped().map(|(k, r)| (k.to_owned(), r)).collect()
    }

    #[test]
    fn size_limit_is_inclusive() {
        let mut p = Pipeline::new();
        let mut ctx = Context::new();
        assert_eq!(p.run(&[b'A'; 20_001], &mut ctx), Err(Discard::Size));
        assert_eq!(p.run(&[b'A'; 20_000], &mut ctx), Err(Discard::Json));
    }

    #[test]
    fn discards() {
        assert_eq!(pairs("[1]"), Err(Discard::NotObject));
        assert_eq!(pairs("{"), Err(Discard::Json));
        assert_eq!(sanitize(b"e30-").err(), Some(Discard::Base64));
        assert_eq!(pairs("{}"), Ok(vec![]));
    }

    #[test]
    fn scalars_become_php_strings() {
        let got = pairs(r#"{"a":true,"b":false,"c":1e15,"d":0.30000000000000004,"e":7}"#);
        let want = [
            ("a", "1"),
            ("b", ""),
            ("c", "1.0E+15"),
            ("d", "0.3"),
            ("e", "7"),
        ];
        assert_eq!(
            got,
            Ok(want
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect())
        );
    }

    #[test]
    fn key_rules() {
        let long = "k".repeat(101);
        let json = format!(
            r#"{{"{long}":"x","{}":"y","a b":"z","a\n":"n","":"e","ok-_9":"v","n":null,"arr":[],"obj":{{}}}}"#,
            "k".repeat(100)
        );
        assert_eq!(
            dropped(&json),
            vec![
                (long, DropReason::KeyTooLong),
                ("a b".to_owned(), DropReason::KeyInvalid),
                ("a\n".to_owned(), DropReason::KeyInvalid),
                (String::new(), DropReason::KeyInvalid),
                ("n".to_owned(), DropReason::ValueType),
                ("arr".to_owned(), DropReason::ValueType),
                ("obj".to_owned(), DropReason::ValueType),
            ]
        );
        assert_eq!(pairs(&json).map(|p| p.len()), Ok(2));
    }

    #[test]
    fn cap_counts_accepted_pairs_after_collapsing() {
        let mut json = String::from("{\"bad key\":1");
        for i in 0..60 {
            json.push_str(&format!(",\"k{i}\":{i}"));
        }
        json.push_str(",\"k0\":\"last\"}");
        let ctx = sanitize(b64(&json).as_bytes()).unwrap_or_default();
        assert_eq!(ctx.len(), 50);
        assert_eq!(ctx.get("k0"), Some("last"));
        assert_eq!(ctx.get("k49"), Some("49"));
        let over: Vec<_> = ctx
            .dropped()
            .filter(|(_, r)| *r == DropReason::OverCap)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(over.first(), Some(&"k50"));
        assert_eq!(over.len(), 10);
    }

    #[test]
    fn values_are_cut_to_500_code_points() {
        let json = format!(r#"{{"a":"{}"}}"#, "é".repeat(600));
        let ctx = sanitize(b64(&json).as_bytes()).unwrap_or_default();
        assert_eq!(ctx.get("a").map(|v| v.chars().count()), Some(500));
    }

    #[test]
    fn key_bytes_are_ascii_alphanumerics_underscore_and_dash() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            assert_eq!(KEY_BYTES[usize::from(b)], want, "{b:#x}");
        }
        assert!(!is_valid_key(""));
        assert!(is_valid_key("a-Z_09"));
        assert!(!is_valid_key("a\n"));
        assert!(!is_valid_key("é"));
    }

    #[test]
    fn truncate_chars_matches_char_indices() {
        let pieces = ["a", "é", "日", "😀", "<", "\0"];
        for n in 0..300usize {
            let s: String = (0..n).map(|i| pieces[(i * 7 + n) % pieces.len()]).collect();
            for max in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 299, 500] {
                let want = s
                    .char_indices()
                    .nth(max)
                    .map_or(&s[..], |(end, _)| &s[..end]);
                assert_eq!(truncate_chars(&s, max), want, "{n} {max}");
            }
        }
    }

    #[test]
    fn pipeline_reuse_leaves_no_residue() {
        let mut p = Pipeline::new();
        let mut ctx = Context::new();
        assert_eq!(
            p.run(b64(r#"{"a":"1","b":[]}"#).as_bytes(), &mut ctx),
            Ok(())
        );
        assert_eq!(
            p.run(b64("[]").as_bytes(), &mut ctx),
            Err(Discard::NotObject)
        );
        assert!(ctx.is_empty());
        assert_eq!(ctx.dropped().len(), 0);
    }
}
