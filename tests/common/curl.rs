//! The `curl` command line, for what the Rust clients of the tests do not send: an HTTP/2
//! (prior knowledge, h2c) upload without a length.

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::DEADLINE;

/// `curl --http2-prior-knowledge` uploading `body` from its stdin: no `Content-Length`, the
/// length is only known at the stream's end. Returns the status and the response body.
pub fn h2_upload(url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut child = Command::new("curl")
        .args(["--http2-prior-knowledge", "-sS", "-H", "Expect:", "-T", "-"])
        .args(["--max-time", &DEADLINE.as_secs().to_string()])
        .args(["-w", "\n%{http_code} %{http_version}", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = out.stdout;
    let split = text.iter().rposition(|b| *b == b'\n').unwrap();
    let tail = String::from_utf8_lossy(&text[split + 1..]).into_owned();
    let (code, version) = tail.split_once(' ').unwrap();
    assert_eq!(version, "2", "curl spoke HTTP/{version}");
    (code.parse().unwrap(), text[..split].to_vec())
}
