//! Differential test: `flowgate inspect --jsonl` (the real binary) against the contract written
//! with PHP's own functions (`tests/php/pipeline.php`, run by the real `php`), on thousands of
//! generated payloads.
//!
//! The generator is structure-aware (keys and values drawn from tricky alphabets: entities, tags,
//! numbers, Unicode, escapes, duplicates, nesting, then JSON- and base64-level corruption) and
//! seeded, so a failure reproduces exactly. Knobs: `FLOWGATE_DIFF_CASES` (default 4,000) and
//! `FLOWGATE_DIFF_SEED`. A mismatching object is shrunk member by member before it is reported.
#![allow(clippy::unwrap_used)]

mod common {
    pub mod process;
    pub mod rng;
}

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use common::process::{flowgate_cmd, php, run};
use common::rng::Rng;
use serde_json::Value;

const VALUE_FRAGMENTS: &[&str] = &[
    "a",
    "Jane Smith",
    "jane@example.com",
    "+1 555 0100",
    " ",
    "\t",
    "\n",
    "\r\n",
    "0",
    "x",
    "&amp;",
    "&amp",
    "&lt;",
    "&gt;",
    "&quot;",
    "&#39;",
    "&apos;",
    "&nbsp;",
    "&copy;",
    "&NotANamedEntity;",
    "&notin;",
    "&notit;",
    "&not",
    "&#0;",
    "&#13;",
    "&#x80;",
    "&#x9F;",
    "&#128;",
    "&#xD800;",
    "&#xFFFE;",
    "&#x10FFFF;",
    "&#x110000;",
    "&#65;",
    "&#x41;",
    "&#X41;",
    "&#;",
    "&#x;",
    "&amp;lt;",
    "&AMP;",
    "&Amp;",
    "&ngE;",
    "&nGt;",
    "&bne;",
    "&#0000065;",
    "&#99999999999;",
    "&",
    "&;",
    "&#",
    "<b>",
    "</b>",
    "<script>alert(1)</script>",
    "<!-- c -->",
    "<!--",
    "-->",
    "<?php echo 1; ?>",
    "<?",
    "?>",
    "<a href=\">\">x</a>",
    "<a href='>'>",
    "1<2",
    "1 < 2",
    "<\t>",
    "< b>",
    "<<b>>",
    "a>b",
    ">",
    "<",
    "<br/>",
    "<!DOCTYPE html>",
    "<img src=x onerror=alert(1)>",
    "\"",
    "'",
    "\\",
    "/",
    "é",
    "ü",
    "日本",
    "😀",
    "\u{200b}",
    "\u{feff}",
    "\u{0}",
    "\u{1}",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "e\u{301}",
    "ims_",
    "%2B",
    "+",
    "=",
    "&lt;b&gt;",
    "&#60;i&#62;",
    "<3",
    "a < b > c",
    "<p title=\"a>b\">t</p>",
];

const KEY_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
const RESERVED_KEYS: &[&str] = &[
    "ims_username",
    "ims_email",
    "ims_telephone",
    "ims_phone",
    "IMS_EMAIL",
    "ims_Email",
    "ims_email\n",
    "account_id",
    "plan",
];
const BAD_KEYS: &[&str] = &[
    "", "a b", "a.b", "é", "key\n", "\nkey", "a\u{0}b", "$x", "٣", "k\t", "a/b", "ключ",
];
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "42",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "123456789012345678901234567890",
    "0.1",
    "0.30000000000000004",
    "1e15",
    "1E+2",
    "1e-5",
    "-0.0",
    "1e400",
    "-1e400",
    "1.5e-7",
    "123456789012345.0",
    "999999999999995.0",
    "1.0",
    "100.0",
    "1e14",
    "1e13",
    "2.5E-300",
    "4.9e-324",
    "1e-400",
    "0.0001",
    "0.00001",
    "99999999999999.5",
    "1.7976931348623157e308",
];

/// A generated payload.
#[derive(Clone)]
struct Case {
    /// Top-level members as JSON text (`"key"`, value), when the document is an object.
    members: Vec<(Vec<u8>, Vec<u8>)>,
    /// A non-object document, used instead of `members` when set.
    document: Option<Vec<u8>>,
    /// Corrupt the JSON text (seeded).
    json_mutation: Option<u64>,
    /// Alter the base64 text (seeded).
    b64_mutation: Option<u64>,
}

impl Case {
    fn json(&self) -> Vec<u8> {
        let mut doc = match &self.document {
            Some(d) => d.clone(),
            None => {
                let mut d = b"{".to_vec();
                for (i, (k, v)) in self.members.iter().enumerate() {
                    if i > 0 {
                        d.push(b',');
                    }
                    d.extend_from_slice(k);
                    d.push(b':');
                    d.extend_from_slice(v);
                }
                d.push(b'}');
                d
            }
        };
        if let Some(seed) = self.json_mutation {
            corrupt_json(&mut Rng(seed), &mut doc);
        }
        doc
    }

    fn b64(&self) -> String {
        let json = self.json();
        match self.b64_mutation {
            Some(seed) => mutate_b64(&mut Rng(seed), &json),
            None => STANDARD.encode(json),
        }
    }
}

/// Writes `s` as a JSON string with a random escaping style.
fn json_string(rng: &mut Rng, s: &str, out: &mut Vec<u8>) {
    let escape_all = rng.chance(10);
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' if rng.chance(50) => out.extend_from_slice(b"\\n"),
            '/' if rng.chance(30) => out.extend_from_slice(b"\\/"),
            c if (c as u32) < 0x20 || escape_all || rng.chance(3) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let hex = if rng.chance(50) {
                        format!("\\u{u:04x}")
                    } else {
                        format!("\\u{u:04X}")
                    };
                    out.extend_from_slice(hex.as_bytes());
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn gen_text(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(8) {
        // Long values: truncation at 500 code points, sometimes mid-entity.
        let frag = rng.pick(VALUE_FRAGMENTS);
        let n = rng.range(400, 700);
        while s.chars().count() < n {
            s.push_str(if rng.chance(70) { "é" } else { frag });
        }
        return s;
    }
    for _ in 0..rng.range(0, 6) {
        if rng.chance(25) {
            for _ in 0..rng.range(1, 8) {
                s.push(char::from(rng.pick(KEY_CHARS)));
            }
        } else {
            s.push_str(rng.pick(VALUE_FRAGMENTS));
        }
    }
    s
}

fn gen_key(rng: &mut Rng, members: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    if !members.is_empty() && rng.chance(8) {
        // A duplicate, spelt as before.
        return members[rng.below(members.len())].0.clone();
    }
    let text: String = match rng.below(100) {
        0..=54 => (0..rng.range(1, 12))
            .map(|_| char::from(rng.pick(KEY_CHARS)))
            .collect(),
        55..=69 => rng.pick(RESERVED_KEYS).to_owned(),
        70..=79 => (0..rng.range(97, 103))
            .map(|_| char::from(rng.pick(KEY_CHARS)))
            .collect(),
        80..=81 if rng.chance(25) => "\u{0}ab".to_owned(),
        _ => rng.pick(BAD_KEYS).to_owned(),
    };
    let mut out = Vec::new();
    json_string(rng, &text, &mut out);
    out
}

fn gen_number(rng: &mut Rng) -> String {
    if rng.chance(50) {
        return rng.pick(NUMBERS).to_owned();
    }
    let mut s = String::new();
    if rng.chance(30) {
        s.push('-');
    }
    let int_digits = rng.range(1, 20);
    for i in 0..int_digits {
        let d = if i == 0 && int_digits > 1 {
            rng.range(1, 9)
        } else {
            rng.below(10)
        };
        s.push(char::from(b'0' + d as u8));
    }
    if rng.chance(50) {
        s.push('.');
        for _ in 0..rng.range(1, 17) {
            s.push(char::from(b'0' + rng.below(10) as u8));
        }
    }
    if rng.chance(40) {
        s.push(rng.pick(&['e', 'E']));
        if rng.chance(60) {
            s.push(rng.pick(&['+', '-']));
        }
        s.push_str(&rng.range(0, 330).to_string());
    }
    s
}

fn gen_nested(rng: &mut Rng, depth: usize, out: &mut Vec<u8>) {
    if depth == 0 || rng.chance(30) {
        match rng.below(4) {
            0 => {
                let text = gen_text(rng);
                json_string(rng, &text, out);
            }
            1 => out.extend_from_slice(gen_number(rng).as_bytes()),
            2 => out.extend_from_slice(b"null"),
            _ => out.extend_from_slice(if rng.chance(50) { b"[]" } else { b"{}" }),
        }
        return;
    }
    let object = rng.chance(50);
    out.push(if object { b'{' } else { b'[' });
    for i in 0..rng.range(0, 3) {
        if i > 0 {
            out.push(b',');
        }
        if object {
            let key = if rng.chance(2) { "\u{0}" } else { "k" };
            json_string(rng, key, out);
            out.push(b':');
        }
        gen_nested(rng, depth - 1, out);
    }
    out.push(if object { b'}' } else { b']' });
}

fn nest(levels: usize) -> Vec<u8> {
    let mut v = b"[".repeat(levels);
    v.extend_from_slice(&b"]".repeat(levels));
    v
}

fn gen_value(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    match rng.below(100) {
        0..=54 => {
            let text = gen_text(rng);
            json_string(rng, &text, &mut out);
        }
        55..=74 => out.extend_from_slice(gen_number(rng).as_bytes()),
        75..=79 => out.extend_from_slice(b"true"),
        80..=83 => out.extend_from_slice(b"false"),
        84..=87 => out.extend_from_slice(b"null"),
        88..=89 if rng.chance(40) => {
            // Lone or paired surrogate escapes.
            let s: &str = rng.pick(&[
                "\"\\ud800\"",
                "\"\\udc00\"",
                "\"a\\ud83d\\ude00\"",
                "\"\\ud800\\u0041\"",
                "[\"\\ud800\"]",
                "\"\\uDBFF\\uDFFF\"",
            ]);
            out.extend_from_slice(s.as_bytes());
        }
        90 => out.extend_from_slice(&nest(rng.range(508, 512))),
        _ => gen_nested(rng, 4, &mut out),
    }
    out
}

fn gen_case(rng: &mut Rng) -> Case {
    let mut case = Case {
        members: Vec::new(),
        document: None,
        json_mutation: None,
        b64_mutation: None,
    };
    if rng.chance(6) {
        let doc: Vec<u8> = match rng.below(9) {
            0 => b"[]".to_vec(),
            1 => b"[{\"a\":1}]".to_vec(),
            2 => b"\"text\"".to_vec(),
            3 => gen_number(rng).into_bytes(),
            4 => b"null".to_vec(),
            5 => b" true ".to_vec(),
            6 => nest(rng.range(510, 512)),
            7 => b"".to_vec(),
            _ => b"{} ".to_vec(),
        };
        case.document = Some(doc);
    } else {
        let count = match rng.below(100) {
            0..=79 => rng.range(0, 12),
            80..=94 => rng.range(45, 80),
            _ => rng.range(150, 400),
        };
        for _ in 0..count {
            let key = gen_key(rng, &case.members);
            let value = gen_value(rng);
            case.members.push((key, value));
        }
        if rng.chance(4) {
            // Grow towards the 20,000-byte limit with one filler value.
            let json_len = case.json().len();
            let target = rng.range(14_900, 15_100);
            if json_len + 12 < target {
                let filler = "y".repeat(target - json_len - 12);
                case.members
                    .push((b"\"filler\"".to_vec(), format!("\"{filler}\"").into_bytes()));
            }
        }
    }
    if rng.chance(12) {
        case.json_mutation = Some(rng.next());
    }
    if rng.chance(25) {
        case.b64_mutation = Some(rng.next());
    }
    case
}

fn corrupt_json(rng: &mut Rng, doc: &mut Vec<u8>) {
    let pos = if doc.is_empty() {
        0
    } else {
        rng.below(doc.len() + 1)
    };
    match rng.below(8) {
        0 => doc.truncate(pos),
        1 => {
            let b = rng.pick(&[b',', b'}', b']', b'"', b'\\', 0x01, 0xff, b'x', b':', 0x80]);
            doc.insert(pos, b);
        }
        2 => {
            let bad: &[u8] = rng.pick(&[
                &b"\xed\xa0\x80"[..],
                &b"\xc0\x80"[..],
                &b"\xf4\x90\x80\x80"[..],
            ]);
            doc.splice(pos..pos, bad.iter().copied()).for_each(drop);
        }
        3 => doc.extend_from_slice(b" x"),
        4 => {
            doc.splice(0..0, b" \t\r\n".iter().copied());
            doc.extend_from_slice(b"\n ");
        }
        5 => doc
            .splice(0..0, b"\xef\xbb\xbf".iter().copied())
            .for_each(drop),
        6 => {
            if let Some(p) = doc.iter().rposition(|&b| b == b'}') {
                doc.insert(p, b',');
            }
        }
        _ => {
            if !doc.is_empty() {
                let p = rng.below(doc.len());
                doc.remove(p);
            }
        }
    }
}

fn mutate_b64(rng: &mut Rng, json: &[u8]) -> String {
    let mut s: Vec<u8> = if rng.chance(10) {
        URL_SAFE.encode(json).into_bytes()
    } else {
        STANDARD.encode(json).into_bytes()
    };
    for _ in 0..rng.range(1, 3) {
        let pos = rng.below(s.len() + 1);
        match rng.below(10) {
            0 => {
                while s.last() == Some(&b'=') {
                    s.pop();
                }
            }
            1..=3 => {
                for _ in 0..rng.range(1, 4) {
                    let p = rng.below(s.len() + 1);
                    s.insert(p, rng.pick(b" \t\n\r"));
                }
            }
            4 => s.insert(pos, rng.pick(&[0x0b, 0x0c, b'.', b'-', b'_', b'%', 0])),
            5 => s.insert(pos, b'='),
            6 => s.push(b'='),
            7 => s.push(rng.pick(b"AQz+/")),
            8 => {
                // Whitespace up to (or just past) the size limit.
                let target = rng.range(19_995, 20_003);
                while s.len() < target {
                    s.push(b'\n');
                }
            }
            _ => {
                if s.len() > 4 {
                    s.truncate(s.len() - rng.range(1, 3));
                }
            }
        }
    }
    String::from_utf8(s).unwrap()
}

/// One `{"id","b64"}` input line.
fn input_line(id: usize, b64: &str) -> String {
    serde_json::json!({"id": id, "b64": b64}).to_string()
}

/// The JSON lines `cmd` answers to `input`.
fn json_lines(cmd: &mut std::process::Command, input: String) -> Vec<Value> {
    run(cmd, input)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs both sides on `cases`; returns the outputs pairwise.
fn both(cases: &[Case]) -> Vec<(Value, Value)> {
    let mut input = String::new();
    for (i, c) in cases.iter().enumerate() {
        input.push_str(&input_line(i, &c.b64()));
        input.push('\n');
    }
    let php = json_lines(
        &mut php(&["-d", "precision=14"], "pipeline.php"),
        input.clone(),
    );
    let rust = json_lines(&mut flowgate_cmd(&["inspect", "--jsonl"]), input);
    assert_eq!(php.len(), cases.len(), "php answered every line");
    assert_eq!(rust.len(), cases.len(), "flowgate answered every line");
    php.into_iter().zip(rust).collect()
}

/// Removes members while PHP and flowgate still disagree.
fn shrink(mut case: Case) -> Case {
    if case.document.is_some() {
        return case;
    }
    loop {
        let candidates: Vec<Case> = (0..case.members.len())
            .map(|i| {
                let mut c = case.clone();
                c.members.remove(i);
                c
            })
            .collect();
        if candidates.is_empty() {
            return case;
        }
        let results = both(&candidates);
        match results.iter().position(|(php, rust)| php != rust) {
            Some(i) => case = candidates[i].clone(),
            None => return case,
        }
    }
}

fn first_difference(php: &Value, rust: &Value) -> String {
    if php["reason"] != rust["reason"] {
        return format!("reason: php {} flowgate {}", php["reason"], rust["reason"]);
    }
    let empty = Vec::new();
    let p = php["pairs"].as_array().unwrap_or(&empty);
    let r = rust["pairs"].as_array().unwrap_or(&empty);
    for i in 0..p.len().max(r.len()) {
        if p.get(i) != r.get(i) {
            return format!(
                "pair {i}: php {} flowgate {}",
                p.get(i).unwrap_or(&Value::Null),
                r.get(i).unwrap_or(&Value::Null)
            );
        }
    }
    format!(
        "prefill: php {} flowgate {}",
        php["prefill"], rust["prefill"]
    )
}

#[test]
fn generated_payloads_agree_with_php() {
    let cases_n: usize = std::env::var("FLOWGATE_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    let seed: u64 = std::env::var("FLOWGATE_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_F10E);
    let mut rng = Rng(seed);
    let cases: Vec<Case> = (0..cases_n).map(|_| gen_case(&mut rng)).collect();
    let results = both(&cases);

    let mismatches: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, (php, rust))| php != rust)
        .map(|(i, _)| i)
        .collect();
    let mut report = String::new();
    for &i in mismatches.iter().take(3) {
        let case = shrink(cases[i].clone());
        let (php, rust) = both(std::slice::from_ref(&case)).remove(0);
        let json = case.json();
        let shown = String::from_utf8_lossy(&json[..json.len().min(2_000)]).into_owned();
        report.push_str(&format!(
            "\ncase {i} (seed {seed}), shrunk:\n  json: {shown:?}\n  b64: {}\n  {}\n  php:      {php}\n  flowgate: {rust}\n",
            case.b64().chars().take(2_000).collect::<String>(),
            first_difference(&php, &rust),
        ));
    }
    // Coverage of the outcomes, so a generator regression shows up as well.
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for (php, _) in &results {
        *reasons.entry(php["reason"].to_string()).or_default() += 1;
    }
    eprintln!("{cases_n} cases (seed {seed}), outcomes: {reasons:?}");
    assert!(
        mismatches.is_empty(),
        "{} of {cases_n} payloads differ from PHP:{report}",
        mismatches.len()
    );
    for reason in ["null", "\"base64\"", "\"json\"", "\"not_object\""] {
        assert!(reasons.contains_key(reason), "no case ended with {reason}");
    }
}
