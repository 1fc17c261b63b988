//! Streaming JSON object reader: document order, duplicates, depth, scalars → PHP values.
//!
//! Reads the top-level object member by member with PHP's `json_decode` semantics:
//! - RFC 8259 syntax; invalid UTF-8 anywhere, an unpaired `\uD800`-style escape anywhere, or a
//!   property name starting with U+0000 (PHP decodes to `stdClass`) fails;
//! - depth 512: at most 511 nested containers, the top level included;
//! - integers that fit `i64` stay integers, larger ones become floats; `1e400` is `INF`;
//! - duplicate keys keep their first position and their last value (PHP hash tables).
//!
//! Hand-written rather than a serde_json `Visitor` because of speed and exactness on this
//! workload: serde_json fails on `1e400`, does not check skipped strings for unpaired surrogates
//! or skipped objects for depth and U+0000 names, and its `IgnoredAny` pass alone over a
//! 15 KB document cost most of the budget of the 20,000-character benchmark. Here the
//! document is UTF-8-validated once (`simdutf8` when long), strings are skipped 16 bytes at a time
//! (SSE2, inline: the segments between escapes are often short), and string values are only
//! unescaped later, for the pairs that are accepted.

use std::fmt;
use std::hash::BuildHasher as _;

use hashbrown::HashTable;

use super::limits::MAX_JSON_DEPTH;
use super::word::{bytes_below, bytes_equal};

/// Why a document was not accepted as an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// `json_decode` would fail.
    Invalid,
    /// Valid JSON whose top-level value is not an object.
    NotObject,
}

type Result<T> = std::result::Result<T, JsonError>;

/// A byte range in either the document or [`Object`]'s scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
    in_scratch: bool,
}

/// The body of a string in the document (between the quotes), still escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawStr {
    start: u32,
    end: u32,
    escaped: bool,
}

/// A string member value: its body in the document, still escaped, and where its escapes
/// are in [`Object`]'s list of them (`escapes_from..escapes_to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StrValue {
    start: u32,
    end: u32,
    escapes_from: u32,
    escapes_to: u32,
}

/// A member value, as PHP holds it after `json_decode`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    /// A string; its text is [`Object::string`].
    Str(StrValue),
    /// An integer that fits `i64`.
    Int(i64),
    /// A float, or an integer beyond `i64`; may be infinite.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`, an array or an object.
    Other,
}

/// One member of the top-level object after duplicates have collapsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Member {
    /// The key (unescaped).
    pub(crate) key: Span,
    /// The last value given for the key.
    pub(crate) value: Value,
}

/// Members at most this many are checked for duplicates by a linear scan; beyond, by hash.
const LINEAR_DUPLICATE_SCAN: usize = 8;

/// The top-level object of one document, in reusable buffers.
#[derive(Default)]
pub(crate) struct Object {
    members: Vec<Member>,
    /// Per member, its key's [`key_tag`]: most keys that differ differ there, so a duplicate
    /// check compares one word before it compares text.
    tags: Vec<u64>,
    /// Keys that had escapes, unescaped.
    scratch: String,
    /// Where the backslashes of string member values are in the document, in order.
    escapes: Vec<u32>,
    /// Member indices by key; built once there are many members.
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl Object {
    /// Parses `json` like PHP's `json_decode($json)` and keeps the top-level members.
    ///
    /// Returns the document as `&str` (it is valid UTF-8 once parsed): the `doc` argument of
    /// [`Object::text`] and [`Object::string`].
    pub(crate) fn parse<'d>(&mut self, json: &'d [u8]) -> Result<&'d str> {
        self.members.clear();
        self.tags.clear();
        self.scratch.clear();
        self.escapes.clear();
        self.index.clear();
        if json.len() >= u32::MAX as usize {
            return Err(JsonError::Invalid);
        }
        // Long documents through SIMD validation (AVX2 where the CPU has it): −3k instructions
        // on a 15 KB one. Short ones, the usual context, stay with std: through simdutf8 the
        // docs' example cost 96 more. The same answer either way.
        let doc = if json.len() >= 1024 {
            simdutf8::basic::from_utf8(json).map_err(|_| JsonError::Invalid)?
        } else {
            std::str::from_utf8(json).map_err(|_| JsonError::Invalid)?
        };
        let mut r = Reader { doc, b: json, i: 0 };
        r.skip_ws();
        if r.peek() != Some(b'{') {
            // Valid JSON → not an object; anything else → json.
            r.skip_value(MAX_JSON_DEPTH - 1)?;
            r.skip_ws();
            return if r.i == json.len() {
                Err(JsonError::NotObject)
            } else {
                Err(JsonError::Invalid)
            };
        }
        r.i += 1;
        r.skip_ws();
        if r.peek() == Some(b'}') {
            r.i += 1;
        } else {
            loop {
                let key = self.read_key(&mut r)?;
                r.skip_ws();
                r.expect(b':')?;
                r.skip_ws();
                let value = r.read_member_value(&mut self.escapes)?;
                self.push_member(doc, key, value);
                r.skip_ws();
                match r.next() {
                    Some(b',') => r.skip_ws(),
                    Some(b'}') => break,
                    _ => return Err(JsonError::Invalid),
                }
            }
        }
        r.skip_ws();
        if r.i == json.len() {
            Ok(doc)
        } else {
            Err(JsonError::Invalid)
        }
    }

    /// The members, in order of first appearance.
    pub(crate) fn members(&self) -> &[Member] {
        &self.members
    }

    /// The text of a key `span`, from the document `doc` given to [`Object::parse`].
    pub(crate) fn text<'a>(&'a self, doc: &'a str, span: Span) -> &'a str {
        resolve(doc, &self.scratch, span)
    }

    /// The unescaped text of a string value; `buf` is used when it had escapes. The escapes
    /// were validated and their places recorded by [`Object::parse`], so the body is not
    /// searched again.
    pub(crate) fn string<'a>(&self, doc: &'a str, s: StrValue, buf: &'a mut String) -> &'a str {
        let body = s.start as usize..s.end as usize;
        let escapes = &self.escapes[s.escapes_from as usize..s.escapes_to as usize];
        if escapes.is_empty() {
            return &doc[body];
        }
        buf.clear();
        let mut copied = body.start;
        for &at in escapes {
            let at = at as usize;
            buf.push_str(&doc[copied..at]);
            // The one-letter escapes stand for ASCII bytes; only `\u` needs `escape`.
            let simple = match doc.as_bytes().get(at + 1) {
                Some(b'"') => Some('"'),
                Some(b'\\') => Some('\\'),
                Some(b'/') => Some('/'),
                Some(b'n') => Some('\n'),
                Some(b't') => Some('\t'),
                _ => None,
            };
            if let Some(c) = simple {
                buf.push(c);
                copied = at + 2;
                continue;
            }
            // Validated by `parse`; an error cannot happen here.
            let Ok((c, used)) = escape(&doc.as_bytes()[at + 1..]) else {
                break;
            };
            buf.push(c);
            copied = at + 1 + used;
        }
        buf.push_str(&doc[copied..body.end]);
        buf
    }

    fn read_key(&mut self, r: &mut Reader) -> Result<Span> {
        r.expect(b'"')?;
        let raw = r.scan_string()?;
        let body = &r.doc[raw.start as usize..raw.end as usize];
        if !raw.escaped {
            return Ok(Span {
                start: raw.start,
                end: raw.end,
                in_scratch: false,
            });
        }
        if starts_with_nul_escape(body) {
            return Err(JsonError::Invalid);
        }
        let start = self.scratch.len();
        unescape_into(body, &mut self.scratch)?;
        Ok(Span {
            start: start as u32,
            end: self.scratch.len() as u32,
            in_scratch: true,
        })
    }

    fn push_member(&mut self, doc: &str, key: Span, value: Value) {
        let Self {
            members,
            tags,
            scratch,
            index,
            hasher,
            ..
        } = self;
        let scratch: &str = scratch;
        let key_text = resolve(doc, scratch, key);
        let tag = key_tag(key_text);
        // Equal tags and lengths mean equal keys up to eight bytes; longer ones are compared.
        let same = |i: usize| {
            tags[i] == tag && {
                let other = members[i].key;
                other.end - other.start == key.end - key.start
                    && (key_text.len() <= 8 || resolve(doc, scratch, other) == key_text)
            }
        };
        let n = members.len();
        if n < LINEAR_DUPLICATE_SCAN {
            match (0..n).position(same) {
                Some(i) => members[i].value = value,
                None => {
                    members.push(Member { key, value });
                    tags.push(tag);
                }
            }
            return;
        }
        if index.is_empty() {
            for (i, m) in members.iter().enumerate() {
                let h = hasher.hash_one(resolve(doc, scratch, m.key));
                index.insert_unique(h, i as u32, |&j| {
                    hasher.hash_one(resolve(doc, scratch, members[j as usize].key))
                });
            }
        }
        let hash = hasher.hash_one(key_text);
        let found = index.find(hash, |&i| same(i as usize)).copied();
        match found {
            Some(i) => members[i as usize].value = value,
            None => {
                members.push(Member { key, value });
                tags.push(tag);
                index.insert_unique(hash, n as u32, |&j| {
                    hasher.hash_one(resolve(doc, scratch, members[j as usize].key))
                });
            }
        }
    }
}

/// A key's first eight bytes as a word, zero-padded when it is shorter.
#[inline]
fn key_tag(key: &str) -> u64 {
    let bytes = key.as_bytes();
    match bytes.first_chunk::<8>() {
        Some(word) => u64::from_le_bytes(*word),
        None => bytes
            .iter()
            .rev()
            .fold(0, |acc, b| (acc << 8) | u64::from(*b)),
    }
}

fn resolve<'a>(doc: &'a str, scratch: &'a str, span: Span) -> &'a str {
    let range = span.start as usize..span.end as usize;
    if span.in_scratch {
        &scratch[range]
    } else {
        &doc[range]
    }
}

fn starts_with_nul_escape(body: &str) -> bool {
    body.as_bytes().starts_with(b"\\u0000")
}

/// A cursor over a UTF-8-validated document without forbidden control bytes.
struct Reader<'a> {
    doc: &'a str,
    /// `doc` as bytes.
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.i += 1;
        c
    }

    #[inline]
    fn expect(&mut self, c: u8) -> Result<()> {
        if self.next() == Some(c) {
            Ok(())
        } else {
            Err(JsonError::Invalid)
        }
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Scans a string whose opening quote was consumed; validates its escapes.
    fn scan_string(&mut self) -> Result<RawStr> {
        let start = self.i;
        let mut escaped = false;
        loop {
            let rest = &self.b[self.i..];
            let Some(off) = find_string_stop(rest) else {
                return Err(JsonError::Invalid);
            };
            self.i += off;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(RawStr {
                        start: start as u32,
                        end: (self.i - 1) as u32,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    self.i += 1 + escape_len(&self.b[self.i + 1..])?;
                }
                _ => return Err(JsonError::Invalid),
            }
        }
    }

    /// Scans a string whose opening quote was consumed, like [`Reader::scan_string`], and
    /// records where its escapes are in `escapes`, so that [`Object::string`] can unescape it
    /// later without searching it again (and only if its pair is accepted).
    fn scan_string_recording(&mut self, escapes: &mut Vec<u32>) -> Result<StrValue> {
        let start = self.i;
        let from = escapes.len() as u32;
        loop {
            let Some(off) = find_string_stop(&self.b[self.i..]) else {
                return Err(JsonError::Invalid);
            };
            self.i += off;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(StrValue {
                        start: start as u32,
                        end: (self.i - 1) as u32,
                        escapes_from: from,
                        escapes_to: escapes.len() as u32,
                    });
                }
                b'\\' => {
                    escapes.push(self.i as u32);
                    self.i += 1 + escape_len(&self.b[self.i + 1..])?;
                }
                _ => return Err(JsonError::Invalid),
            }
        }
    }

    /// Reads a member value of the top-level object; the escapes of a string are recorded in
    /// `escapes`.
    fn read_member_value(&mut self, escapes: &mut Vec<u32>) -> Result<Value> {
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                Ok(Value::Str(self.scan_string_recording(escapes)?))
            }
            Some(b'[' | b'{') => {
                // The top-level object is one level already.
                self.skip_value(MAX_JSON_DEPTH - 2)?;
                Ok(Value::Other)
            }
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Other),
            _ => self.number(),
        }
    }

    fn literal(&mut self, text: &[u8], value: Value) -> Result<Value> {
        if self.b[self.i..].starts_with(text) {
            self.i += text.len();
            Ok(value)
        } else {
            Err(JsonError::Invalid)
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, converted like PHP.
    fn number(&mut self) -> Result<Value> {
        let start = self.i;
        let is_float = self.number_syntax()?;
        let text = &self.doc[start..self.i];
        if !is_float && let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        // Rust's parser is correctly rounded and overflows to ±inf, like zend_strtod.
        Ok(Value::Float(text.parse::<f64>().unwrap_or(f64::NAN)))
    }

    #[inline]
    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    /// Skips (and validates) any value, allowing `max_depth` nested containers in it.
    fn skip_value(&mut self, max_depth: usize) -> Result<()> {
        // One bit per open container: set for an object.
        let mut stack = [0u64; MAX_JSON_DEPTH / 64 + 1];
        let mut depth = 0usize;
        'value: loop {
            self.skip_ws();
            match self.peek() {
                Some(open @ (b'[' | b'{')) => {
                    self.i += 1;
                    depth += 1;
                    if depth > max_depth {
                        return Err(JsonError::Invalid);
                    }
                    let is_object = open == b'{';
                    let (word, bit) = (depth / 64, depth % 64);
                    stack[word] = (stack[word] & !(1 << bit)) | (u64::from(is_object) << bit);
                    self.skip_ws();
                    let close = if is_object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                        depth -= 1;
                    } else {
                        if is_object {
                            self.skip_nested_key()?;
                        }
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    self.i += 1;
                    self.scan_string()?;
                }
                Some(b't') => {
                    self.literal(b"true", Value::Other)?;
                }
                Some(b'f') => {
                    self.literal(b"false", Value::Other)?;
                }
                Some(b'n') => {
                    self.literal(b"null", Value::Other)?;
                }
                _ => {
                    self.skip_number()?;
                }
            }
            // After a value: close containers or go on to the next element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let in_object = stack[depth / 64] >> (depth % 64) & 1 == 1;
                self.skip_ws();
                match (self.next(), in_object) {
                    (Some(b','), true) => {
                        self.skip_nested_key()?;
                        continue 'value;
                    }
                    (Some(b','), false) => continue 'value,
                    (Some(b'}'), true) | (Some(b']'), false) => depth -= 1,
                    _ => return Err(JsonError::Invalid),
                }
            }
        }
    }

    /// `"name" :` inside a nested object.
    fn skip_nested_key(&mut self) -> Result<()> {
        self.skip_ws();
        self.expect(b'"')?;
        let raw = self.scan_string()?;
        if raw.escaped && starts_with_nul_escape(&self.doc[raw.start as usize..raw.end as usize]) {
            return Err(JsonError::Invalid);
        }
        self.skip_ws();
        self.expect(b':')
    }

    /// Validates a number's syntax without converting it.
    fn skip_number(&mut self) -> Result<()> {
        self.number_syntax().map(drop)
    }

    /// Moves past `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; true when it has a fraction
    /// or an exponent (PHP then makes it a float even when it is whole).
    #[inline(always)]
    fn number_syntax(&mut self) -> Result<bool> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(JsonError::Invalid),
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(JsonError::Invalid);
            }
            self.digits();
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(JsonError::Invalid);
            }
            self.digits();
            is_float = true;
        }
        Ok(is_float)
    }
}

/// The first `"`, `\\` or control byte (< 0x20) in `b`: where a run of plain JSON string
/// content ends, and what a JSON writer must escape. 16 bytes at a time with SSE2
/// ([`super::simd`]).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub(crate) fn find_string_stop(b: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_or_si128, _mm_set1_epi8, _mm_xor_si128,
    };
    let scanned = super::simd::scan_blocks(b, 0, |v| {
        // SAFETY: SSE2 only, guaranteed by the cfg above; values, not memory.
        unsafe {
            // Flipping bit 1 maps `"` (0x22) to 0x20 and the control bytes onto themselves
            // (0x00–0x1f), and nothing else to 0x20 or below: one unsigned `<= 0x20` test
            // finds both.
            let flipped = _mm_xor_si128(v, _mm_set1_epi8(0x02));
            let quote_or_control =
                _mm_cmpeq_epi8(_mm_min_epu8(flipped, _mm_set1_epi8(0x20)), flipped);
            _mm_or_si128(
                quote_or_control,
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
            )
        }
    });
    match scanned {
        Ok(index) => Some(index),
        Err(pos) => b[pos..]
            .iter()
            .position(|&c| is_string_stop(c))
            .map(|p| pos + p),
    }
}

/// The first `"`, `\\`, control byte or non-ASCII byte in `b`: where a run of JSON string
/// content that is plain ASCII ends. One pass instead of an ASCII check and
/// [`find_string_stop`] for readers that take only ASCII (`inspect --jsonl`'s line reader).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub(crate) fn find_ascii_string_stop(b: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_min_epu8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128, _mm_xor_si128,
    };
    let scanned = super::simd::scan_blocks(b, 0, |v| {
        // SAFETY: SSE2 only, guaranteed by the cfg above; values, not memory.
        unsafe {
            // As in `find_string_stop`, plus the bytes that are negative as `i8` (>= 0x80).
            let flipped = _mm_xor_si128(v, _mm_set1_epi8(0x02));
            let quote_or_control =
                _mm_cmpeq_epi8(_mm_min_epu8(flipped, _mm_set1_epi8(0x20)), flipped);
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let non_ascii = _mm_cmplt_epi8(v, _mm_setzero_si128());
            _mm_or_si128(_mm_or_si128(quote_or_control, backslash), non_ascii)
        }
    });
    match scanned {
        Ok(index) => Some(index),
        Err(pos) => b[pos..]
            .iter()
            .position(|&c| is_ascii_string_stop(c))
            .map(|p| pos + p),
    }
}

/// The first `"`, `\\`, control byte or non-ASCII byte in `b`.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
pub(crate) fn find_ascii_string_stop(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| is_ascii_string_stop(c))
}

/// Bytes that end a run of plain ASCII string content.
#[inline]
fn is_ascii_string_stop(c: u8) -> bool {
    is_string_stop(c) || !c.is_ascii()
}

/// Bytes that end a run of plain string content.
#[inline]
fn is_string_stop(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// The first `"`, `\\` or control byte in `b`.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
pub(crate) fn find_string_stop(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| is_string_stop(c))
}

/// [`find_string_stop`] for writers of many short strings (header values, `inspect`'s
/// answers): the tail after the whole 16-byte blocks — a typical key or value is all tail —
/// goes eight bytes per step instead of byte by byte (five instructions a byte). The JSON
/// reader keeps [`find_string_stop`], whose tail is only ever the end of a document.
#[inline]
pub(crate) fn find_writer_escape(b: &[u8]) -> Option<usize> {
    let whole = b.len() & !15;
    find_string_stop(&b[..whole]).or_else(|| find_escape_by_words(&b[whole..]).map(|p| whole + p))
}

/// The first string stop in `b`, eight bytes per step in a `u64`.
fn find_escape_by_words(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let stops = word_stops(u64::from_le_bytes(*chunk));
        if stops != 0 {
            return Some(i + (stops.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let (len, rest) = (b.len(), b.len() - i);
    if rest == 0 {
        return None;
    }
    // The last 1–7 bytes in one word, without a byte loop: the word that ends at the end of
    // `b` with the bytes already scanned masked off, or, when `b` is shorter than a word, its
    // bytes gathered from two overlapping reads and the zeros above them masked off. A stop
    // only ever flags bytes above it (the borrow runs upwards), so the masks never hide the
    // first one.
    let (start, word, keep) = if let Some(last) = len.checked_sub(8) {
        let word = b[last..]
            .first_chunk::<8>()
            .map_or(0, |w| u64::from_le_bytes(*w));
        (last, word, u64::MAX << (8 * (8 - rest)))
    } else {
        (0, gather_short(b), (1u64 << (8 * len)) - 1)
    };
    let stops = word_stops(word) & keep;
    (stops != 0).then(|| start + (stops.trailing_zeros() / 8) as usize)
}

/// The 1–7 bytes of `b` as a little-endian `u64`, zero above them, from two overlapping reads
/// (the bytes both reads cover are ORed with themselves).
#[inline]
fn gather_short(b: &[u8]) -> u64 {
    let n = b.len();
    let u32_at = |at: usize| {
        b.get(at..)
            .and_then(<[u8]>::first_chunk::<4>)
            .map_or(0, |w| u64::from(u32::from_le_bytes(*w)))
    };
    let u16_at = |at: usize| {
        b.get(at..)
            .and_then(<[u8]>::first_chunk::<2>)
            .map_or(0, |w| u64::from(u16::from_le_bytes(*w)))
    };
    match n {
        4.. => u32_at(0) | u32_at(n - 4) << (8 * (n - 4)),
        2..=3 => u16_at(0) | u16_at(n - 2) << (8 * (n - 2)),
        1 => u64::from(b[0]),
        _ => 0,
    }
}

/// The bytes of `x` that are `"`, `\\` or a control byte ([`super::word`]: exact up to the
/// first).
#[inline(always)]
fn word_stops(x: u64) -> u64 {
    bytes_equal(x, b'"') | bytes_equal(x, b'\\') | bytes_below(x, 0x20)
}

/// Length of the escape after a backslash (`rest` starts after it); validates `\u` pairs.
#[inline(always)]
fn escape_len(rest: &[u8]) -> Result<usize> {
    match rest.first() {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(1),
        Some(b'u') => unicode_escape(&rest[1..]).map(|(_, used)| 1 + used),
        _ => Err(JsonError::Invalid),
    }
}

/// The character an escape stands for and its length after the backslash (`rest` starts
/// after it); rejects unpaired surrogates.
#[inline]
fn escape(rest: &[u8]) -> Result<(char, usize)> {
    let c = match rest.first() {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => return unicode_escape(&rest[1..]).map(|(c, used)| (c, 1 + used)),
        _ => return Err(JsonError::Invalid),
    };
    Ok((c, 1))
}

/// Unescapes the body of a JSON string, rejecting unpaired surrogates.
fn unescape_into(inner: &str, out: &mut String) -> Result<()> {
    let mut rest = inner;
    while let Some(pos) = memchr::memchr(b'\\', rest.as_bytes()) {
        out.push_str(&rest[..pos]);
        let (c, used) = escape(&rest.as_bytes()[pos + 1..])?;
        rest = &rest[pos + 1 + used..];
        out.push(c);
    }
    out.push_str(rest);
    Ok(())
}

/// Decodes the `XXXX` after `\u` (and a following `\uXXXX` low surrogate when needed).
/// Returns the character and how many bytes of `rest` it used.
fn unicode_escape(rest: &[u8]) -> Result<(char, usize)> {
    let hi = hex4(rest)?;
    match hi {
        0xD800..=0xDBFF => {
            if rest.get(4..6) != Some(b"\\u") {
                return Err(JsonError::Invalid);
            }
            let lo = hex4(&rest[6..])?;
            if !(0xDC00..=0xDFFF).contains(&lo) {
                return Err(JsonError::Invalid);
            }
            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            char::from_u32(cp)
                .map(|c| (c, 10))
                .ok_or(JsonError::Invalid)
        }
        0xDC00..=0xDFFF => Err(JsonError::Invalid),
        _ => char::from_u32(hi).map(|c| (c, 4)).ok_or(JsonError::Invalid),
    }
}

fn hex4(b: &[u8]) -> Result<u32> {
    let digits = b.get(..4).ok_or(JsonError::Invalid)?;
    let mut n = 0u32;
    for &d in digits {
        let v = char::from(d).to_digit(16).ok_or(JsonError::Invalid)?;
        n = n * 16 + v;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Vec<(String, String)>> {
        let mut o = Object::default();
        let doc = o.parse(json.as_bytes())?;
        let mut buf = String::new();
        Ok(o.members()
            .iter()
            .map(|m| {
                let v = match m.value {
                    Value::Str(s) => format!("s:{}", o.string(doc, s, &mut buf)),
                    Value::Int(i) => format!("i:{i}"),
                    Value::Float(f) => format!("f:{f:?}"),
                    Value::Bool(b) => format!("b:{b}"),
                    Value::Other => "other".into(),
                };
                (o.text(doc, m.key).to_owned(), v)
            })
            .collect())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn document_order_and_duplicates() {
        assert_eq!(
            parse(r#"{"b":1,"a":"x","b":3}"#),
            Ok(pairs(&[("b", "i:3"), ("a", "s:x")]))
        );
        // Escaped and plain spellings of one key are one key.
        assert_eq!(parse(r#"{"a":1,"\u0061":2}"#), Ok(pairs(&[("a", "i:2")])));
        // Keys that share their first eight bytes, or differ only by a trailing NUL, or by
        // length, are different keys; before and after the index takes over.
        let keys = r#""a":1,"a\u0000":2,"":3,"x\u0000y":4,"abcdefgh1":5,"abcdefgh2":6,"abcdefgh":7,"abcdefgh1":8,"a":9"#;
        let want = [
            ("a", "i:9"),
            ("a\0", "i:2"),
            ("", "i:3"),
            ("x\0y", "i:4"),
            ("abcdefgh1", "i:8"),
            ("abcdefgh2", "i:6"),
            ("abcdefgh", "i:7"),
        ];
        assert_eq!(parse(&format!("{{{keys}}}")), Ok(pairs(&want)));
        let filler: String = (0..20).map(|i| format!("\"f{i}\":0,")).collect();
        let got = parse(&format!("{{{filler}{keys}}}")).unwrap_or_default();
        assert_eq!(got[20..], pairs(&want)[..]);
    }

    #[test]
    fn many_duplicates_use_the_index() {
        let mut json = String::from("{");
        for i in 0..40 {
            json.push_str(&format!("\"k{i}\":{i},"));
        }
        json.push_str("\"k3\":\"x\",\"k\\u0033\\u0039\":\"y\"}");
        let got = parse(&json).unwrap_or_default();
        assert_eq!(got.len(), 40);
        assert_eq!(got[3], ("k3".to_owned(), "s:x".to_owned()));
        assert_eq!(got[39], ("k39".to_owned(), "s:y".to_owned()));
    }

    #[test]
    fn finds_quotes_and_backslashes_at_every_offset() {
        for len in 0..100 {
            for at in 0..=len {
                for c in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    // Neighbours of the targets (one bit off) and non-ASCII must not match.
                    let mut b: Vec<u8> = (0..len)
                        .map(|i| [b'a', b'#', b'!', b']', 0xA2, 0xDC, b' ', 0x9F, 0x7F][i % 9])
                        .collect();
                    if at < len {
                        b[at] = c;
                    }
                    let want = b.iter().position(|&x| is_string_stop(x));
                    assert_eq!(find_string_stop(&b), want, "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn every_byte_value_is_classified_like_the_scalar_test() {
        for c in 0..=255u8 {
            for at in 0..40 {
                let mut b = vec![b'a'; 40];
                b[at] = c;
                let want = is_string_stop(c).then_some(at);
                assert_eq!(find_string_stop(&b), want, "{c:#x} at {at}");
            }
        }
    }

    #[test]
    fn writer_scan_finds_the_first_stop_at_every_length() {
        for len in 0..=40 {
            for at in 0..len {
                for c in 0..=255u8 {
                    // Neighbours of the stops (a bit off, non-ASCII), and a NUL further on
                    // whose borrow must not move the answer.
                    let mut b: Vec<u8> = (0..len)
                        .map(|i| [b'a', b'#', b'!', b']', 0xA2, b' ', 0x9F, b'['][i % 8])
                        .collect();
                    b[at] = c;
                    if at + 2 < len {
                        b[at + 2] = 0;
                    }
                    let want = b.iter().position(|&x| is_string_stop(x));
                    assert_eq!(find_writer_escape(&b), want, "{c:#x} at {at} of {len}");
                }
            }
            assert_eq!(find_writer_escape(&vec![b'z'; len]), None);
        }
    }

    #[test]
    fn ascii_stops_are_string_stops_and_non_ascii_bytes() {
        for c in 0..=255u8 {
            for len in [1, 15, 16, 17, 40] {
                for at in 0..len {
                    let mut b = vec![b'a'; len];
                    b[at] = c;
                    let want = (is_string_stop(c) || c >= 0x80).then_some(at);
                    assert_eq!(find_ascii_string_stop(&b), want, "{c:#x} at {at} of {len}");
                }
            }
        }
        assert_eq!(find_ascii_string_stop(b""), None);
        assert_eq!(find_ascii_string_stop(&[b'~'; 100]), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            parse(r#"{"k\u0041":"a\"\\\/\n\u00e9\ud83d\ude00\b\f\r\t"}"#),
            Ok(pairs(&[("kA", "s:a\"\\/\né😀\u{8}\u{c}\r\t")]))
        );
    }

    #[test]
    fn numbers_like_php() {
        assert_eq!(
            parse(
                r#"{"a":1e400,"b":-1e400,"c":9223372036854775807,"d":9223372036854775808,"e":-0,"f":-9223372036854775808,"g":1.0,"h":0.5E-2}"#
            ),
            Ok(pairs(&[
                ("a", "f:inf"),
                ("b", "f:-inf"),
                ("c", "i:9223372036854775807"),
                ("d", "f:9.223372036854776e18"),
                ("e", "i:0"),
                ("f", "i:-9223372036854775808"),
                ("g", "f:1.0"),
                ("h", "f:0.005"),
            ]))
        );
        for bad in [
            "01", "1.", ".5", "-", "1e", "1e+", "+1", "0x1", "1.e1", "--1", "NaN",
        ] {
            assert_eq!(
                parse(&format!("{{\"a\":{bad}}}")),
                Err(JsonError::Invalid),
                "{bad}"
            );
            assert_eq!(parse(&format!("[{bad}]")), Err(JsonError::Invalid), "{bad}");
        }
    }

    #[test]
    fn non_objects() {
        for doc in [
            "[]",
            "1",
            "\"a\"",
            "null",
            " [1e400] ",
            "true",
            "[{\"a\":[1,{}]}]",
        ] {
            assert_eq!(parse(doc), Err(JsonError::NotObject), "{doc}");
        }
        for doc in [
            "",
            " ",
            "[",
            "{",
            "{\"a\"}",
            "{} x",
            "\u{feff}{}",
            "{'a':1}",
            "01",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":1 \"b\":2}",
            "[}",
            "{]",
            "{\"a\":[}]}",
            "{,}",
            "[,1]",
            "tru",
            "nul",
            "{\"a\":tru}",
            "{\"a\":\"\t\"}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":\"x}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12\"}",
            "{1:2}",
            "[\"a\"\n,]",
            "{\"a\":{\"b\"}}",
            "{\"a\":{\"b\":}}",
            "{\"a\":{\"b\":1,}}",
            "\u{b}{}",
        ] {
            assert_eq!(parse(doc), Err(JsonError::Invalid), "{doc:?}");
        }
        // Tabs and newlines are whitespace outside strings.
        assert!(parse("\t{\n\"a\"\r:\t[ 1 ,\n{ } ] }\n").is_ok());
    }

    #[test]
    fn depth() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(parse(&nest(511)), Err(JsonError::NotObject));
        assert_eq!(parse(&nest(512)), Err(JsonError::Invalid));
        assert!(parse(&format!("{{\"a\":{}}}", nest(510))).is_ok());
        assert_eq!(
            parse(&format!("{{\"a\":{}}}", nest(511))),
            Err(JsonError::Invalid)
        );
        let objects = |n: usize| format!("{}1{}", "{\"k\":".repeat(n), "}".repeat(n));
        assert!(parse(&objects(511)).is_ok());
        assert_eq!(parse(&objects(512)), Err(JsonError::Invalid));
    }

    #[test]
    fn surrogates_and_nul_names_anywhere() {
        for doc in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"\ud800":1}"#,
            r#"{"a":["\ud800x"]}"#,
            r#"{"a":{"\u0000":1}}"#,
            r#"{"\u0000a":1}"#,
            r#"[{"\u0000":1}]"#,
            r#"["\ud800\u0041"]"#,
        ] {
            assert_eq!(parse(doc), Err(JsonError::Invalid), "{doc}");
        }
        assert!(parse(r#"{"a":["\u0000"],"b\u0000":1,"c":{"d\u0000":"\u0000"}}"#).is_ok());
    }

    #[test]
    fn invalid_utf8() {
        let mut o = Object::default();
        assert_eq!(o.parse(b"{\"a\":\"\xff\"}"), Err(JsonError::Invalid));
        assert_eq!(
            o.parse(b"{\"a\":[\"\xed\xa0\x80\"]}"),
            Err(JsonError::Invalid)
        );
    }

    #[test]
    fn long_documents_are_validated_like_short_ones() {
        // Below and above the length where validation switches to SIMD, a bad sequence at
        // the start, in the middle, across a 32- and 64-byte boundary and at the very end.
        let bad: [&[u8]; 6] = [
            b"\xff",
            b"\xc0\x80",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xe2\x82",
            b"\x80",
        ];
        let mut o = Object::default();
        for len in [1000, 1023, 1024, 1025, 5000, 15_000] {
            let mut good = b"{\"a\":\"".to_vec();
            good.extend((0..len).map(|i| [b'x', b'y', b' '][i % 3]));
            good.extend_from_slice("é€😀\"}".as_bytes());
            assert!(o.parse(&good).is_ok(), "{len}");
            for seq in bad {
                for at in [6, len / 2, 31, 63, 64, good.len() - 2] {
                    let mut doc = good.clone();
                    doc.splice(at..at, seq.iter().copied());
                    assert_eq!(o.parse(&doc).err(), Some(JsonError::Invalid), "{len} {at}");
                }
            }
        }
    }
}
