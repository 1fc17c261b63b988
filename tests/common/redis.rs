//! Real Redis for tests: a `redis-server` on a free port that is killed on drop, a three-master
//! Cluster, and a Sentinel setup (master, replica, one sentinel).
//!
//! Every server gets its own temporary directory (config file, log, cluster state). Readiness is
//! a `PING` retried until a generous deadline; on failure — or when a test panics while the
//! server is alive — the server's log is printed. Children are spawned with `PDEATHSIG`, so a
//! test process killed by a timeout does not leave servers behind: create them on the test's own
//! thread (the signal fires when the spawning thread ends).
#![allow(dead_code)]

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::ports::{free_cluster_port, free_port};
use super::temp::TempDir;
use super::wait_for;

// Kept here too, where the other Redis parts are imported from; not every test binary uses it.
#[allow(unused_imports)]
pub use super::redis_cluster::RedisCluster;

/// How long a server may take to answer `PING` after spawning (a loaded 2-core machine).
pub const READY_DEADLINE: Duration = Duration::from_secs(20);
/// How long a Cluster or a Sentinel may take to settle.
pub const SETTLE_DEADLINE: Duration = Duration::from_secs(40);

/// Server certificates for a TLS test, made with the `openssl` command.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (PEM) clients trust.
    pub ca: PathBuf,
    /// The server certificate (PEM), for 127.0.0.1 and localhost.
    pub cert: PathBuf,
    /// The server key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Generates a throw-away CA and a server certificate signed by it in `dir`.
    pub fn generate(dir: &Path) -> TlsFiles {
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl (Debian package `openssl`)");
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write ext.cnf");
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=flowgate test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ]);
        TlsFiles {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        }
    }
}

/// What kind of server to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra config lines.
    pub config: Vec<String>,
    /// Run as a Sentinel (`redis-server conf --sentinel`).
    pub sentinel: bool,
    /// Cluster node: port + 10000 must be free as well.
    pub cluster: bool,
    /// Serve TLS only, with these files.
    pub tls: Option<TlsFiles>,
}

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    options: Options,
}

impl RedisServer {
    /// A plain standalone server on a free port.
    pub fn start() -> RedisServer {
        RedisServer::start_with(Options::default())
    }

    /// A server with `options` on a free port (another port is tried if the first is taken).
    pub fn start_with(options: Options) -> RedisServer {
        let mut last = String::new();
        for _ in 0..5 {
            let port = if options.cluster {
                free_cluster_port()
            } else {
                free_port()
            };
            match RedisServer::try_start_on(port, options.clone()) {
                Ok(server) => return server,
                Err(log) => last = log,
            }
        }
        panic!("redis-server did not start on any port; last log:\n{last}");
    }

    /// A server on `port`; `Err(log)` when it exits before answering (port taken, bad config).
    pub fn try_start_on(port: u16, options: Options) -> Result<RedisServer, String> {
        let tag = if options.sentinel {
            "sentinel"
        } else {
            "server"
        };
        let mut server = RedisServer {
            child: None,
            port,
            dir: TempDir::new(&format!("flowgate-redis-{tag}-{port}")),
            options,
        };
        server
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))?;
        server.wait_ready()?;
        Ok(server)
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("redis.conf")
    }

    /// The server log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Writes the config file (first start only, so `CONFIG REWRITE` by Sentinel survives a
    /// restart) and spawns the process.
    fn spawn(&mut self) -> io::Result<()> {
        if !self.conf_path().exists() {
            let mut conf = vec![
                "bind 127.0.0.1".to_string(),
                "save \"\"".into(),
                "appendonly no".into(),
                "daemonize no".into(),
                format!("dir {}", self.dir.path().display()),
                format!("logfile {}", self.log_path().display()),
            ];
            match &self.options.tls {
                Some(tls) => conf.extend([
                    "port 0".to_string(),
                    format!("tls-port {}", self.port),
                    format!("tls-cert-file {}", tls.cert.display()),
                    format!("tls-key-file {}", tls.key.display()),
                    format!("tls-ca-cert-file {}", tls.ca.display()),
                    "tls-auth-clients no".into(),
                ]),
                None => conf.push(format!("port {}", self.port)),
            }
            if self.options.cluster {
                conf.extend([
                    "cluster-enabled yes".to_string(),
                    "cluster-config-file nodes.conf".into(),
                    "cluster-node-timeout 2000".into(),
                ]);
            }
            conf.extend(self.options.config.iter().cloned());
            fs::write(self.conf_path(), conf.join("\n") + "\n")?;
        }
        let mut cmd = Command::new("redis-server");
        cmd.arg(self.conf_path());
        if self.options.sentinel {
            cmd.arg("--sentinel");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn()?);
        Ok(())
    }

    /// Waits until the server answers `PING`; `Err(log)` if it exits or the deadline passes.
    fn wait_ready(&mut self) -> Result<(), String> {
        let end = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            if self.ping() {
                return Ok(());
            }
            if Instant::now() > end {
                return Err(format!(
                    "no PING answer within {READY_DEADLINE:?}:\n{}",
                    self.log()
                ));
            }
            sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut con) = self
            .client()
            .get_connection_with_timeout(Duration::from_millis(500))
        else {
            return false;
        };
        redis::cmd("PING").query::<String>(&mut con).is_ok()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's URL for the store (`redis://` or `rediss://`).
    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// A client for direct inspection (trusts the test CA for TLS servers).
    pub fn client(&self) -> redis::Client {
        match &self.options.tls {
            Some(tls) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(fs::read(&tls.ca).expect("read CA")),
                },
            )
            .expect("TLS client"),
            None => redis::Client::open(self.url()).expect("client"),
        }
    }

    /// Runs one command on a fresh connection.
    pub fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let mut con = self
            .client()
            .get_connection_with_timeout(Duration::from_secs(2))?;
        cmd.query(&mut con)
    }

    /// `INFO <section>` as text.
    pub fn info(&self, section: &str) -> String {
        self.query::<String>(redis::cmd("INFO").arg(section))
            .unwrap_or_default()
    }

    /// Whether it serves TLS.
    pub fn is_tls(&self) -> bool {
        self.options.tls.is_some()
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILLs the server and reaps it; the port and directory are kept for [`Self::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): its sockets stay open, nothing answers.
    pub fn stop(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws a server frozen by [`Self::stop`] (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let child = self.child.as_ref().expect("redis-server is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on our own child's pid; it has not been reaped (we hold the Child).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Starts the server again on the same port, waiting until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let mut last = String::new();
        // The port was ours a moment ago; a short retry covers a lingering socket.
        for _ in 0..20 {
            self.spawn().expect("spawn redis-server");
            match self.wait_ready() {
                Ok(()) => return,
                Err(log) => last = log,
            }
            sleep(Duration::from_millis(100));
        }
        panic!(
            "redis-server did not restart on port {}:\n{last}",
            self.port
        );
    }

    /// The server log (empty when unreadable).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- redis-server :{} log ({}) ----\n{}",
                self.port,
                self.log_path().display(),
                self.log()
            );
        }
        self.kill();
    }
}

/// One master, one replica and one sentinel watching them.
pub struct RedisSentinel {
    /// The servers; which one is master changes with a failover.
    pub servers: Vec<RedisServer>,
    /// The sentinel.
    pub sentinel: RedisServer,
    /// The monitored master's name.
    pub name: String,
}

impl RedisSentinel {
    /// Starts master, replica and sentinel, and waits until the sentinel knows a healthy replica.
    pub fn start() -> RedisSentinel {
        RedisSentinel::start_with(None)
    }

    /// [`RedisSentinel::start`], every connection over TLS when `tls` is given.
    pub fn start_with(tls: Option<TlsFiles>) -> RedisSentinel {
        let name = "flowgate".to_string();
        // Either server may be master after a failover; neither waits before a full sync.
        let mut common = vec!["repl-diskless-sync-delay 0".to_string()];
        if tls.is_some() {
            common.push("tls-replication yes".to_string());
        }
        let master = RedisServer::start_with(Options {
            config: common.clone(),
            tls: tls.clone(),
            ..Options::default()
        });
        let replica = RedisServer::start_with(Options {
            config: [
                common.clone(),
                vec![format!("replicaof 127.0.0.1 {}", master.port())],
            ]
            .concat(),
            tls: tls.clone(),
            ..Options::default()
        });
        wait_for(SETTLE_DEADLINE, "replica in sync", || {
            replica
                .info("replication")
                .contains("master_link_status:up")
                .then_some(())
        });
        let sentinel = RedisServer::start_with(Options {
            sentinel: true,
            config: [
                common[1..].to_vec(),
                vec![
                    format!("sentinel monitor {name} 127.0.0.1 {} 1", master.port()),
                    format!("sentinel down-after-milliseconds {name} 2000"),
                    format!("sentinel failover-timeout {name} 10000"),
                    format!("sentinel parallel-syncs {name} 1"),
                ],
            ]
            .concat(),
            tls,
            ..Options::default()
        });
        let setup = RedisSentinel {
            servers: vec![master, replica],
            sentinel,
            name,
        };
        setup.wait_healthy_replica();
        setup
    }

    /// Waits until the sentinel lists a replica that it could promote.
    fn wait_healthy_replica(&self) {
        wait_for(
            SETTLE_DEADLINE,
            "sentinel to know a healthy replica",
            || {
                let replicas: Vec<std::collections::HashMap<String, String>> = self
                    .sentinel
                    .query(redis::cmd("SENTINEL").arg("REPLICAS").arg(&self.name))
                    .ok()?;
                replicas
                    .iter()
                    .any(|r| {
                        r.get("flags").is_some_and(|f| f == "slave")
                            && r.get("master-link-status").is_some_and(|s| s == "ok")
                    })
                    .then_some(())
            },
        );
    }

    /// The store URL: `redis+sentinel://sentinel/name` (`rediss+sentinel` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.sentinel.options.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!(
            "{scheme}+sentinel://127.0.0.1:{}/{}",
            self.sentinel.port(),
            self.name
        )
    }

    /// The port the sentinel currently names as master.
    pub fn master_port(&self) -> u16 {
        let addr: Vec<String> = self
            .sentinel
            .query(
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(&self.name),
            )
            .expect("sentinel answers");
        addr.get(1)
            .and_then(|p| p.parse().ok())
            .expect("master port")
    }

    /// The server currently master.
    pub fn master(&self) -> &RedisServer {
        let port = self.master_port();
        self.servers
            .iter()
            .find(|s| s.port() == port)
            .expect("master is one of ours")
    }

    /// Runs `SENTINEL FAILOVER` and waits until the other server is master and says so;
    /// returns the new master's port.
    pub fn failover(&self) -> u16 {
        let old = self.master_port();
        wait_for(SETTLE_DEADLINE, "SENTINEL FAILOVER to be accepted", || {
            // NOGOODSLAVE while the sentinel's view of the replica is still settling.
            self.sentinel
                .query::<String>(redis::cmd("SENTINEL").arg("FAILOVER").arg(&self.name))
                .ok()
        });
        wait_for(SETTLE_DEADLINE, "the replica to become master", || {
            let port = self.master_port();
            (port != old
                && self
                    .servers
                    .iter()
                    .any(|s| s.port() == port && s.info("replication").contains("role:master")))
            .then_some(port)
        })
    }
}
