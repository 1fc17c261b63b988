//! Every case of `tests/fixtures/vectors.jsonl` (expected outputs of the PHP 8.2 reference),
//! checked through the library and through the real binary's `flowgate inspect --jsonl`.
#![allow(clippy::unwrap_used)]

mod common {
    pub mod process;
}

use common::process::{flowgate_cmd, run};
use flowgate::context::{Context, Pipeline};
use flowgate::prefill::prefill;
use serde_json::{Map, Value, json};

const VECTORS: &str = include_str!("fixtures/vectors.jsonl");

fn vectors() -> Vec<Value> {
    VECTORS
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The fields compared: pairs, prefill, reason.
fn expected(v: &Value) -> Value {
    json!({"pairs": v["pairs"], "prefill": v["prefill"], "reason": v["reason"]})
}

fn report(failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn all_vectors_through_the_library() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 242);
    let mut pipeline = Pipeline::new();
    let mut ctx = Context::new();
    let mut failures = Vec::new();
    for v in &vectors {
        let b64 = v["b64"].as_str().unwrap();
        let got = match pipeline.run(b64.as_bytes(), &mut ctx) {
            Ok(()) => {
                let pairs: Vec<Value> = ctx.pairs().map(|(k, v)| json!([k, v])).collect();
                let slots: Map<String, Value> = prefill(&ctx)
                    .slots()
                    .map(|(s, v)| (s.to_owned(), json!(v)))
                    .collect();
                json!({"pairs": pairs, "prefill": slots, "reason": null})
            }
            Err(reason) => json!({"pairs": null, "prefill": {}, "reason": reason.as_str()}),
        };
        if got != expected(v) {
            failures.push(format!("{}: expected {} got {}", v["id"], expected(v), got));
        }
    }
    report(&failures, vectors.len());
}

#[test]
fn all_vectors_through_inspect_jsonl() {
    let vectors = vectors();
    // The vectors' extra fields (cat, note, expected outputs) are ignored by inspect.
    let output = run(&mut flowgate_cmd(&["inspect", "--jsonl"]), VECTORS);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), vectors.len());

    let mut failures = Vec::new();
    for (v, line) in vectors.iter().zip(&lines) {
        let got: Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&str> = got
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 4, "{line}");
        assert_eq!(got["id"], v["id"], "output order = input order");
        let got =
            json!({"pairs": got["pairs"], "prefill": got["prefill"], "reason": got["reason"]});
        if got != expected(v) {
            failures.push(format!("{}: expected {} got {}", v["id"], expected(v), got));
        }
    }
    report(&failures, vectors.len());
}

#[test]
fn jsonl_field_order_is_stable() {
    let output = run(
        &mut flowgate_cmd(&["inspect", "--jsonl"]),
        b"{\"id\":\"x\",\"b64\":\"eyJpbXNfcGhvbmUiOiIxIn0=\"}\n{\"b64\":\"\"}\n".as_slice(),
    );
    assert_eq!(
        output,
        concat!(
            r#"{"id":"x","pairs":[["ims_phone","1"]],"prefill":{"visitor_phone":"1","phone":"1","custom1":"1"},"reason":null}"#,
            "\n",
            r#"{"id":null,"pairs":null,"prefill":{},"reason":"json"}"#,
            "\n"
        )
    );
}
