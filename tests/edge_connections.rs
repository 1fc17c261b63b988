//! Bounded client connections, through the real binary: a socket that sends nothing, an idle
//! keep-alive connection, a stalled second request, a slowloris head and silent or partial h2c
//! prefaces are each closed (idle after `server.idle_timeout_seconds`, heads after
//! `server.header_timeout_seconds` from their first byte), and with the process at its
//! open-file limit, silent sockets do not keep a normal client out.
//!
//! Timings are not asserted: each test waits, with a generous deadline, for the server to
//! close the connection, checks which bound closed it (`flowgate_connections_closed_total`),
//! and prints how long it took.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::flowgate::Flowgate;
use common::raw::wait_closed;
use common::upstream::Upstream;
use common::{DEADLINE, wait_until};

const IDLE: &str = r#"flowgate_connections_closed_total{reason="idle"}"#;
const HEADER: &str = r#"flowgate_connections_closed_total{reason="header_timeout"}"#;

/// flowgate with short bounds: idle 1 s, a head within 2 s of its first byte.
fn short_bounds(up: &Upstream, h2c: bool) -> Flowgate {
    Flowgate::options()
        .upstream(up.host_port())
        .server("idle_timeout_seconds", 1)
        .server("header_timeout_seconds", 2)
        .server("h2c", h2c)
        .start()
}

/// Reads one response with a `Content-Length` body off a kept-alive connection.
fn read_one_response(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return text;
            }
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a whole response: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

fn closed_within_deadline(s: &mut TcpStream, what: &str) -> Duration {
    let took =
        wait_closed(s, DEADLINE).unwrap_or_else(|| panic!("{what}: still open after {DEADLINE:?}"));
    eprintln!("{what}: closed after {took:?}");
    took
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let up = Upstream::start();
    for h2c in [true, false] {
        let fg = short_bounds(&up, h2c);
        let addr = fg.addr;
        blocking(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            closed_within_deadline(&mut s, &format!("silent socket, h2c {h2c}"));
        })
        .await;
        fg.assert_metrics(&[(IDLE, 1.0)]).await;
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let up = Upstream::start();
    let fg = short_bounds(&up, true);
    let addr = fg.addr;
    blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert!(read_one_response(&mut s).starts_with("HTTP/1.1 200"));
        // The connection is reused within the bound…
        s.write_all(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert!(read_one_response(&mut s).starts_with("HTTP/1.1 200"));
        // …and closed once idle past it.
        closed_within_deadline(&mut s, "idle keep-alive connection");
    })
    .await;
    fg.assert_metrics(&[(IDLE, 1.0), (HEADER, 0.0)]).await;
    assert_eq!(up.received().len(), 2);
}

#[tokio::test]
async fn a_stalled_second_request_is_closed_at_the_head_deadline() {
    let up = Upstream::start();
    let fg = short_bounds(&up, true);
    let addr = fg.addr;
    blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert!(read_one_response(&mut s).starts_with("HTTP/1.1 200"));
        s.write_all(b"GET /two HTTP/1.1\r\nHo").unwrap();
        closed_within_deadline(&mut s, "stalled second request");
    })
    .await;
    fg.assert_metrics(&[(HEADER, 1.0)]).await;
    assert_eq!(up.received().len(), 1);
}

#[tokio::test]
async fn a_slowloris_head_is_closed_at_the_head_deadline() {
    let up = Upstream::start();
    for h2c in [true, false] {
        let fg = short_bounds(&up, h2c);
        let addr = fg.addr;
        blocking(move || {
            let s = TcpStream::connect(addr).unwrap();
            // One byte every 300 ms: every single read comes well within the idle timeout, and
            // the whole head would take a minute.
            let head = format!(
                "GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
                "a".repeat(160)
            );
            let mut writer = s.try_clone().unwrap();
            let start = Instant::now();
            let trickle = std::thread::spawn(move || {
                for b in head.bytes() {
                    if writer.write_all(&[b]).is_err() {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
                true
            });
            let mut reader = s;
            closed_within_deadline(&mut reader, &format!("slowloris, h2c {h2c}"));
            assert!(!trickle.join().unwrap(), "the whole slow head was accepted");
            eprintln!("slowloris gave up after {:?}", start.elapsed());
        })
        .await;
        fg.assert_metrics(&[(HEADER, 1.0)]).await;
    }
    assert!(up.received().is_empty());
}

#[tokio::test]
async fn h2c_prefaces_that_go_silent_are_closed() {
    let up = Upstream::start();
    let fg = short_bounds(&up, true);
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // An empty SETTINGS frame.
    let settings = [0u8, 0, 0, 4, 0, 0, 0, 0, 0];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("partial h2c preface", preface[..10].to_vec()),
        ("the h1-looking half of the preface", preface[..18].to_vec()),
        ("h2c preface only", preface.to_vec()),
        (
            "h2c preface and SETTINGS",
            [&preface[..], &settings].concat(),
        ),
    ];
    let addr = fg.addr;
    blocking(move || {
        for (what, bytes) in cases {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&bytes).unwrap();
            closed_within_deadline(&mut s, what);
        }
    })
    .await;
    // The two partial prefaces ran into the head deadline; whole ones into h2's idle timeout.
    fg.assert_metrics(&[(HEADER, 2.0)]).await;
    // And a real h2c client still gets through.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "--http2-prior-knowledge",
        ])
        .arg(fg.url("/h2"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");
}

#[tokio::test]
async fn a_request_shorter_than_the_h2c_preface_is_answered() {
    // 18 bytes: Pingora's own h2c peek waits for 24 before deciding, forever.
    let up = Upstream::start();
    let fg = Flowgate::start(&up.host_port());
    let addr = fg.addr;
    let resp = blocking(move || common::raw::exchange(addr, b"GET / HTTP/1.0\r\n\r\n")).await;
    assert_eq!(resp.status, 200, "{:?}", String::from_utf8_lossy(&resp.raw));
}

/// Opens `n` connections that never send a byte.
fn silent_sockets(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect()
}

fn normal_request(addr: SocketAddr) -> u16 {
    common::raw::exchange(
        addr,
        b"GET /normal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .status
}

#[tokio::test]
async fn silent_sockets_at_the_open_file_limit_do_not_keep_a_normal_client_out() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .server("idle_timeout_seconds", 4)
        .nofile(1100)
        .start();
    let (addr, admin) = (fg.addr, fg.admin);
    let open = "flowgate_connections_open";

    // 1,000 silent sockets held open: a normal client is served beside them.
    let held = blocking(move || silent_sockets(addr, 1000)).await;
    let fg_ref = &fg;
    common::wait_until_async("1,000 connections open in the proxy", || async move {
        fg_ref.metric(open).await >= 1000.0
    })
    .await;
    assert_eq!(blocking(move || normal_request(addr)).await, 200);

    // 1,000 more: the process runs out of file descriptors (accept fails with EMFILE)…
    let more = blocking(move || silent_sockets(addr, 1000)).await;
    // …and still serves a normal client once the idle timeout has closed silent ones.
    let start = Instant::now();
    let status = blocking(move || normal_request(addr)).await;
    eprintln!(
        "normal client at the fd limit answered after {:?}",
        start.elapsed()
    );
    assert_eq!(status, 200);
    drop((held, more));
    wait_until("the admin listener to answer again", || {
        common::ports::accepts(admin)
    });
    assert!(fg.metric(IDLE).await >= 1000.0);
    assert!(
        fg.log().contains("Too many open files"),
        "the limit was never reached:\n{}",
        fg.log()
    );
}
