//! Reading one request head before Pingora does, under the bounds Pingora leaves open: the
//! first byte within the idle timeout, the whole head within an absolute deadline from that
//! byte, the request target within its limit, and an h2c preface recognised only once all of
//! its 24 bytes are in.
//!
//! The bytes read are handed back to the caller, which puts them in front of the stream again
//! for Pingora's own parser: this module decides when to stop reading, never what the request
//! means.

use std::time::Duration;

use bytes::BytesMut;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// The HTTP/2 connection preface a prior-knowledge (h2c) client starts with.
pub(super) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Pingora refuses heads above this itself (`MAX_HEADER_SIZE`); reading stops here and its
/// parser answers.
const MAX_HEAD: usize = 1_048_575;
/// Read size of one socket read.
const READ_CHUNK: usize = 4096;
/// The shortest tail a request line can end with after its target: ` HTTP/1.1`.
const VERSION_TAIL: usize = b" HTTP/1.1".len();
/// How long a connection that has not sent its first request yet is still waited for after a
/// shutdown begins. Such a connection was accepted just before the listener closed (or was handed
/// to the new process): its client is sending a request it expects an answer to, unlike an idle
/// keep-alive connection, whose client knows to retry on a new one.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// The bounds one head is read under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    /// Longest wait for the first byte.
    pub(crate) idle: Duration,
    /// Longest time from the first byte to the end of the head.
    pub(crate) head: Duration,
    /// Longest request target.
    pub(crate) max_target: usize,
}

/// Why reading a head stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadEnd {
    /// A complete head (or more than Pingora accepts, which it refuses itself) is buffered.
    Ready,
    /// The complete h2c preface is buffered.
    H2Preface,
    /// Nothing arrived within the idle timeout.
    Idle,
    /// The client closed (or the socket failed) before a complete head; nothing to answer.
    Closed,
    /// The process is shutting down and no request had started on this connection.
    Shutdown,
    /// The head did not complete before its deadline.
    Deadline,
    /// The request target is longer than allowed.
    TargetTooLong,
}

/// What the bytes read so far already decide; the search for the head's end starts at
/// `scanned` (what earlier calls already searched, less the end of a line that may continue).
fn verdict(buf: &[u8], scanned: usize, h2c: bool, max_target: usize) -> Option<HeadEnd> {
    if h2c {
        let n = buf.len().min(H2_PREFACE.len());
        if H2_PREFACE[..n] == buf[..n] {
            // "PRI * HTTP/2.0\r\n\r\n" alone already looks like a complete h1 head: wait for all
            // 24 bytes before deciding.
            return (n == H2_PREFACE.len()).then_some(HeadEnd::H2Preface);
        }
    }
    if target_too_long(buf, max_target) {
        return Some(HeadEnd::TargetTooLong);
    }
    let from = scanned.saturating_sub(2);
    if head_complete(&buf[from..]) || buf.len() > MAX_HEAD {
        return Some(HeadEnd::Ready);
    }
    None
}

/// Whether `buf` holds a complete head: an empty line, CRLF or bare LF (httparse accepts both).
pub(super) fn head_complete(buf: &[u8]) -> bool {
    memchr::memmem::find(buf, b"\n\r\n").is_some() || memchr::memmem::find(buf, b"\n\n").is_some()
}

/// Whether the request target (between the first and the last space of the request line) is
/// longer than `max`, as far as the bytes so far can tell. Before the line's end is in, the
/// target is at least what follows the first space minus the shortest version tail.
pub(super) fn target_too_long(buf: &[u8], max: usize) -> bool {
    // Leading empty lines are allowed before a request line (RFC 9112 §2.2).
    let start = buf
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(buf.len());
    let buf = &buf[start..];
    let Some(first_space) = memchr::memchr(b' ', buf) else {
        return false;
    };
    let after_method = &buf[first_space + 1..];
    match memchr::memchr(b'\n', after_method) {
        Some(end) => {
            let line = after_method[..end]
                .strip_suffix(b"\r")
                .unwrap_or(&after_method[..end]);
            let target_len = memchr::memrchr(b' ', line).unwrap_or(line.len());
            target_len > max
        }
        None => after_method.len().saturating_sub(VERSION_TAIL) > max,
    }
}

/// Reads into `buf` until a head is complete or a bound ends it. `h2c` also recognises the h2
/// preface (first request of a plaintext connection only). While waiting for the first byte a
/// shutdown ends the wait of a kept-alive connection (it has nothing to drain); a connection's
/// `first` request gets [`FIRST_REQUEST_GRACE`] more.
pub(super) async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    limits: &HeadLimits,
    (first, h2c): (bool, bool),
    shutdown: &ShutdownWatch,
) -> HeadEnd {
    let mut shutdown = shutdown.clone();
    let mut deadline: Option<Instant> = None;
    // A head trickling in is searched once, not once per read.
    let mut scanned = 0;
    loop {
        if !buf.is_empty()
            && let Some(end) = verdict(buf, scanned, h2c, limits.max_target)
        {
            return end;
        }
        scanned = buf.len();
        buf.reserve(READ_CHUNK);
        let read = match deadline {
            None => {
                let waited = tokio::select! {
                    // A request already on its way is read rather than dropped at the signal.
                    biased;
                    r = tokio::time::timeout(limits.idle, stream.read_buf(buf)) => Some(r),
                    () = shutting_down(&mut shutdown) => None,
                };
                let first_byte = match waited {
                    Some(r) => r,
                    None if !first => return HeadEnd::Shutdown,
                    None => {
                        let grace = FIRST_REQUEST_GRACE.min(limits.idle);
                        match tokio::time::timeout(grace, stream.read_buf(buf)).await {
                            Ok(r) => Ok(r),
                            Err(_) => return HeadEnd::Shutdown,
                        }
                    }
                };
                match first_byte {
                    Ok(r) => r,
                    Err(_) => return HeadEnd::Idle,
                }
            }
            Some(at) => match tokio::time::timeout_at(at, stream.read_buf(buf)).await {
                Ok(r) => r,
                Err(_) => return HeadEnd::Deadline,
            },
        };
        match read {
            Ok(0) | Err(_) => return HeadEnd::Closed,
            Ok(_) => {
                if deadline.is_none() {
                    deadline = Some(Instant::now() + limits.head);
                }
            }
        }
    }
}

/// Resolves once the process is shutting down.
pub(super) async fn shutting_down(shutdown: &mut ShutdownWatch) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            // The sender is gone: no shutdown will ever be announced.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_complete_at_its_empty_line() {
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(head_complete(b"GET / HTTP/1.1\nHost: x\n\n"));
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n"));
    }

    #[test]
    fn the_target_is_measured_between_the_spaces() {
        let line = |target: usize| format!("GET /{} HTTP/1.1\r\n", "a".repeat(target - 1));
        assert!(!target_too_long(line(100).as_bytes(), 100));
        assert!(target_too_long(line(101).as_bytes(), 100));
        // Not yet at the end of the line: only certain once the target alone is too long.
        let partial = format!("GET /{}", "a".repeat(100 + VERSION_TAIL));
        assert!(target_too_long(partial.as_bytes(), 100));
        let partial = format!("GET /{}", "a".repeat(99 + VERSION_TAIL));
        assert!(!target_too_long(partial.as_bytes(), 100));
        // Bare LF, leading empty lines, HTTP/1.0.
        assert!(!target_too_long(b"\r\nGET /abc HTTP/1.0\n", 4));
        assert!(target_too_long(b"\r\nGET /abcde HTTP/1.0\n", 4));
        assert!(!target_too_long(b"GET", 0));
    }

    #[test]
    fn the_h2c_preface_is_recognised_only_whole() {
        assert_eq!(verdict(&H2_PREFACE[..18], 0, true, 100), None);
        assert_eq!(verdict(H2_PREFACE, 0, true, 100), Some(HeadEnd::H2Preface));
        // Without h2c the same bytes are an (invalid) HTTP/1 head, which Pingora refuses.
        assert_eq!(
            verdict(&H2_PREFACE[..18], 0, false, 100),
            Some(HeadEnd::Ready)
        );
        assert_eq!(
            verdict(b"GET / HTTP/1.0\r\n\r\n", 0, true, 100),
            Some(HeadEnd::Ready)
        );
        assert_eq!(verdict(b"P", 0, true, 100), None);
        // The end of a head split across reads is still found from where the last search was.
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for split in 1..head.len() {
            assert_eq!(
                verdict(head, split, false, 100),
                Some(HeadEnd::Ready),
                "{split}"
            );
        }
        assert_eq!(verdict(b"POST / HTTP/1.1\r\n", 0, true, 100), None);
    }
}
