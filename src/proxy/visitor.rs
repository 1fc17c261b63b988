//! Runs the context pipeline (and, for sites with signed context, the token check) for one
//! init request and turns the result into header values.
//!
//! One [`Pipeline`], one [`Context`] and one decode buffer per worker thread are reused for
//! every request, so the hot path allocates only the header values it hands on.

use std::cell::RefCell;

use crate::context::{Context, Discard, Pipeline};
use crate::headers::{self, Status};
use crate::metrics::Metrics;
use crate::prefill::prefill;
use crate::store::SessionEntry;
use crate::trust::{InitInput, TrustPolicy};

use super::params;

/// What the edge made of an init request's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: these are the header values (and what gets stored).
    Accepted(SessionEntry),
    /// No context parameter, or an empty one.
    Absent,
    /// Discarded as a whole, for this reason.
    Discarded(Discard),
}

impl Verdict {
    /// The `Status` header value.
    pub fn status(&self) -> String {
        match self {
            Verdict::Accepted(entry) => entry.status.clone(),
            Verdict::Absent => Status::Absent.to_string(),
            Verdict::Discarded(d) => Status::Discarded(*d).to_string(),
        }
    }

    /// Outcome and reason labels for the access log.
    pub fn label(&self) -> (&'static str, Option<&'static str>) {
        match self {
            Verdict::Accepted(_) => ("accepted", None),
            Verdict::Absent => ("absent", None),
            Verdict::Discarded(d) => ("discarded", Some(d.as_str())),
        }
    }
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

/// Evaluates the (still percent-encoded) context parameter of a site without signed context.
pub fn evaluate(param: Option<&str>, metrics: &Metrics) -> Verdict {
    let raw = params::RawParams {
        context: param,
        ..Default::default()
    };
    evaluate_init(&raw, "", &TrustPolicy::new(), metrics)
}

/// Evaluates an init request's context and signed-context token (still percent-encoded) for
/// `site` under the site's trust mode, and counts the outcome.
pub fn evaluate_init(
    raw: &params::RawParams<'_>,
    site: &str,
    trust: &TrustPolicy,
    metrics: &Metrics,
) -> Verdict {
    let context = raw.context.filter(|p| !p.is_empty());
    let token = raw.token.filter(|p| !p.is_empty());
    if context.is_none() && token.is_none() {
        metrics.init_absent();
        return Verdict::Absent;
    }
    SCRATCH.with(|cell| {
        let Ok(mut scratch) = cell.try_borrow_mut() else {
            // Unreachable (no re-entrancy), but a fresh scratch is always correct.
            return run(&mut Scratch::new(), context, token, site, trust, metrics);
        };
        run(&mut scratch, context, token, site, trust, metrics)
    })
}

fn run(
    scratch: &mut Scratch,
    context: Option<&str>,
    token: Option<&str>,
    site: &str,
    trust: &TrustPolicy,
    metrics: &Metrics,
) -> Verdict {
    let Scratch {
        pipeline,
        context: out,
        raw,
        token: token_raw,
    } = scratch;
    let context = context.map(|c| {
        params::decode_context_into(c, raw);
        &raw[..]
    });
    let token = token.map(|t| {
        params::decode_context_into(t, token_raw);
        &token_raw[..]
    });
    let input = InitInput {
        site,
        context,
        token,
    };
    let outcome = crate::trust::evaluate(trust, &input, pipeline, out);
    for (_key, reason) in out.dropped() {
        metrics.pair_dropped(reason);
    }
    metrics.context_token(&outcome.token);
    match outcome.status {
        Status::Absent => {
            metrics.init_absent();
            Verdict::Absent
        }
        Status::Discarded(why) => {
            metrics.init_discarded(why);
            Verdict::Discarded(why)
        }
        status => {
            metrics.init_accepted();
            if status != Status::Accepted {
                metrics.init_verification(status == Status::Verified);
            }
            Verdict::Accepted(SessionEntry {
                context: headers::context_value(out),
                prefill: headers::prefill_value(&prefill(out)),
                status: status.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn verdicts() {
        let m = Metrics::new();
        assert_eq!(evaluate(None, &m), Verdict::Absent);
        assert_eq!(evaluate(Some(""), &m), Verdict::Absent);
        assert_eq!(
            evaluate(Some("!!"), &m),
            Verdict::Discarded(Discard::Base64)
        );
        assert_eq!(
            evaluate(Some(&b64("[1]")), &m),
            Verdict::Discarded(Discard::NotObject)
        );
        let Verdict::Accepted(e) = evaluate(Some(&b64(r#"{"ims_email":"a@b.c"}"#)), &m) else {
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
