//! When the request cannot be proxied: how the client is answered, which upstream failure is
//! counted, and the one log line that says so — without a value: Pingora's own failure lines can
//! carry raw request or response bytes, so they are suppressed and this one is written instead.
//!
//! Once a response has started (a status line, a `101`), no answer of flowgate's own can follow
//! it: the only honest signal left is to abort the transfer (HTTP/1: close without the final
//! chunk; HTTP/2: `RST_STREAM`), never to complete it with text appended.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::{ErrorSource, ErrorType};

use super::{body, limit_answer};
use crate::metrics::{RouteKind, UpstreamError};

/// Body of the 502 sent when no upstream answers.
const UPSTREAM_DOWN_BODY: &[u8] = b"flowgate: the chat backend is unavailable, please retry\n";
/// Body of the 504 sent when the upstream does not answer in time.
const UPSTREAM_TIMEOUT_BODY: &[u8] = b"flowgate: the chat backend did not answer in time\n";

/// What the earlier phases learnt about the upstream before the failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UpstreamState {
    /// `upstream_peer` found no healthy upstream.
    pub(crate) no_upstream: bool,
    /// Connecting to the upstream failed (`fail_to_connect` ran).
    pub(crate) connect_failed: bool,
}

/// How a failed request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The response had started: abort the transfer.
    Abort,
    /// A WebSocket tunnel went quiet past its idle timeout: close it (not a failure).
    TunnelIdle,
    /// `502` with flowgate's plain-text body.
    UpstreamDown,
    /// `504` with flowgate's plain-text body.
    UpstreamTimeout,
    /// `413`: the body passed `limits.max_body_bytes` before any of the response was sent.
    TooLarge,
    /// Pingora's error page with this status.
    Status(u16),
    /// The client is gone: nobody to answer.
    Nobody,
}

impl Answer {
    /// The status the client was answered with (0: none, or the one already sent).
    pub(crate) fn code(self) -> u16 {
        match self {
            Answer::UpstreamDown => 502,
            Answer::UpstreamTimeout => 504,
            Answer::TooLarge => 413,
            Answer::Status(code) => code,
            Answer::Abort | Answer::TunnelIdle | Answer::Nobody => 0,
        }
    }
}

/// The answer to a failed request and the upstream failure to count, if it was one.
/// `started` is the status already sent to the client, if any.
pub(crate) fn classify(
    e: &Error,
    state: UpstreamState,
    started: Option<u16>,
) -> (Answer, Option<UpstreamError>) {
    let from_upstream = *e.esource() == ErrorSource::Upstream;
    if let Some(status) = started {
        if status == 101 && *e.etype() == ErrorType::ReadTimedout {
            return (Answer::TunnelIdle, None);
        }
        return (
            Answer::Abort,
            from_upstream.then_some(UpstreamError::AbortedMidstream),
        );
    }
    if body::is_too_large(e) {
        return (Answer::TooLarge, None);
    }
    if state.no_upstream {
        return (Answer::UpstreamDown, Some(UpstreamError::NoneHealthy));
    }
    match e.etype() {
        ErrorType::HTTPStatus(code) => return (Answer::Status(*code), None),
        ErrorType::ReadTimedout | ErrorType::WriteTimedout | ErrorType::ConnectTimedout
            if from_upstream =>
        {
            return (Answer::UpstreamTimeout, Some(UpstreamError::Timeout));
        }
        _ => {}
    }
    match e.esource() {
        ErrorSource::Upstream if state.connect_failed => {
            (Answer::UpstreamDown, Some(UpstreamError::Connect))
        }
        ErrorSource::Upstream => (Answer::UpstreamDown, Some(UpstreamError::Proxy)),
        ErrorSource::Downstream if is_client_gone(e) => (Answer::Nobody, None),
        // A client too slow sending its body, as nginx's client_body_timeout answers it.
        ErrorSource::Downstream if *e.etype() == ErrorType::ReadTimedout => {
            (Answer::Status(408), None)
        }
        ErrorSource::Downstream => (Answer::Status(400), None),
        ErrorSource::Internal | ErrorSource::Unset => (Answer::Status(500), None),
    }
}

/// Answers the client as `answer` says.
pub(crate) async fn answer(session: &mut Session, answer: Answer) {
    match answer {
        Answer::Abort | Answer::TunnelIdle => session.shutdown().await,
        Answer::UpstreamDown => {
            let _ = write_text(session, 502, UPSTREAM_DOWN_BODY).await;
        }
        Answer::UpstreamTimeout => {
            let _ = write_text(session, 504, UPSTREAM_TIMEOUT_BODY).await;
        }
        Answer::TooLarge => limit_answer::too_large(session).await,
        Answer::Status(code) => {
            let _ = session.respond_error(code).await;
        }
        Answer::Nobody => {}
    }
}

async fn write_text(session: &mut Session, code: u16, body: &'static [u8]) -> Result<()> {
    let mut resp = ResponseHeader::build(code, Some(4))?;
    resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
    resp.insert_header("Content-Length", body.len().to_string())?;
    resp.insert_header("Cache-Control", "no-store")?;
    session.set_keepalive(None);
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(body)), true)
        .await
}

/// The failure's log line: what happened, never a value (no error context, no request data).
/// Upstream timeouts and aborts are warnings; other upstream and internal failures errors; the
/// client's own failures stay at debug.
pub(crate) fn log(e: &Error, answer: Answer, kind: Option<UpstreamError>, route: RouteKind) {
    let (etype, source, route) = (e.etype().as_str(), e.esource().as_str(), route.as_str());
    let kind = kind.map_or("-", UpstreamError::as_str);
    let status = answer.code();
    match answer {
        Answer::UpstreamTimeout => tracing::warn!(
            target: "flowgate::upstream",
            status, kind, error = etype, route,
            "the upstream did not answer in time"
        ),
        Answer::Abort if kind != "-" => tracing::warn!(
            target: "flowgate::upstream",
            kind, error = etype, route,
            "the upstream failed after the response started; transfer aborted"
        ),
        Answer::UpstreamDown => tracing::error!(
            target: "flowgate::upstream",
            status, kind, error = etype, route,
            "the upstream failed"
        ),
        Answer::Status(500) => tracing::error!(
            target: "flowgate::proxy",
            status, error = etype, source, route,
            "request failed"
        ),
        _ => tracing::debug!(
            target: "flowgate::proxy",
            status, error = etype, source, route,
            "request ended early"
        ),
    }
}

/// The client went away: there is nobody to answer.
fn is_client_gone(e: &Error) -> bool {
    *e.esource() == ErrorSource::Downstream
        && matches!(
            e.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(etype: ErrorType, source: ErrorSource) -> Box<Error> {
        let mut e = Error::new(etype);
        e.esource = source;
        e
    }

    #[test]
    fn upstream_failures_are_502_and_counted_by_kind() {
        let refused = error(ErrorType::ConnectRefused, ErrorSource::Upstream);
        let connect = UpstreamState {
            connect_failed: true,
            ..Default::default()
        };
        assert_eq!(
            classify(&refused, connect, None),
            (Answer::UpstreamDown, Some(UpstreamError::Connect))
        );
        let reset = error(ErrorType::ConnectionClosed, ErrorSource::Upstream);
        assert_eq!(
            classify(&reset, UpstreamState::default(), None),
            (Answer::UpstreamDown, Some(UpstreamError::Proxy))
        );
        let none = UpstreamState {
            no_upstream: true,
            ..Default::default()
        };
        let no_route = error(ErrorType::ConnectNoRoute, ErrorSource::Internal);
        assert_eq!(
            classify(&no_route, none, None),
            (Answer::UpstreamDown, Some(UpstreamError::NoneHealthy))
        );
    }

    #[test]
    fn upstream_timeouts_are_504() {
        for etype in [
            ErrorType::ReadTimedout,
            ErrorType::WriteTimedout,
            ErrorType::ConnectTimedout,
        ] {
            let e = error(etype, ErrorSource::Upstream);
            let (answer, kind) = classify(&e, UpstreamState::default(), None);
            assert_eq!(answer, Answer::UpstreamTimeout);
            assert_eq!(answer.code(), 504);
            assert_eq!(kind, Some(UpstreamError::Timeout));
        }
    }

    #[test]
    fn a_started_response_is_aborted_never_answered() {
        let reset = error(ErrorType::ConnectionClosed, ErrorSource::Upstream);
        assert_eq!(
            classify(&reset, UpstreamState::default(), Some(200)),
            (Answer::Abort, Some(UpstreamError::AbortedMidstream))
        );
        let slow = error(ErrorType::ReadTimedout, ErrorSource::Upstream);
        assert_eq!(
            classify(&slow, UpstreamState::default(), Some(200)),
            (Answer::Abort, Some(UpstreamError::AbortedMidstream))
        );
        // In a tunnel: the upstream dying aborts; silence past the idle bound just closes it.
        assert_eq!(
            classify(&reset, UpstreamState::default(), Some(101)),
            (Answer::Abort, Some(UpstreamError::AbortedMidstream))
        );
        for source in [ErrorSource::Upstream, ErrorSource::Downstream] {
            let idle = error(ErrorType::ReadTimedout, source);
            assert_eq!(
                classify(&idle, UpstreamState::default(), Some(101)),
                (Answer::TunnelIdle, None)
            );
        }
        let gone = error(ErrorType::WriteError, ErrorSource::Downstream);
        assert_eq!(
            classify(&gone, UpstreamState::default(), Some(200)),
            (Answer::Abort, None)
        );
    }

    #[test]
    fn client_failures_are_not_upstream_errors() {
        let gone = error(ErrorType::ReadError, ErrorSource::Downstream);
        assert_eq!(
            classify(&gone, UpstreamState::default(), None),
            (Answer::Nobody, None)
        );
        let slow = error(ErrorType::ReadTimedout, ErrorSource::Downstream);
        assert_eq!(
            classify(&slow, UpstreamState::default(), None),
            (Answer::Status(408), None)
        );
        let large = error(body::TOO_LARGE, ErrorSource::Downstream);
        assert_eq!(
            classify(&large, UpstreamState::default(), None),
            (Answer::TooLarge, None)
        );
        assert_eq!(
            classify(&large, UpstreamState::default(), Some(200)),
            (Answer::Abort, None)
        );
        let ours = error(ErrorType::InternalError, ErrorSource::Internal);
        assert_eq!(
            classify(&ours, UpstreamState::default(), None),
            (Answer::Status(500), None)
        );
    }
}
