//! The session store calls a request makes, each bounded by the deadline and timed once: a
//! slow or failing store is a result (`timeout`, `error`), never a failed request.

use std::time::{Duration, Instant};

use crate::headers::session_key::Presented;
use crate::metrics::{StoreOp, StoreResult};
use crate::store::{SessionEntry, SessionKey, SessionStore, StoreError, Write};

/// One store call: which, how it ended, how long it took (deadline included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreCall {
    /// The operation.
    pub(crate) op: StoreOp,
    /// How it ended.
    pub(crate) result: StoreResult,
    /// How long it took.
    pub(crate) elapsed: Duration,
    /// Why it failed, as the store named it (`wrongpass`, `breaker_open`, …); `None` on success.
    pub(crate) error: Option<&'static str>,
}

/// An init's write: with a required key, checked against the stored key hash in the same
/// atomic step (`write_bound`); without, a plain put or delete. `false` only when the stored
/// context is bound to another key and was left alone (a failed call is not a refusal).
pub(crate) async fn write(
    store: &dyn SessionStore,
    deadline: Duration,
    key: SessionKey<'_>,
    what: Write<'_>,
    required: Option<&Presented>,
) -> (StoreCall, bool) {
    let op = match what {
        Write::Put(_) => StoreOp::Put,
        Write::Delete => StoreOp::Delete,
    };
    let Some(hash) = required.and_then(Presented::hash) else {
        let call = match what {
            Write::Put(entry) => put(store, deadline, key, entry).await,
            Write::Delete => delete(store, deadline, key).await,
        };
        return (call, true);
    };
    let started = Instant::now();
    let bound = store.write_bound(key, what, hash);
    let (result, error, written) = match tokio::time::timeout(deadline, bound).await {
        Ok(Ok(written)) => (StoreResult::Ok, None, written),
        Ok(Err(e)) => {
            let (result, error) = failed(op, &e);
            (result, error, true)
        }
        Err(_) => (StoreResult::Timeout, Some("timeout"), true),
    };
    let call = StoreCall {
        op,
        result,
        elapsed: started.elapsed(),
        error,
    };
    (call, written)
}

/// Stores an accepted context.
pub(crate) async fn put(
    store: &dyn SessionStore,
    deadline: Duration,
    key: SessionKey<'_>,
    entry: &SessionEntry,
) -> StoreCall {
    let started = Instant::now();
    let (result, error) = match tokio::time::timeout(deadline, store.put(key, entry)).await {
        Ok(Ok(())) => (StoreResult::Ok, None),
        Ok(Err(e)) => failed(StoreOp::Put, &e),
        Err(_) => (StoreResult::Timeout, Some("timeout")),
    };
    StoreCall {
        op: StoreOp::Put,
        result,
        elapsed: started.elapsed(),
        error,
    }
}

/// Forgets a session.
pub(crate) async fn delete(
    store: &dyn SessionStore,
    deadline: Duration,
    key: SessionKey<'_>,
) -> StoreCall {
    let started = Instant::now();
    let (result, error) = match tokio::time::timeout(deadline, store.delete(key)).await {
        Ok(Ok(())) => (StoreResult::Ok, None),
        Ok(Err(e)) => failed(StoreOp::Delete, &e),
        Err(_) => (StoreResult::Timeout, Some("timeout")),
    };
    StoreCall {
        op: StoreOp::Delete,
        result,
        elapsed: started.elapsed(),
        error,
    }
}

/// Looks a session up; the entry comes back only on [`StoreResult::Hit`].
pub(crate) async fn get(
    store: &dyn SessionStore,
    deadline: Duration,
    key: SessionKey<'_>,
) -> (StoreCall, Option<SessionEntry>) {
    let started = Instant::now();
    let (result, error, entry) = match tokio::time::timeout(deadline, store.get(key)).await {
        Ok(Ok(Some(e))) => (StoreResult::Hit, None, Some(e)),
        Ok(Ok(None)) => (StoreResult::Miss, None, None),
        Ok(Err(e)) => {
            let (result, error) = failed(StoreOp::Get, &e);
            (result, error, None)
        }
        Err(_) => (StoreResult::Timeout, Some("timeout"), None),
    };
    let call = StoreCall {
        op: StoreOp::Get,
        result,
        elapsed: started.elapsed(),
        error,
    };
    (call, entry)
}

/// The result and the access log's error label of a failed call.
fn failed(op: StoreOp, e: &StoreError) -> (StoreResult, Option<&'static str>) {
    // The error text names a kind, never a backend message or visitor data.
    tracing::debug!(op = op.as_str(), error = %e, "store call failed");
    let result = match e {
        StoreError::Timeout => StoreResult::Timeout,
        _ => StoreResult::Error,
    };
    // An open breaker names the failure that opened it: `breaker_open:wrongpass`.
    let label = match e {
        StoreError::CircuitOpen(kind) => breaker_label(*kind),
        other => other.label(),
    };
    (result, Some(label))
}

/// `breaker_open:<kind>` as a static string.
fn breaker_label(kind: crate::store::FailureKind) -> &'static str {
    use crate::store::FailureKind as K;
    match kind {
        K::Timeout => "breaker_open:timeout",
        K::ConnectionRefused => "breaker_open:connection_refused",
        K::ConnectionLost => "breaker_open:connection_lost",
        K::NoAuth => "breaker_open:noauth",
        K::WrongPass => "breaker_open:wrongpass",
        K::NoPerm => "breaker_open:noperm",
        K::ReadOnly => "breaker_open:readonly",
        K::Loading => "breaker_open:loading",
        K::MasterDown => "breaker_open:masterdown",
        K::ClusterDown => "breaker_open:clusterdown",
        K::Server => "breaker_open:server_error",
        K::Corrupt => "breaker_open:corrupt",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::metrics::Metrics;
    use crate::proxy::execute::{Found, Report};
    use crate::proxy::record;
    use crate::store::{KeyHash, Write};

    /// A store that never answers, to exercise the deadline.
    struct Stuck;

    #[async_trait]
    impl SessionStore for Stuck {
        async fn put(&self, _: SessionKey<'_>, _: &SessionEntry) -> Result<(), StoreError> {
            std::future::pending().await
        }
        async fn get(&self, _: SessionKey<'_>) -> Result<Option<SessionEntry>, StoreError> {
            std::future::pending().await
        }
        async fn delete(&self, _: SessionKey<'_>) -> Result<(), StoreError> {
            Err(StoreError::Failed(
                crate::store::FailureKind::ConnectionRefused,
            ))
        }
        async fn write_bound(
            &self,
            _: SessionKey<'_>,
            _: Write<'_>,
            _: &KeyHash,
        ) -> Result<bool, StoreError> {
            std::future::pending().await
        }
        async fn claim_once(&self, _: &str, _: &str, _: Duration) -> Result<bool, StoreError> {
            std::future::pending().await
        }
        async fn purge_site(
            &self,
            _: &str,
            _: &crate::store::PurgeProgress,
        ) -> Result<crate::store::PurgeCounts, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        fn backend(&self) -> &'static str {
            "stuck"
        }
    }

    /// Records one store call the way a request's report does.
    fn count(m: &Metrics, call: StoreCall) {
        record::decision(
            m,
            0,
            &Report {
                found: Found::Untouched,
                store: Some(call),
            },
        );
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_and_errors_are_results_not_failures() {
        let m = Arc::new(Metrics::new());
        let s = Stuck;
        let deadline = Duration::from_millis(50);
        let key = SessionKey {
            site: "s",
            session: "j",
        };
        let (get_call, entry) = get(&s, deadline, key).await;
        assert_eq!((get_call.result, entry), (StoreResult::Timeout, None));
        let put_call = put(&s, deadline, key, &SessionEntry::default()).await;
        assert_eq!(put_call.result, StoreResult::Timeout);
        let delete_call = delete(&s, deadline, key).await;
        assert_eq!(delete_call.result, StoreResult::Error);
        for call in [get_call, put_call, delete_call] {
            count(&m, call);
        }
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(r#"flowgate_store_calls_total{op="get",result="timeout"} 1"#));
        assert!(text.contains(r#"flowgate_store_calls_total{op="delete",result="error"} 1"#));
    }
}
