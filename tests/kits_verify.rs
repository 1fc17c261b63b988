//! The verifier kits `examples/upstream/verify.{js,py,go}` and `Verify.java` against requests
//! the real flowgate binary signed and a real upstream received: fresh ones decode exactly as
//! the Rust kit decodes them; every signed part tampered, an expired signature, a wrong secret,
//! a rotated secret, v1, replays, short or missing secrets and the safe pre-fill accessor — the
//! matrix `tests/trust_php.rs` runs for the PHP kit, in each language.
#![allow(clippy::unwrap_used)]

mod common;

use common::b64;
use common::flowgate::Flowgate;
use common::kits::{Built, Kit};
use common::raw::exchange;
use common::upstream::Upstream;
use flowgate::trust::sign::{HostKey, sign_context};
use flowgate::upstream::{self, ContextStatus, Options};
use serde_json::{Value, json};

const OLD: &str = "kits-old-signing-secret-0123456789abcdef";
const NEW: &str = "kits-new-signing-secret-0123456789abcdef";
const WRONG: &str = "kits-wrong-signing-secret-0123456789abcd";
const SITE_KEY: &str = "kits-site-key-0123456789abcdef0123456789";
/// The headers the signature covers, as the upstream received them (lower case).
const SIGNED: [&str; 8] = [
    "host",
    "x-request-id",
    "x-real-ip",
    "x-flowgate-site",
    "x-flowgate-session",
    "x-flowgate-status",
    "x-flowgate-context",
    "x-flowgate-prefill",
];

/// One request as the backend received it from flowgate.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set(&self, name: &str, value: Option<&str>) -> Req {
        let mut r = self.clone();
        r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            r.headers.push((name.to_owned(), v.to_owned()));
        }
        r
    }

    fn t(&self) -> u64 {
        let sig = self.get("x-flowgate-signature").unwrap();
        sig.split(',').next().unwrap()[2..].parse().unwrap()
    }

    /// The request in the drivers' job format.
    fn lines(&self) -> String {
        let mut out = format!("request\t{}\t{}\n", self.method, self.target);
        for (n, v) in &self.headers {
            out.push_str(&format!("header\t{n}\t{v}\n"));
        }
        out
    }
}

/// A job: secrets (`None` = an unset variable), setting lines, requests.
fn job(secrets: &[Option<&str>], settings: &[&str], reqs: &[&Req]) -> String {
    let mut out = String::new();
    for s in secrets {
        match s {
            Some(s) => out.push_str(&format!("secret\t{s}\n")),
            None => out.push_str("secret_unset\n"),
        }
    }
    for s in settings {
        out.push_str(s);
        out.push('\n');
    }
    for r in reqs {
        out.push_str(&r.lines());
    }
    out
}

/// The reasons (`ok` for a verified request) of a job's results.
fn reasons(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {answer}"))
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or("ok").to_owned())
        .collect()
}

/// What the Rust kit (`flowgate::upstream`) makes of `req`, in the drivers' answer shape.
fn rust_expected(req: &Req, options: &Options) -> Value {
    let mut b = http::Request::builder()
        .method(req.method.as_str())
        .uri(req.target.as_str());
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let t = upstream::verify(&b.body(()).unwrap(), options).unwrap();
    let pairs = |p: Option<&upstream::Pairs>| match p {
        Some(p) => json!(p.to_vec()),
        None => Value::Null,
    };
    let (status, reason) = match &t.status {
        ContextStatus::Accepted => ("accepted", None),
        ContextStatus::Verified => ("verified", None),
        ContextStatus::Unverified => ("unverified", None),
        ContextStatus::Absent => ("absent", None),
        ContextStatus::Discarded { reason } => ("discarded", Some(reason.clone())),
    };
    json!({
        "site": t.site, "session": t.session, "status": status, "discard_reason": reason,
        "context": t.context.to_vec(), "verified_prefill": pairs(t.verified_prefill()),
        "browser_prefill": pairs(t.browser_prefill(upstream::AcknowledgeUnsigned)),
        "request_id": t.request_id, "client_ip": t.client_ip, "signed_at": t.signed_at,
        "version": t.version.as_str(),
    })
}

/// Requests through a real flowgate signing with `secrets` (`new,old` after a rotation), as
/// the upstream received them: a host-signed context, a browser's on a site that checks
/// tokens, one on a site that does not, a discarded one and a non-widget route.
fn produce(secrets: &str) -> Vec<Req> {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .env("FLOWGATE_SIGNING_SECRET", secrets)
        .env("KITS_SITE_KEY", SITE_KEY)
        .yaml(
            "signing:\n  versions: [v1, v2]\nsites:\n  s-opt:\n    mode: optional\n    keys:\n      \
             - {kid: k1, secret_env: KITS_SITE_KEY}\n",
        )
        .start();
    let key = HostKey {
        kid: "k1",
        secret: SITE_KEY.as_bytes(),
        alg: jsonwebtoken::Algorithm::HS256,
    };
    let now = jsonwebtoken::get_current_timestamp();
    let context = [
        ("account_id", "USR-84920"),
        ("ims_email", "jane@example.com"),
        ("ims_username", "Jöhn \"J\" Doe"),
    ];
    let token = sign_context(&context, "s-opt", &key, now, 300).unwrap();
    let unsigned =
        b64(r#"{"ims_email":"mallory@example.com","plan":"Pro <b>+</b>"}"#).replace('=', "%3D");
    let init = "/public_FlowWidget/init";
    let targets = [
        format!("GET {init}?siteid=s-opt&jsSessionId=j-verified&visitor_context_token={token}"),
        format!("GET {init}?siteid=s-opt&jsSessionId=j-unverified&visitor_context={unsigned}"),
        format!("GET {init}?siteid=s-off&jsSessionId=j-accepted&visitor_context={unsigned}"),
        format!(
            "GET {init}?siteid=s-off&jsSessionId=j-discarded&visitor_context={}",
            b64("[1]")
        ),
        "POST /api/messages?room=7&x=%20y".to_owned(),
    ];
    for line in &targets {
        let head = format!(
            "{line} HTTP/1.1\r\nHost: chat.example.com\r\nContent-Length: 0\r\n\
             X-Real-IP: 6.6.6.6\r\nConnection: close\r\n\r\n"
        );
        let resp = exchange(fg.addr, head.as_bytes());
        assert_eq!(
            resp.status,
            200,
            "{line}: {}",
            String::from_utf8_lossy(&resp.raw)
        );
    }
    let got: Vec<Req> = up
        .received()
        .into_iter()
        .map(|r| Req {
            method: r.method,
            target: r.target,
            headers: r.headers,
        })
        .collect();
    assert_eq!(got.len(), targets.len());
    got
}

/// Every signed part of `req` changed (another request's value, a forged one, dropped), the
/// method and target changed, the timestamp moved, the MAC flipped.
fn tampered(req: &Req, other: &Req) -> Vec<(String, Req)> {
    let mut out = Vec::new();
    for name in SIGNED {
        for value in [other.get(name), Some("x"), None] {
            if value != req.get(name) {
                out.push((format!("{name} = {value:?}"), req.set(name, value)));
            }
        }
    }
    let mut r = req.clone();
    r.method = if req.method == "GET" { "POST" } else { "GET" }.into();
    out.push(("method".into(), r));
    for target in [
        format!("{}&a=1", req.target),
        req.target.split('?').next().unwrap().to_owned(),
        req.target.replacen('/', "/admin/", 1),
        other.target.clone(),
    ] {
        let mut r = req.clone();
        r.target = target.clone();
        out.push((format!("target {target}"), r));
    }
    let sig = req.get("x-flowgate-signature").unwrap();
    let t = req.t();
    let moved = sig.replacen(&format!("t={t}"), &format!("t={}", t + 1), 1);
    out.push((
        "t moved".into(),
        req.set("x-flowgate-signature", Some(&moved)),
    ));
    let v2 = sig.find("v2=").unwrap() + 3;
    let mut flipped = sig.to_owned();
    let c = if &sig[v2..=v2] == "0" { "1" } else { "0" };
    flipped.replace_range(v2..=v2, c);
    out.push((
        "mac flipped".into(),
        req.set("x-flowgate-signature", Some(&flipped)),
    ));
    out
}

fn assert_kit_verifies_what_flowgate_signed(kit: Kit) {
    let built = Built::new(kit);
    let rotated = produce(&format!("{NEW},{OLD}"));
    let before = produce(OLD);
    let all: Vec<&Req> = rotated.iter().collect();

    // Fresh: every request verifies (real clock) and decodes exactly as the Rust kit decodes it.
    let answer = built.verify(&job(&[Some(NEW)], &[], &all));
    let reference = Options::new(&[NEW]).unwrap();
    for (i, req) in rotated.iter().enumerate() {
        let got = &answer["results"][i];
        assert_eq!(got["ok"], true, "{kit:?} request {i}: {got}");
        assert_eq!(
            got["result"],
            rust_expected(req, &reference),
            "{kit:?} request {i}"
        );
    }
    let status: Vec<&str> = (0..5)
        .map(|i| answer["results"][i]["result"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        status,
        ["verified", "unverified", "accepted", "discarded", "absent"]
    );
    // The safe accessor: the pre-fill only for a host-signed context.
    let verified = &answer["results"][0]["result"];
    let slots = verified["verified_prefill"].as_array().unwrap();
    assert!(
        slots.contains(&json!(["visitor_email", "jane@example.com"])),
        "{kit:?}: {verified}"
    );
    assert_eq!(
        verified["context"][2],
        json!(["ims_username", "Jöhn \"J\" Doe"])
    );
    let unverified = &answer["results"][1]["result"];
    assert_eq!(unverified["verified_prefill"], Value::Null, "{kit:?}");
    assert_eq!(unverified["browser_prefill"], Value::Null, "{kit:?}");
    assert_eq!(
        unverified["context"][0],
        json!(["ims_email", "mallory@example.com"])
    );
    let accepted = &answer["results"][2]["result"];
    assert_eq!(accepted["verified_prefill"], Value::Null, "{kit:?}");
    assert!(
        accepted["browser_prefill"].is_array(),
        "{kit:?}: {accepted}"
    );
    assert_eq!(
        answer["results"][3]["result"]["discard_reason"],
        "not_object"
    );
    assert_eq!(answer["results"][0]["result"]["client_ip"], "127.0.0.1");

    // Each field tampered: bad_signature, every one.
    let mut cases: Vec<(String, Req)> = Vec::new();
    for (i, req) in rotated.iter().enumerate() {
        for (what, r) in tampered(req, &rotated[(i + 1) % rotated.len()]) {
            cases.push((format!("request {i}: {what}"), r));
        }
    }
    let refs: Vec<&Req> = cases.iter().map(|(_, r)| r).collect();
    let got = reasons(&built.verify(&job(&[Some(NEW)], &[], &refs)));
    for ((what, _), reason) in cases.iter().zip(&got) {
        assert_eq!(reason, "bad_signature", "{kit:?} {what}");
    }
    assert_eq!(got.len(), cases.len());

    // Malformed: no signature; a signed header twice.
    let first = &rotated[0];
    let mut twice = first.clone();
    twice.headers.push(("X-Request-Id".into(), "second".into()));
    let no_sig = first.set("x-flowgate-signature", None);
    let got = reasons(&built.verify(&job(&[Some(NEW)], &[], &[&no_sig, &twice])));
    assert_eq!(got, ["missing_signature", "bad_header"], "{kit:?}");

    // Expired, either side of the tolerance (300 s).
    let t = first.t();
    for (now, want) in [(t + 300, "ok"), (t + 301, "expired"), (t - 301, "expired")] {
        let got = reasons(&built.verify(&job(&[Some(NEW)], &[&format!("now\t{now}")], &[first])));
        assert_eq!(got, [want], "{kit:?} now = t{:+}", now as i64 - t as i64);
    }

    // Wrong secret and rotation: `rotated` was signed with NEW, `before` with OLD.
    let pre = &before[0];
    for (secrets, want) in [
        (vec![Some(NEW), Some(OLD)], ["ok", "ok"]),
        (vec![Some(OLD), Some(NEW)], ["ok", "ok"]),
        (vec![Some(OLD)], ["bad_signature", "ok"]),
        (vec![Some(NEW)], ["ok", "bad_signature"]),
        (vec![Some(WRONG)], ["bad_signature", "bad_signature"]),
    ] {
        let got = reasons(&built.verify(&job(&secrets, &[], &[first, pre])));
        assert_eq!(got, want, "{kit:?} {secrets:?}");
    }

    // Secrets that must never verify anything: refused before any request is looked at.
    let short = "s".repeat(31);
    for secrets in [
        vec![],
        vec![None],
        vec![Some("")],
        vec![Some(NEW), Some("")],
        vec![Some(short.as_str())],
    ] {
        let answer = built.verify(&job(&secrets, &[], &[first]));
        let err = answer["config_error"].as_str();
        assert!(
            err.is_some_and(|e| e.contains("secret")),
            "{kit:?} {secrets:?}: {answer}"
        );
    }

    // v1 (flowgate sent t,v1,v2): v1 alone only when allowed; with both, v2 decides.
    let sig = first.get("x-flowgate-signature").unwrap();
    assert!(sig.contains(",v1=") && sig.contains(",v2="), "{sig}");
    let v1_only = first.set(
        "x-flowgate-signature",
        Some(sig.split(",v2=").next().unwrap()),
    );
    let mut moved = first.clone();
    moved.method = "DELETE".into();
    let got = reasons(&built.verify(&job(&[Some(NEW)], &[], &[&v1_only])));
    assert_eq!(got, ["unsupported_version"], "{kit:?}");
    let answer = built.verify(&job(&[Some(NEW)], &["accept_v1"], &[&v1_only, &moved]));
    assert_eq!(reasons(&answer), ["ok", "bad_signature"], "{kit:?}");
    let v1 = &answer["results"][0]["result"];
    let reference = Options::new(&[NEW]).unwrap().accept_v1(true);
    assert_eq!(v1, &rust_expected(&v1_only, &reference), "{kit:?}");
    assert_eq!(v1["version"], "v1");
    assert_eq!(v1["request_id"], Value::Null);

    // Replays, when the backend opts in: the second use of a request id is refused.
    let got = reasons(&built.verify(&job(
        &[Some(NEW)],
        &["replay\tmemory"],
        &[first, first, &rotated[1], &v1_only],
    )));
    assert_eq!(
        got,
        ["ok", "replayed", "ok", "unsupported_version"],
        "{kit:?}"
    );
}

#[test]
fn node_kit_verifies_what_flowgate_signed() {
    assert_kit_verifies_what_flowgate_signed(Kit::Node);
}

#[test]
fn python_kit_verifies_what_flowgate_signed() {
    assert_kit_verifies_what_flowgate_signed(Kit::Python);
}

#[test]
fn go_kit_verifies_what_flowgate_signed() {
    assert_kit_verifies_what_flowgate_signed(Kit::Go);
}

#[test]
fn java_kit_verifies_what_flowgate_signed() {
    assert_kit_verifies_what_flowgate_signed(Kit::Java);
}
