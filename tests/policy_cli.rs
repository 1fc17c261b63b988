//! The site policy on the command line, through the real binary: `flowgate inspect --site …
//! --origin …` shows each decision (the origin, every dropped key, what `enforce: report` would
//! drop) with its reason, and never a dropped value; `flowgate check` names every mistake in
//! the policy keys (bad origins, a key in both lists, `bind_session` without keys).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::b64;
use common::flowgate::{TempDir, bin, check};

const YAML: &str = r#"
sites:
  shop:
    origins: ["http://shop.test:8080", "https://*.example.com"]
    mode: optional
    keys:
      allow: [name]
      signed_only: [plan]
      verify:
        - {kid: k1, secret: "host-key-one-0123456789abcdefghijk"}
  rep:
    origins: ["http://shop.test:8080"]
    enforce: report
    keys:
      allow: [name]
"#;

/// The context every inspection below is given: one allowed key, one signed-only, one other
/// (their values marked, to see that a dropped one is never shown).
const CONTEXT: &str = r#"{"name":"Ann","plan":"Enterprise-secret","color":"crimson-secret"}"#;

/// `flowgate inspect --site SITE -c CONF [--origin ORIGIN] B64(CONTEXT)`: its stdout.
fn inspect(conf: &Path, site: &str, origin: Option<&str>) -> String {
    let mut cmd = Command::new(bin());
    cmd.args(["inspect", "--site", site, "-c"]).arg(conf);
    if let Some(o) = origin {
        cmd.args(["--origin", o]);
    }
    let out = cmd.arg(b64(CONTEXT)).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn assert_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
}

#[test]
fn inspect_shows_each_decision_and_its_reason() {
    let dir = TempDir::new("policy-inspect");
    let conf = dir.path().join("flowgate.yaml");
    std::fs::write(&conf, YAML).unwrap();

    // A listed origin: the key policy decides, key by key.
    let listed = inspect(&conf, "shop", Some("http://shop.test:8080"));
    assert_lines(
        &listed,
        &[
            "origins: http://shop.test:8080, https://*.example.com:443",
            "origin: http://shop.test:8080 → listed",
            "keys.allow: name (other keys: key_not_allowed)",
            "keys.signed_only: plan (without a verified token: unverified_key)",
            "enforce: drop",
            "token: none sent, so the context is unverified",
            "status: accepted; unverified",
            "accepted pairs (1):\n  name = \"Ann\"",
            "\"plan\": unverified_key",
            "\"color\": key_not_allowed",
        ],
    );
    assert!(
        !listed.contains("-secret"),
        "a dropped value is shown:\n{listed}"
    );
    // The wildcard covers exactly one label.
    let one_label = inspect(&conf, "shop", Some("https://a.example.com"));
    assert!(
        one_label.contains("origin: https://a.example.com → listed"),
        "{one_label}"
    );
    let two_labels = inspect(&conf, "shop", Some("https://a.b.example.com"));
    assert!(two_labels.contains("→ NOT listed"), "{two_labels}");

    // Another origin, or none: the whole context is discarded, the chat still proxied.
    let foreign = inspect(&conf, "shop", Some("https://evil.example"));
    assert_lines(
        &foreign,
        &[
            "origin: https://evil.example → NOT listed: context discarded (reason origin)",
            "status: discarded; reason=origin",
            "X-Flowgate-Status: discarded; reason=origin",
        ],
    );
    assert!(!foreign.contains("accepted pairs"), "{foreign}");
    assert!(
        !foreign.contains("-secret"),
        "a discarded value is shown:\n{foreign}"
    );
    let none = inspect(&conf, "shop", None);
    assert_lines(
        &none,
        &["no --origin given", "status: discarded; reason=origin"],
    );

    // enforce: report — the same decisions, counted as would-drops, nothing dropped.
    let report = inspect(&conf, "rep", Some("https://evil.example"));
    assert_lines(
        &report,
        &[
            "enforce: report",
            "would drop (enforce: report): 1 × origin",
            "would drop (enforce: report): 2 × key_not_allowed",
            "status: accepted",
            "accepted pairs (3):",
            "dropped pairs (0):",
        ],
    );

    // A site without rules behaves as before: any origin, every key.
    let open = inspect(&conf, "elsewhere", Some("https://evil.example"));
    assert_lines(
        &open,
        &[
            "origins: any (no origins: set; CORS left to the backend)",
            "keys.allow: any",
            "accepted pairs (3):",
        ],
    );
}

/// `flowgate check` on `yaml`: it fails, and its report names every key of `keys`.
fn assert_check_names(yaml: &str, keys: &[&str], phrases: &[&str]) {
    let dir = TempDir::new("policy-check-cli");
    let conf = dir.path().join("flowgate.yaml");
    std::fs::write(&conf, yaml).unwrap();
    let out = check(&conf);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "check passed:\n{yaml}");
    assert_lines(&text, keys);
    assert_lines(&text, phrases);
}

#[test]
fn check_names_bad_origins_a_key_in_both_lists_and_bind_session_without_keys() {
    let bad_origins = [
        "shop.example.com",
        "https://*.com",
        "https://shop.example.com/path",
        "ftp://shop.example.com",
        "https://shop.example.com:99999",
        "https://user@shop.example.com",
        "https://*",
    ];
    let list: Vec<String> = bad_origins.iter().map(|o| format!("\"{o}\"")).collect();
    let yaml = format!("sites:\n  a:\n    origins: [{}]\n", list.join(", "));
    let keys: Vec<String> = (0..bad_origins.len())
        .map(|i| format!("sites.a.origins[{i}]"))
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_check_names(
        &yaml,
        &keys,
        &["scheme://host[:port]", "at least two labels"],
    );
    assert_check_names("sites:\n  a:\n    origins: []\n", &["sites.a.origins"], &[]);

    assert_check_names(
        "sites:\n  both:\n    mode: optional\n    keys:\n      allow: [name, plan]\n      signed_only: [plan]\n      verify: [{kid: k1, secret: \"host-key-one-0123456789abcdefghijk\"}]\n",
        &["sites.both.keys.signed_only"],
        &["\"plan\" is in both allow and signed_only"],
    );

    // bind_session binds tokens: without keys (mode off, or a mode with no key) it cannot.
    assert_check_names(
        "sites:\n  off:\n    bind_session: true\n  keyless:\n    mode: optional\n    bind_session: true\n    keys: {verify: []}\n",
        &[
            "sites.off.bind_session",
            "sites.keyless.bind_session",
            "sites.keyless.keys",
        ],
        &["set mode: optional or required and list its keys"],
    );
    assert_check_names(
        "sites:\n  a:\n    bind_session: yes please\n",
        &["sites.a.bind_session"],
        &["true or false"],
    );

    // The same rules, written correctly, pass.
    let dir = TempDir::new("policy-check-ok");
    let conf = dir.path().join("flowgate.yaml");
    std::fs::write(
        &conf,
        format!("{YAML}  bound:\n    mode: optional\n    bind_session: true\n    keys: [{{kid: k1, secret: \"host-key-one-0123456789abcdefghijk\"}}]\n"),
    )
    .unwrap();
    let out = check(&conf);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
