//! The answers of the limits: `429` for an init over a rate limit in `reject` mode, `413` for
//! a body over `limits.max_body_bytes`. Short plain-text bodies; the connection is closed.
//!
//! After a `413` an HTTP/1 client is usually still sending its body. Closing a socket with
//! unread bytes makes the kernel reset the connection, and a reset can reach the client before
//! it has read the answer; so, as nginx's lingering close does, a bounded part of the rest is
//! read and thrown away first.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

const TOO_MANY_BODY: &[u8] = b"too many requests\n";
const TOO_LARGE_BODY: &[u8] = b"request body too large\n";
/// At most this much of a refused body is read and thrown away after the `413`.
const DRAIN_BYTES: usize = 1 << 20;
/// For at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Answers `429` with `Retry-After: 1`.
pub(crate) async fn too_many(session: &mut Session) {
    plain(session, 429, TOO_MANY_BODY, Some(("Retry-After", "1"))).await;
}

/// Answers `413`, then lingers on an HTTP/1 client's unread body (bounded).
pub(crate) async fn too_large(session: &mut Session) {
    plain(session, 413, TOO_LARGE_BODY, None).await;
    if session.req_header().version < http::Version::HTTP_2 {
        let drain = async {
            let mut left = DRAIN_BYTES;
            while left > 0 {
                match session.read_request_body().await {
                    Ok(Some(chunk)) => left = left.saturating_sub(chunk.len().max(1)),
                    Ok(None) | Err(_) => break,
                }
            }
        };
        // Past the bound the connection is closed as it is: the client had its chance.
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    }
}

async fn plain(
    session: &mut Session,
    status: u16,
    body: &'static [u8],
    extra: Option<(&'static str, &'static str)>,
) {
    let answer = async {
        let mut resp = ResponseHeader::build(status, Some(5))?;
        resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
        resp.insert_header("Content-Length", body.len().to_string())?;
        resp.insert_header("Cache-Control", "no-store")?;
        if let Some((name, value)) = extra {
            resp.insert_header(name, value)?;
        }
        session.set_keepalive(None);
        session.write_response_header(Box::new(resp), false).await?;
        session
            .write_response_body(Some(Bytes::from_static(body)), true)
            .await
    };
    // The client may be gone already; there is nothing left to tell it.
    let _: pingora::Result<()> = answer.await;
}
