//! Client identity and signature v2 on a real Socket.IO 4.8 stack behind the real binary
//! (`tests/node`: `chat-backend.js` records the identity and trusted headers of each handshake
//! and WebSocket upgrade request): forged headers replaced, and the v2 signature of exactly what
//! the backend recorded verified with the Rust kit.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::flowgate::Flowgate;
use common::{DEADLINE, b64};
use flowgate::upstream::{self, ContextStatus, Options, RequestView};
use serde_json::Value;

const SECRET: &str = "node-identity-signing-secret-0123456789";
const QUERY: &str = "siteid=site1&jsSessionId=sess-node-1";
/// Sent by the client on every request: forged identity and trusted headers, odd spellings.
const FORGED: [&str; 6] = [
    "X-Forwarded-For: 6.6.6.6",
    "X-Real-IP: 6.6.6.6",
    "X_Real_IP: 6.6.6.6",
    "X-Request-Id: forged-request-id",
    "X-Forwarded-Proto: https",
    "X_Flowgate_Status: accepted; verified",
];

fn node_dir() -> String {
    format!("{}/tests/node", env!("CARGO_MANIFEST_DIR"))
}

/// `chat-backend.js` on an ephemeral port; killed on drop.
struct Backend {
    child: Child,
    addr: SocketAddr,
}

impl Backend {
    fn start() -> Backend {
        let mut child = Command::new("node")
            .arg(format!("{}/chat-backend.js", node_dir()))
            .args(["--port", "0", "--node-id", "A"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node (scripts/test installs nodejs and runs npm ci in tests/node)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(DEADLINE)
            .expect("chat-backend.js ready line");
        let ready: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        assert_eq!(ready["ready"], true, "chat-backend.js: {line}");
        let port = u16::try_from(ready["port"].as_u64().unwrap()).unwrap();
        Backend {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client script to completion (bounded by its own `--timeout-ms`); its last line.
fn client(script: &str, args: &[String]) -> Value {
    let out = Command::new("node")
        .arg(format!("{}/{script}", node_dir()))
        .args(args)
        .args(["--timeout-ms", "15000"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| panic!("{script}: {text}"))
}

fn headers_args() -> Vec<String> {
    FORGED
        .iter()
        .flat_map(|h| ["--header".to_owned(), (*h).to_owned()])
        .collect()
}

/// One recorded request: `{url, headers: {name: [values]}}`. Checks the identity headers and
/// verifies the v2 signature over exactly what the backend got; returns the trusted context.
fn check_recorded(what: &str, recorded: &Value, host: &str) -> upstream::TrustedContext {
    let headers = &recorded["headers"];
    let one = |name: &str| -> Option<&str> {
        let values = headers.get(name)?.as_array()?;
        assert_eq!(values.len(), 1, "{what}: {name} {values:?}");
        values[0].as_str()
    };
    // Nothing the client forged survived, in any spelling.
    let names: Vec<&str> = headers
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        names.iter().all(|n| !n.contains('_')),
        "{what}: a forged spelling reached the backend: {names:?}"
    );
    assert_eq!(one("x-forwarded-for"), Some("127.0.0.1"), "{what}");
    assert_eq!(one("x-real-ip"), Some("127.0.0.1"), "{what}");
    assert_eq!(one("x-forwarded-proto"), Some("http"), "{what}");
    assert_eq!(one("x-forwarded-host"), Some(host), "{what}");
    let id = one("x-request-id").unwrap();
    assert!(id.len() == 32 && id != "forged-request-id", "{what}: {id}");
    // The v2 signature over method, host, target, client address, request id, trusted headers.
    let target = recorded["url"].as_str().unwrap();
    let view = RequestView::new("GET", target, |name: &str| {
        let lower = name.to_ascii_lowercase();
        if lower == "host" {
            return Some(host);
        }
        one(&lower)
    });
    let options = Options::new(&[SECRET]).unwrap();
    let trusted = upstream::verify(&view, &options).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(trusted.request_id.as_deref(), Some(id));
    assert_eq!(trusted.client_ip.as_deref(), Some("127.0.0.1"));
    // Another target (the handshake's signature replayed on another session) does not verify.
    let moved = target.replace("sess-node-1", "sess-node-2");
    let view = RequestView::new("GET", &moved, |name: &str| {
        let lower = name.to_ascii_lowercase();
        if lower == "host" {
            return Some(host);
        }
        one(&lower)
    });
    assert!(upstream::verify(&view, &options).is_err(), "{what}");
    trusted
}

#[test]
fn handshake_and_upgrade_carry_replaced_identity_and_a_verifiable_v2_signature() {
    let backend = Backend::start();
    let fg = Flowgate::options()
        .upstream(backend.addr.to_string())
        .env("FLOWGATE_SIGNING_SECRET", SECRET)
        .start();
    let host = fg.addr.to_string();
    // An init stores the session's context, which the session route re-attaches.
    let ctx = b64(r#"{"account_id":"USR-1","ims_email":"jane@example.com"}"#).replace('=', "%3D");
    let init = format!("/public_FlowWidget/init?{QUERY}&visitor_context={ctx}");
    let status = http_status(&fg.url(&init));
    assert_eq!(
        status, 404,
        "the fixture has no init route; the edge still stored the context"
    );

    let url = format!("http://{}", fg.addr);
    for transports in ["polling,websocket", "websocket"] {
        let mut args = vec![
            "--url".to_owned(),
            url.clone(),
            "--path".to_owned(),
            "/public_FlowWidget/socket.io".to_owned(),
            "--query".to_owned(),
            QUERY.to_owned(),
            "--transports".to_owned(),
            transports.to_owned(),
        ];
        args.extend(headers_args());
        let result = client("chat-client.js", &args);
        assert_eq!(result["ok"], true, "{transports}: {result}");
        assert_eq!(result["transport"], "websocket", "{transports}: {result}");
        for (what, recorded) in [
            ("handshake", &result["handshake"]),
            ("upgrade", &result["upgrade"]),
        ] {
            let what = format!("{transports} {what}");
            let trusted = check_recorded(&what, recorded, &host);
            assert_eq!(trusted.site.as_deref(), Some("site1"), "{what}");
            assert_eq!(trusted.session.as_deref(), Some("sess-node-1"), "{what}");
            assert_eq!(trusted.status, ContextStatus::Accepted, "{what}");
            assert_eq!(
                trusted.context.get("ims_email"),
                Some("jane@example.com"),
                "{what}"
            );
            // A `mode: off` site: the browser's word, never pre-filled by the safe accessor.
            assert!(trusted.verified_prefill().is_none(), "{what}");
        }
        // Handshake and upgrade are two requests: two request ids.
        let id = |v: &Value| v["headers"]["x-request-id"][0].as_str().unwrap().to_owned();
        if transports.starts_with("polling") {
            assert_ne!(id(&result["handshake"]), id(&result["upgrade"]));
        }
    }

    // A raw WebSocket under the widget prefix: its upgrade request, as the backend recorded it.
    let mut args = vec![
        "--url".to_owned(),
        format!("ws://{}/public_FlowWidget/chat/raw-ws?{QUERY}", fg.addr),
        "--whoami".to_owned(),
    ];
    args.extend(headers_args());
    let result = client("raw-ws-client.js", &args);
    assert_eq!(result["ok"], true, "{result}");
    let trusted = check_recorded("raw websocket upgrade", &result["whoami"], &host);
    assert_eq!(trusted.status, ContextStatus::Accepted);
}

/// A GET on a fresh runtime (the test itself is synchronous); the status code.
fn http_status(url: &str) -> u16 {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().status().as_u16() })
}
