//! Init requests through the real binary: accepted, absent, discarded per reason, bad ids.
#![allow(clippy::unwrap_used)]

mod common;

use common::flowgate::Flowgate;
use common::upstream::Upstream;
use common::{b64, decode_json};
use serde_json::json;

const INIT: &str = "/public_FlowWidget/init";

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

#[tokio::test]
async fn accepted_context_becomes_trusted_headers() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let ctx = r#"{"account_id":"USR-84920","plan":"Pro","bad key":"x","ims_username":"Jane <b>Smith</b>","ims_email":"jane@example.com","ims_telephone":"+1 555 0100","n":42}"#;
    let resp = get(&fg.url(&format!(
        "{INIT}?siteid=site-1&jsSessionId=sess.1&visitor_context={}",
        b64(ctx)
    )))
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "upstream says hi\n");

    let r = up.last();
    assert_eq!(r.path, INIT);
    assert_eq!(r.header("x-flowgate-site"), Some("site-1"));
    assert_eq!(r.header("x-flowgate-session"), Some("sess.1"));
    assert_eq!(r.header("x-flowgate-status"), Some("accepted"));
    let context = r.header("x-flowgate-context").unwrap();
    assert_eq!(
        decode_json(context),
        json!({"account_id":"USR-84920","plan":"Pro","ims_username":"Jane Smith",
               "ims_email":"jane@example.com","ims_telephone":"+1 555 0100","n":"42"})
    );
    // Pairs keep document order.
    let text = String::from_utf8(base64_decode(context)).unwrap();
    let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(pos("account_id") < pos("plan") && pos("plan") < pos("ims_username"));
    assert_eq!(
        decode_json(r.header("x-flowgate-prefill").unwrap()),
        json!({"visitor_name":"Jane Smith","username":"Jane Smith","name":"Jane Smith",
               "visitor_email":"jane@example.com","email":"jane@example.com",
               "visitor_phone":"+1 555 0100","phone":"+1 555 0100","custom1":"+1 555 0100"})
    );
    // Every trusted value is ASCII.
    for (_, v) in r.flowgate_headers() {
        assert!(v.is_ascii(), "{v}");
    }
    fg.assert_metrics(&[
        (r#"flowgate_init_total{outcome="accepted",reason=""}"#, 1.0),
        (
            r#"flowgate_context_pairs_dropped_total{reason="key_invalid"}"#,
            1.0,
        ),
    ])
    .await;
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[tokio::test]
async fn missing_or_empty_context_is_absent() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    for query in [
        "siteid=s&jsSessionId=j",
        "siteid=s&jsSessionId=j&visitor_context=",
    ] {
        assert_eq!(get(&fg.url(&format!("{INIT}?{query}"))).await.status(), 200);
        let r = up.last();
        assert_eq!(r.header("x-flowgate-status"), Some("absent"), "{query}");
        assert_eq!(r.header("x-flowgate-site"), Some("s"));
        assert_eq!(r.header("x-flowgate-session"), Some("j"));
        assert_eq!(r.header("x-flowgate-context"), None);
        assert_eq!(r.header("x-flowgate-prefill"), None);
    }
    assert_eq!(
        fg.metric(r#"flowgate_init_total{outcome="absent",reason=""}"#)
            .await,
        2.0
    );
}

#[tokio::test]
async fn discarded_contexts_carry_their_reason_and_never_fail_the_request() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let cases = [
        ("size", "A".repeat(20_004)),
        ("base64", "not*base64".to_owned()),
        ("json", b64("{\"a\":")),
        ("not_object", b64("[1,2]")),
    ];
    for (reason, value) in &cases {
        let resp = get(&fg.url(&format!(
            "{INIT}?siteid=s&jsSessionId=j&visitor_context={value}"
        )))
        .await;
        assert_eq!(resp.status(), 200, "{reason}");
        let r = up.last();
        let expected = format!("discarded; reason={reason}");
        assert_eq!(r.header("x-flowgate-status"), Some(expected.as_str()));
        assert_eq!(r.header("x-flowgate-context"), None, "{reason}");
        assert_eq!(r.header("x-flowgate-prefill"), None, "{reason}");
        assert_eq!(r.header("x-flowgate-site"), Some("s"));
    }
    for (reason, _) in &cases {
        let sample = format!(r#"flowgate_init_total{{outcome="discarded",reason="{reason}"}}"#);
        assert_eq!(fg.metric(&sample).await, 1.0, "{sample}");
    }
}

#[tokio::test]
async fn plus_in_the_context_is_not_a_space() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    // A context whose base64 contains '+', found deterministically.
    let (ctx, encoded) = (0..200)
        .map(|i| {
            format!(
                r#"{{"k":"{}"}}"#,
                "~".repeat(i % 7 + 1) + &">".repeat(i / 7)
            )
        })
        .map(|c| {
            let e = b64(&c);
            (c, e)
        })
        .find(|(_, e)| e.contains('+'))
        .unwrap();
    let escaped = encoded
        .replace('+', "%2B")
        .replace('=', "%3D")
        .replace('/', "%2F");
    for value in [encoded.as_str(), escaped.as_str()] {
        get(&fg.url(&format!(
            "{INIT}?siteid=s&jsSessionId=j&visitor_context={value}"
        )))
        .await;
        let r = up.last();
        assert_eq!(r.header("x-flowgate-status"), Some("accepted"), "{value}");
        assert_eq!(
            decode_json(r.header("x-flowgate-context").unwrap()),
            serde_json::from_str::<serde_json::Value>(&ctx).unwrap()
        );
    }
}

#[tokio::test]
async fn bad_site_or_session_ids_are_proxied_without_context() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let ctx = b64(r#"{"ims_email":"a@b.c"}"#);
    let long = "a".repeat(129);
    for ids in [
        "siteid=bad%20site&jsSessionId=j".to_owned(),
        format!("siteid=s&jsSessionId={long}"),
        "siteid=s".to_owned(),
        "jsSessionId=j".to_owned(),
        "siteid=&jsSessionId=j".to_owned(),
        "siteid=s/1&jsSessionId=j".to_owned(),
    ] {
        let resp = get(&fg.url(&format!("{INIT}?{ids}&visitor_context={ctx}"))).await;
        assert_eq!(resp.status(), 200, "{ids}");
        let r = up.last();
        assert_eq!(
            r.flowgate_headers(),
            [("x-flowgate-status", "discarded; reason=bad_session")],
            "{ids}"
        );
    }
    assert_eq!(
        fg.metric(r#"flowgate_init_total{outcome="discarded",reason="bad_session"}"#)
            .await,
        6.0
    );
    // Ids at the limits are fine.
    let ok = "a".repeat(128);
    get(&fg.url(&format!(
        "{INIT}?siteid=A.b_c-9&jsSessionId={ok}&visitor_context={ctx}"
    )))
    .await;
    assert_eq!(up.last().header("x-flowgate-status"), Some("accepted"));
}

#[tokio::test]
async fn logs_never_contain_visitor_values() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("log:\n  level: debug\n  format: json\n")
        .start();
    let marker = "marker-7f3a9c";
    let good = b64(&format!(
        r#"{{"ims_email":"{marker}@example.com","x y":"{marker}"}}"#
    ));
    let bad = b64(&format!(r#"["{marker}"]"#));
    for ctx in [&good, &bad] {
        get(&fg.url(&format!(
            "{INIT}?siteid=s&jsSessionId=j&visitor_context={ctx}"
        )))
        .await;
    }
    get(&fg.url("/public_FlowWidget/poll?siteid=s&jsSessionId=j")).await;
    let log = fg.log();
    assert!(log.contains("flowgate::access"), "no access log:\n{log}");
    assert!(
        !log.contains(marker),
        "a visitor value reached the log:\n{log}"
    );
    assert!(
        !log.contains(&good[..40]),
        "the raw context reached the log:\n{log}"
    );
    assert!(
        !log.contains(&bad[..8]),
        "the raw context reached the log:\n{log}"
    );
}
