//! The real Socket.IO chat stack under `tests/node/` (see its README): backends as child
//! processes killed on drop, clients run to their JSON result line, or followed line by line so
//! a test can act on a progress event.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::DEADLINE;

fn script(name: &str) -> String {
    format!("{}/tests/node/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn node(name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(script(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// Lines of a child's stdout, read on a thread of their own so waits can have deadlines.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn new(out: ChildStdout) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines(rx)
    }

    /// The next line, or `None` once stdout closed; panics after `within`.
    fn next(&self, within: Duration, what: &str) -> Option<String> {
        match self.0.recv_timeout(within) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no line from {what} within {within:?}"),
        }
    }
}

/// One `chat-backend.js`; killed on drop.
pub struct ChatBackend {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Child,
    _lines: Lines,
}

impl ChatBackend {
    /// Starts a backend named `node_id` with extra flags (`--ping-interval-ms`, …).
    pub fn start(node_id: &str, flags: &[&str]) -> ChatBackend {
        let mut args = vec!["--port", "0", "--node-id", node_id];
        args.extend_from_slice(flags);
        let mut child = node("chat-backend.js", &args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}); scripts/test installs nodejs"));
        let lines = Lines::new(child.stdout.take().unwrap());
        let ready = lines
            .next(DEADLINE, "chat-backend.js")
            .unwrap_or_else(|| panic!("chat-backend.js exited; did `npm ci` run in tests/node?"));
        let v: Value = serde_json::from_str(&ready).unwrap();
        assert_eq!(v["ready"], true, "{ready}");
        ChatBackend {
            port: u16::try_from(v["port"].as_u64().unwrap()).unwrap(),
            child,
            _lines: lines,
        }
    }

    /// `127.0.0.1:<port>` for the proxy's configuration.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for ChatBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client (`chat-client.js`, `raw-ws-client.js`) followed line by line.
pub struct NodeClient {
    child: Child,
    lines: Lines,
    name: &'static str,
}

impl NodeClient {
    /// Starts `tests/node/<name>` with `args`.
    pub fn spawn(name: &'static str, args: &[&str]) -> NodeClient {
        let mut child = node(name, args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}); scripts/test installs nodejs"));
        let lines = Lines::new(child.stdout.take().unwrap());
        NodeClient { child, lines, name }
    }

    /// Waits for the progress line whose `event` is `event`; panics if the client ends first.
    pub fn wait_event(&self, event: &str, within: Duration) -> Value {
        loop {
            let line = self
                .lines
                .next(within, self.name)
                .unwrap_or_else(|| panic!("{} ended before {event:?}", self.name));
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["event"] == event {
                return v;
            }
            assert!(
                v.get("ok").is_none(),
                "{} ended before {event:?}: {line}",
                self.name
            );
        }
    }

    /// The result line (the last one), waiting at most `within`.
    pub fn result(mut self, within: Duration) -> Value {
        let mut last = None;
        while let Some(line) = self.lines.next(within, self.name) {
            last = Some(line);
        }
        let _ = self.child.wait();
        let last = last.unwrap_or_else(|| panic!("{} printed nothing", self.name));
        serde_json::from_str(&last).unwrap_or_else(|e| panic!("{}: {e}: {last}", self.name))
    }
}

impl Drop for NodeClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tests/node/<name>` to completion and returns its result line.
pub fn run(name: &'static str, args: &[&str]) -> Value {
    NodeClient::spawn(name, args).result(DEADLINE * 3)
}
