//! What trust costs per request: the header signature on every forwarded request, the
//! backend's verification, and a signed-context init against the same context unsigned.
//!
//! `cargo bench --bench trust`. The baseline of each group is measured in the same run.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_group, criterion_main};
use flowgate::context::{Context, Pipeline};
use flowgate::headers::signature::{SignedFields, Signer, Versions};
use flowgate::headers::{self, Status};
use flowgate::prefill::prefill;
use flowgate::trust::sign::{HostKey, sign_context};
use flowgate::trust::{InitInput, Mode, Secret, SiteKey, SitePolicy, TrustPolicy, evaluate};
use flowgate::upstream;

const SEED: &[(&str, &str)] = &[
    ("account_id", "USR-84920"),
    ("plan", "Pro"),
    ("last_order", "#ORD-20241122"),
    ("ims_username", "Jane Smith"),
    ("ims_email", "jane@example.com"),
];

fn seed_json() -> String {
    let map: serde_json::Map<String, serde_json::Value> = SEED
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn signature(c: &mut Criterion) {
    let ctx = flowgate::context::sanitize(STANDARD.encode(seed_json()).as_bytes()).unwrap();
    let context = headers::context_value(&ctx);
    let prefill_header = headers::prefill_value(&prefill(&ctx));
    let status = Status::Accepted.to_string();
    let target = "/public_FlowWidget/init?siteid=site-1&jsSessionId=sess.1";
    let fields = SignedFields {
        method: "GET",
        host: "chat.example.com",
        target,
        request_id: "4bf92f3577b34da6a3ce929d0e0e4736",
        client_ip: "203.0.113.7",
        site: "site-1",
        session: "sess.1",
        status: &status,
        context: &context,
        prefill: &prefill_header,
    };
    let secret = Secret::new("edge-signing-secret-0123456789abcdef");
    let signer = Signer::new(&secret, Versions::default());
    let mut g = c.benchmark_group("signature");
    // Baseline: the header values every init already computes.
    g.bench_function("header_values_baseline", |b| {
        b.iter(|| {
            (
                headers::context_value(black_box(&ctx)),
                headers::prefill_value(&prefill(black_box(&ctx))),
            )
        })
    });
    g.bench_function("sign", |b| {
        b.iter(|| signer.header_value(black_box(1_800_000_000), black_box(&fields)))
    });
    let sig = signer.header_value(1_800_000_000, &fields);
    let mut req = http::Request::builder().uri(target);
    for (name, value) in [
        ("host", "chat.example.com"),
        ("x-request-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("x-real-ip", "203.0.113.7"),
        ("x-flowgate-site", "site-1"),
        ("x-flowgate-session", "sess.1"),
        ("x-flowgate-status", status.as_str()),
        ("x-flowgate-context", context.as_str()),
        ("x-flowgate-prefill", prefill_header.as_str()),
        ("x-flowgate-signature", sig.as_str()),
    ] {
        req = req.header(name, value);
    }
    let req = req.body(()).unwrap();
    let opts = upstream::Options::new(&[&secret])
        .unwrap()
        .now(1_800_000_000);
    g.bench_function("upstream_verify", |b| {
        b.iter(|| upstream::verify(black_box(&req), &opts).unwrap())
    });
    g.finish();
}

fn signed_context(c: &mut Criterion) {
    let host_secret = "host-site-secret-0123456789abcdef";
    let mut policy = TrustPolicy::new();
    policy.insert(
        "site-1",
        SitePolicy {
            mode: Mode::Required,
            keys: vec![SiteKey::new("k1", &Secret::new(host_secret))],
            leeway_secs: 60,
            max_token_age_secs: 3600,
            bind_session: false,
        },
    );
    let key = HostKey {
        kid: "k1",
        secret: host_secret.as_bytes(),
        alg: jsonwebtoken::Algorithm::HS256,
    };
    // A day's validity keeps the token valid however long the benchmark runs.
    let token = sign_context(
        SEED,
        "site-1",
        &key,
        jsonwebtoken::get_current_timestamp(),
        86_400,
    )
    .unwrap();
    let unsigned = STANDARD.encode(seed_json());
    let mut pipeline = Pipeline::new();
    let mut out = Context::new();
    let mut g = c.benchmark_group("init");
    g.bench_function("unsigned_pipeline_baseline", |b| {
        b.iter(|| {
            pipeline
                .run(black_box(unsigned.as_bytes()), &mut out)
                .unwrap()
        })
    });
    g.bench_function("signed_token", |b| {
        b.iter(|| {
            let input = InitInput {
                site: "site-1",
                session: "",
                context: None,
                token: Some(black_box(token.as_bytes())),
                page: Default::default(),
            };
            evaluate(&policy, &input, &mut pipeline, &mut out)
        })
    });
    g.finish();
}

criterion_group!(benches, signature, signed_context);
criterion_main!(benches);
