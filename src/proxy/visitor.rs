//! Runs the context pipeline (and, for sites with signed context, the token check) for one
//! init request and turns the result into header values, plus what happened on the way.
//!
//! One [`Pipeline`], one [`Context`] and one decode buffer per worker thread are reused for
//! every request, so the hot path allocates only the header values it hands on.

use std::cell::RefCell;

use crate::context::{Context, Discard, DropReason, Pipeline};
use crate::headers::{self, Status};
use crate::prefill::prefill;
use crate::store::SessionEntry;
use crate::trust::{InitInput, OneTimeUse, PageHeaders, TokenOutcome, TrustPolicy, WouldDrop};

use super::params;

/// What the edge made of an init request's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted: these are the header values (and what gets stored).
    Accepted(SessionEntry),
    /// No context parameter, or an empty one.
    Absent,
    /// Discarded as a whole, for this reason.
    Discarded(Discard),
}

impl Verdict {
    /// The `Status` header value.
    pub(crate) fn status(&self) -> String {
        match self {
            Verdict::Accepted(entry) => entry.status.clone(),
            Verdict::Absent => Status::Absent.to_string(),
            Verdict::Discarded(d) => Status::Discarded(*d).to_string(),
        }
    }
}

/// Pairs dropped while the rest of a context was kept, counted by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DropCounts([u32; DropReason::ALL.len()]);

impl DropCounts {
    fn add(&mut self, reason: DropReason) {
        if let Some(i) = DropReason::ALL.iter().position(|r| *r == reason) {
            self.0[i] += 1;
        }
    }

    /// Each reason that dropped at least one pair, with its count.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (DropReason, u32)> + '_ {
        DropReason::ALL
            .iter()
            .zip(self.0)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (*r, n))
    }
}

/// What happened while an init's context was evaluated, for metrics and the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InitFindings {
    /// The decision, as the `Status` header says it.
    pub(crate) status: Status,
    /// What happened to the signed-context token.
    pub(crate) token: TokenOutcome,
    /// Pairs dropped from an accepted context.
    pub(crate) dropped: DropCounts,
    /// What the site's policy would have dropped (`enforce: report`).
    pub(crate) would_drop: WouldDrop,
    /// The `site_policy` label of those counts: the site id when it has rules of its own,
    /// else `default`.
    pub(crate) site_policy: String,
}

/// The verdict on an init's context, and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Evaluated {
    /// The header values to send and store, or why there are none.
    pub(crate) verdict: Verdict,
    /// What happened on the way.
    pub(crate) findings: InitFindings,
    /// Set when the context came from a one-time token: it stands only once the store confirms
    /// the token's first use (`replay`).
    pub(crate) one_time: Option<OneTimeUse>,
}

struct Scratch {
    pipeline: Pipeline,
    context: Context,
    raw: Vec<u8>,
    token: Vec<u8>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            pipeline: Pipeline::new(),
            context: Context::new(),
            raw: Vec::new(),
            token: Vec::new(),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// Evaluates an init request's context and signed-context token (still percent-encoded) for
/// `site` and chat `session` under the site's trust mode. Empty values count as absent (decided
/// once, by [`crate::trust::evaluate`]). `page` is where the init came from, for the site's
/// origins.
pub(crate) fn evaluate_init(
    raw: &params::RawParams<'_>,
    ids: (&str, &str),
    trust: &TrustPolicy,
    page: PageHeaders<'_>,
) -> Evaluated {
    SCRATCH.with(|cell| {
        let Ok(mut scratch) = cell.try_borrow_mut() else {
            // Unreachable (no re-entrancy), but a fresh scratch is always correct.
            return run(&mut Scratch::new(), raw, ids, trust, page);
        };
        run(&mut scratch, raw, ids, trust, page)
    })
}

fn run(
    scratch: &mut Scratch,
    raw: &params::RawParams<'_>,
    (site, session): (&str, &str),
    trust: &TrustPolicy,
    page: PageHeaders<'_>,
) -> Evaluated {
    let Scratch {
        pipeline,
        context: out,
        raw: context_raw,
        token: token_raw,
    } = scratch;
    let context = raw.context.map(|c| {
        params::decode_context_into(c, context_raw);
        &context_raw[..]
    });
    let token = raw.token.map(|t| {
        params::decode_context_into(t, token_raw);
        &token_raw[..]
    });
    let input = InitInput {
        site,
        session,
        context,
        token,
        page,
    };
    let outcome = crate::trust::evaluate(trust, &input, pipeline, out);
    let mut dropped = DropCounts::default();
    for (_key, reason) in out.dropped() {
        dropped.add(reason);
    }
    let verdict = match outcome.status {
        Status::Absent => Verdict::Absent,
        Status::Discarded(why) => Verdict::Discarded(why),
        status => Verdict::Accepted(SessionEntry {
            context: headers::context_value(out),
            prefill: headers::prefill_value(&prefill(out)),
            status: status.to_string(),
            key_hash: None,
        }),
    };
    Evaluated {
        verdict,
        findings: InitFindings {
            status: outcome.status,
            token: outcome.token,
            dropped,
            site_policy: if outcome.would_drop.is_empty() {
                String::new()
            } else if trust.has_own_rules(site) {
                site.to_owned()
            } else {
                "default".to_owned()
            },
            would_drop: outcome.would_drop,
        },
        one_time: outcome.one_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// The verdict on a `visitor_context` value (still percent-encoded) of an unsigned site.
    fn evaluate(param: Option<&str>) -> Verdict {
        let raw = params::RawParams {
            context: param,
            ..Default::default()
        };
        evaluate_init(&raw, ("", ""), &TrustPolicy::new(), PageHeaders::default()).verdict
    }

    #[test]
    fn verdicts() {
        assert_eq!(evaluate(None), Verdict::Absent);
        assert_eq!(evaluate(Some("")), Verdict::Absent);
        assert_eq!(evaluate(Some("!!")), Verdict::Discarded(Discard::Base64));
        assert_eq!(
            evaluate(Some(&b64("[1]"))),
            Verdict::Discarded(Discard::NotObject)
        );
        let Verdict::Accepted(e) = evaluate(Some(&b64(r#"{"ims_email":"a@b.c"}"#))) else {
            panic!("not accepted");
        };
        assert_eq!(e.status, "accepted");
        let ctx = base64::engine::general_purpose::STANDARD
            .decode(&e.context)
            .unwrap();
        assert_eq!(ctx, br#"{"ims_email":"a@b.c"}"#);
        assert_eq!(
            Verdict::Discarded(Discard::Json).status(),
            "discarded; reason=json"
        );
    }
}
