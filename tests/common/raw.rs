//! Raw sockets on both sides of the proxy, for what an HTTP library will not send or answer:
//! header names with any token byte, heads sent a byte at a time, upstream responses that stop
//! mid-body or are not valid HTTP at all.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::DEADLINE;

/// A response as read off the socket.
#[derive(Debug, Clone, Default)]
pub struct RawResponse {
    /// The status code (0 when no status line came).
    pub status: u16,
    /// The status line's version (`HTTP/1.1`).
    pub version: String,
    /// Every header line, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked when it was chunked.
    pub body: Vec<u8>,
    /// Whether the body ended as its framing says (last chunk, full length, or the close of a
    /// close-delimited body).
    pub complete: bool,
    /// Everything received, as received.
    pub raw: Vec<u8>,
}

impl RawResponse {
    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses everything a connection received until it closed.
    pub fn parse(raw: Vec<u8>) -> RawResponse {
        let mut r = RawResponse {
            raw: raw.clone(),
            ..Default::default()
        };
        let Some(end) = find(&raw, b"\r\n\r\n") else {
            return r;
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        r.version = parts.next().unwrap_or_default().to_owned();
        r.status = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        for line in lines {
            if let Some((n, v)) = line.split_once(':') {
                r.headers.push((n.to_owned(), v.trim().to_owned()));
            }
        }
        let rest = &raw[end + 4..];
        let chunked = r
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if chunked {
            (r.body, r.complete) = dechunk(rest);
        } else if let Some(len) = r.header("content-length").and_then(|v| v.parse().ok()) {
            r.complete = rest.len() >= len;
            r.body = rest[..rest.len().min(len)].to_vec();
        } else {
            r.body = rest.to_vec();
            r.complete = true;
        }
        r
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// De-chunks `data`; `true` when the last chunk was there.
pub fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = find(data, b"\r\n") else {
            return (body, false);
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return (body, false);
        };
        data = &data[eol + 2..];
        if size == 0 {
            return (body, find(data, b"\r\n").is_some());
        }
        if data.len() < size + 2 {
            body.extend_from_slice(&data[..data.len().min(size)]);
            return (body, false);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Sends `request` on a new connection and reads until the server closes it.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(request).unwrap();
    RawResponse::parse(read_to_close(&mut s))
}

/// [`exchange`] off the async runtime's threads.
pub async fn exchange_async(addr: SocketAddr, request: Vec<u8>) -> RawResponse {
    tokio::task::spawn_blocking(move || exchange(addr, &request))
        .await
        .unwrap()
}

/// Reads until the peer closes (or a read fails, or [`DEADLINE`] passes).
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while start.elapsed() < DEADLINE {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    out
}

/// Waits until the server closes `s` (EOF or reset), reading and discarding what it sends;
/// returns how long that took, or `None` if it was still open after `within`.
pub fn wait_closed(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(start.elapsed())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
}

/// One step of a scripted upstream answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Pause.
    Wait(Duration),
}

type Script = dyn Fn(&[u8]) -> Vec<Step> + Send + Sync;

/// An upstream on 127.0.0.1:0 that reads each request head (and a `Content-Length` body),
/// records it, plays the script the handler returns for it, and closes the connection.
pub struct RawUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RawUpstream {
    /// Starts serving with `script`.
    pub fn start(script: impl Fn(&[u8]) -> Vec<Step> + Send + Sync + 'static) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let (rec, halt) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (rec, script) = (rec.clone(), script.clone());
                        std::thread::spawn(move || serve(s, &rec, &*script));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        RawUpstream {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// `host:port` for the proxy's configuration.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far, raw.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }
}

fn serve(mut s: TcpStream, received: &Mutex<Vec<Vec<u8>>>, script: &Script) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut req = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = find(&req, b"\r\n\r\n") {
            break end + 4;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&req[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while req.len() < head_end + length {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    received.lock().unwrap().push(req.clone());
    for step in script(&req) {
        match step {
            Step::Send(bytes) => {
                if s.write_all(&bytes).is_err() {
                    return;
                }
            }
            Step::Wait(d) => std::thread::sleep(d),
        }
    }
    let _ = s.flush();
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head (up to its empty line) off `s`.
pub fn read_head(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while find(&head, b"\r\n\r\n").is_none() {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// A chunked `POST` of `chunks` to `path`, the last chunk included, asking for the connection
/// to close after it.
pub fn chunked_post(path: &str, chunks: &[&[u8]]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for c in chunks {
        req.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        req.extend_from_slice(c);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}
