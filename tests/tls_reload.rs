//! Certificate reload through the real binary: a changed file on the watch and on SIGHUP, a new
//! `tls.certs` list through a configuration reload (served at once, sessions kept), and a
//! certificate that does not load refused with everything else in force kept.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::flowgate::{Flowgate, bin};
use common::ports::{accepts, free_addr};
use common::tls::{Leaf, TestCa, curl, served_subject, tls_yaml};
use common::upstream::Upstream;
use common::{b64, decode_json, wait_until, wait_until_async};

const RELOADS_OK: &str = r#"flowgate_config_reloads_total{result="ok"}"#;
const RELOADS_FAILED: &str = r#"flowgate_config_reloads_total{result="failed"}"#;

fn start_https(upstream: &str, tls: &str) -> Flowgate {
    Flowgate::options().upstream(upstream).yaml(tls).start()
}

fn wait_https(addr: SocketAddr) {
    wait_until("the HTTPS listener accepts", || accepts(addr));
}

/// How many reloads the process refused so far.
fn refusals(f: &Flowgate) -> usize {
    f.log().matches("certificate reload refused").count()
}

/// Overwrites `target`'s files with `from`'s (as a renewal does).
fn replace(target: &Leaf, from: &Leaf) {
    std::fs::copy(&from.key, &target.key).unwrap();
    std::fs::copy(&from.cert, &target.cert).unwrap();
}

#[test]
fn a_changed_certificate_file_is_served_without_a_restart_and_a_bad_one_is_refused() {
    let ca = TestCa::new();
    let a = ca.issue("a", &["a.test"], "v1", 30);
    let upstream = Upstream::start();
    let https = free_addr();
    let f = start_https(
        &upstream.host_port(),
        &tls_yaml(https, &[(&a, &[])], "  watch_interval_seconds: 1\n"),
    );
    wait_https(https);
    assert!(served_subject(https, "a.test").contains("O = v1"));

    let v2 = ca.issue("a-v2", &["a.test"], "v2", 30);
    replace(&a, &v2);
    wait_until("the renewed certificate is served", || {
        served_subject(https, "a.test").contains("O = v2")
    });
    f.wait_for_log("certificates reloaded");

    // A key that does not belong to the certificate: refused, v2 stays, the error is logged.
    let other = ca.issue("other", &["a.test"], "v3", 30);
    let before = refusals(&f);
    std::fs::copy(&other.key, &a.key).unwrap();
    wait_until("the mismatched key is refused", || refusals(&f) > before);
    assert!(f.log().contains("does not belong to"), "{}", f.log());
    assert!(served_subject(https, "a.test").contains("O = v2"));
    let out = curl(https, "a.test", "/", &ca.cert(), &[]);
    assert!(out.status.success());
}

#[test]
fn sighup_reloads_the_certificates_and_keeps_them_when_the_new_ones_do_not_load() {
    let ca = TestCa::new();
    let a = ca.issue("a", &["a.test"], "v1", 30);
    let upstream = Upstream::start();
    let https = free_addr();
    let f = start_https(
        &upstream.host_port(),
        &tls_yaml(https, &[(&a, &[])], "  watch_interval_seconds: 0\n"),
    );
    wait_https(https);
    f.wait_for_log("certificates reload on SIGHUP");

    let v2 = ca.issue("a-v2", &["a.test"], "v2", 30);
    replace(&a, &v2);
    // No file watch: nothing changes until SIGHUP.
    assert!(served_subject(https, "a.test").contains("O = v1"));
    f.signal("HUP");
    wait_until("SIGHUP loads the new certificate", || {
        served_subject(https, "a.test").contains("O = v2")
    });

    std::fs::write(&a.cert, "not a certificate\n").unwrap();
    f.signal("HUP");
    wait_until("the broken file is refused", || refusals(&f) > 0);
    assert!(served_subject(https, "a.test").contains("O = v2"));
    // The process is still the one that started, and serving.
    assert!(accepts(f.addr));
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

#[tokio::test]
async fn a_certificate_added_to_the_file_is_served_after_a_reload_and_a_bad_one_changes_nothing() {
    let ca = TestCa::new();
    let a = ca.issue("a", &["a.test"], "first", 30);
    let b = ca.issue("b", &["b.test"], "second", 30);
    let up = Upstream::start();
    let https = free_addr();
    let tls_a = tls_yaml(https, &[(&a, &[])], "  watch_interval_seconds: 0\n");
    let fg = start_https(&up.host_port(), &tls_a);
    wait_https(https);
    assert!(served_subject(https, "b.test").contains("O = first"));
    // A session kept in the process's memory: a restart would forget it.
    let ctx = b64(r#"{"ims_username":"Jane"}"#);
    let init = format!("/public_FlowWidget/init?siteid=s&jsSessionId=kept&visitor_context={ctx}");
    assert_eq!(reqwest::get(fg.url(&init)).await.unwrap().status(), 200);
    let path = fg.dir().join("flowgate.yaml");
    let original = std::fs::read_to_string(&path).unwrap();
    let started_with = healthz(&fg).await;

    // A customer's domain added: B for b.test, through `flowgate reload`.
    let tls_ab = tls_yaml(
        https,
        &[(&a, &[]), (&b, &["b.test"])],
        "  watch_interval_seconds: 0\n",
    );
    let with_b = original.replace(&tls_a, &tls_ab);
    std::fs::write(&path, &with_b).unwrap();
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
    assert!(served_subject(https, "b.test").contains("O = second"));
    assert!(served_subject(https, "a.test").contains("O = first"));
    let out = curl(https, "b.test", "/", &ca.cert(), &[]);
    assert!(out.status.success(), "{out:?}");
    let reloaded = healthz(&fg).await;
    assert_ne!(reloaded, started_with);
    let log = fg.log();
    assert_eq!(log.matches("certificates reloaded").count(), 1, "{log}");
    assert!(!log.contains("needs a restart"), "{log}");
    let poll = "/public_FlowWidget/chat/poll?siteid=s&jsSessionId=kept";
    assert_eq!(reqwest::get(fg.url(poll)).await.unwrap().status(), 200);
    assert_eq!(
        up.last().header("x-flowgate-context").map(decode_json),
        Some(serde_json::json!({"ims_username":"Jane"}))
    );

    // A third certificate whose key is another's, with a route change: the whole reload is
    // refused, naming the entry; routes, hash and certificates stay.
    let c = ca.issue("c", &["c.test"], "third", 30);
    std::fs::copy(&a.key, &c.key).unwrap();
    let tls_abc = tls_yaml(
        https,
        &[(&a, &[]), (&b, &["b.test"]), (&c, &[])],
        "  watch_interval_seconds: 0\n",
    );
    let routes = "routes:\n  init_path: /custom/init\n";
    std::fs::write(
        &path,
        format!("{}{routes}", original.replace(&tls_a, &tls_abc)),
    )
    .unwrap();
    reload_counted(&fg, RELOADS_FAILED).await;
    let log = fg.log();
    assert!(log.contains("tls.certs[2]"), "{log}");
    assert!(log.contains("does not belong to"), "{log}");
    assert_eq!(healthz(&fg).await, reloaded);
    let resp = reqwest::get(fg.url("/custom/init?siteid=s&jsSessionId=j"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        up.last().header("x-flowgate-status"),
        None,
        "old routes kept"
    );

    // A file that is not there: refused the same way.
    let missing = with_b.replace(&b.cert.display().to_string(), "/nonexistent/b.pem");
    std::fs::write(&path, missing).unwrap();
    reload_counted(&fg, RELOADS_FAILED).await;
    assert!(fg.log().contains("tls.certs[1]"), "{}", fg.log());
    assert_eq!(fg.metric(RELOADS_FAILED).await, 2.0);
    assert_eq!(fg.metric(RELOADS_OK).await, 1.0);
    assert!(served_subject(https, "b.test").contains("O = second"));
    assert!(served_subject(https, "a.test").contains("O = first"));
    assert!(served_subject(https, "c.test").contains("O = first"));
    assert_eq!(healthz(&fg).await, reloaded);

    // The file watch, off so far, turned on by a reload: a renewed B is served unasked.
    let watched = with_b.replace("watch_interval_seconds: 0", "watch_interval_seconds: 1");
    std::fs::write(&path, watched).unwrap();
    reload_counted(&fg, RELOADS_OK).await;
    replace(&b, &ca.issue("b-v2", &["b.test"], "renewed", 30));
    wait_until("the watch picks up the renewed certificate", || {
        served_subject(https, "b.test").contains("O = renewed")
    });
}
