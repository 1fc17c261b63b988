//! Streaming JSON object visitor: document order, duplicates, depth, scalars → PHP values.
//!
//! serde_json walks the top-level object through a [`Visitor`], so members arrive in document
//! order and a non-object is known at once. What `json_decode` does that serde_json does not is
//! added here:
//! - member values are taken as [`RawValue`] and read by this module: serde_json fails on a
//!   number that overflows (`1e400`), where PHP yields `INF`, and integers beyond `i64` become
//!   floats as in PHP;
//! - skipped (nested) values are checked for depth (PHP: 512, i.e. 511 nested containers, the
//!   top level included), for unpaired `\uD800`-style escapes and for property names starting
//!   with U+0000 — serde_json's skipping checks none of these;
//! - the whole document is validated as UTF-8 up front (`str::from_utf8`), so strings that are
//!   only skipped are validated too.
//!
//! Duplicate keys keep their first position and their last value, like PHP's hash tables.

use std::fmt;
use std::hash::BuildHasher as _;

use hashbrown::HashTable;
use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::limits::MAX_JSON_DEPTH;

/// Why a document was not accepted as an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// `json_decode` would fail.
    Invalid,
    /// Valid JSON whose top-level value is not an object.
    NotObject,
}

/// A byte range in either the document or [`Object`]'s scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: u32,
    end: u32,
    in_scratch: bool,
}

/// A member value, as PHP holds it after `json_decode`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A string (unescaped).
    Str(Span),
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
pub struct Member {
    /// The key (unescaped).
    pub key: Span,
    /// The last value given for the key.
    pub value: Value,
}

/// The top-level object of one document, in reusable buffers.
#[derive(Default)]
pub struct Object {
    members: Vec<Member>,
    /// Unescaped keys and strings that had escapes.
    scratch: String,
    /// Member indices by key, for duplicate detection.
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
    /// An empty object with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `json` like PHP's `json_decode($json)` and keeps the top-level members.
    pub fn parse(&mut self, json: &[u8]) -> Result<(), JsonError> {
        self.members.clear();
        self.scratch.clear();
        self.index.clear();
        let doc = std::str::from_utf8(json).map_err(|_| JsonError::Invalid)?;
        if doc.len() > u32::MAX as usize {
            return Err(JsonError::Invalid);
        }

        let first = doc.bytes().find(|b| !is_json_space(*b));
        if first != Some(b'{') {
            // Anything else: valid JSON → not an object; invalid → json.
            let raw: &RawValue = serde_json::from_str(doc).map_err(|_| JsonError::Invalid)?;
            check_skipped(raw.get(), MAX_JSON_DEPTH - 1)?;
            return Err(JsonError::NotObject);
        }

        let mut de = serde_json::Deserializer::from_str(doc);
        let mut failure = None;
        let visitor = TopLevel {
            object: self,
            doc,
            failure: &mut failure,
        };
        let parsed = (&mut de).deserialize_map(visitor).and_then(|()| de.end());
        match (parsed, failure) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(e)) => Err(e),
            (Err(_), None) => Err(JsonError::Invalid),
        }
    }

    /// The members, in order of first appearance.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The text of `span`, from the document `doc` given to [`Object::parse`].
    pub fn text<'a>(&'a self, doc: &'a [u8], span: Span) -> &'a str {
        let range = span.start as usize..span.end as usize;
        if span.in_scratch {
            &self.scratch[range]
        } else {
            // Spans into the document are only made from `&str` slices of it.
            std::str::from_utf8(&doc[range]).unwrap_or_default()
        }
    }

    fn push_member(&mut self, doc: &str, key: Span, value: Value) {
        let key_text = resolve(doc, &self.scratch, key);
        let hash = self.hasher.hash_one(key_text);
        let members = &self.members;
        let scratch = &self.scratch;
        let found = self.index.find(hash, |&i| {
            resolve(doc, scratch, members[i as usize].key) == key_text
        });
        match found {
            Some(&i) => self.members[i as usize].value = value,
            None => {
                let i = self.members.len() as u32;
                self.members.push(Member { key, value });
                let Self {
                    index,
                    members,
                    scratch,
                    hasher,
                    ..
                } = self;
                index.insert_unique(hash, i, |&j| {
                    hasher.hash_one(resolve(doc, scratch, members[j as usize].key))
                });
            }
        }
    }

    fn span_in_doc(doc: &str, s: &str) -> Span {
        let start = s.as_ptr() as usize - doc.as_ptr() as usize;
        Span {
            start: start as u32,
            end: (start + s.len()) as u32,
            in_scratch: false,
        }
    }

    fn push_scratch(&mut self, s: &str) -> Span {
        let start = self.scratch.len();
        self.scratch.push_str(s);
        Span {
            start: start as u32,
            end: self.scratch.len() as u32,
            in_scratch: true,
        }
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

/// JSON's four whitespace bytes (the same set in PHP's scanner).
#[inline]
fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

struct TopLevel<'o, 'd> {
    object: &'o mut Object,
    doc: &'d str,
    failure: &'o mut Option<JsonError>,
}

impl<'de> Visitor<'de> for TopLevel<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let doc = self.doc;
        while let Some(key) = map.next_key_seed(KeySeed {
            object: &mut *self.object,
            doc,
        })? {
            let raw: &'de RawValue = map.next_value()?;
            match self.object.read_value(doc, raw.get()) {
                Ok(value) => self.object.push_member(doc, key, value),
                Err(e) => {
                    *self.failure = Some(e);
                    return Err(de::Error::custom("invalid member value"));
                }
            }
        }
        Ok(())
    }
}

impl Object {
    /// Reads one member value from its raw (syntactically valid) JSON text.
    fn read_value(&mut self, doc: &str, raw: &str) -> Result<Value, JsonError> {
        let bytes = raw.as_bytes();
        match bytes.first() {
            Some(b'"') => self.read_string(doc, raw),
            Some(b't') => Ok(Value::Bool(true)),
            Some(b'f') => Ok(Value::Bool(false)),
            Some(b'n') => Ok(Value::Other),
            Some(b'[' | b'{') => {
                // The top-level object is one level already.
                check_skipped(raw, MAX_JSON_DEPTH - 2)?;
                Ok(Value::Other)
            }
            _ => Ok(read_number(raw)),
        }
    }

    fn read_string(&mut self, doc: &str, raw: &str) -> Result<Value, JsonError> {
        let inner = raw.get(1..raw.len() - 1).unwrap_or_default();
        if !inner.as_bytes().contains(&b'\\') {
            return Ok(Value::Str(Self::span_in_doc(doc, inner)));
        }
        let start = self.scratch.len();
        unescape_into(inner, &mut self.scratch)?;
        Ok(Value::Str(Span {
            start: start as u32,
            end: self.scratch.len() as u32,
            in_scratch: true,
        }))
    }
}

/// PHP's number rules: integers that fit `i64` stay integers, others become floats;
/// overflowing floats are infinite rather than an error.
fn read_number(raw: &str) -> Value {
    let is_float = raw.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if !is_float && let Ok(i) = raw.parse::<i64>() {
        return Value::Int(i);
    }
    Value::Float(raw.parse::<f64>().unwrap_or(f64::NAN))
}

/// Unescapes the body of a syntactically valid JSON string, rejecting unpaired surrogates.
fn unescape_into(inner: &str, out: &mut String) -> Result<(), JsonError> {
    let mut rest = inner;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let esc = rest.as_bytes().get(pos + 1).copied().unwrap_or(b'\\');
        rest = &rest[pos + 2..];
        let c = match esc {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let (c, used) = unicode_escape(rest.as_bytes())?;
                rest = &rest[used..];
                c
            }
            _ => return Err(JsonError::Invalid),
        };
        out.push(c);
    }
    out.push_str(rest);
    Ok(())
}

/// Decodes the `XXXX` after `\u` (and a following `\uXXXX` low surrogate when needed).
/// Returns the character and how many bytes of `rest` it used.
fn unicode_escape(rest: &[u8]) -> Result<(char, usize), JsonError> {
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

fn hex4(b: &[u8]) -> Result<u32, JsonError> {
    let digits = b.get(..4).ok_or(JsonError::Invalid)?;
    let mut n = 0u32;
    for &d in digits {
        let v = char::from(d).to_digit(16).ok_or(JsonError::Invalid)?;
        n = n * 16 + v;
    }
    Ok(n)
}

/// Checks a syntactically valid value that serde_json skipped: at most `max_depth` nested
/// containers, paired surrogate escapes, no property name starting with U+0000.
fn check_skipped(raw: &str, max_depth: usize) -> Result<(), JsonError> {
    let b = raw.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(JsonError::Invalid);
                }
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'"' => {
                let end = check_string(b, i + 1)?;
                let starts_with_nul = b.get(i + 1..i + 7) == Some(b"\\u0000");
                i = end;
                if starts_with_nul {
                    let next = b[i..].iter().find(|c| !is_json_space(**c));
                    if next == Some(&b':') {
                        return Err(JsonError::Invalid);
                    }
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Checks the escapes of the string whose body starts at `start`; returns the index after
/// its closing quote.
fn check_string(b: &[u8], start: usize) -> Result<usize, JsonError> {
    let mut i = start;
    loop {
        let off = memchr::memchr2(b'"', b'\\', &b[i..]).ok_or(JsonError::Invalid)?;
        i += off;
        if b[i] == b'"' {
            return Ok(i + 1);
        }
        match b.get(i + 1) {
            Some(b'u') => {
                let (_, used) = unicode_escape(&b[i + 2..])?;
                i += 2 + used;
            }
            Some(_) => i += 2,
            None => return Err(JsonError::Invalid),
        }
    }
}

struct KeySeed<'o, 'd> {
    object: &'o mut Object,
    doc: &'d str,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, 'de> {
    type Value = Span;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Span, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, 'de> {
    type Value = Span;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a property name")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Span, E> {
        // `s` borrows the document: no escapes in the key.
        Ok(Object::span_in_doc(self.doc, s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Span, E> {
        // Only an escape can produce U+0000; PHP refuses such property names.
        if s.starts_with('\0') {
            return Err(E::custom("property name starts with U+0000"));
        }
        Ok(self.object.push_scratch(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Vec<(String, String)>, JsonError> {
        let mut o = Object::new();
        o.parse(json.as_bytes())?;
        Ok(o.members()
            .iter()
            .map(|m| {
                let v = match m.value {
                    Value::Str(s) => format!("s:{}", o.text(json.as_bytes(), s)),
                    Value::Int(i) => format!("i:{i}"),
                    Value::Float(f) => format!("f:{f:?}"),
                    Value::Bool(b) => format!("b:{b}"),
                    Value::Other => "other".into(),
                };
                (o.text(json.as_bytes(), m.key).to_owned(), v)
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
    }

    #[test]
    fn escapes() {
        assert_eq!(
            parse(r#"{"k\u0041":"a\"\\\/\n\u00e9\ud83d\ude00"}"#),
            Ok(pairs(&[("kA", "s:a\"\\/\né😀")]))
        );
    }

    #[test]
    fn numbers_like_php() {
        assert_eq!(
            parse(
                r#"{"a":1e400,"b":-1e400,"c":9223372036854775807,"d":9223372036854775808,"e":-0,"f":-9223372036854775808,"g":1.0}"#
            ),
            Ok(pairs(&[
                ("a", "f:inf"),
                ("b", "f:-inf"),
                ("c", "i:9223372036854775807"),
                ("d", "f:9.223372036854776e18"),
                ("e", "i:0"),
                ("f", "i:-9223372036854775808"),
                ("g", "f:1.0"),
            ]))
        );
    }

    #[test]
    fn non_objects() {
        for doc in ["[]", "1", "\"a\"", "null", " [1e400] ", "true"] {
            assert_eq!(parse(doc), Err(JsonError::NotObject), "{doc}");
        }
        for doc in [
            "",
            "[",
            "{",
            "{\"a\"}",
            "{} x",
            "\u{feff}{}",
            "{'a':1}",
            "01",
        ] {
            assert_eq!(parse(doc), Err(JsonError::Invalid), "{doc}");
        }
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
        ] {
            assert_eq!(parse(doc), Err(JsonError::Invalid), "{doc}");
        }
        assert!(parse(r#"{"a":["\u0000"],"b\u0000":1}"#).is_ok());
    }

    #[test]
    fn invalid_utf8() {
        let mut o = Object::new();
        assert_eq!(o.parse(b"{\"a\":\"\xff\"}"), Err(JsonError::Invalid));
        assert_eq!(
            o.parse(b"{\"a\":[\"\xed\xa0\x80\"]}"),
            Err(JsonError::Invalid)
        );
    }
}
