//! What an idle keep-alive connection costs, through the real binary: the plaintext listener's
//! accepted sockets carry no 64 KiB read buffer (Pingora's default), so hundreds of idle
//! connections grow the process by much less than that each (`benches/idle.sh` measures the
//! same at 10,000 connections, against nginx).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::flowgate::Flowgate;
use common::upstream::Upstream;
use common::{DEADLINE, wait_until_async};

/// Connections opened before the first measurement, so the runtime's own first allocations
/// (worker arenas, the upstream pool) are not counted.
const WARM_UP: usize = 100;
/// Connections measured.
const MEASURED: usize = 400;
/// Pingora's default read buffer per accepted socket, which alone would exceed this bound.
const BOUND: u64 = 64 * 1024;

/// The process's resident memory in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// `n` connections, each answered one request and then left open and silent.
fn idle_keepalive(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            s.write_all(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // The upstream's body ends with this line; the response is then complete.
            while !got.ends_with(b"upstream says hi\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "closed before a whole response: {got:?}");
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
            s
        })
        .collect()
}

async fn open_idle(fg: &Flowgate, n: usize, total: usize) -> Vec<TcpStream> {
    let addr = fg.addr;
    let held = tokio::task::spawn_blocking(move || idle_keepalive(addr, n))
        .await
        .unwrap();
    wait_until_async("the connections to be open in the proxy", || async move {
        fg.metric("flowgate_connections_open").await >= total as f64
    })
    .await;
    held
}

#[tokio::test]
async fn an_idle_keepalive_connection_holds_no_socket_read_buffer() {
    let up = Upstream::start();
    let fg = Flowgate::options()
        .upstream(up.host_port())
        .server("threads", 1)
        .server("idle_timeout_seconds", 600)
        .silent_log()
        .start();
    let warm = open_idle(&fg, WARM_UP, WARM_UP).await;
    let before = rss_bytes(fg.pid());
    let measured = open_idle(&fg, MEASURED, WARM_UP + MEASURED).await;
    let after = rss_bytes(fg.pid());
    let per = after.saturating_sub(before) / MEASURED as u64;
    eprintln!("{MEASURED} idle keep-alive connections: {per} bytes each");
    assert!(
        per < BOUND,
        "{per} bytes per idle connection: a 64 KiB read buffer each?"
    );
    drop((warm, measured));
}
