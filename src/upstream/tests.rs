use super::*;
use crate::headers::signature::{Signer, Versions};
use crate::secret::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const NOW: u64 = 1_800_000_000;
const TARGET: &str = "/public_FlowWidget/init?siteid=site1&jsSessionId=s1";

fn secret(c: char) -> Secret {
    Secret::new(c.to_string().repeat(32))
}

fn options(secrets: &[&Secret]) -> Options {
    Options::new(secrets).unwrap().now(NOW)
}

/// A request as flowgate would forward it, signed with `versions`.
fn signed(secret: &Secret, t: u64, versions: &[Version]) -> http::Request<()> {
    let ctx = STANDARD.encode(r#"{"plan":"Pro","ims_email":"a@b.c"}"#);
    let pre = STANDARD.encode(r#"{"visitor_email":"a@b.c","email":"a@b.c"}"#);
    let fields = SignedFields {
        method: "GET",
        host: "chat.example.com",
        target: TARGET,
        request_id: "rid-1",
        client_ip: "203.0.113.7",
        site: "site1",
        session: "s1",
        status: "accepted; verified",
        context: &ctx,
        prefill: &pre,
    };
    let signer = Signer::new(secret, Versions::new(versions).unwrap());
    let sig = signer.header_value(t, &fields);
    http::Request::builder()
        .uri(TARGET)
        .header("Host", "chat.example.com")
        .header("x-flowgate-site", "site1")
        .header("X-Flowgate-Session", "s1")
        .header("X-Flowgate-Status", "accepted; verified")
        .header("X-Flowgate-Context", ctx.as_str())
        .header("X-Flowgate-Prefill", pre.as_str())
        .header("X-Request-Id", "rid-1")
        .header("X-Real-IP", "203.0.113.7")
        .header("X-Flowgate-Signature", sig)
        .body(())
        .unwrap()
}

#[test]
fn secrets_are_checked_before_anything_else() {
    let none: [&str; 0] = [];
    assert_eq!(Options::new(&none).unwrap_err(), SecretsError::None);
    assert_eq!(
        Options::new(&["".to_owned()]).unwrap_err(),
        SecretsError::Empty { position: 1 }
    );
    let good = "g".repeat(32);
    assert_eq!(
        Options::new(&[good.as_str(), "short"]).unwrap_err(),
        SecretsError::TooShort { position: 2 }
    );
    assert_eq!(
        Options::new(&[good.as_str(), &"x".repeat(31)]).unwrap_err(),
        SecretsError::TooShort { position: 2 }
    );
    assert!(Options::new(&[good.as_str()]).is_ok());
    assert_eq!(
        Options::from_env("FLOWGATE_KIT_TEST_SURELY_UNSET").unwrap_err(),
        SecretsError::None
    );
    let text = SecretsError::TooShort { position: 2 }.to_string();
    assert!(text.contains("#2") && text.contains("32 bytes"), "{text}");
}

#[test]
fn a_fresh_v2_request_verifies_and_decodes_in_order() {
    let k = secret('a');
    let ctx = verify(&signed(&k, NOW, &[Version::V2]), &options(&[&k])).unwrap();
    assert_eq!(ctx.site.as_deref(), Some("site1"));
    assert_eq!(ctx.session.as_deref(), Some("s1"));
    assert_eq!(ctx.status, ContextStatus::Verified);
    assert_eq!(ctx.version, Version::V2);
    assert_eq!(ctx.request_id.as_deref(), Some("rid-1"));
    assert_eq!(ctx.client_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(
        ctx.context.to_vec(),
        vec![
            ("plan".to_owned(), "Pro".to_owned()),
            ("ims_email".to_owned(), "a@b.c".to_owned())
        ]
    );
    assert_eq!(ctx.verified_prefill().unwrap().get("email"), Some("a@b.c"));
    assert_eq!(ctx.signed_at, NOW);
}

#[test]
fn everything_v2_covers_is_checked() {
    let k = secret('a');
    let o = options(&[&k]);
    for header in [
        "X-Flowgate-Site",
        "X-Flowgate-Session",
        "X-Flowgate-Status",
        "X-Flowgate-Context",
        "X-Flowgate-Prefill",
        "X-Request-Id",
        "X-Real-IP",
        "Host",
    ] {
        let mut req = signed(&k, NOW, &[Version::V2]);
        req.headers_mut()
            .insert(header, http::HeaderValue::from_static("e30="));
        assert_eq!(
            verify(&req, &o).unwrap_err(),
            VerifyError::BadSignature,
            "{header}"
        );
        let mut req = signed(&k, NOW, &[Version::V2]);
        req.headers_mut().remove(header);
        assert_eq!(
            verify(&req, &o).unwrap_err(),
            VerifyError::BadSignature,
            "{header} removed"
        );
    }
    for (method, target) in [
        ("POST", TARGET),
        ("GET", "/public_FlowWidget/init?siteid=site1&jsSessionId=s2"),
        ("GET", "/public_FlowWidget/init"),
        (
            "GET",
            "/public_FlowWidget/other?siteid=site1&jsSessionId=s1",
        ),
    ] {
        let mut req = signed(&k, NOW, &[Version::V2]);
        *req.method_mut() = method.parse().unwrap();
        *req.uri_mut() = target.parse().unwrap();
        assert_eq!(
            verify(&req, &o).unwrap_err(),
            VerifyError::BadSignature,
            "{method} {target}"
        );
    }
    // A different `t` with the old MAC.
    let mut req = signed(&k, NOW, &[Version::V2]);
    let v = req.headers()["X-Flowgate-Signature"].to_str().unwrap();
    let moved = v.replacen(&NOW.to_string(), &(NOW + 1).to_string(), 1);
    req.headers_mut()
        .insert("X-Flowgate-Signature", moved.parse().unwrap());
    assert_eq!(verify(&req, &o).unwrap_err(), VerifyError::BadSignature);
}

#[test]
fn versions_v1_only_when_allowed_and_never_as_a_fallback() {
    let k = secret('a');
    let v1 = signed(&k, NOW, &[Version::V1]);
    assert_eq!(
        verify(&v1, &options(&[&k])).unwrap_err(),
        VerifyError::UnsupportedVersion
    );
    let ctx = verify(&v1, &options(&[&k]).accept_v1(true)).unwrap();
    assert_eq!(ctx.version, Version::V1);
    assert_eq!((ctx.request_id, ctx.client_ip), (None, None));
    // Both present: v2 decides; a request altered where only v2 looks fails.
    let mut both = signed(&k, NOW, &[Version::V1, Version::V2]);
    *both.method_mut() = http::Method::POST;
    let o = options(&[&k]).accept_v1(true);
    assert_eq!(verify(&both, &o).unwrap_err(), VerifyError::BadSignature);
    // Only an unknown future version.
    let mut req = signed(&k, NOW, &[Version::V2]);
    let v = req.headers()["X-Flowgate-Signature"].to_str().unwrap();
    let v9 = v.replace("v2=", "v9=");
    req.headers_mut()
        .insert("X-Flowgate-Signature", v9.parse().unwrap());
    assert_eq!(
        verify(&req, &o).unwrap_err(),
        VerifyError::UnsupportedVersion
    );
}

#[test]
fn time_window_and_rotation() {
    let (old, new) = (secret('o'), secret('n'));
    let req = signed(&old, NOW, &[Version::V2]);
    let both = Options::new(&[&new, &old]).unwrap();
    assert!(verify(&req, &both.clone().now(NOW + 300)).is_ok());
    assert_eq!(
        verify(&req, &both.clone().now(NOW + 301)).unwrap_err(),
        VerifyError::Expired { skew: 301 }
    );
    assert_eq!(
        verify(&req, &both.clone().now(NOW - 301)).unwrap_err(),
        VerifyError::Expired { skew: -301 }
    );
    assert!(
        verify(
            &req,
            &both
                .clone()
                .now(NOW + 30)
                .tolerance(Duration::from_secs(30))
        )
        .is_ok()
    );
    assert_eq!(
        verify(&req, &options(&[&new])).unwrap_err(),
        VerifyError::BadSignature
    );
}

#[test]
fn replays_are_refused_once_remembered() {
    let k = secret('a');
    let cache = Arc::new(MemoryReplayCache::with_tolerance(DEFAULT_TOLERANCE));
    let o = options(&[&k]).replay(cache.clone());
    let req = signed(&k, NOW, &[Version::V2]);
    assert!(verify(&req, &o).is_ok());
    assert_eq!(verify(&req, &o).unwrap_err(), VerifyError::Replayed);
    assert_eq!(cache.len(), 1);
    // A forged or expired request is not remembered.
    let forged = signed(&secret('x'), NOW, &[Version::V2]);
    assert_eq!(verify(&forged, &o).unwrap_err(), VerifyError::BadSignature);
    assert_eq!(cache.len(), 1);
    // v1 cannot be replay-checked.
    let o1 = options(&[&k]).accept_v1(true).replay(cache);
    let v1 = signed(&k, NOW, &[Version::V1]);
    assert_eq!(
        verify(&v1, &o1).unwrap_err(),
        VerifyError::UnsupportedVersion
    );
}

#[test]
fn missing_repeated_and_malformed() {
    let k = secret('a');
    let o = options(&[&k]);
    let mut req = signed(&k, NOW, &[Version::V2]);
    req.headers_mut().remove("X-Flowgate-Signature");
    assert_eq!(verify(&req, &o).unwrap_err(), VerifyError::MissingSignature);
    for repeated in [
        "X-Flowgate-Context",
        "X-Request-Id",
        "X-Flowgate-Signature",
        "Host",
    ] {
        let mut req = signed(&k, NOW, &[Version::V2]);
        req.headers_mut()
            .append(repeated, http::HeaderValue::from_static("e30="));
        assert_eq!(
            verify(&req, &o).unwrap_err(),
            VerifyError::BadHeader,
            "{repeated}"
        );
    }
    for bad in ["t=1", "v2=00", "t=x,v2=00", "t=1,v2=zz"] {
        let mut req = signed(&k, NOW, &[Version::V2]);
        req.headers_mut()
            .insert("X-Flowgate-Signature", http::HeaderValue::from_static(bad));
        assert_eq!(
            verify(&req, &o).unwrap_err(),
            VerifyError::MalformedSignature,
            "{bad}"
        );
    }
}

#[test]
fn view_over_a_closure_with_custom_names() {
    let k = secret('a');
    let fields = SignedFields {
        method: "POST",
        host: "h",
        target: "/x",
        request_id: "r",
        status: "absent",
        ..SignedFields::default()
    };
    let sig = Signer::new(&k, Versions::default()).header_value(NOW, &fields);
    let table = [
        ("host", "h"),
        ("edge-status", "absent"),
        ("edge-signature", sig.as_str()),
        ("trace-id", "r"),
    ];
    let view = RequestView::new("POST", "/x?", |name: &str| {
        table
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    });
    let o = options(&[&k]).prefix("Edge-").request_id_header("Trace-Id");
    let ctx = verify(&view, &o).unwrap();
    assert_eq!(ctx.status, ContextStatus::Absent);
    assert_eq!(ctx.request_id.as_deref(), Some("r"));
    assert!(ctx.context.is_empty() && ctx.site.is_none() && ctx.verified_prefill().is_none());
}
