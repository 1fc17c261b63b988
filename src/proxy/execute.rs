//! Carries a [`Plan`] out against the session store and reports what happened.
//!
//! Every store call is bounded by the runtime's deadline: a slow or failing store never fails a
//! request, it only leaves it without stored context. Each call is timed once here; the report
//! carries the time to the metrics and the access log.

//!
//! With `sessions.bind: key` ([`Binding::required`]) an init or session route without a valid
//! `Flowgate-Session-Key` touches nothing stored; an init writes only when the stored context is
//! not bound to another key; a session route attaches only a context bound to the key it
//! presents. Every refusal is `Status: discarded; reason=session_key`, counted like the rest.

use std::time::Duration;

pub(crate) use super::calls::StoreCall;
use super::calls::{get, write};
use super::plan::{BAD_SESSION_STATUS, Plan};
use super::trusted::TrustedHeaders;
use super::visitor::{InitFindings, Verdict};
use crate::context::Discard;
use crate::headers::Status;
use crate::headers::session_key::Presented;
use crate::metrics::{LimitScope, SessionOutcome, StoreResult};
use crate::store::{SessionStore, Write, may_write};

/// What the request presented as its session key, and whether the configuration requires one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Binding {
    /// `sessions.bind: key`.
    pub(crate) required: bool,
    /// The request's `Flowgate-Session-Key`.
    pub(crate) presented: Presented,
}

impl Binding {
    /// A required key that is missing or malformed: nothing stored may be touched.
    fn lacking(&self) -> bool {
        self.required && self.presented.hash().is_none()
    }

    /// The presented key when the configuration requires one (the write is then checked).
    fn check(&self) -> Option<&Presented> {
        self.required.then_some(&self.presented)
    }
}

/// The `Status` of a request refused for its session key.
fn key_refused() -> String {
    Status::Discarded(Discard::SessionKey).to_string()
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

/// Carries `plan` out against `store`, each call bounded by `deadline`, under the request's
/// session-key `binding`; fills `out` with the headers to send.
pub(crate) async fn execute(
    plan: Plan,
    store: &dyn SessionStore,
    deadline: Duration,
    binding: Binding,
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
            if binding.lacking() {
                // Checked before a one-time token is claimed: a refused init uses nothing up.
                out.status = Some(key_refused());
                out.site = Some(ids.site);
                out.session = Some(ids.session);
                evaluated.findings.status = Status::Discarded(Discard::SessionKey);
                return Report {
                    found: Found::Init(evaluated.findings),
                    store: None,
                };
            }
            super::replay::enforce_one_time(store, deadline, &ids.site, &mut evaluated).await;
            let (call, written) = match evaluated.verdict {
                Verdict::Accepted(mut entry) => {
                    entry.key_hash = binding.presented.hash().copied();
                    let what = Write::Put(&entry);
                    let (call, written) =
                        write(store, deadline, ids.key(), what, binding.check()).await;
                    if written {
                        out.status = Some(entry.status);
                        out.context = Some(entry.context);
                        out.prefill = Some(entry.prefill);
                    }
                    (call, written)
                }
                other => {
                    // Logout (or a broken context) must not keep the previous identity.
                    let what = Write::Delete;
                    let (call, written) =
                        write(store, deadline, ids.key(), what, binding.check()).await;
                    out.status = Some(other.status());
                    (call, written)
                }
            };
            if !written {
                // Bound to another key: proxied without context, the stored one untouched.
                out.status = Some(key_refused());
                evaluated.findings.status = Status::Discarded(Discard::SessionKey);
            }
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
            if binding.lacking() {
                out.status = Some(key_refused());
                out.site = Some(ids.site);
                out.session = Some(ids.session);
                return Report {
                    found: Found::Session(SessionOutcome::SessionKey),
                    store: None,
                };
            }
            let (call, entry) = get(store, deadline, ids.key()).await;
            let outcome = match entry {
                Some(entry) if binding.required && !bound_to(&binding, entry.key_hash.as_ref()) => {
                    out.status = Some(key_refused());
                    SessionOutcome::SessionKey
                }
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

/// Whether a stored context bound to `stored` may be attached for the presented key: only a
/// bound one, to this key (an entry stored without a key is never attached under `bind: key`).
fn bound_to(binding: &Binding, stored: Option<&crate::store::KeyHash>) -> bool {
    match (stored, binding.presented.hash()) {
        (Some(_), Some(presented)) => may_write(stored, presented),
        _ => false,
    }
}
