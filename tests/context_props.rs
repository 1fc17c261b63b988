//! Properties of the context pipeline over arbitrary input: it never panics, and whatever it
//! accepts respects the contract's limits and re-encodes to valid JSON.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flowgate::context::{Context, Discard, Pipeline, is_valid_key};
use flowgate::headers::{context_value, prefill_value};
use flowgate::prefill::prefill;
use proptest::prelude::*;
use serde_json::Value;

/// Checks every invariant of an accepted context.
fn check_accepted(ctx: &Context) {
    assert!(ctx.len() <= 50);
    for (k, v) in ctx.pairs() {
        assert!(k.len() <= 100, "key too long: {k:?}");
        assert!(is_valid_key(k), "key invalid: {k:?}");
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
        assert!(v.chars().count() <= 500);
    }
    let header = context_value(ctx);
    assert!(header.is_ascii());
    let json: Value = serde_json::from_slice(&STANDARD.decode(&header).unwrap()).unwrap();
    let object = json.as_object().unwrap();
    assert_eq!(object.len(), ctx.len(), "keys are unique after collapsing");
    for (k, v) in ctx.pairs() {
        assert_eq!(object[k], Value::from(v));
    }
    let p = prefill_value(&prefill(ctx));
    let slots: Value = serde_json::from_slice(&STANDARD.decode(&p).unwrap()).unwrap();
    assert!(slots.is_object());
}

fn run_both(bytes: &[u8], pipeline: &mut Pipeline, ctx: &mut Context) {
    let reused = pipeline.run(bytes, ctx);
    let fresh = flowgate::context::sanitize(bytes);
    match (&reused, &fresh) {
        (Ok(()), Ok(f)) => assert_eq!(ctx, f, "a reused pipeline gives the same output"),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("reused {reused:?} vs fresh {:?}", fresh.as_ref().err()),
    }
    if reused.is_ok() {
        check_accepted(ctx);
    } else {
        assert!(ctx.is_empty());
    }
}

/// Strings from an alphabet that reaches every rule: key characters, markup, entities, NUL,
/// non-ASCII, whitespace.
fn tricky_string(max: usize) -> impl Strategy<Value = String> {
    let atoms = prop_oneof![
        "[a-zA-Z0-9_-]{1,8}",
        Just("&amp;".to_owned()),
        Just("&#x80;".to_owned()),
        Just("&lt;b&gt;".to_owned()),
        Just("<b>".to_owned()),
        Just("<!--x-->".to_owned()),
        Just("\u{0}".to_owned()),
        Just("é😀".to_owned()),
        Just(" \n\t".to_owned()),
        Just("<".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(atoms, 0..max).prop_map(|v| v.concat())
}

/// A property name PHP accepts: anything but a leading U+0000 (tested elsewhere).
fn name() -> impl Strategy<Value = String> {
    tricky_string(4).prop_map(|s| s.trim_start_matches('\0').to_owned())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        tricky_string(20).prop_map(Value::from),
        // Long values cross the 500-code-point cut.
        ("[a-zé&;<>]{5,10}", 60..90usize).prop_map(|(s, n)| Value::from(s.repeat(n))),
    ];
    leaf.prop_recursive(2, 6, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::vec((name(), inner), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => "[a-zA-Z0-9_-]{1,12}",
        1 => "[a-z]{95,105}",
        1 => Just("ims_email".to_owned()),
        1 => Just("ims_telephone".to_owned()),
        1 => Just("ims_phone".to_owned()),
        1 => name(),
    ];
    proptest::collection::vec((key, json_value()), 0..64).prop_map(|members| {
        // Written by hand so duplicate keys survive (a map would collapse them).
        let body: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut p = Pipeline::new();
        let mut ctx = Context::new();
        run_both(&bytes, &mut p, &mut ctx);
        let _ = p.run_json(&bytes, &mut ctx);
    }

    #[test]
    fn base64_of_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut p = Pipeline::new();
        let mut ctx = Context::new();
        run_both(STANDARD.encode(&bytes).as_bytes(), &mut p, &mut ctx);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_objects_respect_the_limits(json in json_object()) {
        let mut p = Pipeline::new();
        let mut ctx = Context::new();
        let b64 = STANDARD.encode(&json);
        run_both(b64.as_bytes(), &mut p, &mut ctx);
        match p.run(b64.as_bytes(), &mut ctx) {
            Ok(()) => {
                let decoded: Value = serde_json::from_str(&json).unwrap();
                let unique = decoded.as_object().unwrap().len();
                prop_assert_eq!(ctx.len() + ctx.dropped().len(), unique);
            }
            Err(reason) => {
                prop_assert_eq!(reason, Discard::Size);
                prop_assert!(b64.len() > 20_000);
            }
        }
    }
}
