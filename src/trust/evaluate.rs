//! The per-init decision: unsigned context, token, site mode → pairs and `Status`.
//!
//! Pure and I/O-free like the pipeline it wraps; the proxy and `flowgate inspect` both call
//! [`evaluate`], so what `inspect` shows is what the edge does.

use crate::context::{Context, Discard, Pipeline};
use crate::headers::Status;

use super::policy::{self, Enforce, PageHeaders, PolicyReason, WouldDrop};
use super::token::{self, TokenError};
use super::{Mode, TrustPolicy};

/// The inputs of one init request, already URL-decoded; empty values count as absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct InitInput<'a> {
    /// The validated site id.
    pub site: &'a str,
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
}

impl Outcome {
    /// Whether pairs were accepted (any of the three accepted statuses).
    pub fn is_accepted(&self) -> bool {
        matches!(
            self.status,
            Status::Accepted | Status::Verified | Status::Unverified
        )
    }
}

/// Decides what an init request's context is, writing accepted pairs into `out`.
///
/// - Mode `off` (or a site not configured): the token is ignored and the unsigned context goes
///   through the pipeline as always.
/// - A token is present (modes `optional`, `required`): it must verify; its private claims go
///   through the pipeline (`accepted; verified`). A bad token discards the context
///   (`bad_signature`; `size` when it is too long) — the unsigned context of the same request
///   is not used instead.
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
            };
        }
    }
    let (status, mode, token) = evaluate_token(policy, input, pipeline, out);
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
    }
}

/// The token and site-mode part of [`evaluate`]: the status, the mode, the token's outcome.
fn evaluate_token(
    policy: &TrustPolicy,
    input: &InitInput<'_>,
    pipeline: &mut Pipeline,
    out: &mut Context,
) -> (Status, Mode, TokenOutcome) {
    let context = input.context.filter(|c| !c.is_empty());
    let token = input.token.filter(|t| !t.is_empty());
    let site = policy.site(input.site).filter(|p| p.mode != Mode::Off);
    let Some(site) = site else {
        let outcome = match token {
            Some(_) => TokenOutcome::Ignored,
            None => TokenOutcome::Absent,
        };
        let status = unsigned(context, pipeline, out, Status::Accepted);
        return (status, Mode::Off, outcome);
    };
    let mode = site.mode;
    let Some(token) = token else {
        let status = unsigned(context, pipeline, out, Status::Unverified);
        return (status, mode, TokenOutcome::Absent);
    };
    match token::verify(token, input.site, &site.keys, &site.time_rules()) {
        Ok(verified) => {
            let status = match pipeline.run_json(&verified.context_json, out) {
                Ok(()) => Status::Verified,
                Err(why) => Status::Discarded(why),
            };
            (status, mode, TokenOutcome::Verified { kid: verified.kid })
        }
        Err(why) => {
            out.clear();
            let discard = match why {
                TokenError::TooLong => Discard::Size,
                _ => Discard::BadSignature,
            };
            (
                Status::Discarded(discard),
                mode,
                TokenOutcome::Rejected(why),
            )
        }
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
