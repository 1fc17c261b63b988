//! Criterion benchmarks of the context pipeline.

use criterion::{Criterion, criterion_group, criterion_main};

fn pipeline(_c: &mut Criterion) {}

criterion_group!(benches, pipeline);
criterion_main!(benches);
