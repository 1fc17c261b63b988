//! The connection layer with the real Socket.IO 4.8 stack (`tests/node`) through the real
//! binary, with short configured timeouts: WebSocket tunnels idle within and past their
//! timeout, Socket.IO pinging less often than the read timeouts, a long-poll past the upstream
//! timeout (504), SSE, big uploads with `Expect: 100-continue` and downloads, gzip untouched,
//! SIGTERM with open WebSockets, PROXY protocol v1 and v2, a long target.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::DEADLINE;
use common::flowgate::Flowgate;
use common::node::{self, ChatBackend, NodeClient};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn ws_url(fg: &Flowgate, path: &str) -> String {
    format!("ws://{}{path}", fg.addr)
}

fn http_url(fg: &Flowgate) -> String {
    format!("http://{}", fg.addr)
}

/// A raw WebSocket that idles `idle_ms`, then expects its echo.
fn raw_ws(fg: &Flowgate, path: &str, idle_ms: u64, extra: &[&str]) -> Value {
    let url = ws_url(fg, path);
    let idle = idle_ms.to_string();
    let mut args = vec![
        "--url",
        url.as_str(),
        "--idle-ms",
        idle.as_str(),
        "--message",
        "hi",
    ];
    args.extend_from_slice(extra);
    node::run("raw-ws-client.js", &args)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test]
async fn websocket_tunnels_live_by_their_own_idle_timeout() {
    let backend = ChatBackend::start("A", &[]);
    // Reads of ordinary requests time out after 1 s; a tunnel after 3 s of silence either way.
    let fg = Flowgate::options()
        .upstream(backend.host_port())
        .yaml(
            "timeouts:\n  websocket_idle_seconds: 3\n  other: {client_read_seconds: 1, upstream_read_seconds: 1}\n  \
             session: {client_read_seconds: 1, upstream_read_seconds: 1}\n",
        )
        .start();
    let fg = blocking(move || {
        // Idle longer than the ordinary read timeouts, within the tunnel's: kept.
        for path in [
            "/raw-ws",
            "/public_FlowWidget/raw-ws?siteid=s&jsSessionId=j",
        ] {
            let r = raw_ws(&fg, path, 2000, &[]);
            assert_eq!(r["ok"], true, "{path}: {r}");
            assert_eq!(r["echoed"], true, "{path}: {r}");
        }
        // Idle past the tunnel's: closed by the edge.
        let r = raw_ws(&fg, "/raw-ws", 6000, &[]);
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(r["close"]["during"], "idle", "{r}");
        assert_eq!(r["close"]["code"], 1006, "{r}");
        eprintln!(
            "idle tunnel closed after {} ms of silence",
            r["close"]["since_last_activity_ms"]
        );
        fg
    })
    .await;
    // An idle tunnel closing is not an upstream failure.
    let text = fg.metrics().await;
    assert!(!text.contains(r#"kind="aborted_midstream"} 1"#), "{text}");
    assert!(!fg.log().contains("ERROR"), "{}", fg.log());
}

#[tokio::test]
async fn socket_io_with_a_ping_interval_longer_than_the_read_timeouts_stays_connected() {
    // Socket.IO pings every 3 s; flowgate's ordinary read timeouts are 1 s and 2 s.
    let backend = ChatBackend::start(
        "A",
        &["--ping-interval-ms", "3000", "--ping-timeout-ms", "3000"],
    );
    let fg = Flowgate::options()
        .upstream(backend.host_port())
        .yaml(
            "timeouts:\n  websocket_idle_seconds: 5\n  other: {client_read_seconds: 1, upstream_read_seconds: 4}\n",
        )
        .start();
    let url = http_url(&fg);
    let r = blocking(move || {
        node::run(
            "chat-client.js",
            &[
                "--url",
                &url,
                "--transports",
                "polling,websocket",
                "--hold-ms",
                "7000",
            ],
        )
    })
    .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["transport"], "websocket", "{r}");
    assert_eq!(r["same_sid"], true, "{r}");
}

#[tokio::test]
async fn a_long_poll_past_the_upstream_timeout_is_a_504() {
    let backend = ChatBackend::start("A", &[]);
    let fg = Flowgate::options()
        .upstream(backend.host_port())
        .yaml("timeouts:\n  session: {upstream_read_seconds: 1}\n  other: {upstream_read_seconds: 4}\n")
        .start();
    let session = "/public_FlowWidget/chat/longpoll?siteid=s&jsSessionId=j";
    // Held 2 s: past the session class's 1 s, within the other class's 4 s.
    let late = reqwest::get(fg.url(&format!("{session}&hold_ms=2000")))
        .await
        .unwrap();
    assert_eq!(late.status(), 504);
    assert_eq!(late.headers()["content-type"], "text/plain; charset=utf-8");
    let body = late.text().await.unwrap();
    assert_eq!(body, "flowgate: the chat backend did not answer in time\n");
    assert!(!body.contains("unavailable"));
    let fine = reqwest::get(fg.url("/longpoll?hold_ms=2000"))
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
    let quick = reqwest::get(fg.url(&format!("{session}&hold_ms=200")))
        .await
        .unwrap();
    assert_eq!(quick.status(), 200);
    fg.assert_metrics(&[
        (r#"flowgate_upstream_errors_total{kind="timeout"}"#, 1.0),
        (r#"flowgate_upstream_errors_total{kind="proxy"}"#, 0.0),
    ])
    .await;
    let log = fg.log();
    let line = log
        .lines()
        .find(|l| l.contains("did not answer in time"))
        .unwrap_or_else(|| panic!("no timeout line:\n{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        !line.contains("jsSessionId") && !line.contains("hold_ms"),
        "{line}"
    );
}

#[tokio::test]
async fn sse_streams_past_the_read_timeout_while_events_flow() {
    let backend = ChatBackend::start("A", &[]);
    let fg = Flowgate::options()
        .upstream(backend.host_port())
        .yaml("timeouts:\n  session: {upstream_read_seconds: 1}\n")
        .start();
    // Five events 600 ms apart: 2.4 s in all, never a second of silence.
    let url = fg.url("/public_FlowWidget/chat/sse?siteid=s&jsSessionId=j&events=5&interval_ms=600");
    let started = std::time::Instant::now();
    let mut resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut first_at = None;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        first_at.get_or_insert(started.elapsed());
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(text.matches("event: tick").count(), 5, "{text}");
    assert!(text.contains("event: end"), "{text}");
    eprintln!(
        "first event after {first_at:?}, stream closed after {:?}",
        started.elapsed()
    );
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn big_uploads_and_downloads_pass_untouched_and_gzip_is_not_recompressed() {
    let backend = ChatBackend::start("A", &[]);
    let fg = Flowgate::start(&backend.host_port());
    let dir = common::temp::TempDir::new("edge-upload");
    let file = dir.path().join("upload.bin");
    let upload = pattern(10 * 1024 * 1024);
    std::fs::write(&file, &upload).unwrap();
    let base = http_url(&fg);
    let direct = format!("http://{}", backend.host_port());
    let (up, down, gz_proxy, gz_direct) = blocking(move || {
        let up = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "60",
                "-H",
                "Expect: 100-continue",
                "--data-binary",
            ])
            .arg(format!("@{}", file.display()))
            .arg(format!(
                "{base}/public_FlowWidget/chat/upload?siteid=s&jsSessionId=j"
            ))
            .output()
            .unwrap();
        let down = Command::new("curl")
            .args(["-s", "--max-time", "60"])
            .arg(format!("{base}/download?bytes={}", 50 * 1024 * 1024))
            .output()
            .unwrap();
        let gz = |url: String| {
            Command::new("curl")
                .args([
                    "-s",
                    "-D",
                    "-",
                    "--max-time",
                    "20",
                    "-H",
                    "Accept-Encoding: gzip",
                ])
                .arg(url)
                .output()
                .unwrap()
                .stdout
        };
        (
            up,
            down,
            gz(format!("{base}/gzip?bytes=200000")),
            gz(format!("{direct}/gzip?bytes=200000")),
        )
    })
    .await;
    drop(dir);
    let up: Value = serde_json::from_slice(&up.stdout).unwrap_or_else(|e| panic!("{e}: {up:?}"));
    assert_eq!(up["bytes"], upload.len(), "{up}");
    assert_eq!(up["sha256"], hex(&Sha256::digest(&upload)), "{up}");
    assert_eq!(up["expect"], "100-continue", "{up}");
    assert!(down.status.success());
    assert_eq!(down.stdout.len(), 50 * 1024 * 1024);
    assert!(
        down.stdout == pattern(50 * 1024 * 1024),
        "the download differs"
    );
    // The compressed body reaches the client byte for byte as the backend sent it.
    let body =
        |raw: &[u8]| raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..].to_vec();
    let head = String::from_utf8_lossy(&gz_proxy).to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert_eq!(body(&gz_proxy), body(&gz_direct));
}

#[tokio::test]
async fn sigterm_drains_http_at_the_grace_period_and_websockets_at_their_deadline() {
    let backend = ChatBackend::start("A", &[]);
    let mut fg = Flowgate::options()
        .upstream(backend.host_port())
        .grace_period(1)
        .server("websocket_drain_seconds", 4)
        .start();
    let (url, base) = (ws_url(&fg, "/raw-ws"), http_url(&fg));
    // Open before the signal: a raw WebSocket that talks again after the HTTP grace period, one
    // that stays silent past the drain deadline, a Socket.IO session on a WebSocket, and an HTTP
    // long-poll that would outlive the grace period.
    let talks_later = NodeClient::spawn(
        "raw-ws-client.js",
        &[
            "--url",
            &url,
            "--idle-ms",
            "2500",
            "--message",
            "still here",
        ],
    );
    let silent = NodeClient::spawn(
        "raw-ws-client.js",
        &[
            "--url",
            &url,
            "--idle-ms",
            "15000",
            "--message",
            "too late",
            "--timeout-ms",
            "30000",
        ],
    );
    let socket_io = NodeClient::spawn(
        "chat-client.js",
        &[
            "--url",
            &base,
            "--transports",
            "websocket",
            "--hold-ms",
            "2500",
        ],
    );
    let (talks_later, silent, socket_io) = blocking(move || {
        talks_later.wait_event("idle", DEADLINE);
        silent.wait_event("idle", DEADLINE);
        socket_io.wait_event("holding", DEADLINE);
        (talks_later, silent, socket_io)
    })
    .await;
    let poll_url = fg.url("/longpoll?hold_ms=5000");
    let long_poll = tokio::spawn(async move { reqwest::get(poll_url).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    fg.signal("TERM");
    fg.wait_for_log("SIGTERM");
    let addr = fg.addr;
    common::wait_until("the listener to close", || {
        TcpStream::connect(addr).is_err()
    });

    let (a, b, c, exit) = blocking(move || {
        let a = talks_later.result(DEADLINE);
        let c = socket_io.result(DEADLINE);
        let b = silent.result(DEADLINE);
        let exit = fg.wait_exit();
        (a, b, c, (exit, fg))
    })
    .await;
    let (status, fg) = exit;
    // The tunnels outlived the HTTP grace period…
    assert_eq!(a["ok"], true, "{a}");
    assert_eq!(a["echoed"], true, "{a}");
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(c["same_sid"], true, "{c}");
    // …the silent one was closed at the drain deadline, not by its own idle end…
    assert_eq!(b["ok"], false, "{b}");
    assert_eq!(b["close"]["during"], "idle", "{b}");
    eprintln!(
        "silent tunnel closed {} ms after opening",
        b["close"]["since_open_ms"]
    );
    // …the long-poll was cut at the grace period (no answer), and the process exited cleanly
    // once everything had closed.
    assert!(
        long_poll.await.unwrap().is_err(),
        "the long-poll got an answer"
    );
    assert!(status.success(), "{status:?}\n{}", fg.log());
    let log = fg.log();
    assert!(log.contains("every connection closed; exiting"), "{log}");
}

#[tokio::test]
async fn proxy_protocol_v1_and_v2_name_the_client() {
    let backend = ChatBackend::start("A", &[]);
    let fg = Flowgate::options()
        .upstream(backend.host_port())
        .yaml("listen_proxy_protocol: true")
        .start();
    let base = http_url(&fg);
    let url = ws_url(&fg, "/raw-ws");
    // (A connection closed before its first byte, as the harness's readiness probe, is not.)
    let refused = r#"flowgate_connections_closed_total{reason="proxy_protocol"}"#;
    let before = fg.metric(refused).await;
    let fg = blocking(move || {
        for (version, source) in [("v1", "203.0.113.7:40000"), ("v2", "198.51.100.9:52000")] {
            let r = node::run(
                "chat-client.js",
                &[
                    "--url",
                    &base,
                    "--proxy-protocol",
                    version,
                    "--proxy-source",
                    source,
                ],
            );
            assert_eq!(r["ok"], true, "{version}: {r}");
            assert_eq!(r["upgraded"], true, "{version}: {r}");
        }
        let r = raw_ws(
            &fg,
            "/raw-ws",
            0,
            &[
                "--proxy-protocol",
                "v2",
                "--proxy-source",
                "[2001:db8::7]:40001",
            ],
        );
        assert_eq!(r["echoed"], true, "{r}");
        let r = node::run(
            "raw-ws-client.js",
            &[
                "--url",
                &url,
                "--proxy-protocol",
                "v1",
                "--proxy-source",
                "192.0.2.44:41000",
            ],
        );
        assert_eq!(r["echoed"], true, "{r}");
        // Without a header the connection is closed unanswered, as nginx does.
        let resp = common::raw::exchange(fg.addr, b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            resp.raw.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&resp.raw)
        );
        let resp = common::raw::exchange(
            fg.addr,
            b"PROXY NOPE\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert!(
            resp.raw.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&resp.raw)
        );
        fg
    })
    .await;
    let log = fg.log();
    for client in [
        "client=203.0.113.7:40000",
        "client=198.51.100.9:52000",
        "client=[2001:db8::7]:40001",
        "client=192.0.2.44:41000",
    ] {
        assert!(log.contains(client), "{client} missing:\n{log}");
    }
    assert!(!log.contains("client=127.0.0.1"), "{log}");
    fg.assert_metrics(&[(refused, before + 2.0)]).await;
}

#[tokio::test]
async fn a_long_target_to_the_chat_backend_is_a_414() {
    let backend = ChatBackend::start("A", &[]);
    let fg = Flowgate::start(&backend.host_port());
    let addr = fg.addr;
    // Raw: HTTP client libraries refuse to send such targets at all.
    let get = move |len: usize| {
        let prefix = "/echo?pad=";
        let target = format!("{prefix}{}", "p".repeat(len - prefix.len()));
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        common::raw::exchange(addr, request.as_bytes())
    };
    let (ok, long, longer) = blocking(move || (get(65_534), get(65_535), get(70_000))).await;
    assert_eq!(ok.status, 200);
    let echoed: Value = serde_json::from_slice(&ok.body).unwrap();
    assert_eq!(echoed["node"], "A");
    assert_eq!(long.status, 414);
    assert_eq!(longer.status, 414);
}

#[tokio::test]
async fn a_zero_downtime_upgrade_keeps_open_websockets_on_the_old_process() {
    let backend = ChatBackend::start("A", &[]);
    let mut old = Flowgate::options()
        .upstream(backend.host_port())
        .grace_period(1)
        .server("websocket_drain_seconds", 4)
        .start();
    // Silent through the hand-over (Pingora's old process stops accepting 5 s after SIGQUIT),
    // then talking after the old process's HTTP grace period.
    let url = ws_url(&old, "/raw-ws");
    let tunnel = NodeClient::spawn(
        "raw-ws-client.js",
        &[
            "--url",
            &url,
            "--idle-ms",
            "7000",
            "--message",
            "across the upgrade",
        ],
    );
    let tunnel = blocking(move || {
        tunnel.wait_event("idle", DEADLINE);
        tunnel
    })
    .await;
    let new = old.spawn_upgrade();
    let sock = old.dir().join("upgrade.sock");
    common::wait_until_async("the upgrade socket", || async { sock.exists() }).await;
    old.signal("QUIT");
    new.wait_for_log("flowgate ready");
    let (r, status, old) = blocking(move || {
        let r = tunnel.result(DEADLINE);
        let status = old.wait_exit();
        (r, status, old)
    })
    .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["echoed"], true, "{r}");
    assert!(status.success(), "{status:?}\n{}", old.log());
    // New connections reach the new process.
    let r =
        blocking(move || node::run("raw-ws-client.js", &["--url", &url, "--message", "new"])).await;
    assert_eq!(r["echoed"], true, "{r}\n{}", new.log());
}
