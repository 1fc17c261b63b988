//! Runs the context pipeline for one init request and turns the result into header values.
//!
//! One [`Pipeline`], one [`Context`] and one decode buffer per worker thread are reused for
//! every request, so the hot path allocates only the header values it hands on.

use std::cell::RefCell;

use crate::context::{Context, Discard, Pipeline};
use crate::headers::{self, Status};
use crate::metrics::Metrics;
use crate::prefill::prefill;
use crate::store::SessionEntry;

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
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        pipeline: Pipeline::new(),
        context: Context::new(),
        raw: Vec::new(),
    });
}

/// Evaluates the (still percent-encoded) context parameter and counts the outcome.
pub fn evaluate(param: Option<&str>, metrics: &Metrics) -> Verdict {
    let Some(encoded) = param.filter(|p| !p.is_empty()) else {
        metrics.init_absent();
        return Verdict::Absent;
    };
    SCRATCH.with(|cell| {
        let Ok(mut scratch) = cell.try_borrow_mut() else {
            // Unreachable (no re-entrancy), but a fresh scratch is always correct.
            let mut fresh = Scratch {
                pipeline: Pipeline::new(),
                context: Context::new(),
                raw: Vec::new(),
            };
            return run(&mut fresh, encoded, metrics);
        };
        run(&mut scratch, encoded, metrics)
    })
}

fn run(scratch: &mut Scratch, encoded: &str, metrics: &Metrics) -> Verdict {
    let Scratch {
        pipeline,
        context,
        raw,
    } = scratch;
    params::decode_context_into(encoded, raw);
    let outcome = pipeline.run(raw, context);
    for (_key, reason) in context.dropped() {
        metrics.pair_dropped(reason);
    }
    match outcome {
        Ok(()) => {
            metrics.init_accepted();
            let entry = SessionEntry {
                context: headers::context_value(context),
                prefill: headers::prefill_value(&prefill(context)),
                status: Status::Accepted.to_string(),
            };
            Verdict::Accepted(entry)
        }
        Err(why) => {
            metrics.init_discarded(why);
            Verdict::Discarded(why)
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
