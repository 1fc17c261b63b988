//! When the request cannot be proxied: which status answers it, which upstream failure is
//! counted, and the 502 flowgate writes itself. Also which errors are the client's doing and
//! stay out of the error log.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::{ErrorSource, ErrorType};

use crate::metrics::UpstreamError;

/// Body of the 502 sent when no upstream answers.
const UPSTREAM_DOWN_BODY: &[u8] = b"flowgate: the chat backend is unavailable, please retry\n";

/// What the earlier phases learnt about the upstream before the failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UpstreamState {
    /// `upstream_peer` found no healthy upstream.
    pub(crate) no_upstream: bool,
    /// Connecting to the upstream failed (`fail_to_connect` ran).
    pub(crate) connect_failed: bool,
}

/// The status to answer a failed request with (0: the client is gone, nobody to answer), and
/// the upstream failure to count, if it was one.
pub(crate) fn classify(e: &Error, state: UpstreamState) -> (u16, Option<UpstreamError>) {
    if state.no_upstream {
        return (502, Some(UpstreamError::NoneHealthy));
    }
    let code = match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream if is_client_gone(e) => 0,
            ErrorSource::Downstream => 400,
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    };
    let kind = (*e.esource() == ErrorSource::Upstream).then_some(if state.connect_failed {
        UpstreamError::Connect
    } else {
        UpstreamError::Proxy
    });
    (code, kind)
}

/// Answers the client: a 502 with a short plain-text body of flowgate's own, Pingora's error
/// page for other codes, nothing when the client is gone (`code` 0).
pub(crate) async fn answer(session: &mut Session, code: u16) {
    if code == 502 {
        let _ = write_upstream_down(session).await;
    } else if code > 0 {
        let _ = session.respond_error(code).await;
    }
}

async fn write_upstream_down(session: &mut Session) -> Result<()> {
    let mut resp = ResponseHeader::build(502, Some(4))?;
    resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
    resp.insert_header("Content-Length", UPSTREAM_DOWN_BODY.len().to_string())?;
    resp.insert_header("Cache-Control", "no-store")?;
    session.set_keepalive(None);
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(UPSTREAM_DOWN_BODY)), true)
        .await
}

/// The client went away: there is nobody to answer.
fn is_client_gone(e: &Error) -> bool {
    *e.esource() == ErrorSource::Downstream
        && matches!(
            e.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        )
}

/// Client-side failures, including a client too slow to send or read: not an operator's error.
pub(crate) fn is_client_fault(e: &Error) -> bool {
    is_client_gone(e)
        || (*e.esource() == ErrorSource::Downstream
            && matches!(
                e.etype(),
                ErrorType::ReadTimedout | ErrorType::WriteTimedout
            ))
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
            classify(&refused, connect),
            (502, Some(UpstreamError::Connect))
        );
        let reset = error(ErrorType::ConnectionClosed, ErrorSource::Upstream);
        assert_eq!(
            classify(&reset, UpstreamState::default()),
            (502, Some(UpstreamError::Proxy))
        );
        let none = UpstreamState {
            no_upstream: true,
            ..Default::default()
        };
        let no_route = error(ErrorType::ConnectNoRoute, ErrorSource::Internal);
        assert_eq!(
            classify(&no_route, none),
            (502, Some(UpstreamError::NoneHealthy))
        );
    }

    #[test]
    fn a_client_that_left_gets_no_answer_and_no_error_line() {
        let gone = error(ErrorType::ReadError, ErrorSource::Downstream);
        assert_eq!(classify(&gone, UpstreamState::default()), (0, None));
        assert!(is_client_fault(&gone));
        let slow = error(ErrorType::ReadTimedout, ErrorSource::Downstream);
        assert_eq!(classify(&slow, UpstreamState::default()), (400, None));
        assert!(is_client_fault(&slow));
        let ours = error(ErrorType::InternalError, ErrorSource::Internal);
        assert_eq!(classify(&ours, UpstreamState::default()), (500, None));
        assert!(!is_client_fault(&ours));
    }
}
