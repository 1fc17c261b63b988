//! Short-lived child processes fed on stdin: the PHP reference scripts under `tests/php/` and
//! the flowgate binary's batch modes.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

/// `php [options] tests/php/<script>`; further arguments go after the script.
pub fn php(options: &[&str], script: &str) -> Command {
    let mut cmd = Command::new("php");
    cmd.args(options)
        .arg(format!("{}/tests/php/{script}", env!("CARGO_MANIFEST_DIR")));
    cmd
}

/// `flowgate <args>` from the binary under test.
pub fn flowgate_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowgate"));
    cmd.args(args);
    cmd
}

/// Runs `cmd` with `input` on stdin and returns its stdout; panics, with its stderr, unless it
/// exits successfully.
pub fn run(cmd: &mut Command, input: impl Into<Vec<u8>>) -> String {
    let input = input.into();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {:?} ({e}); scripts/test installs what the tests need",
                cmd.get_program()
            )
        });
    let mut stdin = child.stdin.take().unwrap();
    // Written from another thread so a large batch cannot deadlock on full pipes.
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed ({}): {}",
        cmd.get_program(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
