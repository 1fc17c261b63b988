//! The trusted headers set on the upstream request: names built once from the configured
//! prefix, values decided per request, and the one function that writes them.

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::prelude::*;

use crate::headers;
use crate::headers::signature::{SignedFields, Signer};

/// The trusted header names, with the configured prefix (`X-Flowgate-Context`, …), spelt as
/// configured (cheap to clone: `Bytes`).
#[derive(Debug, Clone)]
pub(crate) struct TrustedNames {
    /// `<prefix>Context`.
    pub(crate) context: Bytes,
    /// `<prefix>Prefill`.
    pub(crate) prefill: Bytes,
    /// `<prefix>Status`.
    pub(crate) status: Bytes,
    /// `<prefix>Site`.
    pub(crate) site: Bytes,
    /// `<prefix>Session`.
    pub(crate) session: Bytes,
    /// `<prefix>Signature`.
    pub(crate) signature: Bytes,
}

impl TrustedNames {
    /// Names for `prefix`, which the configuration has validated as a header-name token.
    pub(crate) fn new(prefix: &str) -> TrustedNames {
        let name = |suffix: &str| Bytes::from(format!("{prefix}{suffix}"));
        TrustedNames {
            context: name(headers::CONTEXT),
            prefill: name(headers::PREFILL),
            status: name(headers::STATUS),
            site: name(headers::SITE),
            session: name(headers::SESSION),
            signature: name(headers::SIGNATURE),
        }
    }
}

/// The trusted header values decided for one request; `None` means the header is not sent.
///
/// Every value is ASCII: ids are validated to `[A-Za-z0-9._-]`, context and pre-fill are
/// base64, the status is one of a few fixed strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedHeaders {
    /// Validated site id.
    pub site: Option<String>,
    /// Validated chat session id.
    pub session: Option<String>,
    /// `accepted`, `absent` or `discarded; reason=<r>`.
    pub status: Option<String>,
    /// Base64 JSON object of the accepted pairs.
    pub context: Option<String>,
    /// Base64 JSON object of the pre-fill slots.
    pub prefill: Option<String>,
}

impl TrustedHeaders {
    /// Whether no trusted header is to be sent.
    pub fn is_empty(&self) -> bool {
        self.site.is_none()
            && self.session.is_none()
            && self.status.is_none()
            && self.context.is_none()
            && self.prefill.is_none()
    }
}

/// Writes the trusted headers onto the upstream request: the single place they are set.
///
/// Client headers with the prefix were already stripped in `request_filter`, so `insert`
/// here never merges with anything the client sent.
pub(crate) fn apply(
    names: &TrustedNames,
    values: &TrustedHeaders,
    upstream: &mut RequestHeader,
) -> Result<()> {
    let pairs = [
        (&names.site, &values.site),
        (&names.session, &values.session),
        (&names.status, &values.status),
        (&names.context, &values.context),
        (&names.prefill, &values.prefill),
    ];
    for (name, value) in pairs {
        if let Some(v) = value {
            upstream.insert_header(name.clone(), v.as_str())?;
        }
    }
    Ok(())
}

/// Unix time in whole seconds for the signature's `t` (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs what [`apply`] sent (SPEC §4) and sets the `Signature` header; called on every
/// proxied request when a secret is configured, so the backend can verify all of them.
///
/// The path is the one forwarded upstream, without the query; absent values sign as `""`.
pub(crate) fn sign(
    names: &TrustedNames,
    values: &TrustedHeaders,
    signer: &Signer,
    t: u64,
    upstream: &mut RequestHeader,
) -> Result<()> {
    fn text(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("")
    }
    let fields = SignedFields {
        path: upstream.uri.path(),
        site: text(&values.site),
        session: text(&values.session),
        status: text(&values.status),
        context: text(&values.context),
        prefill: text(&values.prefill),
    };
    let value = signer.header_value(t, &fields);
    upstream.insert_header(names.signature.clone(), value)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_present_values_with_the_prefix() {
        let names = TrustedNames::new("X-Edge-");
        let values = TrustedHeaders {
            site: Some("s1".into()),
            session: Some("j1".into()),
            status: Some("absent".into()),
            ..Default::default()
        };
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        apply(&names, &values, &mut req).unwrap();
        assert_eq!(req.headers.get("x-edge-site").unwrap(), "s1");
        assert_eq!(req.headers.get("x-edge-session").unwrap(), "j1");
        assert_eq!(req.headers.get("x-edge-status").unwrap(), "absent");
        assert!(req.headers.get("x-edge-context").is_none());
        assert_eq!(req.headers.len(), 3);
    }
}
