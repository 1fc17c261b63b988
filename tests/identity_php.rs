//! PHP's built-in server as the chat backend behind the real binary (`tests/php/backend.php`:
//! `examples/upstream/verify.php` with an APCu replay cache): hostile targets, absolute form,
//! replays, a backend without its secret, unverified pre-fill — issue 17 through the kit a PHP
//! backend copies.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::flowgate::Flowgate;
use common::ports::{accepts, free_addr};
use common::{b64, wait_until};
use flowgate::trust::sign::{HostKey, sign_context};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "php-backend-signing-secret-0123456789";
const SITE_KEY: &str = "php-test-site-key-0123456789abcdef";
const INIT: &str = "/public_FlowWidget/init";

/// `php -S` serving `tests/php/backend.php`; killed on drop.
struct PhpBackend {
    child: Child,
    addr: SocketAddr,
}

impl PhpBackend {
    fn start(secret: Option<&str>) -> PhpBackend {
        let addr = free_addr();
        let mut cmd = Command::new("php");
        cmd.args(["-d", "apc.enable_cli=1", "-S", &addr.to_string()])
            .arg(format!(
                "{}/tests/php/backend.php",
                env!("CARGO_MANIFEST_DIR")
            ))
            .env_remove("FLOWGATE_SIGNING_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(s) = secret {
            cmd.env("FLOWGATE_SIGNING_SECRET", s);
        }
        let child = cmd.spawn().expect("php (scripts/test installs php-cli)");
        wait_until("php -S to accept connections", || accepts(addr));
        PhpBackend { child, addr }
    }
}

impl Drop for PhpBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `head` (request line and headers) with `Connection: close` to `addr`; the status and
/// the body parsed as JSON (`Null` when it is not JSON).
fn raw(addr: SocketAddr, head: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn flowgate_before(php: &PhpBackend, yaml: &str) -> Flowgate {
    Flowgate::options()
        .upstream(php.addr.to_string())
        .env("FLOWGATE_SIGNING_SECRET", SECRET)
        .env("PHP_TEST_SITE_KEY", SITE_KEY)
        .yaml(yaml)
        .start()
}

/// Issue 17 findings 3 and 4 as PHP sees them: every hostile target is refused by flowgate or
/// reaches PHP normalised, verifying, and with trusted headers exactly when PHP's own router
/// sends it to a widget route.
#[test]
fn hostile_targets_reach_php_only_as_flowgate_classified_and_signed_them() {
    let php = PhpBackend::start(Some(SECRET));
    let fg = flowgate_before(&php, "");
    let q = "siteid=s1&jsSessionId=j1";
    let ctx = b64(r#"{"ims_email":"jane@example.com"}"#).replace('=', "%3D");
    let cases = [
        format!("GET /public_FlowWidget/../admin?{q}"),
        format!("GET /public_FlowWidget/%2e%2e/admin?{q}"),
        format!("GET /public_FlowWidget/%2E%2e/%2e%2e/admin?{q}"),
        format!("GET /public_FlowWidget%2f..%2fadmin?{q}"),
        format!("GET /public_FlowWidget/%2f%2e%2e%2fadmin?{q}"),
        format!("GET //public_FlowWidget//init?{q}&visitor_context={ctx}"),
        format!("GET //admin//..//public_FlowWidget/poll?{q}"),
        format!("GET http://chat.example.com/public_FlowWidget/init?{q}"),
        format!("GET http://chat.example.com/public_FlowWidget/../admin?{q}"),
        format!("POST {INIT}?{q}&visitor_context={ctx}"),
        format!("GET {INIT}?{q}&visitor%5Fcontext={ctx}&visitor.context={ctx}"),
    ];
    let mut reached = 0;
    for line in &cases {
        let head = format!("{line} HTTP/1.1\r\nHost: chat.example.com\r\nContent-Length: 0");
        let (status, body) = raw(fg.addr, &head);
        if status == 400 {
            assert!(line.contains("%2f"), "{line}: refused");
            continue;
        }
        assert_eq!(status, 200, "{line}: {body}");
        reached += 1;
        let verdict = &body["verify"];
        assert_eq!(verdict["ok"], true, "{line}: {body}");
        let uri = body["request_uri"].as_str().unwrap();
        assert!(
            uri.starts_with('/') && !uri.contains("..") && !uri.contains("//"),
            "{line}: {uri}"
        );
        let routed = body["routed_path"].as_str().unwrap();
        let widget = routed.starts_with("/public_FlowWidget/");
        assert_eq!(
            body["headers"].get("x-flowgate-site").is_some(),
            widget,
            "{line}: {body}"
        );
        assert_eq!(verdict["site"].is_string(), widget, "{line}");
        let keys: Vec<&str> = body["get_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert!(
            !keys.iter().any(|k| k.starts_with("visitor")),
            "{line}: {keys:?}"
        );
        assert_eq!(verdict["client_ip"], "127.0.0.1");
    }
    assert_eq!(reached, cases.len() - 2);
}

/// Issue 17 finding 5 as PHP sees it: what PHP received, replayed straight to it (an attacker
/// inside the network), is refused — as a replay, and as a forgery once anything is changed.
#[test]
fn a_captured_request_replayed_to_php_is_refused() {
    let php = PhpBackend::start(Some(SECRET));
    let fg = flowgate_before(&php, "");
    let (status, body) = raw(
        fg.addr,
        &format!("GET {INIT}?siteid=s1&jsSessionId=j1 HTTP/1.1\r\nHost: chat.example.com"),
    );
    assert_eq!(status, 200);
    assert_eq!(body["verify"]["ok"], true, "{body}");
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    let headers: Vec<String> = body["headers"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "connection")
        .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap()))
        .collect();
    let replay = |method: &str, target: &str| {
        let head = format!("{method} {target} HTTP/1.1\r\n{}", headers.join("\r\n"));
        raw(php.addr, &head).1["verify"].clone()
    };
    assert_eq!(replay("GET", &uri)["reason"], "replayed");
    assert_eq!(replay("POST", &uri)["reason"], "bad_signature");
    assert_eq!(
        replay("GET", &uri.replace("j1", "j2"))["reason"],
        "bad_signature"
    );
    assert_eq!(
        replay("GET", "/public_FlowWidget/admin")["reason"],
        "bad_signature"
    );
}

fn hmac_hex(key: &str, msg: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(msg.as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Issue 17 finding 1 as PHP sees it: a backend whose secret variable is unset used to verify
/// with the empty key, so a forgery signed with "" passed. Now the kit refuses to verify at all.
#[test]
fn a_php_backend_without_its_secret_refuses_instead_of_trusting_a_forgery() {
    let php = PhpBackend::start(None);
    let ctx = b64(r#"{"ims_email":"ceo@example.com"}"#);
    let prefill = b64(r#"{"visitor_email":"ceo@example.com","email":"ceo@example.com"}"#);
    let host = php.addr.to_string();
    let t = jsonwebtoken::get_current_timestamp();
    let target = format!("{INIT}?siteid=s1&jsSessionId=j1");
    let canonical = format!(
        "v2\n{t}\nrid-1\nGET\n{host}\n{target}\n203.0.113.7\ns1\nj1\naccepted; verified\n{ctx}\n{prefill}"
    );
    for version in ["v1", "v2"] {
        let mac = match version {
            "v2" => hmac_hex("", &canonical),
            _ => hmac_hex(
                "",
                &format!("v1\n{t}\n{INIT}\ns1\nj1\naccepted; verified\n{ctx}\n{prefill}"),
            ),
        };
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nX-Request-Id: rid-1\r\nX-Real-IP: 203.0.113.7\
             \r\nX-Flowgate-Site: s1\r\nX-Flowgate-Session: j1\r\nX-Flowgate-Status: accepted; verified\
             \r\nX-Flowgate-Context: {ctx}\r\nX-Flowgate-Prefill: {prefill}\
             \r\nX-Flowgate-Signature: t={t},{version}={mac}"
        );
        let (status, body) = raw(php.addr, &head);
        assert_eq!(status, 200);
        let verdict = &body["verify"];
        assert_eq!(verdict["ok"], false, "{version}: {body}");
        assert!(
            verdict["config_error"]
                .as_str()
                .unwrap()
                .contains("no verification secret"),
            "{body}"
        );
    }
}

/// Issue 17 finding 2 as PHP sees it: on an `optional` site a browser's unsigned context with
/// `ims_email` arrives correctly signed as `accepted; unverified` — and the safe accessor hands
/// out nothing; a host-signed token's pre-fill comes through.
#[test]
fn an_optional_site_never_prefills_what_the_browser_claimed() {
    let php = PhpBackend::start(Some(SECRET));
    let fg = flowgate_before(
        &php,
        "sites:\n  s-opt:\n    mode: optional\n    keys:\n      - {kid: k1, secret_env: PHP_TEST_SITE_KEY}\n",
    );
    let unsigned = b64(r#"{"ims_email":"mallory@example.com"}"#).replace('=', "%3D");
    let (_, body) = raw(
        fg.addr,
        &format!(
            "GET {INIT}?siteid=s-opt&jsSessionId=j1&visitor_context={unsigned} HTTP/1.1\r\nHost: h"
        ),
    );
    assert_eq!(body["verify"]["ok"], true, "{body}");
    assert_eq!(body["verify"]["status"], "unverified");
    assert_eq!(body["verify"]["verified_prefill"], Value::Null);
    assert!(
        body["headers"]["x-flowgate-prefill"].is_string(),
        "the header is there: {body}"
    );

    let key = HostKey {
        kid: "k1",
        secret: SITE_KEY.as_bytes(),
        alg: jsonwebtoken::Algorithm::HS256,
    };
    let now = jsonwebtoken::get_current_timestamp();
    let token = sign_context(
        &[("ims_email", "jane@example.com")],
        "s-opt",
        &key,
        now,
        300,
    )
    .unwrap();
    let (_, body) = raw(
        fg.addr,
        &format!(
            "GET {INIT}?siteid=s-opt&jsSessionId=j2&visitor_context_token={token} HTTP/1.1\r\nHost: h"
        ),
    );
    assert_eq!(body["verify"]["status"], "verified", "{body}");
    assert_eq!(
        body["verify"]["verified_prefill"]["visitor_email"],
        "jane@example.com"
    );
    assert!(
        !body["request_uri"].as_str().unwrap().contains("token"),
        "{body}"
    );
}
