//! An upstream that dies after its response started: the client's transfer is aborted (HTTP/1:
//! closed without the final chunk or the announced length; HTTP/2: `RST_STREAM`), never
//! completed with text of flowgate's own; the same inside a WebSocket tunnel. Counted as
//! `flowgate_upstream_errors_total{kind="aborted_midstream"}`.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::fd::AsRawFd as _;
use std::process::Command;
use std::time::Duration;

use common::flowgate::Flowgate;
use common::node::ChatBackend;
use common::raw::{self, RawUpstream, Step};

const ABORTED: &str = r#"flowgate_upstream_errors_total{kind="aborted_midstream"}"#;

/// `curl` with these flags: (exit code, body).
fn curl(flags: &[&str], url: &str) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .args(flags)
        .arg(url)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Upstream answers that start a 200 and stop: chunked without the last chunk, and a body
/// shorter than its `Content-Length`.
fn dying_upstream() -> RawUpstream {
    RawUpstream::start(|req| {
        let head = String::from_utf8_lossy(req);
        let answer: &[u8] = if head.starts_with("GET /length") {
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"balance\": 1000"
        } else {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"balance\": 1000\r\n"
        };
        vec![
            Step::Send(answer.to_vec()),
            Step::Wait(Duration::from_millis(100)),
        ]
    })
}

#[tokio::test]
async fn an_upstream_dying_mid_body_aborts_the_client_transfer() {
    let up = dying_upstream();
    let fg = Flowgate::start(&up.host_port());
    let mut aborted = 0.0;
    for path in ["/chunked", "/length"] {
        // A raw HTTP/1.1 client: the status line and the partial body, then the close — no
        // terminating chunk, no text of flowgate's.
        let addr = fg.addr;
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let resp = tokio::task::spawn_blocking(move || raw::exchange(addr, request.as_bytes()))
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{path}");
        assert!(
            !resp.complete,
            "{path}: the transfer completed: {:?}",
            String::from_utf8_lossy(&resp.raw)
        );
        assert_eq!(resp.body, br#"{"balance": 1000"#, "{path}");
        // curl over HTTP/1.1 (exit 18: transfer closed with outstanding data) and over h2c
        // (exit 92: stream not closed cleanly, i.e. RST_STREAM).
        for (flags, exit) in [(&[][..], 18), (&["--http2-prior-knowledge"][..], 92)] {
            let (code, body) = curl(flags, &fg.url(path));
            assert_eq!(code, exit, "{path} {flags:?}: body {body:?}");
            assert!(!body.contains("flowgate"), "{path} {flags:?}: {body:?}");
        }
        aborted += 3.0;
        fg.assert_metrics(&[(ABORTED, aborted)]).await;
    }
    // Nothing was answered with a status of flowgate's.
    assert!(!fg.log().contains("status=502"), "{}", fg.log());
}

#[tokio::test]
async fn the_node_backend_dying_mid_response_aborts_h1_and_h2_clients() {
    let backend = ChatBackend::start("A", &[]);
    let fg = Flowgate::start(&backend.host_port());
    for path in [
        "/chunked-then-die",
        "/public_FlowWidget/chat/chunked-then-die?siteid=s&jsSessionId=j",
    ] {
        for (flags, exit) in [(&[][..], 18), (&["--http2-prior-knowledge"][..], 92)] {
            let (code, body) = curl(flags, &fg.url(path));
            assert_eq!(code, exit, "{path} {flags:?}: body {body:?}");
            assert_eq!(body, "first chunk\n", "{path} {flags:?}");
        }
    }
    fg.assert_metrics(&[(ABORTED, 4.0)]).await;
}

/// Resets the connection (RST, not FIN) when the socket is closed.
fn reset_on_close(s: &std::net::TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on a socket this test owns, with a pointer to a live local of the
    // size passed.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

#[tokio::test]
async fn an_upstream_failing_inside_a_websocket_tunnel_aborts_it_without_writing_into_it() {
    // The upstream accepts the upgrade, sends one WebSocket text frame, then resets the
    // connection: flowgate must close the tunnel, not write an HTTP answer into it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = listener.local_addr().unwrap();
    let upstream = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = raw::read_head(&mut s);
        use std::io::Write as _;
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi",
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        reset_on_close(&s);
    });
    let fg = Flowgate::start(&up_addr.to_string());
    let addr = fg.addr;
    let resp = tokio::task::spawn_blocking(move || {
        raw::exchange(
            addr,
            b"GET /raw-ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
    })
    .await
    .unwrap();
    upstream.join().unwrap();
    assert_eq!(resp.status, 101);
    assert_eq!(
        resp.body,
        b"\x81\x02hi",
        "bytes after the 101: {:?}",
        String::from_utf8_lossy(&resp.body)
    );
    fg.assert_metrics(&[(ABORTED, 1.0)]).await;
}
