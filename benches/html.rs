//! Criterion benchmarks of the PHP-exact value sanitiser alone (`context::html`), on values
//! shaped like benchmark (b) of the context pipeline: 50 values of ~250 bytes, each with about
//! fifteen character references and ten tags, plus the same volume of plain text.
//!
//! `cargo bench --bench html`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::context::html::{entity_decode_into, sanitize_into, strip_tags_into};

const HEAVY: &str = "<p class=\"x\">Jos&eacute; &amp; Mar&iacute;a &lt;script&gt;alert(&#39;x&#39;)\
&lt;/script&gt; <a href='https://e.com/?a=1&amp;b=2'>link</a> &#x1F600; &NotEqualTilde; 1<2 \
<!-- note --> caf&eacute; &nbsp;&copy; 2024 &#8364; <?php echo 1; ?> tail</p>";

fn values(unit: &str) -> Vec<String> {
    (0..50).map(|i| format!("{i}{unit}")).collect()
}

fn html(c: &mut Criterion) {
    let heavy = values(HEAVY);
    let decoded: Vec<String> = heavy
        .iter()
        .map(|v| {
            let mut out = String::new();
            entity_decode_into(v, &mut out);
            out
        })
        .collect();
    let plain = values(&"plain visitor text without markup ".repeat(7));

    let mut group = c.benchmark_group("html");
    group.throughput(Throughput::Bytes(
        heavy.iter().map(|v| v.len() as u64).sum(),
    ));
    let mut out = String::new();
    let mut scratch = String::new();
    group.bench_function("decode_50_heavy", |b| {
        b.iter(|| {
            for v in &heavy {
                out.clear();
                entity_decode_into(black_box(v), &mut out);
            }
        })
    });
    group.bench_function("strip_50_heavy", |b| {
        b.iter(|| {
            for v in &decoded {
                out.clear();
                strip_tags_into(black_box(v), &mut out);
            }
        })
    });
    group.bench_function("sanitize_50_heavy", |b| {
        b.iter(|| {
            for v in &heavy {
                out.clear();
                sanitize_into(black_box(v), &mut scratch, &mut out);
            }
        })
    });
    group.bench_function("sanitize_50_plain", |b| {
        b.iter(|| {
            for v in &plain {
                out.clear();
                sanitize_into(black_box(v), &mut scratch, &mut out);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, html);
criterion_main!(benches);
