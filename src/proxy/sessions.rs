//! What init and session routes do: decide from the query (pure), then talk to the store.
//!
//! | route   | ids            | store            | trusted headers sent                          |
//! |---------|----------------|------------------|-----------------------------------------------|
//! | init    | valid          | put (accepted) / delete (absent, discarded) | Site, Session, Status, + Context, Prefill when accepted |
//! | init    | missing/invalid| none             | Status `discarded; reason=bad_session`        |
//! | session | valid          | get              | Site, Session, Status (+ Context, Prefill on a hit; `absent` otherwise) |
//! | session | invalid/partial| none             | Status `discarded; reason=bad_session`        |
//! | session | neither present| none             | none                                          |

use crate::config::ParamNames;
use crate::headers::Status;
use crate::metrics::{Metrics, RouteKind, SessionOutcome, StoreResult};
use crate::store::SessionKey;
use crate::trust::TrustPolicy;

use super::params::{self, RawParams};
use super::store_call::DeadlineStore;
use super::trusted::TrustedHeaders;
use super::visitor::{self, Verdict};

/// The reason given when a site or session id is missing or invalid.
pub const BAD_SESSION_REASON: &str = "bad_session";
/// The `Status` value for requests whose site or session id is missing or invalid: the same
/// shape as a discarded context, so backends parse one format.
pub const BAD_SESSION_STATUS: &str = "discarded; reason=bad_session";

/// A validated (site, session) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// Site id.
    pub site: String,
    /// Chat session id.
    pub session: String,
}

impl Ids {
    fn key(&self) -> SessionKey<'_> {
        SessionKey {
            site: &self.site,
            session: &self.session,
        }
    }
}

/// What to do for one request, decided from its route and query alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Not an init or session route: nothing but anti-spoofing.
    Untouched,
    /// Init with a missing or invalid id: the context is not read.
    InitBadSession,
    /// Init with valid ids and the edge's verdict on its context.
    Init(Ids, Verdict),
    /// Session route without any id.
    SessionNoIds,
    /// Session route with an invalid id, or only one of the two.
    SessionBadIds,
    /// Session route with valid ids: look the session up.
    Session(Ids),
}

/// What a plan ended as, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Outcome label (`accepted`, `absent`, `discarded`, `hit`, `miss`, `bad_session`, …).
    pub outcome: &'static str,
    /// Why, for `discarded` (`json`, `size`, …).
    pub reason: Option<&'static str>,
    /// The store call made, if any.
    pub store: Option<StoreResult>,
}

fn ids(raw: &RawParams<'_>) -> Result<Option<Ids>, params::BadId> {
    match (raw.site, raw.session) {
        (None, None) => Ok(None),
        (Some(site), Some(session)) => Ok(Some(Ids {
            site: params::decode_id(site)?.into_owned(),
            session: params::decode_id(session)?.into_owned(),
        })),
        _ => Err(params::BadId),
    }
}

/// Decides what to do (and runs the context pipeline for an init). Pure apart from metrics.
pub fn plan(
    route: RouteKind,
    query: &str,
    names: &ParamNames,
    trust: &TrustPolicy,
    metrics: &Metrics,
) -> Plan {
    match route {
        RouteKind::Other => Plan::Untouched,
        RouteKind::Init => {
            let raw = params::find(query, names);
            match ids(&raw) {
                Ok(Some(ids)) => {
                    let verdict = visitor::evaluate_init(&raw, &ids.site, trust, metrics);
                    Plan::Init(ids, verdict)
                }
                Ok(None) | Err(_) => {
                    metrics.init_bad_session();
                    Plan::InitBadSession
                }
            }
        }
        RouteKind::Session => {
            let raw = params::find(query, names);
            match ids(&raw) {
                Ok(Some(ids)) => Plan::Session(ids),
                Ok(None) => {
                    metrics.session(SessionOutcome::NoIds);
                    Plan::SessionNoIds
                }
                Err(_) => {
                    metrics.session(SessionOutcome::BadSession);
                    Plan::SessionBadIds
                }
            }
        }
    }
}

fn bad_session_status() -> Option<String> {
    Some(BAD_SESSION_STATUS.to_owned())
}

/// Carries a plan out against the store; fills `out` with the headers to send.
pub async fn execute(
    plan: Plan,
    store: &DeadlineStore,
    metrics: &Metrics,
    out: &mut TrustedHeaders,
) -> Done {
    match plan {
        Plan::Untouched => Done {
            outcome: "-",
            reason: None,
            store: None,
        },
        Plan::InitBadSession => {
            out.status = bad_session_status();
            Done {
                outcome: BAD_SESSION_REASON,
                reason: None,
                store: None,
            }
        }
        Plan::SessionBadIds => {
            out.status = bad_session_status();
            Done {
                outcome: BAD_SESSION_REASON,
                reason: None,
                store: None,
            }
        }
        Plan::SessionNoIds => Done {
            outcome: "no_ids",
            reason: None,
            store: None,
        },
        Plan::Init(ids, verdict) => {
            let (outcome, reason) = verdict.label();
            let result = match verdict {
                Verdict::Accepted(entry) => {
                    let result = store.put(ids.key(), &entry).await;
                    out.status = Some(entry.status);
                    out.context = Some(entry.context);
                    out.prefill = Some(entry.prefill);
                    result
                }
                other => {
                    // Logout (or a broken context) must not keep the previous identity.
                    let result = store.delete(ids.key()).await;
                    out.status = Some(other.status());
                    result
                }
            };
            out.site = Some(ids.site);
            out.session = Some(ids.session);
            Done {
                outcome,
                reason,
                store: Some(result),
            }
        }
        Plan::Session(ids) => {
            let (result, entry) = store.get(ids.key()).await;
            let outcome = match entry {
                Some(entry) => {
                    out.status = Some(entry.status);
                    out.context = Some(entry.context);
                    out.prefill = Some(entry.prefill);
                    SessionOutcome::Hit
                }
                None => {
                    out.status = Some(Status::Absent.to_string());
                    if result == StoreResult::Miss {
                        SessionOutcome::Miss
                    } else {
                        SessionOutcome::Unavailable
                    }
                }
            };
            metrics.session(outcome);
            out.site = Some(ids.site);
            out.session = Some(ids.session);
            Done {
                outcome: outcome.as_str(),
                reason: None,
                store: Some(result),
            }
        }
    }
}
