//! Spoof matching with every separator: a client header whose name folds to the trusted prefix
//! — any byte that is not a letter or digit counting as `-`, as CGI and PHP turn each of them
//! into `_` — never reaches the backend, on any route and whatever happens to the context; the
//! same for upstream response headers. Raw sockets on both sides, a recording upstream and a
//! real PHP upstream (`php -S`, `$_SERVER`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::b64;
use common::flowgate::Flowgate;
use common::php_server::PhpServer;
use common::raw::{self, RawUpstream, Step};
use common::upstream::Upstream;

/// Every byte other than a letter or digit that HTTP allows in a header name (RFC 9110 tchar).
const SEPARATORS: &[u8] = b"!#$%&'*+-.^_`|~";
/// What the forged headers claim to be.
const SUFFIXES: [&str; 6] = [
    "Status",
    "Context",
    "Prefill",
    "Site",
    "Session",
    "Signature",
];

/// `X<a>Flowgate<b><Suffix>` for every separator in both positions of the prefix, in changing
/// case, each with a value that names it.
fn forged_names() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, a) in SEPARATORS.iter().enumerate() {
        for (j, b) in SEPARATORS.iter().enumerate() {
            let suffix = SUFFIXES[(i + j) % SUFFIXES.len()];
            let flowgate = if (i + j) % 2 == 0 {
                "Flowgate"
            } else {
                "fLOWGATE"
            };
            let name = format!("X{}{flowgate}{}{suffix}", *a as char, *b as char);
            out.push((name, format!("FORGED{i}x{j}")));
        }
    }
    out
}

fn request(path: &str, extra: &[(String, String)]) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (n, v) in extra {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    r.push_str("X-Flowgateway: kept\r\n\r\n");
    r.into_bytes()
}

/// The routes and whether flowgate itself sets `Status` there (with its value).
fn routes() -> Vec<(String, Option<&'static str>)> {
    let good = b64(r#"{"ims_email":"jane@example.com"}"#);
    vec![
        (
            format!("/public_FlowWidget/init?siteid=s&jsSessionId=j&visitor_context={good}"),
            Some("accepted"),
        ),
        (
            "/public_FlowWidget/chat?siteid=s&jsSessionId=j".into(),
            Some("accepted"),
        ),
        (
            "/public_FlowWidget/chat?siteid=s&jsSessionId=other".into(),
            Some("absent"),
        ),
        (
            "/public_FlowWidget/init?siteid=s&jsSessionId=k&visitor_context=%%%".into(),
            Some("discarded; reason=base64"),
        ),
        (
            "/public_FlowWidget/init?siteid=s&jsSessionId=k".into(),
            Some("absent"),
        ),
        (
            "/public_FlowWidget/init?siteid=s%20s&jsSessionId=j".into(),
            Some("discarded; reason=bad_session"),
        ),
        ("/public_FlowWidget/chat".into(), None),
        ("/elsewhere?siteid=s&jsSessionId=j".into(), None),
    ]
}

/// A header name as CGI/PHP names its variable: upper case, every other byte `_`.
fn cgi(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                b.to_ascii_uppercase() as char
            } else {
                '_'
            }
        })
        .collect()
}

#[tokio::test]
async fn every_separator_in_every_position_is_stripped_on_every_route() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let (addr, forged) = (fg.addr, forged_names());
    for (path, status) in routes() {
        let sent = request(&path, &forged);
        let resp = tokio::task::spawn_blocking(move || raw::exchange(addr, &sent))
            .await
            .unwrap();
        assert_eq!(
            resp.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&resp.raw)
        );
        let got = up.last();
        assert_eq!(got.header("x-flowgateway"), Some("kept"), "{path}");
        for (name, value) in &got.headers {
            assert!(
                !value.contains("FORGED"),
                "{path}: {name}: {value} reached the upstream"
            );
            if cgi(name).starts_with("X_FLOWGATE_") {
                // Only the headers flowgate sets itself, spelt its way.
                assert!(name.starts_with("x-flowgate-"), "{path}: {name}");
            }
        }
        assert_eq!(got.header("x-flowgate-status"), status, "{path}");
    }
    let stripped = r#"flowgate_spoofed_headers_stripped_total{direction="request"}"#;
    let want = (routes().len() * forged.len()) as f64;
    fg.assert_metrics(&[(stripped, want)]).await;
}

#[tokio::test]
async fn no_forged_header_reaches_php_on_any_route() {
    let php = PhpServer::start();
    let fg = Flowgate::start(&php.host_port());
    let (addr, forged) = (fg.addr, forged_names());
    for (path, status) in routes() {
        let sent = request(&path, &forged);
        let resp = tokio::task::spawn_blocking(move || raw::exchange(addr, &sent))
            .await
            .unwrap();
        assert_eq!(
            resp.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&resp.raw)
        );
        let server: BTreeMap<String, String> = serde_json::from_slice(&resp.body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {:?}", resp.body));
        assert_eq!(
            server.get("HTTP_X_FLOWGATEWAY").map(String::as_str),
            Some("kept")
        );
        let trusted: Vec<(&String, &String)> = server
            .iter()
            .filter(|(k, _)| cgi(k).starts_with("HTTP_X_FLOWGATE_"))
            .collect();
        for (k, v) in &trusted {
            assert!(!v.contains("FORGED"), "{path}: PHP got {k} = {v}");
        }
        match status {
            Some(s) => assert_eq!(
                server.get("HTTP_X_FLOWGATE_STATUS").map(String::as_str),
                Some(s),
                "{path}"
            ),
            None => assert!(trusted.is_empty(), "{path}: PHP got {trusted:?}"),
        }
    }
}

#[tokio::test]
async fn h2c_requests_are_stripped_the_same_way() {
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
    ])
    .arg("--http2-prior-knowledge");
    for sep in SEPARATORS {
        let c = *sep as char;
        cmd.args(["-H", &format!("x{c}flowgate{c}status: FORGED")]);
    }
    let out = cmd.arg(fg.url("/elsewhere")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");
    let got = up.last();
    assert!(
        got.headers.iter().all(|(_, v)| !v.contains("FORGED")),
        "{:?}",
        got.headers
    );
}

#[tokio::test]
async fn prefixed_response_headers_never_reach_the_client() {
    let forged = forged_names();
    let answer = {
        let mut r = String::from("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Upstream: ok\r\n");
        for (n, v) in &forged {
            r.push_str(&format!("{n}: {v}\r\n"));
        }
        r.push_str("\r\nhi\n");
        r.into_bytes()
    };
    let up = RawUpstream::start(move |_| vec![Step::Send(answer.clone())]);
    let fg = Flowgate::start(&up.host_port());
    let addr = fg.addr;
    for (path, _) in routes() {
        let sent = request(&path, &[]);
        let resp = tokio::task::spawn_blocking(move || raw::exchange(addr, &sent))
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(resp.header("x-upstream"), Some("ok"));
        assert_eq!(resp.body, b"hi\n");
        for (name, value) in &resp.headers {
            assert!(
                !cgi(name).starts_with("X_FLOWGATE_") && !value.contains("FORGED"),
                "{path}: {name}: {value} reached the client"
            );
        }
    }
    let stripped = r#"flowgate_spoofed_headers_stripped_total{direction="response"}"#;
    let want = (routes().len() * forged.len()) as f64;
    fg.assert_metrics(&[(stripped, want)]).await;
}
