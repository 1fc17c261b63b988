//! The verifier and signer kits of `examples/upstream` and `examples/host` in Node.js, Python,
//! Go and Java, each driven through its small test driver in `tests/kits/` (job format in
//! `tests/kits/README.md`). Go and Java are compiled once per test into a temp dir.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::process::run;
use super::temp::TempDir;

/// One language's kits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kit {
    /// `verify.js` / `sign.js` (jose from `tests/node/node_modules`).
    Node,
    /// `verify.py` / `sign.py` (PyJWT: Debian's python3-jwt).
    Python,
    /// `verify.go` / `sign.go` (golang-jwt v4: Debian's golang-github-golang-jwt-jwt-dev).
    Go,
    /// `Verify.java` / `Sign.java` (the JDK alone).
    Java,
}

/// Debian's interpreter: python3-jwt installs PyJWT for it, whatever else is on `PATH`.
const DEBIAN_PYTHON: &str = "/usr/bin/python3";
/// Where Debian's golang-github-golang-jwt-jwt-dev puts the module's source.
const DEBIAN_GO_JWT: &str = "/usr/share/gocode/src/github.com/golang-jwt/jwt";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A kit made ready to run: sources copied and compiled where the language needs it.
pub struct Built {
    kit: Kit,
    dir: TempDir,
}

impl Built {
    /// Prepares `kit` (`go build`, `javac`); panics with the compiler's output on failure.
    pub fn new(kit: Kit) -> Built {
        let dir = TempDir::new("flowgate-kits");
        let r = root();
        match kit {
            Kit::Node | Kit::Python => {}
            Kit::Go => {
                let d = dir.path();
                std::fs::create_dir_all(d.join("flowgate")).unwrap();
                std::fs::create_dir_all(d.join("cmd/verify")).unwrap();
                std::fs::create_dir_all(d.join("cmd/sign")).unwrap();
                let copies = [
                    ("examples/upstream/verify.go", "flowgate/verify.go"),
                    ("examples/host/sign.go", "flowgate/sign.go"),
                    ("tests/kits/go/verify_driver.go", "cmd/verify/main.go"),
                    ("tests/kits/go/sign_driver.go", "cmd/sign/main.go"),
                ];
                for (from, to) in copies {
                    std::fs::copy(r.join(from), d.join(to)).unwrap();
                }
                std::fs::write(
                    d.join("go.mod"),
                    format!(
                        "module kitstest\n\ngo 1.18\n\nrequire github.com/golang-jwt/jwt/v4 v4.4.3\n\n\
                         replace github.com/golang-jwt/jwt/v4 => {DEBIAN_GO_JWT}\n"
                    ),
                )
                .unwrap();
                for name in ["verify", "sign"] {
                    let out = Command::new("go")
                        .args(["build", "-o", name, &format!("./cmd/{name}")])
                        .current_dir(d)
                        // Offline: the one dependency is Debian's copy, named by `replace`.
                        .env("GOFLAGS", "-mod=mod")
                        .env("GOPROXY", "off")
                        .env("GOTOOLCHAIN", "local")
                        .output()
                        .expect("go (scripts/test installs golang-go)");
                    assert!(
                        out.status.success(),
                        "go build {name}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            Kit::Java => {
                let out = Command::new("javac")
                    .arg("-d")
                    .arg(dir.path())
                    .args([
                        r.join("examples/upstream/Verify.java"),
                        r.join("examples/host/Sign.java"),
                        r.join("tests/kits/VerifyDriver.java"),
                        r.join("tests/kits/SignDriver.java"),
                    ])
                    .output()
                    .expect("javac (scripts/test installs default-jdk-headless)");
                assert!(
                    out.status.success(),
                    "javac: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Built { kit, dir }
    }

    fn command(&self, tool: &str) -> Command {
        let r = root();
        debug_assert!(tool == "verify" || tool == "sign", "{tool}");
        let mut cmd = match self.kit {
            Kit::Node => {
                let mut c = Command::new("node");
                c.arg(r.join(format!("tests/kits/{tool}_driver.js")));
                // sign.js requires jose, which `npm ci` installs in tests/node.
                c.env("NODE_PATH", r.join("tests/node/node_modules"));
                c
            }
            Kit::Python => {
                let mut c = Command::new(DEBIAN_PYTHON);
                c.arg(r.join(format!("tests/kits/{tool}_driver.py")));
                c
            }
            Kit::Go => Command::new(self.dir.path().join(tool)),
            Kit::Java => {
                let mut c = Command::new("java");
                c.arg("-cp").arg(self.dir.path());
                c.arg(if tool == "verify" {
                    "VerifyDriver"
                } else {
                    "SignDriver"
                });
                c
            }
        };
        cmd.env_remove("FLOWGATE_KITS_UNSET");
        cmd
    }

    /// Runs one verification job (lines of `tests/kits/README.md`'s job format); the driver's
    /// JSON answer.
    pub fn verify(&self, job: &str) -> Value {
        let out = run(&mut self.command("verify"), job);
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{:?} verify driver: {e}: {out}", self.kit))
    }

    /// Signs `context` for `site` with the host signer; the token.
    pub fn sign(
        &self,
        site: &str,
        kid: &str,
        secret: &str,
        ttl: u64,
        now: u64,
        context: &[(&str, &str)],
    ) -> String {
        let mut cmd = self.command("sign");
        cmd.args([site, kid, &ttl.to_string(), &now.to_string()])
            .args(context.iter().map(|(k, v)| format!("{k}={v}")))
            .env("FLOWGATE_KITS_SECRET", secret);
        run(&mut cmd, "").trim().to_owned()
    }
}
