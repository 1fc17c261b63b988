//! The per-init decision: unsigned context, token, site mode → pairs and `Status`.
//!
//! Pure and I/O-free like the pipeline it wraps; the proxy and `flowgate inspect` both call
//! [`evaluate`], so what `inspect` shows is what the edge does.

use crate::context::{Context, Discard, DropReason, Pipeline};
use crate::headers::Status;

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
pub fn evaluate(
    policy: &TrustPolicy,
    input: &InitInput<'_>,
    pipeline: &mut Pipeline,
    out: &mut Context,
) -> Outcome {
    let context = input.context.filter(|c| !c.is_empty());
    let token = input.token.filter(|t| !t.is_empty());
    let site = policy.site(input.site).filter(|p| p.mode != Mode::Off);
    let Some(site) = site else {
        return Outcome {
            status: unsigned(context, pipeline, out, Status::Accepted),
            mode: Mode::Off,
            token: match token {
                Some(_) => TokenOutcome::Ignored,
                None => TokenOutcome::Absent,
            },
        };
    };
    let mode = site.mode;
    if let Some(token) = token {
        let (status, token) = match token::verify(token, input.site, &site.keys, &site.time_rules())
        {
            Ok(verified) => {
                let status = match pipeline.run_json(&verified.context_json, out) {
                    Ok(()) => Status::Verified,
                    Err(why) => Status::Discarded(why),
                };
                (status, TokenOutcome::Verified { kid: verified.kid })
            }
            Err(why) => {
                out.clear();
                let discard = match why {
                    TokenError::TooLong => Discard::Size,
                    _ => Discard::BadSignature,
                };
                (Status::Discarded(discard), TokenOutcome::Rejected(why))
            }
        };
        return Outcome {
            status,
            mode,
            token,
        };
    }
    let status = unsigned(context, pipeline, out, Status::Unverified);
    if mode == Mode::Required && status == Status::Unverified {
        out.drop_where(|k| k.starts_with("ims_"), DropReason::UnverifiedIdentity);
    }
    Outcome {
        status,
        mode,
        token: TokenOutcome::Absent,
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
