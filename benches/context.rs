//! Criterion benchmarks of the context pipeline, on the payloads in `benches/payloads/`
//! (written by `benches/payloads/generate.php`; `scripts/bench-vs-php` times the same files
//! through PHP and `flowgate inspect --jsonl`):
//!
//! - `a_seed_example` — the product docs' 5-key example;
//! - `b_valid_19996` — valid, just under 20,000 chars, 50 HTML- and entity-heavy values;
//! - `c_bad_last_byte_20000` — exactly 20,000 chars whose JSON fails at its last byte;
//! - `d_oversize_20004` — over the size limit.
//!
//! One `Pipeline` and one `Context` are reused across iterations, as on the proxy's hot path.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::context::{Context, Discard, Pipeline};

const CASES: [(&str, &str, Result<usize, Discard>); 4] = [
    ("a_seed_example", include_str!("payloads/a.b64"), Ok(5)),
    ("b_valid_19996", include_str!("payloads/b.b64"), Ok(50)),
    (
        "c_bad_last_byte_20000",
        include_str!("payloads/c.b64"),
        Err(Discard::Json),
    ),
    (
        "d_oversize_20004",
        include_str!("payloads/d.b64"),
        Err(Discard::Size),
    ),
];

fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("context");
    let mut p = Pipeline::new();
    let mut ctx = Context::new();
    for (name, payload, expected) in CASES {
        let raw = payload.trim_end().as_bytes();
        // The payloads must do what their names say, or the numbers mean nothing.
        let got = p.run(raw, &mut ctx).map(|()| ctx.len());
        assert_eq!(got, expected, "{name}");
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let _ = black_box(p.run(black_box(raw), &mut ctx));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
