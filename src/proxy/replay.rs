//! One-time signed tokens: before an init's context from a token with a `jti` is stored and
//! sent, the token's id is claimed in the session store. A second use — on this instance or any
//! other sharing the store — discards the context as `replayed`; a store that does not answer
//! within the deadline discards it as `replay_unchecked` (a one-time token is never accepted
//! unchecked). Either way the request is still proxied, anonymously.

use std::time::Duration;

use super::visitor::{Evaluated, Verdict};
use crate::headers::Status;
use crate::store::SessionStore;
use crate::trust::TokenError;

/// Claims the one-time token behind `evaluated`, if any, and discards its context when the
/// claim is refused or cannot be made.
pub(crate) async fn enforce_one_time(
    store: &dyn SessionStore,
    deadline: Duration,
    site: &str,
    evaluated: &mut Evaluated,
) {
    let Some(one_time) = evaluated.one_time.take() else {
        return;
    };
    if !matches!(evaluated.verdict, Verdict::Accepted(_)) {
        return;
    }
    let now = jsonwebtoken::get_current_timestamp();
    // Remembered until the token stops verifying (at least a second: it verified just now).
    let ttl = Duration::from_secs(one_time.valid_until.saturating_sub(now).max(1) + 1);
    let claim = store.claim_once(site, &one_time.jti, ttl);
    let refused = match tokio::time::timeout(deadline, claim).await {
        Ok(Ok(true)) => return,
        Ok(Ok(false)) => TokenError::Replayed,
        Ok(Err(e)) => {
            // The error text comes from the backend (never from visitor data).
            tracing::debug!(error = %e, "one-time token claim failed");
            TokenError::ReplayUnchecked
        }
        Err(_) => {
            tracing::debug!("one-time token claim timed out");
            TokenError::ReplayUnchecked
        }
    };
    let discard = match refused {
        TokenError::Replayed => crate::context::Discard::Replayed,
        _ => crate::context::Discard::ReplayUnchecked,
    };
    evaluated.verdict = Verdict::Discarded(discard);
    evaluated.findings.status = Status::Discarded(discard);
    evaluated.findings.token = crate::trust::TokenOutcome::Rejected(refused);
    evaluated.findings.dropped = Default::default();
}
