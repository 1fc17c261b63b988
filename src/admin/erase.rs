//! Erasure on the admin listener: `DELETE /sessions/<site>/<session>` removes one stored
//! context, `DELETE /sessions/<site>` every context of a site.
//!
//! | situation | answer |
//! | --- | --- |
//! | no admin token configured | `404`, the routes are off |
//! | no or wrong `Authorization: Bearer …` | `401` with `WWW-Authenticate: Bearer` |
//! | another method than `DELETE` | `405` |
//! | a site or session id that is not 1–128 of `[A-Za-z0-9._-]` | `400` |
//! | a site purge already running | `409` (one at a time) |
//! | the store fails | `503` |
//! | done | `200`, a JSON body with the counts |
//!
//! Every call is counted (`flowgate_admin_erasures_total{kind,result}`, and the contexts removed
//! in `flowgate_admin_erased_contexts_total`) and logged with its kind, result and counts —
//! never a site or session id. One-time token records are not erased: that would make used
//! tokens usable again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use super::auth::AdminTokens;
use crate::store::{PurgeCounts, SessionKey, SessionStore};
use crate::trust::is_valid_site_id;

/// Path prefix of the erasure routes.
pub(crate) const PREFIX: &str = "/sessions/";

/// Deadline of a one-session erasure (an operator waits, not a visitor).
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);

/// The two kinds of erasure (metric label `kind`).
const KINDS: [&str; 2] = ["session", "site"];

/// The results of an erasure call (metric label `result`).
const RESULTS: [&str; 7] = [
    "ok",
    "disabled",
    "unauthorized",
    "bad_method",
    "bad_request",
    "busy",
    "error",
];

/// An answer: status, JSON body.
pub(crate) type Answer = (u16, String);

/// The erasure routes: the tokens, the store, their counters.
pub(crate) struct Erasure {
    tokens: Option<AdminTokens>,
    store: Option<Arc<dyn SessionStore>>,
    calls: IntCounterVec,
    erased: IntCounter,
    registry: Registry,
    purging: AtomicBool,
}

impl Erasure {
    /// The routes with `tokens` (`None`: off) over `store`.
    pub(crate) fn new(tokens: Option<AdminTokens>, store: Option<Arc<dyn SessionStore>>) -> Self {
        let registry = Registry::new();
        let calls = IntCounterVec::new(
            Opts::new(
                "flowgate_admin_erasures_total",
                "Erasure calls on the admin listener by kind (session, site) and result.",
            ),
            &["kind", "result"],
        )
        .unwrap_or_else(|e| panic!("metric flowgate_admin_erasures_total: {e}"));
        let erased = IntCounter::new(
            "flowgate_admin_erased_contexts_total",
            "Stored contexts removed by erasure calls.",
        )
        .unwrap_or_else(|e| panic!("metric flowgate_admin_erased_contexts_total: {e}"));
        for m in [
            Box::new(calls.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(erased.clone()),
        ] {
            registry
                .register(m)
                .unwrap_or_else(|e| panic!("erasure metrics: {e}"));
        }
        for kind in KINDS {
            for result in RESULTS {
                calls.with_label_values(&[kind, result]);
            }
        }
        Erasure {
            tokens,
            store,
            calls,
            erased,
            registry,
            purging: AtomicBool::new(false),
        }
    }

    /// The erasure metrics, Prometheus text.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let encoder = prometheus::TextEncoder::new();
        let _ = prometheus::Encoder::encode(&encoder, &self.registry.gather(), &mut out);
        out
    }

    /// Answers one request on an erasure route; `path` starts with [`PREFIX`].
    pub(crate) async fn answer(
        &self,
        method: &http::Method,
        path: &str,
        authorization: Option<&[u8]>,
    ) -> Answer {
        let ids: Vec<&str> = path[PREFIX.len()..].split('/').collect();
        let kind = if ids.len() >= 2 { "session" } else { "site" };
        let (result, answer) = self.run(method, &ids, authorization).await;
        self.calls.with_label_values(&[kind, result]).inc();
        (answer.0, answer.1)
    }

    async fn run(
        &self,
        method: &http::Method,
        ids: &[&str],
        authorization: Option<&[u8]>,
    ) -> (&'static str, Answer) {
        let (Some(tokens), Some(store)) = (&self.tokens, &self.store) else {
            let why = "erasure is off: set FLOWGATE_ADMIN_TOKEN or erasure.token_file";
            return ("disabled", error(404, why));
        };
        if !tokens.authorises(authorization) {
            tracing::warn!(result = "unauthorized", "erasure refused");
            return (
                "unauthorized",
                error(401, "send Authorization: Bearer <admin token>"),
            );
        }
        if method != http::Method::DELETE {
            return ("bad_method", error(405, "use DELETE"));
        }
        match ids {
            [site, session] if is_valid_site_id(site) && is_valid_site_id(session) => {
                self.one(store.as_ref(), SessionKey { site, session }).await
            }
            [site] if is_valid_site_id(site) => self.site(store.as_ref(), site).await,
            _ => (
                "bad_request",
                error(
                    400,
                    "use /sessions/<siteid> or /sessions/<siteid>/<jsSessionId> (1-128 of A-Z a-z 0-9 . _ -)",
                ),
            ),
        }
    }

    async fn one(&self, store: &dyn SessionStore, key: SessionKey<'_>) -> (&'static str, Answer) {
        match tokio::time::timeout(DELETE_TIMEOUT, store.delete(key)).await {
            Ok(Ok(())) => {
                tracing::info!(kind = "session", result = "ok", "erasure done");
                (
                    "ok",
                    (200, r#"{"kind":"session","result":"ok"}"#.to_owned()),
                )
            }
            Ok(Err(e)) => failed("session", &e.to_string()),
            Err(_) => failed("session", "store call timed out"),
        }
    }

    async fn site(&self, store: &dyn SessionStore, site: &str) -> (&'static str, Answer) {
        if self.purging.swap(true, Ordering::AcqRel) {
            return (
                "busy",
                error(409, "a site purge is running; try again when it ends"),
            );
        }
        let _running = Running(&self.purging);
        let progress = |c: &PurgeCounts| {
            tracing::debug!(
                nodes = c.nodes,
                scanned = c.scanned,
                removed = c.removed,
                batches = c.batches,
                "site purge progress"
            );
        };
        match store.purge_site(site, &progress).await {
            Ok(c) => {
                self.erased.inc_by(c.removed);
                tracing::info!(
                    kind = "site",
                    result = "ok",
                    nodes = c.nodes,
                    scanned = c.scanned,
                    removed = c.removed,
                    batches = c.batches,
                    "erasure done"
                );
                let body = format!(
                    r#"{{"kind":"site","result":"ok","nodes":{},"scanned":{},"removed":{},"batches":{}}}"#,
                    c.nodes, c.scanned, c.removed, c.batches
                );
                ("ok", (200, body))
            }
            Err(e) => failed("site", &e.to_string()),
        }
    }
}

/// Clears the one-purge-at-a-time flag however the purge ends (the client may hang up).
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A store failure: the message comes from the backend (never from the request).
fn failed(kind: &'static str, why: &str) -> (&'static str, Answer) {
    tracing::warn!(kind, result = "error", error = why, "erasure failed");
    ("error", error(503, &format!("the store failed: {why}")))
}

fn error(status: u16, why: &str) -> Answer {
    let body = serde_json::json!({ "result": "refused", "error": why }).to_string();
    (status, body)
}
