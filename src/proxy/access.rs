//! The access log: one line per request, with what the edge did and never a value from the
//! query or a header (the path is logged without its query) — the request id aside, which is
//! flowgate's own or a trusted proxy's validated to `[A-Za-z0-9._:-]{1,128}`.

use std::time::Duration;

use pingora::prelude::*;
use pingora::proxy::Session;

use super::RequestCtx;
use crate::metrics::StoreResult;

/// Writes the request's line at `info` under the `flowgate::access` target.
pub(crate) fn log(session: &Session, e: Option<&Error>, ctx: &RequestCtx, elapsed: Duration) {
    let req = session.req_header();
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    let (outcome, reason) = ctx.report.labels();
    let store = ctx.report.store;
    let store_time = store.map_or(Duration::ZERO, |c| c.elapsed);
    tracing::info!(
        target: "flowgate::access",
        request_id = %ctx.identity.request_id,
        client = %session.client_addr().map_or_else(|| "-".to_owned(), ToString::to_string),
        method = %req.method,
        path = req.uri.path(),
        route = ctx.route.as_str(),
        status,
        outcome,
        reason = reason.unwrap_or("-"),
        store = store.map_or("-", |c| StoreResult::as_str(c.result)),
        store_error = store.and_then(|c| c.error).unwrap_or("-"),
        store_ms = %format_args!("{:.3}", store_time.as_secs_f64() * 1000.0),
        spoofed = ctx.spoofed,
        duration_ms = %format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
        error = e.map(|e| e.etype().as_str()).unwrap_or("-"),
    );
}
