//! Carries a [`Plan`] out against the session store and reports what happened.
//!
//! Every store call is bounded by the runtime's deadline: a slow or failing store never fails a
//! request, it only leaves it without stored context. Each call is timed once here; the report
//! carries the time to the metrics and the access log.

use std::time::{Duration, Instant};

use super::plan::{BAD_SESSION_STATUS, Plan};
use super::trusted::TrustedHeaders;
use super::visitor::{InitFindings, Verdict};
use crate::context::Discard;
use crate::headers::Status;
use crate::metrics::{LimitScope, SessionOutcome, StoreOp, StoreResult};
use crate::store::{SessionEntry, SessionKey, SessionStore, StoreError};

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

/// What a request's decision came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// Not an init or session route.
    Untouched,
    /// Init with a missing or invalid id.
    InitBadSession,
    /// Init with valid ids: what its context evaluation found.
    Init(InitFindings),
    /// Init over a rate limit: its context was neither read nor stored.
    InitLimited(LimitScope),
    /// Session route: what the look-up (or its absence) came to.
    Session(SessionOutcome),
}

/// What executing a plan came to: everything the metrics and the access log need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// The decision.
    pub(crate) found: Found,
    /// The store call made, if any.
    pub(crate) store: Option<StoreCall>,
}

impl Report {
    /// The report of a request nothing was decided for (yet).
    pub(crate) fn untouched() -> Report {
        Report {
            found: Found::Untouched,
            store: None,
        }
    }

    /// Outcome and reason labels for the access log.
    pub(crate) fn labels(&self) -> (&'static str, Option<&'static str>) {
        match &self.found {
            Found::Untouched => ("-", None),
            Found::InitBadSession => ("bad_session", None),
            Found::InitLimited(_) => ("discarded", Some(Discard::RateLimited.as_str())),
            Found::Init(findings) => match findings.status {
                Status::Absent => ("absent", None),
                Status::Discarded(d) => ("discarded", Some(d.as_str())),
                Status::Accepted | Status::Verified | Status::Unverified => ("accepted", None),
            },
            Found::Session(outcome) => (outcome.as_str(), None),
        }
    }
}

/// The report of a rate-limited init that is answered `429` instead of carried out.
pub(crate) fn limited_report(plan: &Plan) -> Report {
    match plan {
        Plan::InitLimited(_, scope) => Report {
            found: Found::InitLimited(*scope),
            store: None,
        },
        _ => Report::untouched(),
    }
}

/// Carries `plan` out against `store`, each call bounded by `deadline`; fills `out` with the
/// headers to send.
pub(crate) async fn execute(
    plan: Plan,
    store: &dyn SessionStore,
    deadline: Duration,
    out: &mut TrustedHeaders,
) -> Report {
    match plan {
        Plan::Untouched => Report::untouched(),
        Plan::InitBadSession => {
            out.status = Some(BAD_SESSION_STATUS.to_owned());
            Report {
                found: Found::InitBadSession,
                store: None,
            }
        }
        Plan::SessionBadIds => {
            out.status = Some(BAD_SESSION_STATUS.to_owned());
            Report {
                found: Found::Session(SessionOutcome::BadSession),
                store: None,
            }
        }
        Plan::SessionNoIds => Report {
            found: Found::Session(SessionOutcome::NoIds),
            store: None,
        },
        Plan::Init(ids, mut evaluated) => {
            super::replay::enforce_one_time(store, deadline, &ids.site, &mut evaluated).await;
            let call = match evaluated.verdict {
                Verdict::Accepted(entry) => {
                    let call = put(store, deadline, ids.key(), &entry).await;
                    out.status = Some(entry.status);
                    out.context = Some(entry.context);
                    out.prefill = Some(entry.prefill);
                    call
                }
                other => {
                    // Logout (or a broken context) must not keep the previous identity.
                    let call = delete(store, deadline, ids.key()).await;
                    out.status = Some(other.status());
                    call
                }
            };
            out.site = Some(ids.site);
            out.session = Some(ids.session);
            Report {
                found: Found::Init(evaluated.findings),
                store: Some(call),
            }
        }
        Plan::InitLimited(ids, scope) => {
            out.status = Some(Status::Discarded(Discard::RateLimited).to_string());
            out.site = Some(ids.site);
            out.session = Some(ids.session);
            Report {
                found: Found::InitLimited(scope),
                store: None,
            }
        }
        Plan::Session(ids) => {
            let (call, entry) = get(store, deadline, ids.key()).await;
            let outcome = match entry {
                Some(entry) => {
                    out.status = Some(entry.status);
                    out.context = Some(entry.context);
                    out.prefill = Some(entry.prefill);
                    SessionOutcome::Hit
                }
                None => {
                    out.status = Some(Status::Absent.to_string());
                    if call.result == StoreResult::Miss {
                        SessionOutcome::Miss
                    } else {
                        SessionOutcome::Unavailable
                    }
                }
            };
            out.site = Some(ids.site);
            out.session = Some(ids.session);
            Report {
                found: Found::Session(outcome),
                store: Some(call),
            }
        }
    }
}

/// Stores an accepted context.
async fn put(
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
async fn delete(store: &dyn SessionStore, deadline: Duration, key: SessionKey<'_>) -> StoreCall {
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
async fn get(
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
    use crate::proxy::record;

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
