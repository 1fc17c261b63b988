//! What init and session routes do, decided from the route and the query alone: pure, and it
//! says what happened (the verdict, dropped pairs by reason, the token's outcome) as data.
//!
//! | route   | ids            | store            | trusted headers sent                          |
//! |---------|----------------|------------------|-----------------------------------------------|
//! | init    | valid          | put (accepted) / delete (absent, discarded) | Site, Session, Status, + Context, Prefill when accepted |
//! | init    | valid, over a rate limit | none | Site, Session, Status `discarded; reason=rate_limited` |
//! | init    | missing/invalid| none             | Status `discarded; reason=bad_session`        |
//! | session | valid          | get              | Site, Session, Status (+ Context, Prefill on a hit; `absent` otherwise) |
//! | session | invalid/partial| none             | Status `discarded; reason=bad_session`        |
//! | session | neither present| none             | none                                          |

use std::net::IpAddr;

use super::params::{self, RawParams};
use super::runtime::Runtime;
use super::visitor::{self, Evaluated};
use crate::metrics::{LimitScope, RouteKind};
use crate::store::SessionKey;
use crate::trust::PageHeaders;

/// The `Status` value for requests whose site or session id is missing or invalid: the same
/// shape as a discarded context, so backends parse one format.
pub(crate) const BAD_SESSION_STATUS: &str = "discarded; reason=bad_session";

/// A validated (site, session) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ids {
    /// Site id.
    pub(crate) site: String,
    /// Chat session id.
    pub(crate) session: String,
}

impl Ids {
    pub(crate) fn key(&self) -> SessionKey<'_> {
        SessionKey {
            site: &self.site,
            session: &self.session,
        }
    }
}

/// What to do for one request, decided from its route and query alone.
// A plan is made once per request and moved once into `execute`; boxing the init's evaluation
// would cost an allocation on every init to save a few hundred bytes of stack.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Not an init or session route: nothing but anti-spoofing.
    Untouched,
    /// Init with a missing or invalid id: the context is not read.
    InitBadSession,
    /// Init with valid ids and what the edge made of its context.
    Init(Ids, Evaluated),
    /// Init with valid ids over a rate limit: the context is not read, nothing is stored.
    InitLimited(Ids, LimitScope),
    /// Session route without any id.
    SessionNoIds,
    /// Session route with an invalid id, or only one of the two.
    SessionBadIds,
    /// Session route with valid ids: look the session up.
    Session(Ids),
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

/// Decides what to do, running the context pipeline (and the token check) for an init; `page`
/// is where the request came from, for the site's origins. Inits over a rate limit (`client`: the real
/// client address) are not evaluated. `raw`: the widget's parameters found in the query.
pub(crate) fn plan(
    route: RouteKind,
    raw: &RawParams<'_>,
    client: Option<IpAddr>,
    page: PageHeaders<'_>,
    runtime: &Runtime,
) -> Plan {
    match route {
        RouteKind::Other => Plan::Untouched,
        RouteKind::Init => match ids(raw) {
            Ok(Some(ids)) => {
                if let Some(scope) = runtime.limits.init(client, &ids.site) {
                    return Plan::InitLimited(ids, scope);
                }
                let evaluated =
                    visitor::evaluate_init(raw, (&ids.site, &ids.session), &runtime.trust, page);
                Plan::Init(ids, evaluated)
            }
            Ok(None) | Err(_) => Plan::InitBadSession,
        },
        RouteKind::Session => match ids(raw) {
            Ok(Some(ids)) => Plan::Session(ids),
            Ok(None) => Plan::SessionNoIds,
            Err(_) => Plan::SessionBadIds,
        },
    }
}
