//! Live reload through the real binary: SIGHUP and `flowgate reload` under load, in-flight
//! requests finishing across 20 swaps, stored sessions surviving, a bad file changing nothing,
//! restart-only keys reported, the config hash in `/healthz`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::flowgate::{Flowgate, bin};
use common::upstream::Upstream;
use common::{b64, decode_json, wait_until_async};

const RELOADS_OK: &str = r#"flowgate_config_reloads_total{result="ok"}"#;
const RELOADS_INVALID: &str = r#"flowgate_config_reloads_total{result="invalid"}"#;

fn init(site: &str, session: &str, ctx: &str) -> String {
    format!(
        "/public_FlowWidget/init?siteid={site}&jsSessionId={session}&visitor_context={}",
        b64(ctx)
    )
}

fn poll(site: &str, session: &str) -> String {
    format!("/public_FlowWidget/chat/poll?siteid={site}&jsSessionId={session}")
}

fn config_path(fg: &Flowgate) -> std::path::PathBuf {
    fg.dir().join("flowgate.yaml")
}

fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

async fn healthz(fg: &Flowgate) -> String {
    reqwest::get(format!("http://{}/healthz", fg.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Sends SIGHUP and waits until the reload it causes is counted as `sample`.
async fn reload_counted(fg: &Flowgate, sample: &str) {
    let before = fg.metric(sample).await;
    fg.signal("HUP");
    wait_until_async("the reload to be counted", || async {
        fg.metric(sample).await > before
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_reloads_under_load_lose_no_request_and_no_session() {
    let up = Upstream::start();
    let fg = Flowgate::options().upstream(up.host_port()).start();
    let client = reqwest::Client::new();
    let stored = client
        .get(fg.url(&init("s", "kept", r#"{"ims_username":"Jane"}"#)))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);

    // 100 requests held by the upstream across every reload: they started on the first
    // configuration and must finish after the 20th swap.
    let held: Vec<_> = (0..100)
        .map(|i| {
            let (c, url) = (client.clone(), fg.url(&format!("/hold/{i}")));
            tokio::spawn(async move { c.get(url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    wait_until_async("the held requests to reach the upstream", || async {
        up.received()
            .iter()
            .filter(|r| r.path.starts_with("/hold/"))
            .count()
            == 100
    })
    .await;

    // 900 more, 30 at a time, while the reloads happen.
    let gate = Arc::new(tokio::sync::Semaphore::new(30));
    let traffic: Vec<_> = (0..900)
        .map(|i| {
            let (c, gate) = (client.clone(), gate.clone());
            let path = match i % 3 {
                0 => init("s", &format!("v{i}"), r#"{"plan":"Pro"}"#),
                1 => poll("s", "kept"),
                _ => format!("/other/{i}"),
            };
            let url = fg.url(&path);
            tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                c.get(url).send().await.map(|r| r.status().as_u16())
            })
        })
        .collect();

    let path = config_path(&fg);
    let original = std::fs::read_to_string(&path).unwrap();
    for n in 0..20 {
        // Live keys that differ every time: upstream timeouts, store deadline, log level.
        let level = if n % 2 == 0 { "warn" } else { "info" };
        let text = format!(
            "{original}upstream:\n  connect_timeout_ms: {}\n  read_timeout_ms: {}\n\
             store:\n  deadline_ms: {}\nlog:\n  level: {level}\n",
            1000 + n,
            30_000 + n,
            50 + n,
        );
        std::fs::write(&path, text).unwrap();
        reload_counted(&fg, RELOADS_OK).await;
    }
    up.release(100);

    let mut errors = Vec::new();
    for task in held.into_iter().chain(traffic) {
        match task.await.unwrap() {
            Ok(200) => {}
            other => errors.push(format!("{other:?}")),
        }
    }
    assert!(errors.is_empty(), "{} errors: {errors:?}", errors.len());
    assert_eq!(fg.metric(RELOADS_OK).await, 20.0);

    // The session stored before the reloads is still there.
    let later = client.get(fg.url(&poll("s", "kept"))).send().await.unwrap();
    assert_eq!(later.status(), 200);
    let last = up.last();
    assert_eq!(
        last.header("x-flowgate-context").map(decode_json),
        Some(serde_json::json!({"ims_username":"Jane"}))
    );
    // /healthz names the file now in force, as sha256sum prints it.
    let health = healthz(&fg).await;
    assert_eq!(
        health,
        format!("ok\nconfig: {}\n", sha256sum(&path)),
        "{health}"
    );
}

#[tokio::test]
async fn a_bad_file_changes_nothing_and_a_good_one_applies_through_flowgate_reload() {
    let up = Upstream::start();
    let fg = Flowgate::options().upstream(up.host_port()).start();
    let path = config_path(&fg);
    let original = std::fs::read_to_string(&path).unwrap();
    let started_with = healthz(&fg).await;
    assert!(
        started_with.starts_with("ok\nconfig: sha256:"),
        "{started_with}"
    );

    // Every problem is logged with its key; nothing changes.
    std::fs::write(
        &path,
        format!("{original}routes:\n  init_path: /custom/init\n  init_mach: exact\nstore:\n  ttl_seconds: 0\n"),
    )
    .unwrap();
    reload_counted(&fg, RELOADS_INVALID).await;
    fg.wait_for_log("reload refused: the configuration has problems");
    let log = fg.log();
    assert!(log.contains("routes.init_mach"), "{log}");
    assert!(log.contains("store.ttl_seconds"), "{log}");
    assert_eq!(healthz(&fg).await, started_with);
    let resp = reqwest::get(fg.url("/custom/init?siteid=s&jsSessionId=j"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        up.last().header("x-flowgate-status"),
        None,
        "old routes kept"
    );

    // `flowgate reload -c` checks the file itself first and sends nothing when it is bad.
    let out = Command::new(bin())
        .args(["reload", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("routes.init_mach"));
    assert_eq!(fg.metric(RELOADS_INVALID).await, 1.0);

    // A good file: the new init path applies to new requests; a restart-only key is reported.
    std::fs::write(
        &path,
        format!("{original}routes:\n  init_path: /custom/init\n")
            .replace("server:\n", "server:\n  threads: 3\n"),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["reload", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_until_async("the reload to be counted", || async {
        fg.metric(RELOADS_OK).await == 1.0
    })
    .await;
    let resp = reqwest::get(fg.url("/custom/init?siteid=s&jsSessionId=j"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.last().header("x-flowgate-status"), Some("absent"));
    fg.wait_for_log("needs a restart or `-u` upgrade");
    assert!(fg.log().contains("server.threads"));
    assert_eq!(
        healthz(&fg).await,
        format!("ok\nconfig: {}\n", sha256sum(&path))
    );
}
