//! PHP 8.2's `html_entity_decode($v, ENT_QUOTES | ENT_HTML5, 'UTF-8')` and `strip_tags($v)`,
//! byte-exact.
//!
//! Hand-written on purpose: no crate reproduces PHP here. Browser-style decoders (htmlize)
//! accept `&amp` without `;` and turn `&#128;` into `€`, where PHP leaves both as text;
//! html-escape's decoder differs on numeric ranges; the strip-tags crates disagree with PHP's
//! state machine (and one overflows its stack on 30k `<`). Both functions below are ports of PHP's
//! own C code (`ext/standard/html.c`: `traverse_for_entities`, `process_numeric_entity`,
//! `process_named_entity_html`, `unicode_cp_is_allowed`; `ext/standard/string.c`:
//! `php_strip_tags_ex`), and `tests/html_vs_php.rs` compares them with a real PHP on
//! generated inputs.
//!
//! Both take `&str` and append to a `String`, so the output is valid UTF-8 by construction; the
//! argument for why no `char` boundary is ever split is given at each function. Neither
//! allocates beyond growing `out`.

use std::mem::MaybeUninit;

use memchr::{memchr, memchr2};

use super::word::{bytes_equal, zero_bytes};

/// The named references PHP decodes with `ENT_HTML5`: the 2,125 names of PHP's
/// `ext/standard/html_tables/ents_html5.txt`, semicolon form only.
///
/// That list is name-for-name and value-for-value the WHATWG table html-escape ships (same
/// count, same names, same code points — checked against PHP itself by `tests/html_vs_php.rs`),
/// so it is reused rather than copied. Looked up through [`NAMED_SLOTS`].
static NAMED: &[(&[u8], &str)] = &html_escape::NAMED_ENTITIES;

/// Longest name in [`NAMED`] (`CounterClockwiseContourIntegral`); longer runs cannot match.
const MAX_NAME_LEN: usize = 31;

/// A name zero-padded to 32 bytes, as four little-endian words: equal keys mean equal names
/// (names contain no zero byte), and a probe is four integer comparisons, not a `memcmp`.
type NameKey = [u64; 4];

/// Slots of the open-addressing table over [`NAMED`]: a power of two, under 55 % full.
const SLOTS: usize = 4096;

/// Marks an empty slot.
const EMPTY: u16 = u16::MAX;

/// The key of every name in [`NAMED`], same order, built at compile time.
static NAMED_KEYS: [NameKey; html_escape::NAMED_ENTITIES.len()] = {
    let mut keys = [[0; 4]; html_escape::NAMED_ENTITIES.len()];
    let mut i = 0;
    while i < keys.len() {
        keys[i] = const_name_key(html_escape::NAMED_ENTITIES[i].0);
        i += 1;
    }
    keys
};

/// Hash table from [`NameKey`] to an index into [`NAMED`], linear probing, built at compile
/// time: a named reference costs one hash and usually one comparison.
static NAMED_SLOTS: [u16; SLOTS] = {
    let mut slots = [EMPTY; SLOTS];
    let mut i = 0;
    while i < NAMED_KEYS.len() {
        let mut slot = slot_of(&NAMED_KEYS[i]);
        while slots[slot] != EMPTY {
            slot = (slot + 1) % SLOTS;
        }
        slots[slot] = i as u16;
        i += 1;
    }
    slots
};

/// [`name_key`] for compile time (no `copy_from_slice`, no chunking there).
const fn const_name_key(name: &[u8]) -> NameKey {
    let mut key = [0u64; 4];
    let mut i = 0;
    while i < name.len() && i < 32 {
        key[i / 8] |= (name[i] as u64) << (8 * (i % 8));
        i += 1;
    }
    key
}

/// The [`NameKey`] of the `len` bytes at `bytes[start..]` (`len` at most [`MAX_NAME_LEN`]),
/// read a word at a time where the input is long enough.
#[inline]
fn name_key(bytes: &[u8], start: usize, len: usize) -> NameKey {
    let mut key = [0u64; 4];
    for (w, word) in key.iter_mut().enumerate() {
        let from = start + 8 * w;
        let valid = len.saturating_sub(8 * w).min(8);
        if valid == 0 {
            break;
        }
        let mask = if valid == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * valid)) - 1
        };
        *word = match bytes.get(from..).and_then(<[u8]>::first_chunk::<8>) {
            Some(chunk) => u64::from_le_bytes(*chunk) & mask,
            None => bytes[from..from + valid]
                .iter()
                .rev()
                .fold(0, |acc, b| (acc << 8) | u64::from(*b)),
        };
    }
    key
}

/// First slot to probe for `key`.
const fn slot_of(key: &NameKey) -> usize {
    let mixed = key[0] ^ key[1].rotate_left(17) ^ key[2].rotate_left(31) ^ key[3].rotate_left(47);
    (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The index in [`NAMED`] of the named reference `bytes[start..start + len]`, if PHP knows it.
#[inline]
fn lookup_name(bytes: &[u8], start: usize, len: usize) -> Option<usize> {
    if len == 0 || len > MAX_NAME_LEN {
        return None;
    }
    let index = lookup_key(&name_key(bytes, start, len));
    debug_assert!(index.is_none_or(|i| NAMED[i].0 == &bytes[start..start + len]));
    index
}

/// The index in [`NAMED`] of the name whose [`NameKey`] is `key`, if PHP knows it.
#[inline]
fn lookup_key(key: &NameKey) -> Option<usize> {
    let mut slot = slot_of(key);
    loop {
        let index = usize::from(NAMED_SLOTS[slot]);
        let known_key = NAMED_KEYS.get(index)?; // EMPTY is past the end: not found
        // Word by word: the key was just built in registers, and a vector load of it would
        // stall on store forwarding.
        if known_key[0] == key[0]
            && known_key[1] == key[1]
            && known_key[2] == key[2]
            && known_key[3] == key[3]
        {
            return Some(index);
        }
        slot = (slot + 1) % SLOTS;
    }
}

/// [`lookup_name`] for a name of at most seven bytes, given as its [`NameKey`]'s first word.
#[inline]
fn lookup_short_name(word: u64) -> Option<usize> {
    let key = [word, 0, 0, 0];
    let mut slot = slot_of(&key);
    loop {
        let index = usize::from(NAMED_SLOTS[slot]);
        let known_key = NAMED_KEYS.get(index)?;
        if known_key[0] == word && known_key[1] == 0 {
            return Some(index);
        }
        slot = (slot + 1) % SLOTS;
    }
}

/// The value of every name in [`NAMED`] as UTF-8, built at compile time, so a decoded name is
/// appended as bytes.
static NAMED_VALUES: [Decoded; html_escape::NAMED_ENTITIES.len()] = {
    let mut values = [Decoded::EMPTY; html_escape::NAMED_ENTITIES.len()];
    let mut i = 0;
    while i < values.len() {
        values[i] = Decoded::from_str(html_escape::NAMED_ENTITIES[i].1);
        i += 1;
    }
    values
};

/// Highest code point `process_numeric_entity` accepts.
const MAX_CODE_POINT: u32 = 0x10_FFFF;

/// Appends `html_entity_decode(input, ENT_QUOTES | ENT_HTML5, 'UTF-8')` to `out`.
///
/// PHP's rules, in one left-to-right pass (a decoded `&amp;lt;` stays `&lt;`):
/// - an `&` with fewer than three bytes after it is text;
/// - `&name;` decodes when `name` (ASCII letters and digits) is in PHP's HTML5 table — the
///   semicolon is required, case matters, some names give two code points (`&NotEqualTilde;`);
/// - `&#digits;` and `&#xhex;` / `&#Xhex;` decode when the value is at most U+10FFFF and PHP's
///   HTML5 `unicode_cp_is_allowed` admits it: not U+0000–U+0008, U+000B, U+000D, U+000E–U+001F,
///   U+007F–U+009F, surrogates, U+FDD0–U+FDEF or the last two code points of any plane;
/// - the hex form also takes a `0x` prefix after the `x` (`&#x0x41;` is `A`), because PHP
///   parses it with C `strtol(.., 16)`;
/// - anything else is copied unchanged.
///
/// Output is valid UTF-8: unchanged stretches are cut only before an `&` or after a `;`
/// (ASCII, never inside a multi-byte sequence), and every decoded code point is a Unicode
/// scalar value (surrogates are never admitted).
pub fn entity_decode_into(input: &str, out: &mut String) {
    let bytes = input.as_bytes();
    let Some(first) = memchr(b'&', bytes) else {
        out.push_str(input);
        return;
    };
    out.reserve(input.len());
    // `copied` is where the not-yet-copied text starts; `at` is the `&` under examination.
    let mut copied = 0;
    let mut at = first;
    loop {
        if let Some((end, decoded)) = reference_at(bytes, at) {
            if copied < at {
                out.push_str(&input[copied..at]);
            }
            decoded.push_to_string(out);
            copied = end;
            at = end;
        } else {
            // Not a reference: the `&` stays text. PHP resumes after the bytes it inspected,
            // but those are `#`, `x` and alphanumerics — no `&` among them — so resuming at
            // the next `&` is the same.
            at += 1;
        }
        match bytes.get(at) {
            // Back-to-back references are common; skip the search call for them.
            Some(b'&') => {}
            Some(_) => match find_near(bytes, at, [b'&'], |rest| memchr(b'&', rest)) {
                Some(next) => at = next,
                None => break,
            },
            None => break,
        }
    }
    if copied < bytes.len() {
        out.push_str(&input[copied..]);
    }
}

/// Whether `input` has a byte that `html_entity_decode` or `strip_tags` reacts to (`&`, `<`,
/// NUL): both are the identity on text without one. Inline, 16 bytes at a time: values are
/// short, and markup usually shows early.
#[inline]
pub(crate) fn has_trigger(input: &str) -> bool {
    find_any(input.as_bytes(), 0, [b'&', b'<', 0]).is_some()
}

/// Appends `strip_tags(html_entity_decode(input, ENT_QUOTES | ENT_HTML5, 'UTF-8'))` to `out`,
/// the sanitising step of the pipeline, with `scratch` as the reusable intermediate buffer.
pub fn sanitize_into(input: &str, scratch: &mut String, out: &mut String) {
    sanitize_prefix_into(input, usize::MAX, scratch, out);
}

/// Like [`sanitize_into`], but may stop early once `out` has grown by at least `min_chars`
/// code points: what it appends is a prefix of the full result, at least `min_chars` code
/// points long (or all of it). The pipeline keeps 500 code points of a value, so a long value
/// need not be sanitised to its end.
///
/// Usually one fused pass: the `strip_tags` state machine runs over the input and decodes each
/// reference where it stands, so the decoded text is never stored. The fused pass gives up on
/// the rare inputs where a decoded character would steer `strip_tags` or a look-back would
/// reach into a decoded reference (`&lt;!--`, `&quot;` inside a tag, `&nvlt;`); then the
/// output is rolled back and the two plain passes run with `scratch` in between.
pub fn sanitize_prefix_into(input: &str, min_chars: usize, scratch: &mut String, out: &mut String) {
    let start = out.len();
    let fused = {
        // SAFETY: `fused_into` only appends whole UTF-8 sequences — stretches of `input` (a
        // `&str`) cut before or after ASCII bytes, ASCII bytes, and the UTF-8 of decoded
        // references (see `Decoded`) — so `out` holds valid UTF-8 whenever it returns; the
        // scratch bytes past its write position (zero fill, over-long copies) are cut off when
        // its `Output` is dropped, also on unwinding. On `Err` it is truncated back to
        // `start`, a `char` boundary. Checked in debug builds below; a `from_utf8` check in
        // release would cost a tenth of the pass.
        let bytes = unsafe { out.as_mut_vec() };
        let fused = fused_into(input, min_chars.saturating_mul(4), bytes);
        if fused.is_err() {
            bytes.truncate(start);
        }
        fused
    };
    // What came before `start` was valid already; only the appended part needs the check.
    debug_assert!(
        out.is_char_boundary(start) && std::str::from_utf8(&out.as_bytes()[start..]).is_ok()
    );
    // In debug builds (tests, `cargo fuzz run -a`) the fused pass is checked against the two
    // plain passes it stands for: a prefix of their result, at least `min_chars` long.
    #[cfg(debug_assertions)]
    if fused.is_ok() {
        let mut decoded = String::new();
        entity_decode_into(input, &mut decoded);
        let mut full = String::new();
        strip_tags_into(&decoded, &mut full);
        let got = &out[start..];
        assert!(
            full.starts_with(got) && (got.len() == full.len() || got.chars().count() >= min_chars),
            "the fused sanitiser differs from html_entity_decode + strip_tags"
        );
    }
    if fused.is_err() {
        scratch.clear();
        entity_decode_into(input, scratch);
        strip_tags_into(scratch, out);
    }
}

/// The fused pass met a case it leaves to the two-pass path.
struct Bail;

/// `strip_tags(html_entity_decode(input))` in one pass, appended to `out`; stops once `out` has
/// grown by `budget` bytes or more (the output is append-only, so what is there is final).
///
/// The same state machine as [`strip_tags_into`] — each arm mirrors the one there — run over
/// the raw input, where the decoded text equals the raw text except at references. So:
/// - an `&` is one more byte to stop at in every state. If it starts a reference (by
///   [`reference_at`], exactly as [`entity_decode_into`] reads it), the decoded value goes to
///   the output in text, is skipped in markup, and the scan resumes after the reference; a
///   value containing a byte the current state reacts to bails, except `<` and `>` alone in
///   text, handled like a raw one;
/// - `fresh` is where the raw text since the last decoded reference begins. A look-back that
///   stays at or after it reads the same bytes as in the decoded text; one that would reach
///   before it bails. With nothing decoded yet, raw and decoded positions coincide;
/// - the position tests (`i > 4` for `<?xml`, `i > 6` for `doctype`) are made on raw
///   positions only when the look-back they guard is fresh: a decoded position is 0 exactly
///   when the raw one is (no reference decodes to nothing), so `k` fresh bytes back, the
///   decoded position exceeds `k` exactly when the raw one does;
/// - the C-whitespace test after `<` looks at the next decoded byte ([`next_decoded`]).
fn fused_into(input: &str, budget: usize, out: &mut Vec<u8>) -> Result<(), Bail> {
    let bytes = input.as_bytes();
    let mut out = Output::new(out, bytes.len());
    let limit = out.w.saturating_add(budget);
    let mut fresh = 0;
    // The decoded byte `back` positions before raw position `i`.
    let prev = |i: usize, back: usize, fresh: usize| -> Result<u8, Bail> {
        if i >= back && i - back >= fresh {
            Ok(bytes[i - back])
        } else if fresh == 0 {
            Ok(0)
        } else {
            Err(Bail)
        }
    };

    let mut state = State::Text;
    let mut lc: u8 = 0;
    let mut br: isize = 0;
    let mut depth: usize = 0;
    let mut in_q: u8 = 0;
    let mut is_xml = false;
    let mut copied = 0;
    let mut i = 0;

    'states: while i < bytes.len() {
        match state {
            State::Text => loop {
                if out.w >= limit {
                    return Ok(());
                }
                let next = if matches!(bytes.get(i), Some(b'&' | b'<')) {
                    // Back-to-back references and tags (`&nbsp;&copy;`, `</a><b>`) skip the
                    // search.
                    Some(i)
                } else if depth == 0 {
                    find_any(bytes, i, [b'<', b'&', 0])
                } else {
                    find_any(bytes, i, [b'<', b'>', b'&', 0])
                };
                let Some(next) = next else {
                    break 'states;
                };
                i = next;
                match bytes[i] {
                    b'&' => {
                        let Some((end, decoded)) = reference_at(bytes, i) else {
                            i += 1;
                            continue;
                        };
                        if in_q != 0 {
                            return Err(Bail);
                        }
                        out.run(bytes, copied, i);
                        copied = end;
                        fresh = end;
                        // Most references decode to neither `<` nor `>`: the last arm below.
                        if !decoded.has_marked(Decoded::IN_NESTED_TEXT) {
                            out.decoded(decoded);
                            i = end;
                            continue;
                        }
                        match decoded.single_ascii() {
                            Some(b'<') if c_isspace(next_decoded(bytes, end)) => out.byte(b'<'),
                            Some(b'<') => {
                                // A `!` or `?` right after it would look back at it.
                                if matches!(bytes.get(end), Some(b'!' | b'?')) {
                                    return Err(Bail);
                                }
                                lc = b'<';
                                state = State::Tag;
                                i = end;
                                continue 'states;
                            }
                            Some(b'>') if depth > 0 => depth -= 1,
                            _ if decoded.has_marked(if depth == 0 {
                                Decoded::IN_TEXT
                            } else {
                                Decoded::IN_NESTED_TEXT
                            }) =>
                            {
                                return Err(Bail);
                            }
                            _ => out.decoded(decoded),
                        }
                        i = end;
                        continue;
                    }
                    b'<' if in_q == 0 && c_isspace(next_decoded(bytes, i + 1)) => {}
                    b'<' if in_q == 0 => {
                        out.run(bytes, copied, i);
                        lc = b'<';
                        i += 1;
                        state = State::Tag;
                        match bytes.get(i) {
                            Some(b'!') => {
                                lc = b'!';
                                state = State::Bang;
                                i += 1;
                            }
                            Some(b'?') => {
                                br = 0;
                                state = State::Php;
                                i += 1;
                            }
                            _ => {
                                // The tag state's first stop, found here: a `>` closes an
                                // ordinary tag at once (no nesting, quote or `<?xml` open —
                                // `in_q` is 0 and `is_xml` false in text), exactly as the tag
                                // state's `>` arm does, without going through it. Any other
                                // stop is where the tag state would stop first.
                                let Some(next) = find_any(bytes, i, TAG_STOPS) else {
                                    break 'states;
                                };
                                if bytes[next] == b'>' && depth == 0 && !is_xml {
                                    // (`lc` would become `>`; every way into a state that
                                    // reads it sets it first.)
                                    state = State::Text;
                                    i = next + 1;
                                    copied = i;
                                    continue;
                                }
                                i = next;
                            }
                        }
                        continue 'states;
                    }
                    b'>' => {
                        depth -= 1;
                        out.run(bytes, copied, i);
                        copied = i + 1;
                    }
                    // NUL.
                    _ => {
                        out.run(bytes, copied, i);
                        copied = i + 1;
                    }
                }
                i += 1;
            },
            State::Tag => loop {
                // `!` and `?` matter only right after a `<`, so they are checked there and
                // the search skips them.
                let Some(next) = find_any(bytes, i, TAG_STOPS) else {
                    break 'states;
                };
                i = next;
                let c = bytes[i];
                if c == b'&' {
                    let Some((end, decoded)) = reference_at(bytes, i) else {
                        i += 1;
                        continue;
                    };
                    // `&gt;` closing a tag is common (`&lt;b&gt;`): a single decoded byte is
                    // handled as the raw one would be, at the same decoded position.
                    if decoded.has_marked(Decoded::IN_TAG) {
                        match decoded.single_ascii() {
                            Some(b'<') if matches!(bytes.get(end), Some(b'!' | b'?')) => {
                                return Err(Bail);
                            }
                            Some(b'<') if in_q == 0 && !c_isspace(next_decoded(bytes, end)) => {
                                depth += 1;
                            }
                            Some(b'<') => {}
                            Some(b'>') if depth > 0 => depth -= 1,
                            Some(b'>') if in_q == 0 => {
                                lc = b'>';
                                if !(is_xml && prev(i, 1, fresh)? == b'-') {
                                    is_xml = false;
                                    state = State::Text;
                                    fresh = end;
                                    copied = end;
                                    i = end;
                                    continue 'states;
                                }
                            }
                            Some(b'>') => {}
                            Some(q @ (b'"' | b'\'')) => toggle_quote(&mut in_q, q),
                            _ => return Err(Bail),
                        }
                    }
                    fresh = end;
                    i = end;
                    continue;
                }
                i += 1;
                match c {
                    b'<' => {
                        if in_q == 0 && !c_isspace(next_decoded(bytes, i)) {
                            depth += 1;
                        }
                        match bytes.get(i) {
                            Some(b'!') => {
                                lc = b'!';
                                state = State::Bang;
                                i += 1;
                                continue 'states;
                            }
                            Some(b'?') => {
                                br = 0;
                                state = State::Php;
                                i += 1;
                                continue 'states;
                            }
                            _ => {}
                        }
                    }
                    b'>' if depth > 0 => depth -= 1,
                    b'>' if in_q == 0 => {
                        lc = b'>';
                        if !(is_xml && prev(i - 1, 1, fresh)? == b'-') {
                            is_xml = false;
                            state = State::Text;
                            copied = i;
                            continue 'states;
                        }
                    }
                    b'>' => {}
                    // A quote.
                    _ => toggle_quote(&mut in_q, c),
                }
            },
            State::Php => loop {
                let Some(next) = skip_to(bytes, i, &PHP_BYTES_AMP) else {
                    break 'states;
                };
                i = next;
                let c = bytes[i];
                match c {
                    b'&' => {
                        i = skip_reference(bytes, i, &PHP_BYTES, &mut fresh)?;
                        continue;
                    }
                    b'(' if lc != b'"' && lc != b'\'' => {
                        lc = b'(';
                        br += 1;
                    }
                    b')' if lc != b'"' && lc != b'\'' => {
                        lc = b')';
                        br -= 1;
                    }
                    b'>' if depth > 0 => depth -= 1,
                    b'>' if in_q == 0 && br == 0 && lc != b'"' && prev(i, 1, fresh)? == b'?' => {
                        state = State::Text;
                        i += 1;
                        copied = i;
                        continue 'states;
                    }
                    b'"' | b'\'' if i >= 1 && prev(i, 1, fresh)? != b'\\' => {
                        if lc == c {
                            lc = 0;
                        } else if lc != b'\\' {
                            lc = c;
                        }
                        toggle_quote(&mut in_q, c);
                    }
                    b'l' | b'L'
                        if i > 4
                            && matches!(prev(i, 1, fresh)?, b'm' | b'M')
                            && matches!(prev(i, 2, fresh)?, b'x' | b'X')
                            && prev(i, 3, fresh)? == b'?'
                            && prev(i, 4, fresh)? == b'<' =>
                    {
                        is_xml = true;
                        state = State::Tag;
                        i += 1;
                        continue 'states;
                    }
                    _ => {}
                }
                i += 1;
            },
            State::Bang => loop {
                let Some(next) = skip_to(bytes, i, &BANG_BYTES_AMP) else {
                    break 'states;
                };
                i = next;
                let c = bytes[i];
                match c {
                    b'&' => {
                        i = skip_reference(bytes, i, &BANG_BYTES, &mut fresh)?;
                        continue;
                    }
                    b'>' if depth > 0 => depth -= 1,
                    b'>' if in_q == 0 => {
                        state = State::Text;
                        i += 1;
                        copied = i;
                        continue 'states;
                    }
                    b'"' | b'\'' if i >= 1 && prev(i, 1, fresh)? != b'\\' => {
                        toggle_quote(&mut in_q, c)
                    }
                    b'-' if i >= 2 && prev(i, 1, fresh)? == b'-' && prev(i, 2, fresh)? == b'!' => {
                        state = State::Comment;
                        i += 1;
                        continue 'states;
                    }
                    b'e' | b'E'
                        if i > 6 && {
                            // Checked first: the six bytes must all be fresh.
                            prev(i, 6, fresh)?;
                            bytes[i - 6..i].eq_ignore_ascii_case(b"doctyp")
                        } =>
                    {
                        state = State::Tag;
                        i += 1;
                        continue 'states;
                    }
                    _ => {}
                }
                i += 1;
            },
            State::Comment => loop {
                let Some(next) = find_any(bytes, i, [b'>', b'&']) else {
                    break 'states;
                };
                i = next;
                if bytes[i] == b'&' {
                    i = skip_reference(bytes, i, &GT, &mut fresh)?;
                    continue;
                }
                if in_q == 0 && i >= 2 && prev(i, 1, fresh)? == b'-' && prev(i, 2, fresh)? == b'-' {
                    state = State::Text;
                    i += 1;
                    copied = i;
                    continue 'states;
                }
                i += 1;
            },
        }
    }
    if state == State::Text && copied < bytes.len() {
        out.run(bytes, copied, bytes.len());
    }
    Ok(())
}

/// The fused pass's output: `buf`'s capacity is reserved once, up front, for the longest
/// result, and the spare capacity is written at `w`, so an append is a store, not a capacity
/// check. Dropping it sets `buf`'s length to `w`.
///
/// Invariant: every byte of `buf` below `w` has been written — an append writes at least the
/// bytes from `w` to its new `w` before `w` moves — and `w` only ever moves past whole UTF-8
/// sequences; what lies past `w` (the tails of the fixed-size copies) is never exposed.
struct Output<'a> {
    buf: &'a mut Vec<u8>,
    w: usize,
}

impl<'a> Output<'a> {
    /// Room for the result of a `len`-byte input: each input byte is copied at most once, and
    /// a reference (at least four bytes: `&lt;`) decodes to at most eight bytes, so the output
    /// is at most `2 * len` bytes; 16 more for the fixed-size copies.
    fn new(buf: &'a mut Vec<u8>, len: usize) -> Self {
        buf.reserve(2 * len + 16);
        Output { w: buf.len(), buf }
    }

    /// The capacity past the initial length, where the output goes (`w` counts from the
    /// start of `buf`, so it is offset by the length the buffer had).
    #[inline(always)]
    fn spare(&mut self) -> (&mut [MaybeUninit<u8>], usize) {
        let len = self.buf.len();
        (self.buf.spare_capacity_mut(), self.w - len)
    }

    /// Appends `bytes[from..to]`. The stretches between markup are short: one fixed 16-byte
    /// copy (the bytes past `to` are overwritten later or never exposed) is cheaper than a
    /// `memcpy` call.
    #[inline(always)]
    fn run(&mut self, bytes: &[u8], from: usize, to: usize) {
        let len = to - from;
        let (spare, at) = self.spare();
        match bytes.get(from..).and_then(<[u8]>::first_chunk::<16>) {
            Some(block) if len <= 16 => {
                spare[at..at + 16].copy_from_slice(&block.map(MaybeUninit::new));
            }
            _ => {
                for (dst, src) in spare[at..at + len].iter_mut().zip(&bytes[from..to]) {
                    dst.write(*src);
                }
            }
        }
        self.w += len;
    }

    /// Appends one ASCII byte.
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        let (spare, at) = self.spare();
        spare[at].write(b);
        self.w += 1;
    }

    /// Appends a decoded reference: all eight bytes, then `w` moves past its length.
    #[inline(always)]
    fn decoded(&mut self, decoded: Decoded) {
        let (spare, at) = self.spare();
        spare[at..at + 8].copy_from_slice(&decoded.utf8.map(MaybeUninit::new));
        self.w += usize::from(decoded.len);
    }
}

impl Drop for Output<'_> {
    fn drop(&mut self) {
        // SAFETY: `w` is within the capacity (every append indexed the spare capacity up to
        // its new `w`, bounds-checked), and every byte below it was written (the invariant
        // above); also on unwinding, since `w` moves only after its bytes are written.
        unsafe { self.buf.set_len(self.w) }
    }
}

/// Inside markup, at an `&`: steps over it, or over the reference it starts when the decoded
/// value has no byte in `set` (the bytes the current state reacts to). Bails otherwise.
#[inline]
fn skip_reference(
    bytes: &[u8],
    at: usize,
    set: &[bool; 256],
    fresh: &mut usize,
) -> Result<usize, Bail> {
    match reference_at(bytes, at) {
        None => Ok(at + 1),
        Some((_, decoded)) if decoded.has_any(set) => Err(Bail),
        Some((end, _)) => {
            *fresh = end;
            Ok(end)
        }
    }
}

/// The first byte of the decoded text from raw position `at` on (0 at the end, like PHP's
/// NUL terminator).
#[inline]
fn next_decoded(bytes: &[u8], at: usize) -> u8 {
    match bytes.get(at) {
        None => 0,
        Some(b'&') => match reference_at(bytes, at) {
            Some((_, decoded)) => decoded.first_byte(),
            None => b'&',
        },
        Some(b) => *b,
    }
}

/// What one character reference decodes to, as UTF-8: one or two code points, at most eight
/// bytes, never empty (no reference decodes to nothing or to NUL).
#[derive(Clone, Copy)]
struct Decoded {
    utf8: [u8; 8],
    len: u8,
    /// Which of the bytes the text and tag states react to the value contains
    /// ([`Decoded::LT`], [`Decoded::GT`], [`Decoded::OTHER_TAG`]): the fused pass's usual checks
    /// are one test, not a loop over the bytes.
    marks: u8,
}

impl Decoded {
    /// Placeholder for building tables.
    const EMPTY: Decoded = Decoded {
        utf8: [0; 8],
        len: 0,
        marks: 0,
    };
    /// Marks: the value contains `<`; `>`; one of the other bytes of [`TAG_BYTES`].
    const LT: u8 = 1;
    const GT: u8 = 2;
    const OTHER_TAG: u8 = 4;
    /// The marks of the bytes the text state reacts to (`<`), the text state inside a nested
    /// tag (`<`, `>`), and the tag state ([`TAG_BYTES`]).
    const IN_TEXT: u8 = Self::LT;
    const IN_NESTED_TEXT: u8 = Self::LT | Self::GT;
    const IN_TAG: u8 = Self::LT | Self::GT | Self::OTHER_TAG;

    /// The mark of one byte.
    const fn mark_of(b: u8) -> u8 {
        match b {
            b'<' => Self::LT,
            b'>' => Self::GT,
            b'"' | b'\'' | b'!' | b'?' => Self::OTHER_TAG,
            _ => 0,
        }
    }

    /// The value `s` (compile time; fails the build unless it is one or two code points
    /// without NUL).
    const fn from_str(s: &str) -> Decoded {
        let b = s.as_bytes();
        assert!(
            !b.is_empty() && b.len() <= 8,
            "a named value is one or two code points"
        );
        let mut utf8 = [0; 8];
        let mut i = 0;
        let mut chars = 0;
        let mut marks = 0;
        while i < b.len() {
            assert!(b[i] != 0, "no named value contains NUL");
            if b[i] & 0xC0 != 0x80 {
                chars += 1;
            }
            utf8[i] = b[i];
            marks |= Self::mark_of(b[i]);
            i += 1;
        }
        assert!(chars <= 2, "a named value is one or two code points");
        Decoded {
            utf8,
            len: b.len() as u8,
            marks,
        }
    }

    /// One code point.
    #[inline]
    fn from_char(c: char) -> Decoded {
        let mut utf8 = [0; 8];
        let len = c.encode_utf8(&mut utf8).len() as u8;
        // The bytes of a non-ASCII character are never marked.
        let marks = if len == 1 { Self::mark_of(utf8[0]) } else { 0 };
        Decoded { utf8, len, marks }
    }

    /// Whether the value contains a byte with one of `marks`.
    #[inline]
    fn has_marked(self, marks: u8) -> bool {
        self.marks & marks != 0
    }

    /// The UTF-8 bytes.
    #[inline]
    fn as_bytes(&self) -> &[u8] {
        &self.utf8[..usize::from(self.len)]
    }

    /// The value if it is a single ASCII byte.
    #[inline]
    fn single_ascii(self) -> Option<u8> {
        (self.len == 1).then_some(self.utf8[0])
    }

    /// Whether any byte of the value is in `set` (a set of ASCII bytes: the bytes of a
    /// non-ASCII character are never in it).
    #[inline]
    fn has_any(self, set: &[bool; 256]) -> bool {
        self.as_bytes().iter().any(|b| set[usize::from(*b)])
    }

    /// The first byte of the value's UTF-8.
    #[inline]
    fn first_byte(self) -> u8 {
        self.utf8[0]
    }

    /// Appends the value to `out`.
    fn push_to_string(self, out: &mut String) {
        // Built from a `&str` or a `char`, so always valid.
        out.push_str(std::str::from_utf8(self.as_bytes()).unwrap_or_default());
    }
}

/// The reference starting at `bytes[at] == b'&'`: the index just past its `;` and its value,
/// or `None` when PHP leaves it as text. Inlined into its callers: it runs for every `&`, and
/// a call returns its result through memory.
#[inline(always)]
fn reference_at(bytes: &[u8], at: usize) -> Option<(usize, Decoded)> {
    // PHP: `if (p[0] != '&' || (p + 3 >= lim))` — there are no entities shorter than 4 bytes.
    if at + 3 >= bytes.len() {
        return None;
    }
    if bytes[at + 1] == b'#' {
        let (semi, code) = numeric_reference(bytes, at + 2)?;
        if !numeric_code_point_allowed(code) {
            return None;
        }
        let c = char::from_u32(code)?;
        Some((semi + 1, Decoded::from_char(c)))
    } else {
        let start = at + 1;
        // Most names are short: with the `;` among the next eight bytes, the name is the bytes
        // before it. Its characters need no check — a name in the table is alphanumeric, so
        // when it matches, PHP's scan of alphanumerics stops exactly at that `;`; when it does
        // not, PHP finds no reference either.
        if let Some(chunk) = bytes.get(start..).and_then(<[u8]>::first_chunk::<8>) {
            let word = u64::from_le_bytes(*chunk);
            let semis = bytes_equal(word, b';');
            if semis != 0 {
                // The lowest hit of the zero-byte test is always a real one.
                let len = (semis.trailing_zeros() / 8) as usize;
                let name_mask = (1u64 << (8 * len)) - 1;
                // Keys are zero-padded: a NUL inside the name would match a shorter name.
                if zero_bytes(word) & name_mask != 0 {
                    return None;
                }
                let index = lookup_short_name(word & name_mask)?;
                return Some((start + len + 1, NAMED_VALUES[index]));
            }
        }
        // The same for names of eight to fifteen bytes (`NotEqualTilde`), one word further on.
        if let Some(chunk) = bytes.get(start..).and_then(<[u8]>::first_chunk::<16>) {
            let (first, second) = chunk.split_at(8);
            let mut w = [0u8; 8];
            w.copy_from_slice(first);
            let word = u64::from_le_bytes(w);
            w.copy_from_slice(second);
            let word2 = u64::from_le_bytes(w);
            let semis = bytes_equal(word2, b';');
            // No `;` in the first word, or the path above would have taken it.
            if semis != 0 {
                let len2 = (semis.trailing_zeros() / 8) as usize;
                let name_mask = (1u64 << (8 * len2)) - 1;
                let nuls = zero_bytes(word) | (zero_bytes(word2) & name_mask);
                if nuls != 0 {
                    return None;
                }
                let index = lookup_key(&[word, word2 & name_mask, 0, 0])?;
                return Some((start + 8 + len2 + 1, NAMED_VALUES[index]));
            }
        }
        let name_len = bytes[start..]
            .iter()
            .take(MAX_NAME_LEN + 1)
            .take_while(|b| NAME_BYTES[usize::from(**b)])
            .count();
        let semi = start + name_len;
        if bytes.get(semi) != Some(&b';') {
            return None;
        }
        let index = lookup_name(bytes, start, name_len)?;
        Some((semi + 1, NAMED_VALUES[index]))
    }
}

/// PHP's `process_numeric_entity`: parses the digits after `&#` (starting at `from`) and
/// returns the index of the closing `;` and the value, or `None` on any failure.
#[inline]
fn numeric_reference(bytes: &[u8], from: usize) -> Option<(usize, u32)> {
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    // strtol saturates on overflow but still consumes every digit; anything above U+10FFFF
    // fails the same way, so the value is clamped just above the limit.
    let mut value: u32 = 0;
    let mut i;
    if matches!(at(from), b'x' | b'X') {
        i = from + 1;
        // PHP checks the first digit itself, because strtol would skip spaces and take a sign.
        if !at(i).is_ascii_hexdigit() {
            return None;
        }
        // glibc's strtol(.., 16) skips a `0x`/`0X` prefix when a hex digit follows it;
        // otherwise it reads the `0` alone and stops at the `x`.
        if at(i) == b'0' && matches!(at(i + 1), b'x' | b'X') && at(i + 2).is_ascii_hexdigit() {
            i += 2;
        }
        loop {
            let c = at(i);
            let digit = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => break,
            };
            value = (value * 16 + u32::from(digit)).min(MAX_CODE_POINT + 1);
            i += 1;
        }
    } else {
        i = from;
        if !at(i).is_ascii_digit() {
            return None;
        }
        while let c @ b'0'..=b'9' = at(i) {
            value = (value * 10 + u32::from(c - b'0')).min(MAX_CODE_POINT + 1);
            i += 1;
        }
    }
    if at(i) != b';' || value > MAX_CODE_POINT {
        return None;
    }
    Some((i, value))
}

/// PHP's `unicode_cp_is_allowed(cp, ENT_HTML_DOC_HTML5)` plus its extra HTML5 rule for
/// numeric references: U+000D is refused too.
fn numeric_code_point_allowed(cp: u32) -> bool {
    (0x20..=0x7E).contains(&cp)
        || matches!(cp, 0x09 | 0x0A | 0x0C)
        || (0xA0..=0xD7FF).contains(&cp)
        || ((0xE000..=MAX_CODE_POINT).contains(&cp)
            && (cp & 0xFFFF) < 0xFFFE
            && !(0xFDD0..=0xFDEF).contains(&cp))
}

/// C `isspace` in the "C" locale (PHP's), which includes `\v` and `\f`.
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// The states of `php_strip_tags_ex`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// 0: text, copied to the output.
    Text,
    /// 1: inside an HTML tag.
    Tag,
    /// 2: inside `<?…?>` (PHP code).
    Php,
    /// 3: inside `<!…>` (declarations, `<!DOCTYPE`).
    Bang,
    /// 4: inside `<!--…-->`.
    Comment,
}

/// Appends PHP's `strip_tags(input)` (no allowed tags) to `out`.
///
/// A port of `php_strip_tags_ex` with its quirks, not an HTML parser:
/// - `<` followed by C whitespace (space, `\t`, `\n`, `\v`, `\f`, `\r`) is text; any other `<`
///   opens a tag that runs to its matching `>` or to the end of the input (`1<2` → `1`);
/// - inside a tag, `"` and `'` quote until the same quote and shield `>`; a further `<`
///   nests, so each needs its own `>`; a `>` left over from nesting is dropped even in text;
/// - `<?…?>` (PHP code, with parenthesis and quote tracking, `<?xml` turning back into a tag),
///   `<!…>`, `<!DOCTYPE …>` and `<!--…-->` are removed;
/// - NUL bytes are deleted everywhere.
///
/// Output is valid UTF-8: bytes are only ever dropped at ASCII positions — a tag starts at `<`
/// and ends after `>`, and NUL is ASCII — and in UTF-8 an ASCII byte is never part of a
/// multi-byte sequence, so every kept stretch starts and ends on a `char` boundary.
pub fn strip_tags_into(input: &str, out: &mut String) {
    let bytes = input.as_bytes();
    if memchr2(b'<', 0, bytes).is_none() {
        // No tag can open and there is nothing to delete; `>` alone is text.
        out.push_str(input);
        return;
    }
    out.reserve(input.len());
    // Byte at `i`, or 0 past the end: PHP's copy of the input is NUL-terminated.
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let prev = |i: usize, back: usize| if i >= back { bytes[i - back] } else { 0 };

    let mut state = State::Text;
    let mut lc: u8 = 0; // last significant character
    let mut br: isize = 0; // parenthesis depth inside `<?…?>`
    let mut depth: usize = 0; // nesting of `<` inside tags
    let mut in_q: u8 = 0; // open quote inside a tag, or 0
    let mut is_xml = false;
    // Start of the pending stretch of text that is copied as-is.
    let mut copied = 0;
    let mut i = 0;

    // One inner loop per PHP `state_N:` label; `continue 'states` is PHP's `goto state_N`
    // after `state` was set. Every inner loop stops at the end of the input.
    'states: while i < bytes.len() {
        match state {
            State::Text => loop {
                // In text only `<`, NUL and (while nested) `>` do anything.
                let next = if depth == 0 {
                    find_near(bytes, i, [b'<', 0], |rest| memchr2(b'<', 0, rest))
                } else {
                    find_near(bytes, i, [b'<', b'>', 0], |rest| {
                        memchr::memchr3(b'<', b'>', 0, rest)
                    })
                };
                let Some(next) = next else {
                    break 'states;
                };
                i = next;
                match bytes[i] {
                    b'<' if in_q == 0 && c_isspace(at(i + 1)) => {}
                    b'<' if in_q == 0 => {
                        out.push_str(&input[copied..i]);
                        lc = b'<';
                        state = State::Tag;
                        i += 1;
                        continue 'states;
                    }
                    b'>' => {
                        // Only reached while depth > 0.
                        depth -= 1;
                        out.push_str(&input[copied..i]);
                        copied = i + 1;
                    }
                    // NUL, and `<` inside a quote (PHP checks; never true in text).
                    _ => {
                        out.push_str(&input[copied..i]);
                        copied = i + 1;
                    }
                }
                i += 1;
            },
            State::Tag => loop {
                // Inside markup most bytes change nothing: jump to the next one that may.
                let Some(next) = skip_to(bytes, i, &TAG_BYTES) else {
                    break 'states;
                };
                i = next;
                let c = bytes[i];
                i += 1;
                match c {
                    b'<' if in_q == 0 && !c_isspace(at(i)) => depth += 1,
                    b'>' if depth > 0 => depth -= 1,
                    b'>' if in_q == 0 => {
                        lc = b'>';
                        if !(is_xml && prev(i - 1, 1) == b'-') {
                            is_xml = false;
                            state = State::Text;
                            copied = i;
                            continue 'states;
                        }
                    }
                    // PHP also requires `p != buf`, always true inside a tag.
                    b'"' | b'\'' => toggle_quote(&mut in_q, c),
                    b'!' if prev(i - 1, 1) == b'<' => {
                        lc = c;
                        state = State::Bang;
                        continue 'states;
                    }
                    b'?' if prev(i - 1, 1) == b'<' => {
                        br = 0;
                        state = State::Php;
                        continue 'states;
                    }
                    _ => {}
                }
            },
            State::Php => loop {
                let Some(next) = skip_to(bytes, i, &PHP_BYTES) else {
                    break 'states;
                };
                i = next;
                let c = bytes[i];
                match c {
                    b'(' if lc != b'"' && lc != b'\'' => {
                        lc = b'(';
                        br += 1;
                    }
                    b')' if lc != b'"' && lc != b'\'' => {
                        lc = b')';
                        br -= 1;
                    }
                    b'>' if depth > 0 => depth -= 1,
                    b'>' if in_q == 0 && br == 0 && lc != b'"' && prev(i, 1) == b'?' => {
                        state = State::Text;
                        i += 1;
                        copied = i;
                        continue 'states;
                    }
                    b'"' | b'\'' if i >= 1 && prev(i, 1) != b'\\' => {
                        if lc == c {
                            lc = 0;
                        } else if lc != b'\\' {
                            lc = c;
                        }
                        toggle_quote(&mut in_q, c);
                    }
                    // `<?xml` is markup, not PHP: back to tag state. PHP's `p > buf + 4` means
                    // it never fires for `<?xml` at the very start of the input.
                    b'l' | b'L'
                        if i > 4
                            && matches!(prev(i, 1), b'm' | b'M')
                            && matches!(prev(i, 2), b'x' | b'X')
                            && prev(i, 3) == b'?'
                            && prev(i, 4) == b'<' =>
                    {
                        is_xml = true;
                        state = State::Tag;
                        i += 1;
                        continue 'states;
                    }
                    _ => {}
                }
                i += 1;
            },
            State::Bang => loop {
                let Some(next) = skip_to(bytes, i, &BANG_BYTES) else {
                    break 'states;
                };
                i = next;
                let c = bytes[i];
                match c {
                    b'>' if depth > 0 => depth -= 1,
                    b'>' if in_q == 0 => {
                        state = State::Text;
                        i += 1;
                        copied = i;
                        continue 'states;
                    }
                    b'"' | b'\'' if i >= 1 && prev(i, 1) != b'\\' => toggle_quote(&mut in_q, c),
                    b'-' if i >= 2 && prev(i, 1) == b'-' && prev(i, 2) == b'!' => {
                        state = State::Comment;
                        i += 1;
                        continue 'states;
                    }
                    // The `<!DOCTYPE` exception: from `<!doctyp` + `e` on it is an ordinary tag.
                    b'e' | b'E' if i > 6 && bytes[i - 6..i].eq_ignore_ascii_case(b"doctyp") => {
                        state = State::Tag;
                        i += 1;
                        continue 'states;
                    }
                    _ => {}
                }
                i += 1;
            },
            State::Comment => loop {
                // Only `-->` (outside quotes) ends a comment; `depth` is left alone here.
                let Some(offset) = memchr(b'>', &bytes[i..]) else {
                    break 'states;
                };
                i += offset;
                if in_q == 0 && i >= 2 && prev(i, 1) == b'-' && prev(i, 2) == b'-' {
                    state = State::Text;
                    i += 1;
                    copied = i;
                    continue 'states;
                }
                i += 1;
            },
        }
    }
    if state == State::Text && copied < bytes.len() {
        out.push_str(&input[copied..]);
    }
}

/// Where a word-at-a-time scan stopped.
enum Scan {
    /// Index of the first needle.
    Found(usize),
    /// No needle up to the end of the input.
    End,
    /// No needle before this index; the word budget ran out.
    More(usize),
}

/// Looks for the first byte at or after `from` that is one of `needles`, at most `words`
/// 8-byte words ahead, without a branch per byte.
#[inline]
fn scan_words<const N: usize>(bytes: &[u8], from: usize, needles: [u8; N], words: usize) -> Scan {
    let mut pos = from;
    for _ in 0..words {
        let Some(chunk) = bytes.get(pos..).and_then(<[u8]>::first_chunk::<8>) else {
            // Fewer than 8 bytes left: finish byte by byte.
            return match bytes[pos..].iter().position(|b| needles.contains(b)) {
                Some(offset) => Scan::Found(pos + offset),
                None => Scan::End,
            };
        };
        let word = u64::from_le_bytes(*chunk);
        // Per needle, the classic "has zero byte" test on word ^ needle. Its lowest set bit is
        // always a real match (false positives only appear above a real one), so the lowest
        // bit of the union is the first match of any needle.
        let hits = needles
            .iter()
            .fold(0, |acc, needle| acc | bytes_equal(word, *needle));
        if hits != 0 {
            return Scan::Found(pos + (hits.trailing_zeros() / 8) as usize);
        }
        pos += 8;
    }
    Scan::More(pos)
}

/// Index of the first byte at or after `from` that is one of `needles`. Stretches between
/// markup are usually short, so the first 16 bytes are checked inline and only a longer
/// stretch pays for the call into the vectorised search `far` (which must look for the same
/// bytes).
#[inline]
fn find_near<const N: usize>(
    bytes: &[u8],
    from: usize,
    needles: [u8; N],
    far: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    match scan_words(bytes, from, needles, 2) {
        Scan::Found(index) => Some(index),
        Scan::End => None,
        Scan::More(pos) => far(&bytes[pos..]).map(|offset| pos + offset),
    }
}

/// Index of the first byte at or after `from` that is one of `needles` (ASCII), 16 bytes at a
/// time with SSE2 ([`super::simd`]).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn find_any<const N: usize>(bytes: &[u8], from: usize, needles: [u8; N]) -> Option<usize> {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128};
    let scanned = super::simd::scan_blocks(bytes, from, |v| {
        // SAFETY: SSE2 only, guaranteed by the cfg above; values, not memory.
        unsafe {
            needles.iter().fold(_mm_setzero_si128(), |acc, needle| {
                _mm_or_si128(acc, _mm_cmpeq_epi8(v, _mm_set1_epi8(*needle as i8)))
            })
        }
    });
    match scanned {
        Ok(index) => Some(index),
        Err(pos) => bytes[pos..]
            .iter()
            .position(|b| needles.contains(b))
            .map(|offset| pos + offset),
    }
}

/// Portable [`find_any`]: a few words inline, then `memchr`-style search.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn find_any<const N: usize>(bytes: &[u8], from: usize, needles: [u8; N]) -> Option<usize> {
    match scan_words(bytes, from, needles, 2) {
        Scan::Found(index) => Some(index),
        Scan::End => None,
        Scan::More(pos) => bytes[pos..]
            .iter()
            .position(|b| needles.contains(b))
            .map(|offset| pos + offset),
    }
}

/// Index of the first byte at or after `from` that is in `set`. Inside markup the bytes that
/// matter are dense and the stretches short: a table lookup per byte beats word tricks there.
#[inline]
fn skip_to(bytes: &[u8], from: usize, set: &[bool; 256]) -> Option<usize> {
    bytes[from..]
        .iter()
        .position(|b| set[usize::from(*b)])
        .map(|offset| from + offset)
}

/// A 256-entry membership table for the bytes in `set`.
const fn byte_set(set: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < set.len() {
        table[set[i] as usize] = true;
        i += 1;
    }
    table
}

/// Bytes of a reference name (PHP's `process_named_entity_html`: ASCII letters and digits).
static NAME_BYTES: [bool; 256] =
    byte_set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
/// The fused pass's stops in the tag state.
const TAG_STOPS: [u8; 5] = [b'<', b'>', b'"', b'\'', b'&'];
/// Bytes that can change anything in each markup state (every other byte is skipped).
static TAG_BYTES: [bool; 256] = byte_set(b"<>\"'!?");
static PHP_BYTES: [bool; 256] = byte_set(b"()>\"'lL");
static BANG_BYTES: [bool; 256] = byte_set(b">\"'-eE");
/// For the fused pass ([`fused_into`]): the markup sets plus `&`, and what a decoded value in
/// text must not contain (else that pass bails; no reference decodes to NUL).
static PHP_BYTES_AMP: [bool; 256] = byte_set(b"()>\"'lL&");
static BANG_BYTES_AMP: [bool; 256] = byte_set(b">\"'-eE&");
static GT: [bool; 256] = byte_set(b">");

/// A quote inside a tag opens when none is open and closes only the quote that opened.
fn toggle_quote(in_q: &mut u8, c: u8) {
    if *in_q == 0 {
        *in_q = c;
    } else if *in_q == c {
        *in_q = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> String {
        let mut out = String::new();
        entity_decode_into(s, &mut out);
        out
    }

    fn strip(s: &str) -> String {
        let mut out = String::new();
        strip_tags_into(s, &mut out);
        out
    }

    #[test]
    fn table_is_sorted_and_bounded() {
        assert_eq!(NAMED.len(), 2125);
        assert!(NAMED.windows(2).all(|w| w[0].0 < w[1].0));
        let value_of = |index: Option<usize>| index.map(|i| NAMED[i].1);
        for (((name, value), key), decoded) in NAMED.iter().zip(NAMED_KEYS.iter()).zip(NAMED_VALUES)
        {
            assert_eq!(decoded.as_bytes(), value.as_bytes());
            // Both at the very end of the input and followed by more bytes.
            let padded = [*name, b";0123456789012345678901234567890123"].concat();
            assert_eq!(name_key(name, 0, name.len()), *key);
            assert_eq!(name_key(&padded, 0, name.len()), *key);
            assert_eq!(value_of(lookup_name(name, 0, name.len())), Some(*value));
            assert_eq!(value_of(lookup_name(&padded, 0, name.len())), Some(*value));
            if name.len() < 8 {
                assert_eq!(value_of(lookup_short_name(key[0])), Some(*value));
            }
        }
        // Every name through `reference_at`'s three paths (semicolon in the first word, in the
        // second, or further), followed by more bytes and at the very end.
        for (name, value) in NAMED {
            let name = std::str::from_utf8(name).unwrap_or_default();
            assert_eq!(decode(&format!("&{name};")), *value);
            assert_eq!(
                decode(&format!("&{name};0123456789abcdef;")),
                format!("{value}0123456789abcdef;")
            );
        }
        for text in [
            "&NotEqual\0Tilde;x",
            "&NotEqualTild\0;x",
            "&NotEqual-Tilde;x",
            "&NotEqualTildeX;x",
            "&notequaltilde;x",
            "&abcdefgh;&abcdefghijklmno;x",
        ] {
            assert_eq!(decode(text), text);
        }
        assert_eq!(lookup_name(b"", 0, 0), None);
        assert_eq!(lookup_name(b"amp1", 0, 4), None);
        assert_eq!(value_of(lookup_name(b"xamp", 1, 3)), Some("&"));
        assert_eq!(lookup_short_name(0), None);
        let long = b"CounterClockwiseContourIntegralX";
        assert_eq!(lookup_name(long, 0, long.len()), None);
        assert_eq!(NAMED.iter().map(|(n, _)| n.len()).max(), Some(MAX_NAME_LEN));
        assert!(
            NAMED
                .iter()
                .all(|(n, _)| n.iter().all(u8::is_ascii_alphanumeric))
        );
    }

    #[test]
    fn marks_match_the_byte_sets() {
        let sets: [(u8, &[u8]); 3] = [
            (Decoded::IN_TEXT, b"<"),
            (Decoded::IN_NESTED_TEXT, b"<>"),
            (Decoded::IN_TAG, b"<>\"'!?"),
        ];
        let check = |decoded: Decoded| {
            for (marks, set) in sets {
                let want = decoded.as_bytes().iter().any(|b| set.contains(b));
                assert_eq!(decoded.has_marked(marks), want, "{:?}", decoded.as_bytes());
            }
            assert_eq!(
                decoded.has_marked(Decoded::IN_TAG),
                decoded.has_any(&TAG_BYTES)
            );
        };
        NAMED_VALUES.iter().copied().for_each(check);
        (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .map(Decoded::from_char)
            .for_each(check);
    }

    #[test]
    fn trigger_bytes_are_found_anywhere() {
        for len in 0..70 {
            for at in 0..=len {
                for c in ['&', '<', '\0', '>', 'é'] {
                    let mut s: String = "x".repeat(len);
                    if at < len {
                        s.replace_range(at..at + 1, &c.to_string());
                    }
                    let want = s.bytes().any(|b| matches!(b, b'&' | b'<' | 0));
                    assert_eq!(has_trigger(&s), want, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn decode_appends() {
        let mut out = String::from("x");
        entity_decode_into("&lt;", &mut out);
        entity_decode_into("plain", &mut out);
        assert_eq!(out, "x<plain");
    }

    #[test]
    fn named_needs_semicolon_and_exact_case() {
        assert_eq!(decode("&lt;&gt;&amp;&quot;"), "<>&\"");
        assert_eq!(decode("&lt &amp x"), "&lt &amp x");
        assert_eq!(decode("&LT;&AMP;"), "<&");
        assert_eq!(decode("&Lt;"), "\u{226A}");
        assert_eq!(decode("&lT;"), "&lT;");
        assert_eq!(decode("&nosuch;&;"), "&nosuch;&;");
        // Keys are zero-padded names; a NUL in the input is not padding.
        assert_eq!(decode("&ring\0;1;&lt\0;x"), "&ring\0;1;&lt\0;x");
        assert_eq!(decode("&eacute;t&eacute;"), "été");
    }

    #[test]
    fn apos_decodes_with_ent_quotes() {
        assert_eq!(decode("&apos;&#39;&#x27;"), "'''");
    }

    #[test]
    fn single_pass() {
        assert_eq!(decode("&amp;lt;"), "&lt;");
        assert_eq!(decode("&amp;#60;"), "&#60;");
        assert_eq!(decode("&&lt;"), "&<");
        assert_eq!(decode("&am&amp;"), "&am&");
    }

    #[test]
    fn multi_code_point_entities() {
        assert_eq!(decode("&NotEqualTilde;"), "\u{2242}\u{338}");
        assert_eq!(decode("&fjlig;"), "fj");
        assert_eq!(decode("&ThickSpace;"), "\u{205F}\u{200A}");
        assert_eq!(decode("&nGt;"), "\u{226B}\u{20D2}");
    }

    #[test]
    fn short_tail_is_text() {
        // PHP needs three bytes after `&`.
        assert_eq!(decode("&#9"), "&#9");
        assert_eq!(decode("&#9;"), "\t");
        assert_eq!(decode("a&lt"), "a&lt");
        assert_eq!(decode("&"), "&");
        assert_eq!(decode("&&&"), "&&&");
    }

    #[test]
    fn numeric_forms() {
        assert_eq!(decode("&#60;&#x3c;&#X3C;&#x3C;"), "<<<<");
        assert_eq!(decode("&#0000065;&#x0000041;"), "AA");
        assert_eq!(
            decode("&#x0x41;&#X0X41;&#x0x;&#x00x41;"),
            "AA&#x0x;&#x00x41;"
        );
        assert_eq!(decode("&#0x41;&#x;&#;&#a;&#xg;"), "&#0x41;&#x;&#;&#a;&#xg;");
        assert_eq!(decode("&#65&#66;"), "&#65B");
        assert_eq!(decode("&#65 ;"), "&#65 ;");
    }

    #[test]
    fn numeric_control_and_c1_stay_text() {
        for s in [
            "&#0;", "&#1;", "&#8;", "&#11;", "&#13;", "&#x0D;", "&#14;", "&#31;", "&#127;",
        ] {
            assert_eq!(decode(s), s);
        }
        assert_eq!(decode("&#9;&#10;&#12;&#32;&#126;"), "\t\n\u{C} ~");
        for cp in 0x80..=0x9F {
            let s = format!("&#x{cp:X};");
            assert_eq!(decode(&s), s);
        }
        assert_eq!(decode("&#xA0;"), "\u{A0}");
    }

    #[test]
    fn numeric_surrogates_nonchars_and_range() {
        for s in [
            "&#xD800;",
            "&#xDFFF;",
            "&#xFDD0;",
            "&#xFDEF;",
            "&#xFFFE;",
            "&#xFFFF;",
            "&#x1FFFE;",
            "&#x10FFFF;",
            "&#x110000;",
            "&#1114112;",
            "&#99999999999999999999999;",
            "&#xFFFFFFFFFFFFFFFFFFFFFFFF;",
        ] {
            assert_eq!(decode(s), s);
        }
        assert_eq!(
            decode("&#xD7FF;&#xE000;&#xFDCF;&#xFDF0;&#xFFFD;"),
            "\u{D7FF}\u{E000}\u{FDCF}\u{FDF0}\u{FFFD}"
        );
        assert_eq!(decode("&#x1F600;&#x10FFFD;"), "😀\u{10FFFD}");
    }

    #[test]
    fn decode_keeps_non_ascii() {
        assert_eq!(decode("日本&amp;語 😀"), "日本&語 😀");
    }

    #[test]
    fn sanitize_is_strip_of_decode() {
        let mut scratch = String::from("stale");
        let mut out = String::from(">");
        sanitize_into("&lt;b&gt;x&lt;/b&gt; <i>y</i>", &mut scratch, &mut out);
        sanitize_into("no refs <b>here</b>", &mut scratch, &mut out);
        assert_eq!(out, ">x yno refs here");
    }

    #[test]
    fn long_stretches_and_long_names() {
        // Past the 16 bytes checked inline, the vectorised search takes over.
        let text = format!("{}&amp;{}&lt;", "é".repeat(20), "x".repeat(30));
        assert_eq!(
            decode(&text),
            format!("{}&{}<", "é".repeat(20), "x".repeat(30))
        );
        let nested = format!(
            "<a<!--x-->{}>{}\0{}<b>{}",
            "y".repeat(40),
            "z".repeat(20),
            "w".repeat(20),
            "v".repeat(17)
        );
        let want = [
            "y".repeat(40),
            "z".repeat(20),
            "w".repeat(20),
            "v".repeat(17),
        ]
        .concat();
        assert_eq!(strip(&nested), want);
        let long = format!("&{};", "a".repeat(40));
        assert_eq!(decode(&long), long);
        assert_eq!(
            decode("&CounterClockwiseContourIntegral;&CounterClockwiseContourIntegralX;"),
            "\u{2233}&CounterClockwiseContourIntegralX;"
        );
    }

    #[test]
    fn fused_pass_takes_the_usual_markup() {
        // Decoded `<`, `>` and quotes in text and tags, references inside attributes: no
        // fallback to two passes for these.
        let value = "<p class=\"note\">Order &amp; delivery &mdash; <b>Jane</b> \
            &lt;jane@example.com&gt; &#x1F600; &eacute;t&eacute; &#8212; <a href=\"/o?id=1&amp;x=2\">\
            link</a><!-- c --> 1 &lt; 2 &nbsp;&copy;&#169;&NotAnEntity; <i title=&quot;x&quot;>\
            <script>alert(1)</script></p><?php echo 1; ?><!DOCTYPE html>&lt;b&gt;x&lt;/b&gt;";
        let mut out = Vec::new();
        assert!(fused_into(value, usize::MAX, &mut out).is_ok());
        assert_eq!(out, strip(&decode(value)).into_bytes());
        // These need look-backs into a decoded reference: two passes.
        for value in [
            "&lt;!-- x -->y",
            "<a&lt;!-- x -->b>c",
            "&lt;?php x ?>y",
            "&nvlt;a>b",
        ] {
            let mut out = Vec::new();
            assert!(fused_into(value, usize::MAX, &mut out).is_err(), "{value}");
            let mut scratch = String::new();
            let mut out = String::new();
            sanitize_into(value, &mut scratch, &mut out);
            assert_eq!(out, strip(&decode(value)), "{value}");
        }
    }

    #[test]
    fn prefix_stops_early_and_is_a_prefix() {
        let value = "<b>x</b>&eacute;".repeat(1000);
        let full = strip(&decode(&value));
        let mut scratch = String::new();
        let mut out = String::from("kept");
        sanitize_prefix_into(&value, 500, &mut scratch, &mut out);
        let cut = &out[4..];
        assert!(cut.len() < full.len() && full.starts_with(cut));
        assert!(cut.chars().count() >= 500);
    }

    #[test]
    fn strip_appends() {
        let mut out = String::from("x");
        strip_tags_into("<b>y</b>", &mut out);
        strip_tags_into("z", &mut out);
        assert_eq!(out, "xyz");
    }

    #[test]
    fn strip_basic_tags() {
        assert_eq!(strip("<b>bold</b> text"), "bold text");
        assert_eq!(strip("<SCRIPT>alert(1)</SCRIPT>"), "alert(1)");
        assert_eq!(strip("hi<img src=x onerror=alert(1)>there"), "hithere");
        assert_eq!(strip("a > b"), "a > b");
    }

    #[test]
    fn lt_then_space_is_text() {
        assert_eq!(strip("1<2"), "1");
        assert_eq!(strip("a< b"), "a< b");
        assert_eq!(strip("a<\tb<\nc<\rd"), "a<\tb<\nc<\rd");
        assert_eq!(strip("a<\x0Bb"), "a<\x0Bb");
        assert_eq!(strip("a<\x0Cb"), "a<\x0Cb");
        assert_eq!(strip("a<\u{A0}b"), "a");
        assert_eq!(strip("a<"), "a");
    }

    #[test]
    fn unterminated_tag_runs_to_end() {
        assert_eq!(strip("keep<a href='x'"), "keep");
        assert_eq!(strip("keep<a>\"x\" after"), "keep\"x\" after");
    }

    #[test]
    fn quotes_shield_gt() {
        assert_eq!(strip("<a title=\"x>y\">z"), "z");
        assert_eq!(strip("<a title='x>y'>z"), "z");
        assert_eq!(strip("<a title='x\">y'>z"), "z");
        assert_eq!(strip("<a \"unclosed>z"), "");
    }

    #[test]
    fn nested_lt_counts_depth() {
        assert_eq!(strip("<a<b>>c"), "c");
        assert_eq!(strip("<a<b>c>d>e"), "d>e");
        assert_eq!(strip("<a<<b>>x>y>z"), "y>z");
        // A comment opened inside a nested tag ends at `-->` with the nesting still open: the
        // next `>` is dropped even though it is in text.
        assert_eq!(strip("<a<!--x-->>b>c"), "b>c");
    }

    #[test]
    fn comments_and_declarations() {
        assert_eq!(strip("a<!-- c -->b"), "ab");
        assert_eq!(strip("a<!-- x > y -->b"), "ab");
        assert_eq!(strip("a<!-- never closed"), "a");
        assert_eq!(strip("<!DOCTYPE html><p>x</p>"), "x");
        assert_eq!(strip("a<!foo>b"), "ab");
        assert_eq!(strip("a<!-->b-->c"), "ab-->c");
    }

    #[test]
    fn php_blocks() {
        assert_eq!(strip("a<?php echo 1; ?>b"), "ab");
        assert_eq!(strip("a<?php echo '?>'; ?>b"), "ab");
        assert_eq!(strip("a<?php f(\"?>\") ?>b"), "ab");
        assert_eq!(strip("a<?php if (x) { ?>b"), "ab");
        assert_eq!(strip("a<?php (x ?>b"), "a");
        assert_eq!(strip("x<?xml version=\"1.0\"?>y"), "xy");
    }

    #[test]
    fn nul_bytes_removed() {
        assert_eq!(strip("a\0b"), "ab");
        assert_eq!(strip("\0<\0b>c\0"), "c");
        assert_eq!(strip("a<\0 b"), "a");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Bytes that steer both state machines, plus some multi-byte characters.
        const TRICKY: &str =
            "[&#;xX0-9a-fA-F<>!?/\"'= \t\n\x0B\x0C\r\x00\\()lmdoctypeDOCTYPEé😀-]{0,48}";

        fn check(s: &str) -> Result<(), TestCaseError> {
            let decoded = decode(s);
            // PHP sizes its buffer for at most 1.2× growth (`&nGt;`: 5 bytes → 6).
            prop_assert!(decoded.len() <= s.len() + s.len() / 5 + 2);
            if !s.contains('&') {
                prop_assert_eq!(&decoded, s);
            }
            let stripped = strip(s);
            let bytes = stripped.as_bytes();
            prop_assert!(!bytes.contains(&0));
            // A `<` survives only as text, i.e. directly followed by C whitespace.
            for (i, b) in bytes.iter().enumerate() {
                if *b == b'<' {
                    prop_assert!(
                        bytes.get(i + 1).is_some_and(|n| c_isspace(*n)),
                        "{:?}",
                        stripped
                    );
                }
            }
            // Output bytes are a subsequence of the input bytes.
            let mut rest = s.as_bytes().iter();
            prop_assert!(bytes.iter().all(|b| rest.any(|r| r == b)));
            prop_assert_eq!(strip(&stripped), stripped.clone());
            let mut scratch = String::new();
            let mut sanitized = String::new();
            sanitize_into(s, &mut scratch, &mut sanitized);
            prop_assert_eq!(sanitized, strip(&decoded));
            Ok(())
        }

        proptest! {
            #[test]
            fn any_string(s in any::<String>()) {
                check(&s)?;
            }

            #[test]
            fn tricky_strings(s in TRICKY) {
                check(&s)?;
            }
        }
    }

    #[test]
    fn strip_keeps_non_ascii() {
        assert_eq!(strip("日<b>本</b>😀 < é"), "日本😀 < é");
        assert_eq!(strip("é<é>é"), "éé");
    }
}
