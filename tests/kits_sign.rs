//! The host-side signers `examples/host/sign.{js,py,go}` (jose, PyJWT, golang-jwt) and
//! `Sign.java` (the JDK's HMAC) against the real flowgate binary on a `mode: required` site:
//! the documented claims (`kid`, `aud` = site id, `iat`, `exp`), the context in its order,
//! accepted as `accepted; verified`; a tampered token, another site's, an expired one and an
//! unknown key discarded as `bad_signature`.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::flowgate::Flowgate;
use common::kits::{Built, Kit};
use common::raw::exchange;
use common::upstream::Upstream;
use flowgate::upstream::{self, ContextStatus, Options};
use serde_json::Value;

const SIGNING: &str = "kits-sign-signing-secret-0123456789abcdef";
const SITE_KEY: &str = "kits-host-site-key-0123456789abcdef012345";
const CONTEXT: [(&str, &str); 3] = [
    ("account_id", "USR-1"),
    ("ims_email", "jane@example.com"),
    ("city", "Zürich/Genève"),
];

fn part(token: &str, i: usize) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn payload_text(token: &str) -> String {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Sends an init carrying `token` on site `s-req`; what the backend then verified.
fn init(fg: &Flowgate, up: &Upstream, session: &str, token: &str) -> upstream::TrustedContext {
    let head = format!(
        "GET /public_FlowWidget/init?siteid=s-req&jsSessionId={session}&visitor_context_token={token} \
         HTTP/1.1\r\nHost: chat.example.com\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(exchange(fg.addr, head.as_bytes()).status, 200);
    let got = up.last();
    let mut b = http::Request::builder()
        .method(got.method.as_str())
        .uri(got.target.as_str());
    for (k, v) in &got.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    assert_eq!(got.header("x-flowgate-session"), Some(session));
    upstream::verify(&b.body(()).unwrap(), &Options::new(&[SIGNING]).unwrap()).unwrap()
}

fn assert_signer_is_accepted_by_flowgate(kit: Kit) {
    let built = Built::new(kit);
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .env("FLOWGATE_SIGNING_SECRET", SIGNING)
        .env("KITS_SITE_KEY", SITE_KEY)
        .yaml(
            "sites:\n  s-req:\n    mode: required\n    keys:\n      \
             - {kid: k1, secret_env: KITS_SITE_KEY}\n",
        )
        .start();
    let now = jsonwebtoken::get_current_timestamp();
    let token = built.sign("s-req", "k1", SITE_KEY, 300, now, &CONTEXT);

    // The documented claims.
    let header = part(&token, 0);
    assert_eq!(header["alg"], "HS256", "{kit:?}: {header}");
    assert_eq!(header["kid"], "k1", "{kit:?}: {header}");
    let claims = part(&token, 1);
    assert_eq!(claims["aud"], "s-req", "{kit:?}: {claims}");
    assert_eq!(claims["iat"], now, "{kit:?}: {claims}");
    assert_eq!(claims["exp"], now + 300, "{kit:?}: {claims}");
    let text = payload_text(&token);
    let at: Vec<usize> = CONTEXT
        .iter()
        .map(|(k, _)| text.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{kit:?}: order {text}");

    // Accepted as signed, the context in its order.
    let trusted = init(&fg, &up, "j-signed", &token);
    assert_eq!(trusted.status, ContextStatus::Verified, "{kit:?}");
    let want: Vec<(String, String)> = CONTEXT
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(trusted.context.to_vec(), want, "{kit:?}");
    assert_eq!(
        trusted.verified_prefill().unwrap().get("visitor_email"),
        Some("jane@example.com")
    );

    // Refused: the claims changed under the same MAC, the MAC changed, another site's token,
    // an expired one, an unknown key.
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = URL_SAFE_NO_PAD.encode(text.replace("jane@", "ceo@"));
    let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    let mut mac = parts[2].to_owned();
    let c = if mac.starts_with('A') { "B" } else { "A" };
    mac.replace_range(0..1, c);
    let flipped = format!("{}.{}.{mac}", parts[0], parts[1]);
    let refused = [
        ("claims forged", forged),
        ("mac changed", flipped),
        (
            "another site",
            built.sign("s-other", "k1", SITE_KEY, 300, now, &CONTEXT),
        ),
        (
            "expired",
            built.sign("s-req", "k1", SITE_KEY, 300, now - 3600, &CONTEXT),
        ),
        (
            "unknown kid",
            built.sign("s-req", "k9", SITE_KEY, 300, now, &CONTEXT),
        ),
        (
            "wrong key",
            built.sign(
                "s-req",
                "k1",
                &SITE_KEY.replace('k', "K"),
                300,
                now,
                &CONTEXT,
            ),
        ),
    ];
    for (i, (what, token)) in refused.iter().enumerate() {
        let trusted = init(&fg, &up, &format!("j-refused-{i}"), token);
        assert_eq!(
            trusted.status,
            ContextStatus::Discarded {
                reason: "bad_signature".into()
            },
            "{kit:?} {what}"
        );
        assert!(trusted.verified_prefill().is_none());
    }
}

#[test]
fn node_signer_is_accepted_by_flowgate() {
    assert_signer_is_accepted_by_flowgate(Kit::Node);
}

#[test]
fn python_signer_is_accepted_by_flowgate() {
    assert_signer_is_accepted_by_flowgate(Kit::Python);
}

#[test]
fn go_signer_is_accepted_by_flowgate() {
    assert_signer_is_accepted_by_flowgate(Kit::Go);
}

#[test]
fn java_signer_is_accepted_by_flowgate() {
    assert_signer_is_accepted_by_flowgate(Kit::Java);
}
