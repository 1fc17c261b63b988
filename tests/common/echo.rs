//! An upstream on 127.0.0.1:0 that reads each request's whole body (by `Content-Length` or
//! chunked) and answers with it, recording what it got and whether the body was complete — so
//! a test sees what the proxy forwarded of a body, not only its head. One request per
//! connection (`Connection: close`).
//!
//! - `/early…`: the response head and a first chunk (`early\n`) are sent before the body is
//!   read; the body is recorded when it ends (or the connection does).
//! - an `Upgrade` request: `101`, then every byte received is echoed until the client closes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::DEADLINE;
use super::raw::dechunk;

/// One request as the upstream got it.
#[derive(Debug, Clone)]
pub struct Got {
    /// The request head, lower-cased.
    pub head: String,
    /// The body bytes received (de-chunked).
    pub body: Vec<u8>,
    /// Whether the body ended as its framing says (last chunk, or the full length).
    pub complete: bool,
}

#[derive(Default)]
struct Shared {
    got: Mutex<Vec<Got>>,
    open: AtomicUsize,
    stop: AtomicBool,
}

/// The running upstream; stops on drop.
pub struct EchoUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoUpstream {
    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start() -> EchoUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            while !s.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        s.open.fetch_add(1, Ordering::SeqCst);
                        let s = s.clone();
                        std::thread::spawn(move || {
                            serve(conn, &s);
                            s.open.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        EchoUpstream {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// `host:port` for the proxy's configuration.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Every request recorded so far.
    pub fn got(&self) -> Vec<Got> {
        self.shared.got.lock().unwrap().clone()
    }

    /// Connections still being served.
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn serve(mut s: TcpStream, shared: &Shared) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = find(&data, b"\r\n\r\n") {
            break end + 4;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let mut rest = data[head_end..].to_vec();
    if head.lines().any(|l| l.starts_with("upgrade:")) {
        tunnel(s, head, rest, shared);
        return;
    }
    let early = head.starts_with("post /early") || head.starts_with("put /early");
    if early {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nearly\n\r\n",
        );
    }
    let chunked = head.lines().any(|l| {
        l.strip_prefix("transfer-encoding:")
            .is_some_and(|v| v.contains("chunked"))
    });
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let (body, complete) = loop {
        let (body, complete) = if chunked {
            dechunk(&rest)
        } else {
            (
                rest[..rest.len().min(length)].to_vec(),
                rest.len() >= length,
            )
        };
        if complete {
            break (body, true);
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break (body, false),
            Ok(n) => rest.extend_from_slice(&buf[..n]),
        }
    };
    shared.got.lock().unwrap().push(Got {
        head,
        body: body.clone(),
        complete,
    });
    if !complete {
        return;
    }
    if early {
        let _ = s.write_all(b"0\r\n\r\n");
        return;
    }
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    let _ = s.write_all(&answer);
}

fn tunnel(mut s: TcpStream, head: String, first: Vec<u8>, shared: &Shared) {
    let _ = s.write_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    let mut echoed = first.clone();
    if !first.is_empty() && s.write_all(&first).is_err() {
        return;
    }
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                echoed.extend_from_slice(&buf[..n]);
                if s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    shared.got.lock().unwrap().push(Got {
        head,
        body: echoed,
        complete: true,
    });
}
