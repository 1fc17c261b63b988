//! Store calls under a deadline: a slow or failing store never fails a request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::{Metrics, StoreOp, StoreResult};
use crate::store::{SessionEntry, SessionKey, SessionStore, StoreError};

/// The store as the proxy uses it: every call bounded, counted and timed.
pub struct DeadlineStore {
    store: Arc<dyn SessionStore>,
    deadline: Duration,
    metrics: Arc<Metrics>,
}

impl DeadlineStore {
    /// Wraps `store`; each call gives up after `deadline`.
    pub fn new(store: Arc<dyn SessionStore>, deadline: Duration, metrics: Arc<Metrics>) -> Self {
        DeadlineStore {
            store,
            deadline,
            metrics,
        }
    }

    /// The backend's short name.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Stores an accepted context.
    pub async fn put(&self, key: SessionKey<'_>, entry: &SessionEntry) -> StoreResult {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.deadline, self.store.put(key, entry)).await {
            Ok(Ok(())) => StoreResult::Ok,
            Ok(Err(e)) => failed(StoreOp::Put, &e),
            Err(_) => StoreResult::Timeout,
        };
        self.metrics
            .store_call(StoreOp::Put, result, started.elapsed());
        result
    }

    /// Forgets a session.
    pub async fn delete(&self, key: SessionKey<'_>) -> StoreResult {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.deadline, self.store.delete(key)).await {
            Ok(Ok(())) => StoreResult::Ok,
            Ok(Err(e)) => failed(StoreOp::Delete, &e),
            Err(_) => StoreResult::Timeout,
        };
        self.metrics
            .store_call(StoreOp::Delete, result, started.elapsed());
        result
    }

    /// Looks a session up; the entry comes back only on [`StoreResult::Hit`].
    pub async fn get(&self, key: SessionKey<'_>) -> (StoreResult, Option<SessionEntry>) {
        let started = Instant::now();
        let (result, entry) = match tokio::time::timeout(self.deadline, self.store.get(key)).await {
            Ok(Ok(Some(e))) => (StoreResult::Hit, Some(e)),
            Ok(Ok(None)) => (StoreResult::Miss, None),
            Ok(Err(e)) => (failed(StoreOp::Get, &e), None),
            Err(_) => (StoreResult::Timeout, None),
        };
        self.metrics
            .store_call(StoreOp::Get, result, started.elapsed());
        (result, entry)
    }
}

fn failed(op: StoreOp, e: &StoreError) -> StoreResult {
    // The error text comes from the backend (never from visitor data).
    tracing::debug!(op = op.as_str(), error = %e, "store call failed");
    match e {
        StoreError::Timeout => StoreResult::Timeout,
        _ => StoreResult::Error,
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;

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
            Err(StoreError::Unavailable("down".into()))
        }
        fn backend(&self) -> &'static str {
            "stuck"
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_and_errors_are_results_not_failures() {
        let m = Arc::new(Metrics::new());
        let s = DeadlineStore::new(Arc::new(Stuck), Duration::from_millis(50), m.clone());
        let key = SessionKey {
            site: "s",
            session: "j",
        };
        assert_eq!(s.get(key).await, (StoreResult::Timeout, None));
        assert_eq!(
            s.put(key, &SessionEntry::default()).await,
            StoreResult::Timeout
        );
        assert_eq!(s.delete(key).await, StoreResult::Error);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(r#"flowgate_store_calls_total{op="get",result="timeout"} 1"#));
        assert!(text.contains(r#"flowgate_store_calls_total{op="delete",result="error"} 1"#));
    }
}
