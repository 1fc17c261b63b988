//! No log level or target spelling prints a value: the real binary runs under every `RUST_LOG`
//! spelling (and `log.level`) there is reason to try, is sent canary values everywhere a
//! visitor or an upstream can put one — query, headers, ids, context, bodies, malformed heads,
//! a malformed h2c path, an over-long target, an invalid upstream response, an upstream that
//! dies or times out, the admin listener — and its whole log is searched for them.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::b64;
use common::flowgate::Flowgate;
use common::raw::{self, RawUpstream, Step};

/// Every canary contains this; nothing else in a log does.
const CANARY: &str = "CANARY";

/// The `RUST_LOG` spellings tried: case, numbers, per-target, globs and oddities.
const SPELLINGS: &[&str] = &[
    "",
    "info",
    "debug",
    "trace",
    "DEBUG",
    "TRACE",
    "Debug",
    "Trace",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "pingora=trace",
    "pingora_core=trace",
    "pingora_proxy=trace",
    "pingora_core::protocols::http::v1=trace",
    "h2=trace",
    "h2::server=trace",
    "hyper=trace",
    "tokio=trace",
    "log=trace",
    "flowgate=trace",
    "*=trace",
    "=trace",
    "[]=trace",
    "[{message}]=trace",
    "off,pingora=trace",
    "trace,pingora=trace,h2=trace,hyper=trace,log=trace,flowgate=trace",
    "TRACE,PINGORA=TRACE,H2=TRACE",
    "warn,pingora_proxy::proxy_h1=trace,pingora_core::protocols::http::v1::client=trace",
    "debug,pingora_core::server=trace,pingora_core::services=trace",
];

/// An upstream that answers by path: an invalid head carrying a cookie, a death mid-body, a
/// silence past the read timeout, or a normal answer with a canary cookie and body.
fn upstream() -> RawUpstream {
    RawUpstream::start(|req| {
        let head = String::from_utf8_lossy(req).into_owned();
        let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
        let send = |b: &[u8]| Step::Send(b.to_vec());
        if path.starts_with("/badresp") {
            vec![send(
                b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=CANARYUPCOOKIE1\r\nBad Header: CANARYUPBAD\r\n\r\n",
            )]
        } else if path.starts_with("/die") {
            vec![send(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: sid=CANARYUPCOOKIE2\r\n\r\nd\r\nCANARYUPBODY1\r\n",
            )]
        } else if path.starts_with("/slow") {
            vec![Step::Wait(Duration::from_millis(2500))]
        } else {
            vec![send(
                b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nSet-Cookie: sid=CANARYUPCOOKIE3\r\nX-Up: CANARYUPHEADER\r\n\r\nCANARYUPBODY2",
            )]
        }
    })
}

/// Sends raw bytes and reads whatever comes back until the close.
fn raw_send(addr: SocketAddr, bytes: &[u8]) {
    let _ = raw::exchange(addr, bytes);
}

fn curl(args: &[&str]) {
    let _ = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap();
}

/// Every kind of value, everywhere it can be sent.
fn send_canaries(fg: &Flowgate, context_b64: &str) {
    let (addr, admin) = (fg.addr, fg.admin);
    let headers = "X-Visitor: CANARYHEADER\r\nCookie: sid=CANARYCOOKIE\r\n\
                   X-Flowgate-Context: CANARYFORGED\r\nX.Flowgate.Status: CANARYFORGED2\r\n\
                   Authorization: Bearer CANARYTOKEN\r\n";
    let init = format!(
        "/public_FlowWidget/init?siteid=CANARYSITE&jsSessionId=CANARYSESSION&visitor_context={context_b64}&q=CANARYQUERY"
    );
    let session =
        "/public_FlowWidget/chat?siteid=CANARYSITE&jsSessionId=CANARYSESSION&q=CANARYQUERY2";
    for path in [
        init.as_str(),
        session,
        "/elsewhere?q=CANARYQUERY3",
        "/badresp?q=CANARYQUERY4",
        "/die?q=CANARYQUERY5",
        "/slow?q=CANARYQUERY6",
    ] {
        raw_send(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n")
                .as_bytes(),
        );
    }
    // A body, kept-alive requests, malformed heads, framing Pingora refuses, long targets.
    raw_send(
        addr,
        b"POST /post?q=CANARYQUERY7 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nCANARYBODY\
          GET /second?q=CANARYQUERY8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    raw_send(
        addr,
        b"GET /bad?q=CANARYBADHEAD HTTP/1.1\r\nBad Header: CANARYBADHEADER\r\n\r\n",
    );
    raw_send(addr, b"GET /bad?q=CANARYBADLINE HTTP/1.1 extra\r\n\r\n");
    raw_send(
        addr,
        b"G\x01T /x?q=CANARYBADMETHOD HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    raw_send(
        addr,
        b"POST /cl?q=CANARYCL HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello",
    );
    raw_send(
        addr,
        b"POST /te?q=CANARYTE HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    raw_send(
        addr,
        format!(
            "GET /long?q=CANARYLONG{} HTTP/1.1\r\nHost: x\r\n\r\n",
            "x".repeat(70_000)
        )
        .as_bytes(),
    );
    raw_send(
        addr,
        format!(
            "GET /big HTTP/1.1\r\nHost: x\r\nX-Big: CANARYBIG{}\r\n\r\n",
            "y".repeat(1 << 20)
        )
        .as_bytes(),
    );
    raw_send(
        addr,
        b"GET /partial?q=CANARYPARTIAL HTTP/1.1\r\nHost: x\r\nX-Visitor: CANARYPARTIAL2",
    );
    // HTTP/2: values in the path and a header, a malformed path, a body.
    let url = fg.url("/h2?q=CANARYH2QUERY");
    curl(&[
        "--http2-prior-knowledge",
        "-H",
        "x-visitor: CANARYH2HEADER",
        &url,
    ]);
    curl(&[
        "--http2-prior-knowledge",
        "--request-target",
        "/h2 bad?q=CANARYH2MALFORMED",
        &fg.url("/"),
    ]);
    curl(&[
        "--http2-prior-knowledge",
        "--data-binary",
        "CANARYH2BODY",
        &fg.url("/h2post?q=CANARYH2Q2"),
    ]);
    curl(&["--http2-prior-knowledge", &fg.url("/badresp?q=CANARYH2Q3")]);
    // The admin listener: a query, a malformed head.
    curl(&[&format!("http://{admin}/metrics?q=CANARYADMIN")]);
    raw_send(
        admin,
        b"GET /metrics?q=CANARYADMINBAD HTTP/1.1\r\nBad Header: CANARYADMINH\r\n\r\n",
    );
}

/// Spellings under which flowgate's info lines (the access log) must be there: proof that the
/// process did log while the canaries went by.
const LOGS_ACCESS: &[&str] = &[
    "",
    "info",
    "debug",
    "trace",
    "DEBUG",
    "TRACE",
    "Debug",
    "Trace",
    "3",
    "4",
    "5",
    "flowgate=trace",
];

fn check_log(fg: &Flowgate, what: &str, expect_access: bool, context_b64: &str) -> usize {
    // The last request was answered, so the process has written what it will about the rest.
    let log = fg.log();
    for needle in [CANARY, "canary", context_b64] {
        if let Some(line) = log.lines().find(|l| l.contains(needle)) {
            panic!("{what}: a value reached the log:\n{line}\n\nwhole log:\n{log}");
        }
    }
    if expect_access {
        assert!(
            log.contains("flowgate::access"),
            "{what}: no access log:\n{log}"
        );
    }
    log.lines().count()
}

fn start(upstream: &RawUpstream, rust_log: Option<&str>, yaml: &str) -> Flowgate {
    let mut o = Flowgate::options()
        .upstream(upstream.host_port())
        .server("header_timeout_seconds", 1)
        .server("idle_timeout_seconds", 1)
        .yaml("timeouts: {other: {upstream_read_seconds: 1}}")
        .yaml(yaml)
        .silent_log();
    if let Some(v) = rust_log {
        o = o.env("RUST_LOG", v);
    }
    o.start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_spelling_prints_a_value() {
    let up = upstream();
    let context_b64 = b64(r#"{"ims_email":"CANARYCTX@example.com","plan":"CANARYPLAN"}"#);
    let mut runs: Vec<(String, Option<&str>, String)> = SPELLINGS
        .iter()
        .map(|s| (format!("RUST_LOG={s:?}"), Some(*s), String::new()))
        .collect();
    for (i, level) in ["trace", "TRACE", "5", "debug,pingora=trace,h2=trace"]
        .into_iter()
        .enumerate()
    {
        let format = if i % 2 == 0 { "json" } else { "text" };
        let yaml = format!("log: {{level: \"{level}\", format: {format}}}");
        runs.push((format!("log.level {level:?} ({format})"), None, yaml));
    }
    // A few processes at a time: each run waits on two one-second timeouts.
    for batch in runs.chunks(6) {
        let mut running = Vec::new();
        for (what, rust_log, yaml) in batch.iter().cloned() {
            let fg = start(&up, rust_log, &yaml);
            let ctx = context_b64.clone();
            let expect_access = rust_log.is_none_or(|s| LOGS_ACCESS.contains(&s));
            running.push(tokio::task::spawn_blocking(move || {
                send_canaries(&fg, &ctx);
                let lines = check_log(&fg, &what, expect_access, &ctx);
                eprintln!("{what}: {lines} log lines, none with a value");
            }));
        }
        for run in running {
            run.await.unwrap();
        }
    }
}

#[tokio::test]
async fn verbose_levels_still_log_flowgates_own_lines() {
    // The cap is on other targets only: flowgate's debug lines (which carry no values) stay,
    // and so do Pingora's lifecycle lines.
    let up = upstream();
    let fg = start(&up, Some("TRACE"), "");
    let addr = fg.addr;
    tokio::task::spawn_blocking(move || {
        let mut silent = std::net::TcpStream::connect(addr).unwrap();
        raw::wait_closed(&mut silent, common::DEADLINE).unwrap();
    })
    .await
    .unwrap();
    fg.wait_for_log("DEBUG flowgate::front");
    let log = fg.log();
    assert!(log.contains("reason=\"idle\""), "{log}");
    assert!(log.contains("INFO pingora_core::server"), "{log}");
    assert!(
        !log.contains("DEBUG pingora") && !log.contains("TRACE pingora"),
        "{log}"
    );
}
