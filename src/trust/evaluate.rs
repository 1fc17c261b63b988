//! The per-init decision: unsigned context, token, site mode → pairs and `Status`.
//!
//! Pure and I/O-free like the pipeline it wraps; the proxy and `flowgate inspect` both call
//! [`evaluate`], so what `inspect` shows is what the edge does.

use crate::context::{Context, Discard, Pipeline};
use crate::headers::Status;

use subtle::ConstantTimeEq as _;

use super::policy::{self, Enforce, PageHeaders, PolicyReason, WouldDrop};
use super::token::{self, TokenError, VerifiedToken};
use super::{Mode, TrustPolicy};

/// The inputs of one init request, already URL-decoded; empty values count as absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct InitInput<'a> {
    /// The validated site id.
    pub site: &'a str,
    /// The validated chat session id (`jsSessionId`), which a token's `sid` must equal.
    pub session: &'a str,
    /// The unsigned `visitor_context` value.
    pub context: Option<&'a [u8]>,
    /// The `visitor_context_token` value.
    pub token: Option<&'a [u8]>,
    /// The page the init came from (`Origin`, `Referer`).
    pub page: PageHeaders<'a>,
}

/// What happened to the token, for metrics and `inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOutcome {
    /// No token was sent.
    Absent,
    /// A token was sent to a site whose mode is `off`; it was not looked at.
    Ignored,
    /// The token verified with the key `kid`.
    Verified {
        /// The key id that verified it.
        kid: String,
    },
    /// The token was refused.
    Rejected(TokenError),
}

/// A verified token with a `jti`: the proxy claims it in the session store before accepting
/// the context, so the token works once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeUse {
    /// The token's `jti`.
    pub jti: String,
    /// The last unix second at which the token verifies; the claim is kept until then.
    pub valid_until: u64,
}

/// The decision for one init request; the accepted pairs are in the [`Context`] passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The `Status` header.
    pub status: Status,
    /// The site's mode.
    pub mode: Mode,
    /// What happened to the token.
    pub token: TokenOutcome,
    /// What the site's policy refused but, in `enforce: report`, let through.
    pub would_drop: WouldDrop,
    /// Set when the context came from a verified token with a `jti`: accepted only once the
    /// store confirms the first use (see [`Outcome::replay_refused`]).
    pub one_time: Option<OneTimeUse>,
}

impl Outcome {
    /// Whether pairs were accepted (any of the three accepted statuses).
    pub fn is_accepted(&self) -> bool {
        matches!(
            self.status,
            Status::Accepted | Status::Verified | Status::Unverified
        )
    }

    /// The outcome once the store said a one-time token cannot be used (`why` is
    /// [`TokenError::Replayed`] or [`TokenError::ReplayUnchecked`]): the context is discarded,
    /// as for any refused token.
    pub fn replay_refused(self, why: TokenError) -> Outcome {
        Outcome {
            status: Status::Discarded(discard_for(why)),
            mode: self.mode,
            token: TokenOutcome::Rejected(why),
            would_drop: self.would_drop,
            one_time: None,
        }
    }
}

/// The discard reason of a refused token.
fn discard_for(why: TokenError) -> Discard {
    match why {
        TokenError::TooLong => Discard::Size,
        TokenError::WrongSession => Discard::WrongSession,
        TokenError::Replayed => Discard::Replayed,
        TokenError::ReplayUnchecked => Discard::ReplayUnchecked,
        _ => Discard::BadSignature,
    }
}

/// Decides what an init request's context is, writing accepted pairs into `out`.
///
/// - Mode `off` (or a site not configured): the token is ignored and the unsigned context goes
///   through the pipeline as always.
/// - A token is present (modes `optional`, `required`): it must verify; its private claims go
///   through the pipeline (`accepted; verified`). A bad token discards the context
///   (`bad_signature`; `size` when it is too long) — the unsigned context of the same request
///   is not used instead. A token whose `sid` is not the request's session — or that has no
///   `sid` on a site with `bind_session` — is refused the same way (`wrong_session`). A token
///   with a `jti` comes back with [`Outcome::one_time`] set: the proxy makes it single-use.
/// - No token: the unsigned context is `accepted; unverified`; in `required` mode its `ims_*`
///   pairs are dropped (`unverified_identity`) so they never pre-fill.
///
/// Around that, the site's page rules ([`super::SiteRules`]): an init from an origin the site
/// does not list is discarded (`origin`) before anything is read; accepted pairs then lose the
/// keys outside `keys.allow` (`key_not_allowed`) and the `keys.signed_only` keys without a
/// verified token (`unverified_key`); `values: strict` cleans what is left. With
/// `enforce: report` nothing is discarded or dropped by these rules (nor by `required`'s
/// `ims_*` rule): [`Outcome::would_drop`] counts what would have been.
pub fn evaluate(
    policy: &TrustPolicy,
    input: &InitInput<'_>,
    pipeline: &mut Pipeline,
    out: &mut Context,
) -> Outcome {
    let rules = policy.rules(input.site);
    let mut would_drop = WouldDrop::default();
    let token_present = input.token.is_some_and(|t| !t.is_empty());
    if !rules.origin_allowed(&input.page) {
        if rules.enforce == Enforce::Report {
            would_drop.add(PolicyReason::Origin);
        } else {
            out.clear();
            return Outcome {
                status: Status::Discarded(Discard::Origin),
                mode: policy.mode(input.site),
                token: if token_present {
                    TokenOutcome::Ignored
                } else {
                    TokenOutcome::Absent
                },
                would_drop,
                one_time: None,
            };
        }
    }
    let (status, mode, token, one_time) = evaluate_token(policy, input, pipeline, out);
    if matches!(
        status,
        Status::Accepted | Status::Verified | Status::Unverified
    ) {
        let verified = status == Status::Verified;
        policy::apply_keys(
            rules,
            verified,
            mode == Mode::Required,
            out,
            &mut would_drop,
        );
        policy::apply_values(rules, out);
    }
    Outcome {
        status,
        mode,
        token,
        would_drop,
        one_time,
    }
}

/// The token and site-mode part of [`evaluate`]: the status, the mode, the token's outcome and
/// its one-time use.
fn evaluate_token(
    policy: &TrustPolicy,
    input: &InitInput<'_>,
    pipeline: &mut Pipeline,
    out: &mut Context,
) -> (Status, Mode, TokenOutcome, Option<OneTimeUse>) {
    let context = input.context.filter(|c| !c.is_empty());
    let token = input.token.filter(|t| !t.is_empty());
    let site = policy.site(input.site).filter(|p| p.mode != Mode::Off);
    let Some(site) = site else {
        let outcome = match token {
            Some(_) => TokenOutcome::Ignored,
            None => TokenOutcome::Absent,
        };
        let status = unsigned(context, pipeline, out, Status::Accepted);
        return (status, Mode::Off, outcome, None);
    };
    let mode = site.mode;
    let Some(token) = token else {
        let status = unsigned(context, pipeline, out, Status::Unverified);
        return (status, mode, TokenOutcome::Absent, None);
    };
    let verified = token::verify(token, input.site, &site.keys, &site.time_rules())
        .and_then(|v| bound_to(v, input.session, site.bind_session));
    match verified {
        Ok(verified) => {
            let status = match pipeline.run_json(&verified.context_json, out) {
                Ok(()) => Status::Verified,
                Err(why) => Status::Discarded(why),
            };
            let one_time = verified.jti.map(|jti| OneTimeUse {
                jti,
                valid_until: verified.valid_until,
            });
            let token = TokenOutcome::Verified { kid: verified.kid };
            (status, mode, token, one_time)
        }
        Err(why) => {
            out.clear();
            let status = Status::Discarded(discard_for(why));
            (status, mode, TokenOutcome::Rejected(why), None)
        }
    }
}

/// The token if its `sid` is the request's session (or it has none and the site does not
/// require one). Session ids are not secrets, but the comparison is constant-time anyway so it
/// says nothing about how much of an id matched.
fn bound_to(
    token: VerifiedToken,
    session: &str,
    required: bool,
) -> Result<VerifiedToken, TokenError> {
    match &token.sid {
        Some(sid) if bool::from(sid.as_bytes().ct_eq(session.as_bytes())) => Ok(token),
        None if !required => Ok(token),
        _ => Err(TokenError::WrongSession),
    }
}

fn unsigned(
    context: Option<&[u8]>,
    pipeline: &mut Pipeline,
    out: &mut Context,
    accepted: Status,
) -> Status {
    let Some(raw) = context else {
        out.clear();
        return Status::Absent;
    };
    match pipeline.run(raw, out) {
        Ok(()) => accepted,
        Err(why) => Status::Discarded(why),
    }
}
