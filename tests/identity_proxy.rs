//! Client identity, request normalisation, the raw parameters and signature v2 through the real
//! binary: what the upstream really receives for forged, trusted, odd and hostile requests, and
//! that the Rust kit verifies exactly that (issue 12 item 4; issue 17 findings 3, 4, 5, 6).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::b64;
use common::flowgate::{Flowgate, TempDir};
use common::upstream::{Received, Upstream};
use flowgate::upstream::{self, MemoryReplayCache, Options, RequestView, VerifyError, Version};

const SECRET: &str = "identity-signing-secret-0123456789ab";
const INIT: &str = "/public_FlowWidget/init";

/// Sends `head` (request line and headers, without the final blank line) with `Connection:
/// close`; returns the status code and the body.
fn raw(fg: &Flowgate, head: &str) -> (u16, String) {
    let mut s = TcpStream::connect(fg.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// The admin listener's `/metrics` text.
fn scrape(fg: &Flowgate) -> String {
    let mut s = TcpStream::connect(fg.admin).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn get(fg: &Flowgate, target: &str, extra: &str) -> u16 {
    raw(
        fg,
        &format!("GET {target} HTTP/1.1\r\nHost: {}{extra}", fg.addr),
    )
    .0
}

/// The received request as the kit sees it, verified with `options`.
fn verify(r: &Received, options: &Options) -> Result<upstream::TrustedContext, VerifyError> {
    let view = RequestView::new(&r.method, &r.target, |name: &str| r.header(name));
    upstream::verify(&view, options)
}

fn kit() -> Options {
    Options::new(&[SECRET]).unwrap()
}

fn signed(up: &Upstream, yaml: &str) -> Flowgate {
    Flowgate::options()
        .upstream(up.host_port())
        .env("FLOWGATE_SIGNING_SECRET", SECRET)
        .yaml(yaml)
        .start()
}

fn is_hex_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

// ---------------------------------------------------------------------------------------------
// Client identity

#[test]
fn a_forged_chain_from_an_untrusted_peer_is_replaced_in_every_spelling() {
    let up = Upstream::start();
    let fg = signed(&up, "");
    let forged = "\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\nx_forwarded_for: 6.6.6.6\
                  \r\nX-Real-IP: 6.6.6.6\r\nx.real.ip: 6.6.6.6\r\nX~Real~IP: 6.6.6.6\
                  \r\nX-Request-Id: forged-id\r\nX_Request_Id: forged-id\
                  \r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\
                  \r\nForwarded: for=6.6.6.6;proto=https";
    for target in [
        "/static/app.js",
        &format!("{INIT}?siteid=s1&jsSessionId=j1"),
        "/public_FlowWidget/poll?siteid=s1&jsSessionId=j1",
    ] {
        assert_eq!(get(&fg, target, forged), 200, "{target}");
        let r = up.last();
        let identity: Vec<(&str, &str)> = r
            .headers
            .iter()
            .filter(|(n, _)| {
                let folded = n.replace(['_', '.', '~'], "-");
                folded.starts_with("x-forwarded")
                    || folded.starts_with("x-real")
                    || folded.starts_with("x-request")
                    || folded == "forwarded"
            })
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let id = r.header("x-request-id").unwrap();
        let host = fg.addr.to_string();
        assert_eq!(
            identity,
            [
                ("x-forwarded-for", "127.0.0.1"),
                ("x-real-ip", "127.0.0.1"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", host.as_str()),
                ("x-request-id", id),
            ],
            "{target}"
        );
        assert!(is_hex_id(id), "{id}");
        // The signature covers the client address and the request id flowgate set.
        let trusted = verify(&r, &kit()).unwrap();
        assert_eq!(trusted.client_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(trusted.request_id.as_deref(), Some(id));
    }
    // Each request gets its own id, and the access log names it.
    let ids: std::collections::HashSet<String> = up
        .received()
        .iter()
        .map(|r| r.header("x-request-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    let log = fg.log();
    for id in &ids {
        assert!(
            log.contains(&format!("request_id={id}")),
            "{id} not in\n{log}"
        );
    }
    assert!(
        !log.contains("forged-id") && !log.contains("6.6.6.6"),
        "{log}"
    );
}

#[test]
fn a_chain_from_a_trusted_proxy_is_kept_and_the_client_is_its_rightmost_untrusted_address() {
    let up = Upstream::start();
    let fg = signed(
        &up,
        "client_ip:\n  trusted_proxies: [\"127.0.0.1\", \"10.0.0.0/8\"]\n  forwarded: true\n",
    );
    let host = fg.addr.to_string();
    let target = format!("{INIT}?siteid=s1&jsSessionId=j1");
    assert_eq!(
        get(
            &fg,
            &target,
            "\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.7\r\nX-Forwarded-For: 10.1.2.3\
             \r\nx_forwarded_for: 1.1.1.1\r\nX-Real-IP: 9.9.9.9\r\nX-Request-Id: lb-4711:a.b_c\
             \r\nX-Forwarded-Proto: HTTPS\r\nX-Forwarded-Host: chat.example.com\
             \r\nForwarded: for=203.0.113.7;proto=https"
        ),
        200
    );
    let r = up.last();
    assert_eq!(
        r.all("x-forwarded-for"),
        ["6.6.6.6, 203.0.113.7, 10.1.2.3, 127.0.0.1"]
    );
    assert_eq!(r.header("x-real-ip"), Some("203.0.113.7"));
    assert_eq!(r.header("x-request-id"), Some("lb-4711:a.b_c"));
    assert_eq!(r.header("x-forwarded-proto"), Some("https"));
    assert_eq!(r.header("x-forwarded-host"), Some("chat.example.com"));
    assert_eq!(
        r.header("forwarded"),
        Some(
            format!("for=203.0.113.7;proto=https, for=127.0.0.1;host=\"{host}\";proto=http")
                .as_str()
        )
    );
    assert!(r.header("x_forwarded_for").is_none());
    let trusted = verify(&r, &kit()).unwrap();
    assert_eq!(trusted.client_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(trusted.request_id.as_deref(), Some("lb-4711:a.b_c"));
    assert!(fg.log().contains("request_id=lb-4711:a.b_c"));

    // No chain: the proxy's X-Real-IP; an invalid request id or proto is replaced.
    assert_eq!(
        get(
            &fg,
            "/x",
            "\r\nX-Real-IP: 198.51.100.9\r\nX-Request-Id: bad id\r\nX-Forwarded-Proto: gopher"
        ),
        200
    );
    let r = up.last();
    assert_eq!(r.header("x-real-ip"), Some("198.51.100.9"));
    assert_eq!(r.all("x-forwarded-for"), ["127.0.0.1"]);
    assert!(is_hex_id(r.header("x-request-id").unwrap()));
    assert_eq!(r.header("x-forwarded-proto"), Some("http"));
    assert_eq!(r.header("x-forwarded-host"), Some(host.as_str()));
    // Every hop trusted: the left-most; garbage stops the walk at the trusted hop.
    for (chain, client) in [
        ("10.9.9.9, 10.1.1.1", "10.9.9.9"),
        ("203.0.113.7, unknown, 10.1.1.1", "10.1.1.1"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
    ] {
        assert_eq!(
            get(&fg, "/x", &format!("\r\nX-Forwarded-For: {chain}")),
            200
        );
        assert_eq!(up.last().header("x-real-ip"), Some(client), "{chain}");
    }
}

#[test]
fn identity_header_names_are_configurable() {
    let up = Upstream::start();
    let fg = signed(
        &up,
        "client_ip:\n  real_ip_header: X-Client-Address\n  request_id_header: X-Trace-Id\n  forwarded_for_header: X-Chain\n",
    );
    assert_eq!(
        get(&fg, "/x", "\r\nX-Client-Address: 6.6.6.6\r\nx_trace_id: t"),
        200
    );
    let r = up.last();
    assert_eq!(r.header("x-client-address"), Some("127.0.0.1"));
    assert_eq!(r.header("x-chain"), Some("127.0.0.1"));
    assert!(r.header("x-real-ip").is_none() && r.header("x-request-id").is_none());
    let id = r.header("x-trace-id").unwrap();
    assert!(is_hex_id(id));
    let o = kit()
        .client_ip_header("X-Client-Address")
        .request_id_header("X-Trace-Id");
    assert_eq!(verify(&r, &o).unwrap().request_id.as_deref(), Some(id));
}

// ---------------------------------------------------------------------------------------------
// Normalisation (issue 17, findings 3 and 4)

#[test]
fn paths_are_normalised_before_routes_signatures_and_the_backend() {
    let up = Upstream::start();
    let fg = signed(&up, "");
    let q = "siteid=s1&jsSessionId=j1";
    for (sent, received, widget) in [
        (
            format!("/public_FlowWidget/../admin?{q}"),
            format!("/admin?{q}"),
            false,
        ),
        (
            format!("/public_FlowWidget/%2e%2e/admin?{q}"),
            format!("/admin?{q}"),
            false,
        ),
        (
            format!("/public_FlowWidget/.%2E/admin?{q}"),
            format!("/admin?{q}"),
            false,
        ),
        (
            format!("/public_FlowWidget/./chat/../../admin/?{q}"),
            format!("/admin/?{q}"),
            false,
        ),
        (
            format!("//public_FlowWidget//init?{q}"),
            format!("{INIT}?{q}"),
            true,
        ),
        (
            format!("/x/../public_FlowWidget/poll?{q}"),
            format!("/public_FlowWidget/poll?{q}"),
            true,
        ),
        (
            format!("/public_FlowWidget/%69nit?{q}"),
            format!("{INIT}?{q}"),
            true,
        ),
        (
            "/static/../../etc/passwd?".to_owned(),
            "/etc/passwd".to_owned(),
            false,
        ),
    ] {
        assert_eq!(get(&fg, &sent, ""), 200, "{sent}");
        let r = up.last();
        assert_eq!(r.target, received, "{sent}");
        assert_eq!(r.header("x-flowgate-site").is_some(), widget, "{sent}");
        let trusted = verify(&r, &kit()).unwrap_or_else(|e| panic!("{sent}: {e}"));
        assert_eq!(trusted.site.is_some(), widget);
    }
    let before = up.received().len();
    // Refused by flowgate, with its own body (and counted), or already by Pingora's parser.
    for (sent, ours) in [
        ("/public_FlowWidget%2F..%2Fadmin", true),
        ("/public_FlowWidget/%2f/init", true),
        ("/public_FlowWidget/..%2f..%2fadmin", true),
        ("/public_FlowWidget/..%5cadmin", true),
        ("/public_FlowWidget/..\\admin", true),
        ("/public_FlowWidget/..;/admin", true),
        ("/public_FlowWidget/init%00.js", true),
        ("public_FlowWidget/init", true),
        ("ftp://chat.example.com/public_FlowWidget/init", false),
        ("http://user@h/public_FlowWidget/init", false),
        ("http:/h/public_FlowWidget/init", false),
        ("http://other/public_FlowWidget/init", false),
    ] {
        let (status, body) = raw(&fg, &format!("GET {sent} HTTP/1.1\r\nHost: h"));
        assert_eq!(status, 400, "{sent}");
        assert_eq!(
            body.contains("request target refused"),
            ours,
            "{sent}: {body}"
        );
    }
    let (status, _) = raw(&fg, "GET /x HTTP/1.1\r\nHost: a\r\nHost: b");
    assert_eq!(status, 400);
    assert_eq!(
        up.received().len(),
        before,
        "a refused request reached the upstream"
    );
    let m = scrape(&fg);
    assert!(
        m.contains(r#"flowgate_request_targets_refused_total{reason="ambiguous_path"} 7"#),
        "{m}"
    );
    assert!(
        m.contains(r#"flowgate_request_targets_refused_total{reason="bad_target"} 1"#),
        "{m}"
    );
}

#[test]
fn absolute_form_is_forwarded_in_origin_form_with_the_authority_as_host() {
    let up = Upstream::start();
    let fg = signed(&up, "");
    let q = "siteid=s1&jsSessionId=j1";
    for host_header in ["", "\r\nHost: chat.example.com:8080"] {
        let head = format!(
            "GET http://chat.example.com:8080/public_FlowWidget/init?{q} HTTP/1.1{host_header}"
        );
        assert_eq!(raw(&fg, &head).0, 200, "{head}");
        let r = up.last();
        assert_eq!(r.target, format!("{INIT}?{q}"));
        assert_eq!(r.all("host"), ["chat.example.com:8080"]);
        assert_eq!(r.header("x-forwarded-host"), Some("chat.example.com:8080"));
        assert_eq!(r.header("x-flowgate-status"), Some("absent"));
        let trusted = verify(&r, &kit()).unwrap();
        assert_eq!(trusted.site.as_deref(), Some("s1"));
    }
    // An authority that differs from the Host header is refused (by Pingora) rather than chosen.
    let head =
        format!("GET http://chat.example.com/public_FlowWidget/init?{q} HTTP/1.1\r\nHost: other");
    assert_eq!(raw(&fg, &head).0, 400);
    // Dot segments inside an absolute-form target are resolved too.
    let head = format!("GET http://h/public_FlowWidget/../admin?{q} HTTP/1.1");
    assert_eq!(raw(&fg, &head).0, 200);
    let r = up.last();
    assert_eq!(r.target, format!("/admin?{q}"));
    assert!(r.header("x-flowgate-site").is_none());
}

// ---------------------------------------------------------------------------------------------
// The raw parameters (issue 17, finding 6)

#[test]
fn context_and_token_never_reach_the_upstream_query_unless_forward_raw() {
    let up = Upstream::start();
    let fg = signed(&up, "");
    let ctx = b64(r#"{"ims_email":"jane@example.com"}"#).replace('=', "%3D");
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJhIjoxfQ.c2ln";
    for (query, kept) in [
        (
            format!("siteid=s1&visitor_context={ctx}&jsSessionId=j1&x=1"),
            "siteid=s1&jsSessionId=j1&x=1",
        ),
        (
            format!("visitor_context={ctx}&siteid=s1&visitor_context={ctx}&jsSessionId=j1"),
            "siteid=s1&jsSessionId=j1",
        ),
        (
            format!(
                "siteid=s1&jsSessionId=j1&visitor%5Fcontext={ctx}&visitor_context_token={token}"
            ),
            "siteid=s1&jsSessionId=j1",
        ),
        (
            format!("siteid=s1&jsSessionId=j1&visitor.context={ctx}&visitor+context_token={token}"),
            "siteid=s1&jsSessionId=j1",
        ),
        (
            format!(
                "siteid=s1&jsSessionId=j1&visitor_context[]={ctx}&visitor%5fcontext%5ftoken={token}"
            ),
            "siteid=s1&jsSessionId=j1",
        ),
    ] {
        assert_eq!(get(&fg, &format!("{INIT}?{query}"), ""), 200, "{query}");
        let r = up.last();
        assert_eq!(r.query.as_deref(), Some(kept), "{query}");
        assert!(
            !r.target.contains(&ctx) && !r.target.contains(token),
            "{}",
            r.target
        );
        verify(&r, &kit()).unwrap();
    }
    // The first case's context was read before it was removed.
    assert_eq!(
        get(
            &fg,
            &format!("{INIT}?siteid=s1&jsSessionId=j1&visitor_context={ctx}"),
            ""
        ),
        200
    );
    let r = up.last();
    assert_eq!(r.header("x-flowgate-status"), Some("accepted"));
    assert_eq!(r.target, format!("{INIT}?siteid=s1&jsSessionId=j1"));
    // Only the parameters go: a query made only of them leaves no `?`.
    assert_eq!(get(&fg, &format!("/other?visitor_context={ctx}"), ""), 200);
    assert_eq!(up.last().target, "/other");

    let raw_fg = signed(&up, "params:\n  forward_raw: true\n");
    let query = format!("siteid=s1&jsSessionId=j1&visitor_context={ctx}");
    assert_eq!(get(&raw_fg, &format!("{INIT}?{query}"), ""), 200);
    let r = up.last();
    assert_eq!(r.query.as_deref(), Some(query.as_str()));
    verify(&r, &kit()).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Signature v2 (issue 17, finding 5)

#[test]
fn a_captured_request_does_not_verify_as_another_and_replays_are_refused() {
    let up = Upstream::start();
    let fg = signed(&up, "");
    assert_eq!(
        get(&fg, &format!("{INIT}?siteid=s1&jsSessionId=j1"), ""),
        200
    );
    let r = up.last();
    let sig = r.header("x-flowgate-signature").unwrap();
    assert!(sig.contains(",v2=") && !sig.contains("v1="), "{sig}");
    verify(&r, &kit()).unwrap();
    // The same headers with another method, query, path, host, client address or request id.
    type Change = fn(&mut Received);
    let variants: [Change; 6] = [
        |r| r.method = "POST".into(),
        |r| r.target = format!("{INIT}?siteid=s1&jsSessionId=j2"),
        |r| r.target = "/public_FlowWidget/admin?siteid=s1&jsSessionId=j1".into(),
        |r| set(r, "host", "evil.example"),
        |r| set(r, "x-real-ip", "6.6.6.6"),
        |r| set(r, "x-request-id", "0123456789abcdef0123456789abcdef"),
    ];
    for (i, change) in variants.iter().enumerate() {
        let mut moved = r.clone();
        change(&mut moved);
        assert_eq!(
            verify(&moved, &kit()).unwrap_err(),
            VerifyError::BadSignature,
            "variant {i}"
        );
    }
    // The backend's replay cache refuses the second use of the request id.
    let cache = Arc::new(MemoryReplayCache::with_tolerance(
        upstream::DEFAULT_TOLERANCE,
    ));
    let guarded = kit().replay(cache);
    verify(&r, &guarded).unwrap();
    assert_eq!(verify(&r, &guarded).unwrap_err(), VerifyError::Replayed);
    assert_eq!(
        get(&fg, &format!("{INIT}?siteid=s1&jsSessionId=j1"), ""),
        200
    );
    verify(&up.last(), &guarded).unwrap();
}

fn set(r: &mut Received, name: &str, value: &str) {
    r.headers.retain(|(n, _)| n != name);
    r.headers.push((name.to_owned(), value.to_owned()));
}

#[test]
fn signing_versions_v1_and_v2_during_a_transition() {
    let up = Upstream::start();
    let fg = signed(&up, "signing:\n  versions: [v1, v2]\n");
    assert_eq!(
        get(&fg, "/public_FlowWidget/poll?siteid=s1&jsSessionId=j1", ""),
        200
    );
    let r = up.last();
    let sig = r.header("x-flowgate-signature").unwrap();
    assert!(sig.contains(",v1=") && sig.contains(",v2="), "{sig}");
    assert_eq!(verify(&r, &kit()).unwrap().version, Version::V2);
    // A v1-only verifier's view: strip v2 from the header.
    let v1_only: String = sig
        .split(',')
        .filter(|f| !f.starts_with("v2="))
        .collect::<Vec<_>>()
        .join(",");
    let mut old = r.clone();
    set(&mut old, "x-flowgate-signature", &v1_only);
    assert_eq!(
        verify(&old, &kit()).unwrap_err(),
        VerifyError::UnsupportedVersion
    );
    assert_eq!(
        verify(&old, &kit().accept_v1(true)).unwrap().version,
        Version::V1
    );
}

#[test]
fn the_signing_gauge_says_whether_requests_are_signed() {
    let up = Upstream::start();
    let fg = signed(&up, "");
    assert!(scrape(&fg).contains("\nflowgate_signing_enabled 1\n"));
    let unsigned = Flowgate::start(&up.host_port());
    assert!(scrape(&unsigned).contains("\nflowgate_signing_enabled 0\n"));
    assert_eq!(get(&unsigned, "/x", ""), 200);
    let r = up.last();
    assert!(r.header("x-flowgate-signature").is_none());
    assert!(r.header("x-request-id").is_some() && r.header("x-real-ip").is_some());
}

#[test]
fn check_names_every_new_key() {
    let dir = TempDir::new("identity-check");
    let conf = dir.path().join("f.yaml");
    std::fs::write(
        &conf,
        "client_ip:\n  trusted_proxies: [\"10.0.0.1/8\", lan]\n  real_ip_header: X-Flowgate-IP\n  request_id_header: \"X Id\"\n  forwarded_host_header: Host\n  forwarded_for_header: x-real-ip\n  forward: true\n\
         params:\n  forward_raw: maybe\nsigning:\n  versions: [v3]\nsites:\n  s1:\n    max_token_age_seconds: 0\n",
    )
    .unwrap();
    let out = common::flowgate::check(&conf);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    for key in [
        "client_ip.trusted_proxies[0]",
        "client_ip.trusted_proxies[1]",
        "client_ip.real_ip_header",
        "client_ip.request_id_header",
        "client_ip.forwarded_host_header",
        "client_ip.forward",
        "params.forward_raw",
        "signing.versions",
        "sites.s1.max_token_age_seconds",
    ] {
        assert!(text.contains(key), "{key} missing in:\n{text}");
    }
    assert!(text.contains("did you mean `forwarded`"), "{text}");
}

/// An HTTP/2 client (h2c): the `:authority` becomes `Host` and `X-Forwarded-Host`, the target is
/// normalised and stripped like an HTTP/1.1 one, and the signature covers what was sent.
#[tokio::test]
async fn http2_clients_get_the_same_identity_target_and_signature() {
    let up = Upstream::start();
    let fg = signed(&up, "");
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let ctx = b64(r#"{"ims_email":"a@b.c"}"#).replace('=', "%3D");
    let resp = h2
        .get(fg.url(&format!(
            "//public_FlowWidget//init?siteid=s1&jsSessionId=j1&visitor_context={ctx}"
        )))
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-request-id", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let r = up.last();
    let host = fg.addr.to_string();
    assert_eq!(r.target, format!("{INIT}?siteid=s1&jsSessionId=j1"));
    assert_eq!(r.all("host"), [host.as_str()]);
    assert_eq!(r.header("x-forwarded-host"), Some(host.as_str()));
    assert_eq!(r.all("x-forwarded-for"), ["127.0.0.1"]);
    assert_ne!(r.header("x-request-id"), Some("forged"));
    assert_eq!(r.header("x-flowgate-status"), Some("accepted"));
    let trusted = verify(&r, &kit()).unwrap();
    assert_eq!(trusted.context.get("ims_email"), Some("a@b.c"));
}
