//! Site page policy through the real binary: CORS answered at the edge for listed origins, the
//! origin rule on init, the key policy (`allow`, `signed_only`), `enforce: report` and its
//! metric, `values: strict`, `sites_default`, and `flowgate check` on all of it.
#![allow(clippy::unwrap_used)]

mod common;

use common::flowgate::{Flowgate, TempDir};
use common::upstream::Upstream;
use common::{b64, decode_json};
use flowgate::trust::sign::{HostKey, sign_context};
use jsonwebtoken::Algorithm;
use serde_json::json;

const INIT: &str = "/public_FlowWidget/init";
const SHOP: &str = "http://shop.test:8080";
const KEY: &str = "host-key-one-0123456789abcdefghijk";

const YAML: &str = r#"
sites_default:
  origins: ["https://default.example"]
sites:
  shop:
    origins: ["http://shop.test:8080", "https://*.example.com"]
    credentials: true
    mode: optional
    keys:
      allow: [name, page_*]
      signed_only: [plan, "ims_*"]
      verify:
        - {kid: k1, secret: "host-key-one-0123456789abcdefghijk"}
  rep:
    origins: ["http://shop.test:8080"]
    enforce: report
    mode: required
    keys:
      allow: [name, "ims_*"]
      signed_only: [plan]
      verify:
        - {kid: k1, secret: "host-key-one-0123456789abcdefghijk"}
  strict:
    origins: ["http://shop.test:8080"]
    values: strict
"#;

fn start(up: &Upstream) -> Flowgate {
    Flowgate::options()
        .upstream(up.host_port())
        .yaml(YAML)
        .start()
}

fn init(fg: &Flowgate, site: &str, context: &str) -> String {
    let c = b64(context).replace('+', "%2B").replace('=', "%3D");
    fg.url(&format!(
        "{INIT}?siteid={site}&jsSessionId=s-{site}&visitor_context={c}"
    ))
}

fn token(site: &str) -> String {
    let key = HostKey {
        kid: "k1",
        secret: KEY.as_bytes(),
        alg: Algorithm::HS256,
    };
    let now = jsonwebtoken::get_current_timestamp();
    sign_context(
        &[
            ("plan", "Pro"),
            ("ims_email", "jane@example.com"),
            ("name", "Jane"),
        ],
        site,
        &key,
        now,
        300,
    )
    .unwrap()
}

/// Sends a GET with the given headers; (status, response headers).
async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    req.send().await.unwrap()
}

fn hdr<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn preflights_are_answered_at_the_edge_and_responses_carry_the_origin() {
    let up = Upstream::start();
    let fg = start(&up);
    let client = reqwest::Client::new();
    let url = fg.url("/public_FlowWidget/chat/send?siteid=shop&jsSessionId=abc");
    for origin in [SHOP, "https://a.example.com"] {
        let r = client
            .request(reqwest::Method::OPTIONS, &url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type, flowgate-session-key",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert_eq!(hdr(&r, "access-control-allow-origin"), Some(origin));
        assert_eq!(hdr(&r, "access-control-allow-credentials"), Some("true"));
        assert!(
            hdr(&r, "access-control-allow-methods")
                .unwrap()
                .contains("POST")
        );
        assert!(
            hdr(&r, "access-control-allow-headers")
                .unwrap()
                .contains("Flowgate-Session-Key")
        );
        assert_eq!(hdr(&r, "access-control-max-age"), Some("600"));
        assert_eq!(hdr(&r, "vary"), Some("Origin"));
    }
    // A foreign origin's preflight gets nothing a browser accepts, and is not forwarded either.
    for origin in [
        "https://evil.example",
        "https://a.b.example.com",
        "http://shop.test:8081",
    ] {
        let r = client
            .request(reqwest::Method::OPTIONS, &url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert_eq!(hdr(&r, "access-control-allow-origin"), None, "{origin}");
    }
    assert!(up.received().is_empty(), "a preflight reached the backend");

    // Actual responses: the listed origin, Vary, credentials.
    let r = get(&url, &[("Origin", SHOP)]).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(hdr(&r, "access-control-allow-origin"), Some(SHOP));
    assert_eq!(hdr(&r, "vary"), Some("Origin"));
    let r = get(&url, &[("Origin", "https://evil.example")]).await;
    assert_eq!(hdr(&r, "access-control-allow-origin"), None);

    // A site without origins is left as it was: the preflight goes to the backend.
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("sites: {open: {mode: off}}")
        .start();
    let open = fg.url("/public_FlowWidget/chat/send?siteid=open&jsSessionId=abc");
    let r = client
        .request(reqwest::Method::OPTIONS, &open)
        .header("Origin", SHOP)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(up.last().method, "OPTIONS");
}

/// A site, the request's page headers, the `Status` the backend must see.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[tokio::test]
async fn an_init_from_an_unlisted_origin_is_proxied_without_its_context() {
    let up = Upstream::start();
    let fg = start(&up);
    let ctx = r#"{"name":"Ann","page_url":"/x"}"#;
    let cases: [Case; 6] = [
        ("shop", &[("Origin", SHOP)], "accepted; unverified"),
        (
            "shop",
            &[("Origin", "https://evil.example")],
            "discarded; reason=origin",
        ),
        (
            "shop",
            &[("Referer", "http://shop.test:8080/cart?x=1")],
            "accepted; unverified",
        ),
        ("shop", &[], "discarded; reason=origin"),
        // Not under sites: → sites_default's origins.
        (
            "other",
            &[("Origin", "https://default.example")],
            "accepted",
        ),
        ("other", &[("Origin", SHOP)], "discarded; reason=origin"),
    ];
    for (site, headers, status) in cases {
        let r = get(&init(&fg, site, ctx), headers).await;
        assert_eq!(r.status().as_u16(), 200, "the chat still works");
        let seen = up.last();
        assert_eq!(
            seen.header("x-flowgate-status"),
            Some(status),
            "{site} {headers:?}"
        );
        assert_eq!(
            seen.header("x-flowgate-context").is_some(),
            status.starts_with("accepted")
        );
    }
    fg.assert_metrics(&[(
        r#"flowgate_init_total{outcome="discarded",reason="origin"}"#,
        3.0,
    )])
    .await;
}

#[tokio::test]
async fn key_policy_and_strict_values() {
    let up = Upstream::start();
    let fg = start(&up);
    let o = [("Origin", SHOP)];
    // Unsigned: signed_only keys and keys outside allow are dropped, the rest kept.
    let ctx =
        r#"{"name":"Ann","page_url":"/x","plan":"Enterprise","ims_email":"m@x.y","color":"red"}"#;
    get(&init(&fg, "shop", ctx), &o).await;
    assert_eq!(
        decode_json(up.last().header("x-flowgate-context").unwrap()),
        json!({"name": "Ann", "page_url": "/x"})
    );
    // From a verified token, signed_only keys are kept.
    let url = fg.url(&format!(
        "{INIT}?siteid=shop&jsSessionId=t&visitor_context_token={}",
        token("shop")
    ));
    get(&url, &o).await;
    let seen = up.last();
    assert_eq!(seen.header("x-flowgate-status"), Some("accepted; verified"));
    assert_eq!(
        decode_json(seen.header("x-flowgate-context").unwrap()),
        json!({"plan": "Pro", "ims_email": "jane@example.com", "name": "Jane"})
    );
    // values: strict — bidi overrides and controls removed, NFC.
    let ctx = "{\"file\":\"abc\\u202egnp.exe\\u202cdef\",\"name\":\"e\\u0301\\u0007\"}";
    get(&init(&fg, "strict", ctx), &o).await;
    assert_eq!(
        decode_json(up.last().header("x-flowgate-context").unwrap()),
        json!({"file": "abcgnp.exedef", "name": "\u{e9}"})
    );
    fg.assert_metrics(&[
        (
            r#"flowgate_context_pairs_dropped_total{reason="unverified_key"}"#,
            2.0,
        ),
        (
            r#"flowgate_context_pairs_dropped_total{reason="key_not_allowed"}"#,
            1.0,
        ),
    ])
    .await;
}

#[tokio::test]
async fn enforce_report_counts_what_it_would_drop_and_drops_nothing() {
    let up = Upstream::start();
    let fg = start(&up);
    let ctx = r#"{"name":"Ann","plan":"Enterprise","ims_email":"m@x.y","color":"red"}"#;
    get(
        &init(&fg, "rep", ctx),
        &[("Origin", "https://evil.example")],
    )
    .await;
    let seen = up.last();
    assert_eq!(
        seen.header("x-flowgate-status"),
        Some("accepted; unverified")
    );
    assert_eq!(
        decode_json(seen.header("x-flowgate-context").unwrap()),
        json!({"name": "Ann", "plan": "Enterprise", "ims_email": "m@x.y", "color": "red"})
    );
    fg.assert_metrics(&[
        (
            r#"flowgate_policy_would_drop_total{reason="origin",site_policy="rep"}"#,
            1.0,
        ),
        (
            r#"flowgate_policy_would_drop_total{reason="unverified_key",site_policy="rep"}"#,
            1.0,
        ),
        (
            r#"flowgate_policy_would_drop_total{reason="key_not_allowed",site_policy="rep"}"#,
            1.0,
        ),
        (
            r#"flowgate_policy_would_drop_total{reason="unverified_identity",site_policy="rep"}"#,
            1.0,
        ),
        (
            r#"flowgate_init_total{outcome="discarded",reason="origin"}"#,
            0.0,
        ),
    ])
    .await;
}

#[test]
fn check_names_every_policy_mistake() {
    let dir = TempDir::new("policy-check");
    let conf = dir.path().join("f.yaml");
    std::fs::write(
        &conf,
        "sites_default: {origins: [\"shop.example.com\"], enforce: maybe}\nsites:\n  a:\n    origins: []\n    values: loose\n    keys: {allow: [plan, \"bad key\"], signed_only: [plan]}\n  b:\n    origins: [\"https://*.com\", \"https://x.example.com/path\"]\n    mode: optional\n    keys: {verify: [], alow: [x]}\n",
    )
    .unwrap();
    let out = common::flowgate::check(&conf);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    for key in [
        "sites_default.origins[0]",
        "sites_default.enforce",
        "sites.a.origins",
        "sites.a.values",
        "sites.a.keys.allow[1]",
        "sites.a.keys.signed_only",
        "sites.b.origins[0]",
        "sites.b.origins[1]",
        "sites.b.keys.alow",
        "sites.b.keys",
    ] {
        assert!(text.contains(key), "{key} missing in:\n{text}");
    }
    assert!(text.contains("in both allow and signed_only"), "{text}");
    assert!(text.contains("set mode: optional or required"), "{text}");
}
