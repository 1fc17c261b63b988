//! The real `flowgate` binary as a child process: free ports, a config file in a temp dir,
//! readiness by a deadline-bounded connect, logs captured to files, killed on drop.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Instant;

use super::DEADLINE;
use super::ports::{accepts, free_addrs};
pub use super::temp::TempDir;

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_flowgate")
}

/// `flowgate check -c <conf>`, with no signing secret in its environment so the verdict
/// depends on the file alone.
pub fn check(conf: impl AsRef<Path>) -> Output {
    Command::new(bin())
        .args(["check", "-c"])
        .arg(conf.as_ref())
        .env_remove("FLOWGATE_SIGNING_SECRET")
        .env_remove("FLOWGATE_ADMIN_TOKEN")
        .output()
        .unwrap()
}

/// Options for one flowgate process.
#[derive(Debug, Clone, Default)]
pub struct Options {
    upstreams: Vec<String>,
    yaml: String,
    grace_period: Option<u64>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    server: Vec<String>,
    nofile: Option<u64>,
    silent: bool,
    no_plaintext: bool,
}

impl Options {
    /// Adds an upstream (`host:port`).
    pub fn upstream(mut self, host_port: impl Into<String>) -> Self {
        self.upstreams.push(host_port.into());
        self
    }

    /// `listen: ""`: no plaintext listener (`addr` is then a port nothing listens on).
    pub fn no_plaintext(mut self) -> Self {
        self.no_plaintext = true;
        self
    }

    /// Appends top-level YAML sections (anything but listen, admin, upstreams, server).
    pub fn yaml(mut self, yaml: &str) -> Self {
        self.yaml.push_str(yaml);
        self.yaml.push('\n');
        self
    }

    /// Sets `server.grace_period_seconds` (default 1 in tests).
    pub fn grace_period(mut self, seconds: u64) -> Self {
        self.grace_period = Some(seconds);
        self
    }

    /// Adds `key: value` to the `server:` section.
    pub fn server(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        self.server.push(format!("  {key}: {value}"));
        self
    }

    /// Limits the process to `n` open files (`RLIMIT_NOFILE`), as `ulimit -n` would.
    pub fn nofile(mut self, n: u64) -> Self {
        self.nofile = Some(n);
        self
    }

    /// Ready once both listeners accept, without waiting for the `flowgate ready` line (for a
    /// log configuration that turns it off; signals sent at once may then come too early).
    pub fn silent_log(mut self) -> Self {
        self.silent = true;
        self
    }

    /// Extra command-line arguments after `run -c FILE`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Sets an environment variable for the process (`FLOWGATE_SIGNING_SECRET` is otherwise
    /// removed, so tests never depend on the caller's environment).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the process and waits until it accepts connections.
    pub fn start(self) -> Flowgate {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            match Flowgate::try_start(&self) {
                Ok(f) => return f,
                // Another process took the port between probe and bind: try new ports.
                Err(log) if log.contains("Address already in use") => last_log = log,
                Err(log) => panic!("flowgate did not start:\n{log}"),
            }
        }
        panic!("flowgate did not start (ports kept being taken):\n{last_log}");
    }
}

/// A running flowgate process; ready once it logged `flowgate ready` (signal handlers
/// installed) and both listeners accept connections.
pub struct Flowgate {
    child: Child,
    /// Proxy address.
    pub addr: SocketAddr,
    /// Admin address.
    pub admin: SocketAddr,
    dir: TempDir,
    exited: Option<ExitStatus>,
}

impl Flowgate {
    /// Options for a new process.
    pub fn options() -> Options {
        Options::default()
    }

    /// Starts flowgate in front of one upstream, with default settings.
    pub fn start(upstream: &str) -> Flowgate {
        Options::default().upstream(upstream).start()
    }

    fn try_start(o: &Options) -> Result<Flowgate, String> {
        let dir = TempDir::new("flowgate");
        let [addr, admin] = free_addrs::<2>();
        let mut yaml = String::new();
        if o.no_plaintext {
            yaml.push_str("listen: \"\"\n");
        } else {
            writeln!(yaml, "listen: \"{addr}\"").unwrap();
        }
        writeln!(yaml, "admin: \"{admin}\"").unwrap();
        yaml.push_str("upstreams:\n");
        for u in &o.upstreams {
            writeln!(yaml, "  - \"{u}\"").unwrap();
        }
        yaml.push_str("server:\n");
        writeln!(
            yaml,
            "  pid_file: \"{}\"",
            dir.path().join("flowgate.pid").display()
        )
        .unwrap();
        writeln!(
            yaml,
            "  upgrade_sock: \"{}\"",
            dir.path().join("upgrade.sock").display()
        )
        .unwrap();
        writeln!(
            yaml,
            "  grace_period_seconds: {}",
            o.grace_period.unwrap_or(1)
        )
        .unwrap();
        yaml.push_str("  graceful_shutdown_timeout_seconds: 1\n");
        for line in &o.server {
            writeln!(yaml, "{line}").unwrap();
        }
        yaml.push_str(&o.yaml);
        let config = dir.path().join("flowgate.yaml");
        std::fs::write(&config, &yaml).unwrap();

        let log = dir.path().join("flowgate.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("run")
            .arg("-c")
            .arg(&config)
            .args(&o.args)
            .env_remove("RUST_LOG")
            .env_remove("FLOWGATE_SIGNING_SECRET")
            .env_remove("FLOWGATE_ADMIN_TOKEN")
            .envs(o.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(n) = o.nofile {
            limit_open_files(&mut cmd, n);
        }
        let child = cmd.spawn().unwrap();
        let mut f = Flowgate {
            child,
            addr,
            admin,
            dir,
            exited: None,
        };
        let start = Instant::now();
        loop {
            if let Some(status) = f.child.try_wait().unwrap() {
                f.exited = Some(status);
                return Err(format!(
                    "exited with {status}; config:\n{yaml}\nlog:\n{}",
                    f.log()
                ));
            }
            let logged = o.silent || f.log().contains("flowgate ready");
            if logged && (o.no_plaintext || accepts(addr)) && accepts(admin) {
                return Ok(f);
            }
            if start.elapsed() > DEADLINE {
                return Err(format!("not ready within {DEADLINE:?}; log:\n{}", f.log()));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Starts a second process with the same configuration and `-u`, to take over this one's
    /// listeners once this one gets SIGQUIT. Returns at once: the ports belong to this process
    /// until the hand-over.
    pub fn spawn_upgrade(&self) -> Flowgate {
        let dir = TempDir::new("flowgate-upgrade");
        let log = dir.path().join("flowgate.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin())
            .arg("run")
            .arg("-c")
            .arg(self.dir.path().join("flowgate.yaml"))
            .arg("-u")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Flowgate {
            child,
            addr: self.addr,
            admin: self.admin,
            dir,
            exited: None,
        }
    }

    /// Waits (deadline-bounded) until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        super::wait_until(&format!("{needle:?} in the flowgate log"), || {
            self.log().contains(needle)
        });
    }

    /// `http://<addr><path_and_query>`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("flowgate.log")).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temp dir holding config, pid file, upgrade socket and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends a signal (`TERM`, `QUIT`, `INT`, `HUP`) to the process.
    pub fn signal(&self, name: &str) {
        let sig = match name {
            "TERM" => libc::SIGTERM,
            "QUIT" => libc::SIGQUIT,
            "INT" => libc::SIGINT,
            "HUP" => libc::SIGHUP,
            other => panic!("unknown signal {other}"),
        };
        let pid = libc::pid_t::try_from(self.pid()).unwrap();
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill -{name} failed");
    }

    /// Waits (deadline-bounded) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.exited {
                return s;
            }
            if let Some(s) = self.child.try_wait().unwrap() {
                self.exited = Some(s);
                return s;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "flowgate did not exit; log:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The admin `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one sample line (`name{labels}`), 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        sample_value(&self.metrics().await, sample)
    }

    /// Asserts each `(sample, value)` pair against one scrape of `/metrics`.
    pub async fn assert_metrics(&self, expected: &[(&str, f64)]) {
        let text = self.metrics().await;
        for &(sample, want) in expected {
            assert_eq!(sample_value(&text, sample), want, "{sample}");
        }
    }
}

/// Makes the child start with at most `n` open files.
fn limit_open_files(cmd: &mut Command, n: u64) {
    use std::os::unix::process::CommandExt as _;
    let limit = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit(2),
    // which is async-signal-safe; `limit` is a plain value copied into the closure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// The value of `sample` (`name{labels}`) in a Prometheus text scrape, 0 when absent.
fn sample_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

impl Drop for Flowgate {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- flowgate log ----\n{}", self.log());
        }
    }
}
