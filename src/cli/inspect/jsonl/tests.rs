//! The direct reading and writing checked against serde_json, and the line contract.

use serde::ser::{SerializeMap, SerializeSeq, Serializer as _};

use super::input::Trickle;
use super::*;
use crate::prefill::prefill;

fn run_str(input: &str) -> String {
    let mut out = Vec::new();
    run(input.as_bytes(), &mut out).unwrap_or_default();
    String::from_utf8(out).unwrap_or_default()
}

/// The answer to `line` as serde_json reads and writes it: the reference for the direct
/// reader and writer.
fn serde_answer(line: &str) -> String {
    struct Pairs<'a>(&'a Context);
    impl serde::Serialize for Pairs<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.0.len()))?;
            for pair in self.0.pairs() {
                seq.serialize_element(&[pair.0, pair.1])?;
            }
            seq.end()
        }
    }
    struct Slots<'a>(&'a Context);
    impl serde::Serialize for Slots<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(prefill(self.0).slots())
        }
    }
    let Ok(request) = serde_json::from_str::<Request>(line) else {
        return "unreadable".to_owned();
    };
    let mut ctx = Context::new();
    let result = Pipeline::new().run(request.b64.as_bytes(), &mut ctx);
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut buf);
    let _ = (|| -> serde_json::Result<()> {
        let mut map = ser.serialize_map(Some(4))?;
        map.serialize_entry("id", request.id.unwrap_or(RawValue::NULL))?;
        match result {
            Ok(()) => {
                map.serialize_entry("pairs", &Pairs(&ctx))?;
                map.serialize_entry("prefill", &Slots(&ctx))?;
                map.serialize_entry("reason", &None::<&str>)?;
            }
            Err(reason) => {
                map.serialize_entry("pairs", &None::<()>)?;
                map.serialize_entry("prefill", &Slots(&Context::new()))?;
                map.serialize_entry("reason", reason.as_str())?;
            }
        }
        SerializeMap::end(map)
    })();
    buf.push(b'\n');
    String::from_utf8(buf).unwrap_or_default()
}

#[test]
fn direct_reading_and_writing_match_serde_json() {
    let vectors = include_str!("../../../../tests/fixtures/vectors.jsonl");
    let mut payloads: Vec<String> = vectors
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["b64"].as_str().map(str::to_owned))
        .collect();
    assert!(payloads.len() > 200);
    payloads.extend(
        [
            "", "e30=", "e30-", "////", "a\\/", "a\"b", "é", "\t", "\u{7f}",
        ]
        .map(String::from),
    );
    let ids = [
        "0",
        "-7",
        "42",
        "123456789012345678901234567890",
        "\"\"",
        "\"a b~\"",
    ];
    let mut usual = 0;
    for (n, b64) in payloads.iter().enumerate() {
        let id = ids[n % ids.len()];
        let body = serde_json::to_string(b64).unwrap_or_default();
        // As serde_json writes it, and as PHP's `json_encode` does (`/` as `\/`).
        for body in [body.clone(), body.replace('/', "\\/")] {
            let line = format!(r#"{{"id":{id},"b64":{body}}}"#);
            let mut scratch = Vec::new();
            usual += usize::from(usual_request(line.as_bytes(), &mut scratch).is_some());
            assert_eq!(run_str(&format!("{line}\n")), serde_answer(&line), "{line}");
        }
    }
    assert!(usual > 400, "{usual}");
}

#[test]
fn unusual_lines_are_left_to_serde_json() {
    let mut scratch = Vec::new();
    for line in [
        r#"{"id":1,"b64":"e30="} "#,
        r#"{"id":01,"b64":"e30="}"#,
        r#"{"id":1.5,"b64":"e30="}"#,
        r#"{"id":"\n","b64":"e30="}"#,
        r#"{"id":"é","b64":"e30="}"#,
        r#"{"id":-,"b64":"e30="}"#,
        r#"{"id":1,"b64":"e30\u003d"}"#,
        r#"{"id":1,"b64":"é"}"#,
        "{\"id\":1,\"b64\":\"e\t\"}",
        r#"{"id":1,"b64":"a"b"}"#,
        r#"{"id":1,"b64":"e30=","b64":"e30-"}"#,
        r#"{"b64":"e30=","id":1}"#,
        r#"{"id":1,"b64":"e30=\"}"#,
    ] {
        assert!(
            usual_request(line.as_bytes(), &mut scratch).is_none(),
            "{line}"
        );
    }
    let line = r#"{"id":"x","b64":"e3\/9"}"#;
    assert_eq!(
        usual_request(line.as_bytes(), &mut scratch),
        Some((&br#""x""#[..], &b"e3/9"[..]))
    );
}

#[test]
fn jsonl_shape() {
    let got = run_str(concat!(
        r#"{"id":"a","b64":"eyJpbXNfZW1haWwiOiJ4QHkiLCJiIGIiOjF9"}"#,
        "\n",
        r#"{"id":7,"b64":"e30-"}"#,
        "\n"
    ));
    assert_eq!(
        got,
        concat!(
            r#"{"id":"a","pairs":[["ims_email","x@y"]],"prefill":{"visitor_email":"x@y","email":"x@y"},"reason":null}"#,
            "\n",
            r#"{"id":7,"pairs":null,"prefill":{},"reason":"base64"}"#,
            "\n"
        )
    );
}

#[test]
fn overlong_lines_are_answered_and_skipped() {
    let long = format!("{{\"id\":1,\"b64\":\"{}\"}}\n", "A".repeat(MAX_LINE_BYTES));
    let got = run_str(&format!("{long}{{\"id\":2,\"b64\":\"e30=\"}}"));
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("\"error\""), "{}", lines[0]);
    assert!(
        lines[1].starts_with("{\"id\":2,\"pairs\":[]"),
        "{}",
        lines[1]
    );
}

#[test]
fn malformed_lines_get_an_error_object_each() {
    let got = run_str("not json\n\n{\"id\":1}\n{\"id\":2,\"b64\":5}\n{\"b64\":\"e30=\"}");
    let lines: Vec<serde_json::Value> = got
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_default())
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0]["error"].is_string() && lines[0]["id"].is_null());
    assert!(lines[1]["error"].is_string());
    assert_eq!(lines[2]["id"], 1);
    assert!(lines[2]["error"].is_string());
    assert_eq!(lines[3]["id"], 2);
    assert!(lines[3]["error"].is_string());
    assert_eq!(lines[4]["pairs"], serde_json::json!([]));
}

#[test]
fn lines_taken_where_they_lie_are_the_lines_a_line_reader_gives() {
    // Usual lines (ids of both kinds, `\/` escapes), lines that only look usual (something
    // after the object, a quote inside, a control byte), serde_json's lines, empty lines, and
    // a last line without `\n`, read whole and cut at every kind of boundary.
    let payload = "eyJpbXNfZW1haWwiOiJ4QHkiLCJiIGIiOjF9";
    let lines = [
        format!(r#"{{"id":1,"b64":"{payload}"}}"#),
        format!(r#"{{"id":"a b","b64":"{}"}}"#, payload.replace('Q', "\\/")),
        format!(r#"{{"id":2,"b64":"{payload}"}} "#),
        format!(r#"{{"id":3,"b64":"{payload}"}}x"#),
        r#"{"id":4,"b64":"e3"0="}"#.to_owned(),
        "{\"id\":5,\"b64\":\"e3\t0=\"}".to_owned(),
        format!(r#"{{ "id": 6, "b64": "{payload}" }}"#),
        String::new(),
        r#"{"id":7,"b64":"e30\/"}"#.to_owned(),
        "not json".to_owned(),
        format!(r#"{{"id":8,"b64":"{}"}}"#, "QUFB".repeat(3000)),
        r#"{"id":9,"b64":"e30="}"#.to_owned(),
    ];
    let mut input = lines.join("\n");
    input = format!("{input}\n{input}");
    let want: String = input
        .split('\n')
        .map(|line| run_str(&format!("{line}\n")))
        .collect();
    for step in [1 << 20, 4_096, 1_000, 97, 7, 1] {
        let mut out = Vec::new();
        run(Trickle(input.as_bytes(), step), &mut out).unwrap_or_default();
        assert_eq!(String::from_utf8(out).unwrap_or_default(), want, "{step}");
    }
}

#[test]
fn an_overlong_usual_line_is_too_long_even_when_read_whole() {
    // The first line grows the read buffer to 2 MiB and ends just past it, so the next read
    // brings in the whole of the second one, over 1 MiB.
    let usual = |len: usize| format!(r#"{{"id":1,"b64":"{}"}}"#, "A".repeat(len - 17));
    let (first, second) = (usual(2 * MAX_LINE_BYTES + 10), usual(MAX_LINE_BYTES + 1));
    let got = run_str(&format!(
        "{first}\n{second}\n{{\"id\":2,\"b64\":\"e30=\"}}\n"
    ));
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].contains("\"error\""), "{}", &lines[0]);
    assert!(lines[1].contains("\"error\""), "{}", &lines[1]);
    assert!(
        lines[2].starts_with("{\"id\":2,\"pairs\":[]"),
        "{}",
        lines[2]
    );
}
