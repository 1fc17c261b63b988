//! Sessions on the in-process store through the real binary: re-attach, replace on re-init,
//! delete on anonymous or broken re-init, site isolation, TTL expiry, configurable routes.
#![allow(clippy::unwrap_used)]

mod common;

use common::flowgate::Flowgate;
use common::upstream::{Received, Upstream};
use common::{b64, decode_json, wait_until_async};
use serde_json::json;

async fn hit(fg: &Flowgate, up: &Upstream, path: &str) -> Received {
    let resp = reqwest::get(fg.url(path)).await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    up.last()
}

fn init(site: &str, session: &str, ctx: Option<&str>) -> String {
    let mut p = format!("/public_FlowWidget/init?siteid={site}&jsSessionId={session}");
    if let Some(c) = ctx {
        p.push_str("&visitor_context=");
        p.push_str(&b64(c));
    }
    p
}

fn poll(site: &str, session: &str) -> String {
    format!("/public_FlowWidget/chat/poll?siteid={site}&jsSessionId={session}")
}

fn context_of(r: &Received) -> Option<serde_json::Value> {
    r.header("x-flowgate-context").map(decode_json)
}

#[tokio::test]
async fn session_routes_get_the_stored_headers_back() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let at_init = hit(
        &fg,
        &up,
        &init("s", "j", Some(r#"{"ims_username":"Jane","plan":"Pro"}"#)),
    )
    .await;
    let later = hit(&fg, &up, &poll("s", "j")).await;
    for name in [
        "x-flowgate-context",
        "x-flowgate-prefill",
        "x-flowgate-status",
        "x-flowgate-site",
        "x-flowgate-session",
    ] {
        assert_eq!(later.header(name), at_init.header(name), "{name}");
    }
    assert_eq!(
        context_of(&later),
        Some(json!({"ims_username":"Jane","plan":"Pro"}))
    );
    // Query parameters in another order, extra ones, percent-encoded ids: same session.
    let again = hit(
        &fg,
        &up,
        "/public_FlowWidget/x?foo=1&jsSessionId=%6A&siteid=s",
    )
    .await;
    assert_eq!(again.header("x-flowgate-status"), Some("accepted"));
    assert_eq!(
        fg.metric(r#"flowgate_session_requests_total{outcome="hit"}"#)
            .await,
        2.0
    );
}

#[tokio::test]
async fn re_init_replaces_and_anonymous_or_broken_re_init_deletes() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    hit(
        &fg,
        &up,
        &init("s", "j", Some(r#"{"ims_username":"Guest"}"#)),
    )
    .await;
    // reload() after login: the new context replaces the old one.
    hit(
        &fg,
        &up,
        &init("s", "j", Some(r#"{"ims_username":"Jane"}"#)),
    )
    .await;
    let r = hit(&fg, &up, &poll("s", "j")).await;
    assert_eq!(context_of(&r), Some(json!({"ims_username":"Jane"})));

    // Logout: an anonymous re-init forgets the identity.
    hit(&fg, &up, &init("s", "j", None)).await;
    let r = hit(&fg, &up, &poll("s", "j")).await;
    assert_eq!(r.header("x-flowgate-status"), Some("absent"));
    assert_eq!(r.header("x-flowgate-context"), None);
    assert_eq!(r.header("x-flowgate-prefill"), None);

    // A discarded context at re-init forgets it too.
    hit(
        &fg,
        &up,
        &init("s", "j", Some(r#"{"ims_username":"Jane"}"#)),
    )
    .await;
    hit(
        &fg,
        &up,
        "/public_FlowWidget/init?siteid=s&jsSessionId=j&visitor_context=%%%",
    )
    .await;
    let r = hit(&fg, &up, &poll("s", "j")).await;
    assert_eq!(r.header("x-flowgate-status"), Some("absent"));
    assert_eq!(r.header("x-flowgate-context"), None);
}

#[tokio::test]
async fn sessions_are_scoped_by_site() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    hit(
        &fg,
        &up,
        &init("site-a", "j1", Some(r#"{"ims_email":"a@example.com"}"#)),
    )
    .await;
    let r = hit(&fg, &up, &poll("site-b", "j1")).await;
    assert_eq!(r.header("x-flowgate-site"), Some("site-b"));
    assert_eq!(r.header("x-flowgate-status"), Some("absent"));
    assert_eq!(r.header("x-flowgate-context"), None);
    // An anonymous init on the other site does not delete the first site's session.
    hit(&fg, &up, &init("site-b", "j1", None)).await;
    let r = hit(&fg, &up, &poll("site-a", "j1")).await;
    assert_eq!(context_of(&r), Some(json!({"ims_email":"a@example.com"})));
}

#[tokio::test]
async fn session_routes_without_or_with_bad_ids() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    hit(&fg, &up, &init("s", "j", Some(r#"{"a":"1"}"#))).await;
    let r = hit(
        &fg,
        &up,
        "/public_FlowWidget/popover_assets/js/flowwidget.js",
    )
    .await;
    assert!(
        r.flowgate_headers().is_empty(),
        "{:?}",
        r.flowgate_headers()
    );
    for bad in [
        "/public_FlowWidget/chat?siteid=s",
        "/public_FlowWidget/chat?siteid=s&jsSessionId=j%20",
        "/public_FlowWidget/chat?siteid=s&jsSessionId=",
    ] {
        let r = hit(&fg, &up, bad).await;
        assert_eq!(
            r.flowgate_headers(),
            [("x-flowgate-status", "discarded; reason=bad_session")],
            "{bad}"
        );
    }
    // Paths outside the session routes are untouched, ids or not.
    let r = hit(&fg, &up, "/api/chat?siteid=s&jsSessionId=j").await;
    assert!(r.flowgate_headers().is_empty());
}

#[tokio::test]
async fn stored_sessions_expire_after_the_ttl() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml("store:\n  ttl_seconds: 1\n")
        .start();
    // Stored first: on a loaded machine a whole second can pass between the init and the next
    // request, so init again until a session request sees the context within the TTL.
    wait_until_async("a session request within the TTL", || async {
        hit(&fg, &up, &init("s", "j", Some(r#"{"a":"1"}"#))).await;
        let r = hit(&fg, &up, &poll("s", "j")).await;
        r.header("x-flowgate-status") == Some("accepted")
    })
    .await;
    wait_until_async("the stored session to expire", || async {
        let r = hit(&fg, &up, &poll("s", "j")).await;
        r.header("x-flowgate-status") == Some("absent")
    })
    .await;
    assert_eq!(up.last().header("x-flowgate-context"), None);
}

#[tokio::test]
async fn routes_and_parameter_names_are_configurable() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .yaml(
            "routes:\n  init_path: /w/start\n  init_match: prefix\n  session_prefixes: [/w/, /chat/]\n\
             params:\n  site: site\n  session: sid\n  context: ctx\n",
        )
        .start();
    let ctx = b64(r#"{"ims_email":"a@b.c"}"#);
    let r = hit(&fg, &up, &format!("/w/start/v2?site=s&sid=j&ctx={ctx}")).await;
    assert_eq!(r.header("x-flowgate-status"), Some("accepted"));
    let r = hit(&fg, &up, "/chat/poll?site=s&sid=j").await;
    assert_eq!(r.header("x-flowgate-status"), Some("accepted"));
    let r = hit(&fg, &up, "/public_FlowWidget/chat?siteid=s&jsSessionId=j").await;
    assert!(r.flowgate_headers().is_empty());
}
