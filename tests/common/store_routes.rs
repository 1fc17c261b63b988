//! Widget routes and checks the Redis tests through the binary share: init and session-route
//! paths with a sequence number (so each request is found in the upstream's record), whether a
//! request carried stored context, `/healthz`.

use super::b64;
use super::flowgate::Flowgate;
use super::upstream::Upstream;

/// A context the pipeline accepts.
pub const CONTEXT: &str = r#"{"account_id":"USR-84920","plan":"Pro","ims_username":"Jane Smith"}"#;

/// The init path, with a context when given.
pub fn init_path(site: &str, session: &str, ctx: Option<&str>) -> String {
    let mut p = format!("/public_FlowWidget/init?siteid={site}&jsSessionId={session}");
    if let Some(c) = ctx {
        p.push_str("&visitor_context=");
        p.push_str(&b64(c));
    }
    p
}

/// A session route, unique by `seq`.
pub fn poll_path(site: &str, session: &str, seq: u64) -> String {
    format!("/public_FlowWidget/chat/poll?jsSessionId={session}&siteid={site}&seq={seq}")
}

/// Whether the upstream got the stored context on the request with this exact query.
pub fn had_context(up: &Upstream, path_and_query: &str) -> Option<bool> {
    let (path, query) = path_and_query.split_once('?').unwrap();
    up.received()
        .into_iter()
        .rev()
        .find(|r| r.path == path && r.query.as_deref() == Some(query))
        .map(|r| r.header("x-flowgate-context").is_some())
}

/// The status of a GET.
pub async fn get(client: &reqwest::Client, url: String) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

/// The store's line of `/healthz` (the first; the second names the configuration).
pub async fn healthz(fg: &Flowgate) -> String {
    let text = reqwest::get(format!("http://{}/healthz", fg.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first = text.lines().next().unwrap_or_default();
    format!("{first}\n")
}

/// The config lines selecting the Redis store at `url`.
pub fn redis_yaml(url: &str) -> String {
    format!("redis:\n  url: \"{url}\"\n")
}
