//! A real PHP upstream: `php -S` with a router script that answers every request with its
//! `$_SERVER` as JSON — what a PHP chat backend sees of the headers flowgate forwards, after
//! PHP's own mapping of header names to `HTTP_*` variables.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::ports::{accepts, free_addr};
use super::temp::TempDir;

const ROUTER: &str = r#"<?php
header('Content-Type: application/json');
$server = [];
foreach ($_SERVER as $k => $v) {
    if (is_string($v)) { $server[$k] = $v; }
}
echo json_encode($server);
"#;

/// The running `php -S`; killed on drop.
pub struct PhpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    _dir: TempDir,
}

impl PhpServer {
    /// Starts `php -S` on a free port and waits until it accepts connections.
    pub fn start() -> PhpServer {
        let dir = TempDir::new("php-server");
        let router = dir.path().join("router.php");
        std::fs::write(&router, ROUTER).unwrap();
        let addr = free_addr();
        let child = Command::new("php")
            .args(["-n", "-S", &addr.to_string()])
            .arg(&router)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run php ({e}); scripts/test installs php-cli"));
        let server = PhpServer {
            addr,
            child,
            _dir: dir,
        };
        super::wait_until("php -S to accept connections", || accepts(addr));
        server
    }

    /// `host:port` for the proxy's configuration.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for PhpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
