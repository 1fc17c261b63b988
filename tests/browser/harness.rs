//! Headless Chromium for the browser tests: Debian's `chromium` driven through `chromedriver`
//! (WebDriver, via fantoccini). Each [`Browser`] owns its chromedriver process, a fresh profile
//! directory and its screenshots; [`Demo`] is the real `flowgate demo` process. Everything is
//! cleaned up on drop.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::common::ports::free_ports;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long any single wait in a browser test may take before the test fails: generous, because
/// Chromium starting and rendering on a loaded 2-core machine can take many seconds, and a wait
/// that succeeds returns as soon as its condition holds.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Where screenshots go: `target/browser-artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A chromedriver process in its own process group (so the Chromium it starts goes with it).
struct Chromedriver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Chromedriver {
    fn start() -> Self {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "browser tests need Debian's chromium and chromium-driver (scripts/test installs them)"
        );
        let log = std::env::temp_dir().join(unique("chromedriver") + ".log");
        // Port 0: chromedriver binds a free port itself and names it on stdout, so no other
        // process can take the port between our choosing it and chromedriver binding it.
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Read to the end, so chromedriver never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|p| p.trim_end_matches('.').trim().parse::<u16>().ok())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(port) => Chromedriver { child, port, log },
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let _ = std::fs::remove_file(&log);
                panic!("chromedriver did not start (exit: {status:?}):\n{text}");
            }
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium left behind by a failed test.
        if let Ok(pgid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group our own child leads; no memory is shared.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// One headless Chromium session.
pub struct Browser {
    client: Option<Client>,
    profile: PathBuf,
    case: String,
    // Dropped last: kills Chromium if the session was not closed.
    _driver: Chromedriver,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile; `case` names the
    /// screenshots.
    pub async fn start(case: &str) -> Browser {
        Browser::start_with(case, &[]).await
    }

    /// [`Browser::start`] with extra Chromium flags.
    pub async fn start_with(case: &str, extra: &[String]) -> Browser {
        let driver = Chromedriver::start();
        let profile = std::env::temp_dir().join(unique("flowgate-chromium"));
        std::fs::create_dir_all(&profile).unwrap();
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,1000".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.extend(extra.iter().cloned());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        // Report, do not silently dismiss, any alert() a page manages to open.
        caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| {
                let log = std::fs::read_to_string(&driver.log).unwrap_or_default();
                let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
                panic!("cannot start Chromium through chromedriver: {e}\n{tail}")
            });
        // Tall enough for the whole demo page in one screenshot.
        client.set_window_size(1280, 1000).await.unwrap();
        Browser {
            client: Some(client),
            profile,
            case: case.to_owned(),
            _driver: driver,
        }
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Opens a URL and waits for the document to load.
    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.unwrap();
    }

    /// Reloads the page through WebDriver, which waits for the new document to load (a script
    /// calling `location.reload()` races the navigation it starts).
    pub async fn refresh(&self) {
        self.client().refresh().await.unwrap();
    }

    /// Runs a script in the page and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client().execute(script, args).await.unwrap()
    }

    /// Waits until `predicate` (a script body returning a value) returns something truthy.
    pub async fn wait_js(&self, what: &str, predicate: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.js(predicate, vec![]).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > DEADLINE {
                let shot = self.screenshot("timeout").await;
                panic!(
                    "timed out waiting for {what} (screenshot: {})",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Text content of the first element matching a CSS selector ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
            vec![json!(css)],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Types into the input matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.client().find(Locator::Css(css)).await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.client().find(Locator::Css(css)).await.unwrap();
        element.click().await.unwrap();
    }

    /// The text of an open alert dialog, if a page opened one.
    pub async fn alert_text(&self) -> Option<String> {
        self.client().get_alert_text().await.ok()
    }

    /// Saves a screenshot as `target/browser-artifacts/<case>[-<label>].png` and returns its path.
    pub async fn screenshot(&self, label: &str) -> PathBuf {
        let name = if label.is_empty() {
            format!("{}.png", self.case)
        } else {
            format!("{}-{label}.png", self.case)
        };
        let path = artifacts_dir().join(name);
        if let Ok(png) = self.client().screenshot().await {
            std::fs::write(&path, png).unwrap();
        }
        path
    }

    /// Waits until the widget shows the outcome of its `generation`-th init (and anything after).
    pub async fn wait_widget(&self, generation: u32) {
        let script = format!(
            "const w = document.getElementById('ims-flow-widget');
             return w && w.getAttribute('data-status') === 'ready'
                 && w.getAttribute('data-generation') === '{generation}';"
        );
        self.wait_js("the widget to be ready", &script).await;
    }

    /// Saves the case's screenshot (`<case>.png`).
    pub async fn snapshot(&self) -> PathBuf {
        self.screenshot("").await
    }

    /// Ends the session cleanly (Chromium exits); dropping without it kills the processes.
    pub async fn finish(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `flowgate demo` as a child process on free ports; killed on drop.
pub struct Demo {
    child: Child,
    /// `http://127.0.0.1:<port>` of the proxy, or `https://127.0.0.1:<port>` with `--tls`.
    pub base: String,
    /// `http://127.0.0.1:<port>` of the cross-origin host page.
    pub host_page: String,
    /// `http://127.0.0.1:<port>` of the admin listener.
    pub admin: String,
    /// With `--tls`: the Chromium flag that trusts the run's certificate, as the demo printed it.
    pub trust_flag: Option<String>,
    log: PathBuf,
    config: Option<PathBuf>,
}

impl Demo {
    /// Starts the real binary's `demo` command and waits until the proxy and admin accept.
    pub fn start() -> Demo {
        Demo::launch(false, None)
    }

    /// [`Demo::start`] with `--tls`: the demo over HTTPS as well, with its own certificate.
    pub fn start_tls() -> Demo {
        Demo::launch(true, None)
    }

    /// [`Demo::start`] with `-c config`: the demo with that file's sites.
    pub fn start_with_config(config: &Path) -> Demo {
        Demo::launch(false, Some(config.to_path_buf()))
    }

    /// [`Demo::start`] with a configuration file holding `yaml` (`-c`).
    pub fn start_with_yaml(yaml: &str) -> Demo {
        let path = std::env::temp_dir().join(unique("flowgate-demo") + ".yaml");
        std::fs::write(&path, yaml).unwrap();
        Demo::launch(false, Some(path))
    }

    fn launch(tls: bool, config: Option<PathBuf>) -> Demo {
        let mut last = String::new();
        // A free port can be taken by another program before flowgate binds it: retry.
        for _ in 0..5 {
            let [listen, admin, https, host] = free_ports::<4>();
            let log = std::env::temp_dir().join(unique("flowgate-demo") + ".log");
            let file = std::fs::File::create(&log).unwrap();
            let tls_args = if tls {
                vec![
                    "--tls".to_owned(),
                    format!("--tls-listen=127.0.0.1:{https}"),
                ]
            } else {
                Vec::new()
            };
            let mut child = Command::new(env!("CARGO_BIN_EXE_flowgate"))
                .args(["demo", "--listen", &format!("127.0.0.1:{listen}")])
                .args(["--admin", &format!("127.0.0.1:{admin}")])
                .args(["--host-page", &format!("127.0.0.1:{host}")])
                .args(&tls_args)
                .args(
                    config
                        .iter()
                        .flat_map(|c| [OsStr::new("-c"), c.as_os_str()]),
                )
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .expect("start flowgate demo");
            let started = Instant::now();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!(
                        "flowgate demo exited with {status}:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    break;
                }
                // The ready line first: a bare connect could reach another process that took
                // the port, while this one is failing to bind it.
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let ready = text.contains("flowgate ready");
                let up = |port| TcpStream::connect(("127.0.0.1", port)).is_ok();
                if ready && up(listen) && up(admin) && up(host) && (!tls || up(https)) {
                    let trust_flag = text
                        .split_whitespace()
                        .find(|w| w.starts_with("--ignore-certificate-errors-spki-list="))
                        .map(str::to_owned);
                    let base = if tls {
                        format!("https://127.0.0.1:{https}")
                    } else {
                        format!("http://127.0.0.1:{listen}")
                    };
                    return Demo {
                        child,
                        base,
                        host_page: format!("http://127.0.0.1:{host}"),
                        admin: format!("http://127.0.0.1:{admin}"),
                        trust_flag,
                        log,
                        config,
                    };
                }
                if started.elapsed() > DEADLINE {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("flowgate demo did not listen in time");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = std::fs::remove_file(&log);
            if !last.contains("in use") {
                break;
            }
        }
        panic!("{last}");
    }

    /// The value of one `/metrics` sample line (`name{labels}`), 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The URL of a path on the demo's proxy.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        if let Some(config) = &self.config {
            let _ = std::fs::remove_file(config);
        }
    }
}
