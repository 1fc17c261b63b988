//! Fuzzes the context pipeline: raw bytes as the `visitor_context` value and as the decoded
//! JSON. It must never panic, and what it accepts must respect the contract's limits.
#![no_main]
#![allow(dead_code, rustdoc::broken_intra_doc_links)]

#[path = "../../src/context/mod.rs"]
mod context;
#[path = "../../src/prefill.rs"]
mod prefill;

use std::cell::RefCell;

use context::{Context, Pipeline, is_valid_key};
use libfuzzer_sys::fuzz_target;

thread_local! {
    /// Reused across inputs, as on the hot path: buffer reuse is part of what is tested.
    static STATE: RefCell<(Pipeline, Context)> = RefCell::new((Pipeline::new(), Context::new()));
}

fn check(ctx: &Context) {
    assert!(ctx.len() <= 50);
    for (k, v) in ctx.pairs() {
        assert!(k.len() <= 100 && is_valid_key(k), "{k:?}");
        assert!(v.chars().count() <= 500);
    }
    // The pairs re-encode to a JSON object with one member per pair (what the header carries).
    let object: serde_json::Map<String, serde_json::Value> =
        ctx.pairs().map(|(k, v)| (k.to_owned(), v.into())).collect();
    let text = serde_json::to_string(&object).expect("encodes");
    let back: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(back.as_object().map(|o| o.len()), Some(ctx.len()));
    assert!(prefill::prefill(ctx).slots().count() <= 8);
}

fuzz_target!(|data: &[u8]| {
    STATE.with(|state| {
        let (pipeline, ctx) = &mut *state.borrow_mut();
        if pipeline.run(data, ctx).is_ok() {
            check(ctx);
        }
        if pipeline.run_json(data, ctx).is_ok() {
            check(ctx);
        }
    });
});
