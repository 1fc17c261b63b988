//! Differential tests: flowgate's `entity_decode_into` / `strip_tags_into` against the real
//! PHP (`php-cli`, installed by `scripts/test`) running `tests/php/html.php`.
//!
//! Inputs are generated from a seeded generator, so a failure reproduces exactly. Knobs:
//! `FLOWGATE_HTML_CASES` (default 20,000 random strings) and `FLOWGATE_HTML_SEED`.
//! A mismatch is shrunk (characters removed while PHP and Rust still disagree) and reported
//! with the minimal input and both outputs.
#![allow(clippy::unwrap_used)]

mod common {
    pub mod process;
    pub mod rng;
}

use std::fmt::Write as _;
use std::path::Path;

use common::rng::Rng;
use flowgate::context::html::{
    entity_decode_into, sanitize_into, sanitize_prefix_into, strip_tags_into,
};

/// Runs `php -n tests/php/html.php [mode]` with `stdin` and returns its stdout lines.
fn php(mode: Option<&str>, stdin: String) -> Vec<String> {
    let mut cmd = common::process::php(&["-n"], "html.php");
    cmd.args(mode);
    let out = common::process::run(&mut cmd, stdin);
    out.lines().map(str::to_owned).collect()
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(s, "{b:02x}").unwrap();
    }
    s
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The outputs compared for one input: decode, strip, strip(decode) (`sanitize_into`), and
/// the first [`CUT`] code points of strip(decode) (`sanitize_prefix_into`, which may stop early).
#[derive(Debug, PartialEq, Eq, Clone)]
struct Outputs {
    decode: Vec<u8>,
    strip: Vec<u8>,
    both: Vec<u8>,
    cut: Vec<u8>,
}

/// A small cut, so that short generated inputs reach `sanitize_prefix_into`'s early stop.
const CUT: usize = 12;

fn first_chars(bytes: &[u8], n: usize) -> Vec<u8> {
    let s = std::str::from_utf8(bytes).unwrap();
    s.chars().take(n).collect::<String>().into_bytes()
}

fn rust_outputs(input: &str) -> Outputs {
    let mut decode = String::new();
    entity_decode_into(input, &mut decode);
    let mut strip = String::new();
    strip_tags_into(input, &mut strip);
    let mut scratch = String::new();
    let mut both = String::new();
    sanitize_into(input, &mut scratch, &mut both);
    let mut cut = String::from("kept");
    sanitize_prefix_into(input, CUT, &mut scratch, &mut cut);
    assert!(cut.starts_with("kept"));
    Outputs {
        decode: decode.into_bytes(),
        strip: strip.into_bytes(),
        both: both.into_bytes(),
        cut: first_chars(&cut.as_bytes()[4..], CUT),
    }
}

fn php_outputs(inputs: &[String]) -> Vec<Outputs> {
    let mut stdin = String::new();
    for input in inputs {
        stdin.push_str(&hex(input.as_bytes()));
        stdin.push('\n');
    }
    let lines = php(None, stdin);
    assert_eq!(
        lines.len(),
        inputs.len(),
        "php answered a different number of lines"
    );
    lines
        .iter()
        .map(|line| {
            let mut cols = line.split(' ');
            let mut next = || unhex(cols.next().unwrap());
            let (decode, strip, both) = (next(), next(), next());
            let cut = first_chars(&both, CUT);
            Outputs {
                decode,
                strip,
                both,
                cut,
            }
        })
        .collect()
}

/// Indices of the inputs where Rust and PHP disagree.
fn mismatches(inputs: &[String]) -> Vec<(usize, Outputs, Outputs)> {
    php_outputs(inputs)
        .into_iter()
        .enumerate()
        .filter_map(|(i, want)| {
            let got = rust_outputs(&inputs[i]);
            (got != want).then_some((i, want, got))
        })
        .collect()
}

/// Removes characters one at a time while PHP and Rust still disagree (one PHP run per round).
fn shrink(mut input: String) -> String {
    loop {
        let chars: Vec<char> = input.chars().collect();
        let candidates: Vec<String> = (0..chars.len())
            .map(|skip| {
                chars
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, c)| *c)
                    .collect()
            })
            .collect();
        match mismatches(&candidates).into_iter().next() {
            Some((i, _, _)) => input = candidates[i].clone(),
            None => return input,
        }
    }
}

fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// Checks every input against PHP; on failure, panics with the count and the shrunk cases.
fn assert_same_as_php(what: &str, inputs: &[String]) {
    let bad = mismatches(inputs);
    if bad.is_empty() {
        return;
    }
    let mut report = format!(
        "{what}: {} of {} inputs differ from PHP\n",
        bad.len(),
        inputs.len()
    );
    let mut shortest: Vec<&String> = bad.iter().map(|(i, _, _)| &inputs[*i]).collect();
    shortest.sort_by_key(|s| s.len());
    shortest.dedup();
    for input in shortest.into_iter().take(5) {
        let small = shrink(input.clone());
        let want = &php_outputs(std::slice::from_ref(&small))[0];
        let got = rust_outputs(&small);
        writeln!(
            report,
            "\ninput (shrunk from {} bytes): {:?}",
            input.len(),
            small
        )
        .unwrap();
        for (name, w, g) in [
            ("html_entity_decode", &want.decode, &got.decode),
            ("strip_tags", &want.strip, &got.strip),
            ("strip_tags(html_entity_decode)", &want.both, &got.both),
            (
                "first code points of strip_tags(html_entity_decode)",
                &want.cut,
                &got.cut,
            ),
        ] {
            if w != g {
                writeln!(
                    report,
                    "  {name}:\n    php:  {}\n    rust: {}",
                    show(w),
                    show(g)
                )
                .unwrap();
            }
        }
    }
    panic!("{report}");
}

const ALPHABET: &[u8] = b"&#;xX0123456789abcdefABCDEF<>!?-/\"'= \t\n\x0B\x0C\r\0\\()lmLMpP";

const TAG_PIECES: &[&str] = &[
    "<",
    ">",
    "<a>",
    "</a>",
    "<b",
    "<br/>",
    "<a href=\"",
    "<a href='",
    "\"",
    "'",
    "<!--",
    "-->",
    "--",
    "<!",
    "<!-",
    "<!DOCTYPE",
    "<!doctype html>",
    "<?",
    "?>",
    "<?php",
    "<?php echo 1; ?>",
    "<?xml",
    "<?XmL ",
    "<script>",
    "</script>",
    "< ",
    "<\t",
    "<\n",
    "<\x0B",
    "<\x0C",
    "<\r",
    "<\0",
    "\0",
    "\\",
    "\\\"",
    "\\'",
    "(",
    ")",
    "<<",
    ">>",
    "<=",
    "=>",
    "<3",
    "1<2",
    "a<b>c",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "javascript:",
    "<!-- x -->",
    "<![CDATA[",
    "]]>",
];

const NON_ASCII: &[&str] = &[
    "é",
    "ß",
    "日本",
    "😀",
    "👩‍💻",
    "\u{A0}",
    "\u{2028}",
    "\u{FEFF}",
    "\u{FFFD}",
    "Ω",
    "\u{338}",
    "\u{10FFFF}",
    "ñ",
    "€",
];

/// References that decode to bytes `strip_tags` reacts to (or to C whitespace after `<`):
/// the cases where the fused pass of `sanitize_into` must act like two passes.
const MARKUP_REFERENCES: &[&str] = &[
    "&lt;",
    "&gt;",
    "&LT;",
    "&GT;",
    "&quot;",
    "&QUOT;",
    "&apos;",
    "&amp;",
    "&excl;",
    "&quest;",
    "&nvlt;",
    "&nvgt;",
    "&lpar;",
    "&rpar;",
    "&bsol;",
    "&Tab;",
    "&NewLine;",
    "&#60;",
    "&#x3c;",
    "&#62;",
    "&#x3E;",
    "&#33;",
    "&#63;",
    "&#45;",
    "&#x2d;",
    "&#92;",
    "&#40;",
    "&#41;",
    "&#108;",
    "&#76;",
    "&#109;",
    "&#120;",
    "&#101;",
    "&#69;",
    "&#34;",
    "&#39;",
    "&#32;",
    "&#9;",
    "&#10;",
    "&#12;",
    "&#47;",
    "&#97;",
    "&#x3F;",
    "&#x21;",
];

const WORDS: &[&str] = &[
    "amp", "lt", "gt", "quot", "apos", "nbsp", "x", "name", "12", "ab",
];

/// Code points around every boundary of PHP's numeric-reference rules.
const CODE_POINTS: &[u64] = &[
    0,
    1,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    31,
    32,
    34,
    38,
    39,
    60,
    62,
    65,
    126,
    127,
    128,
    129,
    150,
    159,
    160,
    255,
    256,
    0x338,
    0x2028,
    0xD7FF,
    0xD800,
    0xDBFF,
    0xDC00,
    0xDFFF,
    0xE000,
    0xFDCF,
    0xFDD0,
    0xFDEF,
    0xFDF0,
    0xFFFD,
    0xFFFE,
    0xFFFF,
    0x10000,
    0x1F600,
    0x1FFFE,
    0x1FFFF,
    0x20000,
    0x10FFFD,
    0x10FFFE,
    0x10FFFF,
    0x110000,
    0x110001,
    0xFFFF_FFFF,
    0x1_0000_0000,
    u64::MAX,
];

fn numeric_reference(rng: &mut Rng) -> String {
    let cp = if rng.chance(80) {
        rng.pick(CODE_POINTS)
    } else {
        rng.next() % 0x11_0010
    };
    let mut s = String::from("&#");
    let zeros = if rng.chance(15) { rng.below(4) } else { 0 };
    match rng.below(4) {
        0 | 1 => {
            s.push_str(&"0".repeat(zeros));
            write!(s, "{cp}").unwrap();
        }
        2 => {
            s.push(rng.pick(&['x', 'X']));
            if rng.chance(10) {
                s.push_str(rng.pick(&["0x", "0X", "00x", "0"]));
            }
            s.push_str(&"0".repeat(zeros));
            write!(s, "{cp:x}").unwrap();
        }
        _ => {
            s.push(rng.pick(&['x', 'X']));
            s.push_str(&"0".repeat(zeros));
            write!(s, "{cp:X}").unwrap();
        }
    }
    if rng.chance(85) {
        s.push(';');
    }
    s
}

fn named_reference(rng: &mut Rng) -> String {
    let (name, _) = rng.pick(&html_escape::NAMED_ENTITIES);
    let mut name = String::from_utf8(name.to_vec()).unwrap();
    if rng.chance(10) {
        name.truncate(1 + rng.below(name.len()));
    }
    if rng.chance(5) {
        name = name.to_uppercase();
    }
    if rng.chance(3) {
        name.push(rng.pick(&['1', 'x', 'Z']));
    }
    let mut s = String::new();
    if rng.chance(95) {
        s.push('&');
    }
    s.push_str(&name);
    if rng.chance(80) {
        s.push(';');
    }
    s
}

/// A run of letters, digits, spaces and non-ASCII: long stretches between markup (the
/// vectorised search paths) and over-long reference names.
fn filler(rng: &mut Rng) -> String {
    const CHARS: &[char] = &['a', 'Z', 'q', '0', '7', ' ', 'é', '日', '😀', 'x', 'X'];
    let len = 1 + rng.below(80);
    (0..len).map(|_| rng.pick(CHARS)).collect()
}

fn random_input(rng: &mut Rng) -> String {
    let pieces = if rng.chance(5) {
        rng.below(60)
    } else {
        rng.below(14)
    };
    let mut s = String::new();
    for _ in 0..pieces {
        match rng.below(100) {
            0..=39 => s.push(rng.pick(ALPHABET) as char),
            40..=54 => s.push_str(&named_reference(rng)),
            55..=69 => s.push_str(&numeric_reference(rng)),
            70..=84 => s.push_str(rng.pick(TAG_PIECES)),
            85..=87 => s.push_str(rng.pick(NON_ASCII)),
            88..=90 => s.push_str(rng.pick(MARKUP_REFERENCES)),
            91..=94 => s.push_str(&filler(rng)),
            _ => s.push_str(rng.pick(WORDS)),
        }
    }
    s
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_strings_match_php() {
    let cases = env_number("FLOWGATE_HTML_CASES", 20_000) as usize;
    let seed = env_number("FLOWGATE_HTML_SEED", 0x5EED_F10E);
    let mut rng = Rng(seed);
    // Batches keep memory flat on the large local runs.
    let mut done = 0;
    while done < cases {
        let batch = (cases - done).min(200_000);
        let inputs: Vec<String> = (0..batch).map(|_| random_input(&mut rng)).collect();
        assert_same_as_php(
            &format!("seed {seed:#x}, cases {done}..{}", done + batch),
            &inputs,
        );
        done += batch;
    }
}

#[test]
fn every_named_entity_matches_php() {
    let mut inputs = Vec::new();
    for (name, _) in html_escape::NAMED_ENTITIES.iter() {
        let name = std::str::from_utf8(name).unwrap();
        let upper = name.to_uppercase();
        let short = &name[..name.len() - 1];
        inputs.extend([
            format!("&{name};"),
            format!("&{name}"),
            format!("&{name} ;"),
            format!("x&{name};y"),
            format!("&{name};;&{name};"),
            format!("&amp;{name};"),
            format!("&{upper};"),
            format!("&{short};"),
            format!("&{name}x;"),
            format!("<a title=\"&{name};\">&{name};</a>"),
        ]);
    }
    assert_same_as_php("named references", &inputs);
}

#[test]
fn php_translation_table_decodes_the_same() {
    // PHP's own list of (character, entity) for ENT_HTML5: every entity must decode back.
    let lines = php(Some("--table"), String::new());
    assert!(
        lines.len() > 1000,
        "php returned only {} entries",
        lines.len()
    );
    for line in lines {
        let (char_hex, entity_hex) = line.split_once(' ').unwrap();
        let want = unhex(char_hex);
        let entity = String::from_utf8(unhex(entity_hex)).unwrap();
        let mut got = String::new();
        entity_decode_into(&entity, &mut got);
        assert_eq!(got.as_bytes(), want.as_slice(), "{entity}");
    }
}

#[test]
fn numeric_reference_ranges_match_php() {
    let mut want = String::new();
    for line in php(Some("--numeric"), String::new()) {
        want.push_str(&line);
        want.push('\n');
    }
    let mut got = String::new();
    let mut first = None;
    let mut input = String::new();
    let mut out = String::new();
    for cp in 0..=0x11_0001u32 {
        input.clear();
        out.clear();
        write!(input, "&#x{cp:X};").unwrap();
        entity_decode_into(&input, &mut out);
        let ok = out != input;
        match (ok, first) {
            (true, None) => first = Some(cp),
            (false, Some(start)) => {
                writeln!(got, "{start} {}", cp - 1).unwrap();
                first = None;
            }
            _ => {}
        }
    }
    if let Some(start) = first {
        writeln!(got, "{start} {}", 0x11_0001).unwrap();
    }
    assert_eq!(got, want);
}

/// The `xss` and `fuzzv` cases of the shared conformance vectors, value by value: each
/// accepted string value must come out as `mb_substr(strip_tags(html_entity_decode(v)), 0, 500)`.
#[test]
fn conformance_vector_values() {
    use base64::Engine as _;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vectors.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let mut checked = 0;
    for line in text.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        if !matches!(case["cat"].as_str(), Some("xss" | "fuzzv")) {
            continue;
        }
        let Some(pairs) = case["pairs"].as_array() else {
            continue;
        };
        let b64 = case["b64"].as_str().unwrap();
        let json = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(&json) else {
            continue;
        };
        for pair in pairs {
            let key = pair[0].as_str().unwrap();
            let want = pair[1].as_str().unwrap();
            let Some(serde_json::Value::String(raw)) = object.get(key) else {
                continue;
            };
            let mut scratch = String::new();
            let mut stripped = String::new();
            sanitize_into(raw, &mut scratch, &mut stripped);
            let got: String = stripped.chars().take(500).collect();
            assert_eq!(got, want, "{} key {key}", case["id"]);
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} values checked");
}
