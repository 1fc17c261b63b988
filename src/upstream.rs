//! The verification kit for the chat backend: check flowgate's signature, decode its headers.
//!
//! flowgate sets `X-Flowgate-Site`, `-Session`, `-Status`, `-Context`, `-Prefill` and, when a
//! signing secret is configured, `-Signature: t=<unix>,v1=<hex HMAC-SHA256>` (SPEC §4; the exact
//! signed string is documented in [`crate::headers::signature`]). A backend that calls
//! [`verify`] on every request knows the values came from flowgate, unchanged, recently:
//!
//! ```
//! use std::time::Duration;
//! use flowgate::upstream;
//!
//! fn handle(req: &http::Request<()>, secrets: &[String]) -> Result<(), upstream::VerifyError> {
//!     let ctx = upstream::verify(req, secrets, upstream::DEFAULT_TOLERANCE)?;
//!     if let Some(email) = ctx.prefill_slot("visitor_email") {
//!         // skip the "what is your email?" step
//!         let _ = email;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Pure: no I/O; the clock is read once unless [`Options::now`] is given. The request type is
//! anything implementing [`SignedRequest`] — `http::Request`, `http::request::Parts`,
//! `(path, &http::HeaderMap)`, or [`RequestView`] around any header lookup closure.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::headers::signature::{self, FormatError, SignedFields};
use crate::headers::{CONTEXT, PREFILL, SESSION, SIGNATURE, SITE, STATUS};

/// The default accepted distance between the signature's `t` and the verifier's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

pub use crate::headers::DEFAULT_PREFIX;

/// A request as the backend received it: its path and a header lookup.
pub trait SignedRequest {
    /// The request path without the query, exactly as received (not percent-decoded).
    fn path(&self) -> &str;
    /// The value of header `name` (case-insensitive), or `None` when absent or not text.
    fn header(&self, name: &str) -> Option<&str>;
    /// How many times header `name` occurs (a trusted header must occur at most once).
    fn header_count(&self, name: &str) -> usize {
        usize::from(self.header(name).is_some())
    }
}

fn path_of(uri: &http::Uri) -> &str {
    uri.path()
}

fn header_map_get<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl<B> SignedRequest for http::Request<B> {
    fn path(&self) -> &str {
        path_of(self.uri())
    }
    fn header(&self, name: &str) -> Option<&str> {
        header_map_get(self.headers(), name)
    }
    fn header_count(&self, name: &str) -> usize {
        self.headers().get_all(name).iter().count()
    }
}

impl SignedRequest for http::request::Parts {
    fn path(&self) -> &str {
        path_of(&self.uri)
    }
    fn header(&self, name: &str) -> Option<&str> {
        header_map_get(&self.headers, name)
    }
    fn header_count(&self, name: &str) -> usize {
        self.headers.get_all(name).iter().count()
    }
}

impl SignedRequest for (&str, &http::HeaderMap) {
    fn path(&self) -> &str {
        self.0
    }
    fn header(&self, name: &str) -> Option<&str> {
        header_map_get(self.1, name)
    }
    fn header_count(&self, name: &str) -> usize {
        self.1.get_all(name).iter().count()
    }
}

/// A [`SignedRequest`] from a path and any lookup closure (a framework's own header type, a
/// CGI environment, a test table). The closure should match names case-insensitively.
pub struct RequestView<'a, F> {
    path: &'a str,
    lookup: F,
}

impl<'a, F> RequestView<'a, F>
where
    F: Fn(&str) -> Option<&'a str>,
{
    /// Wraps `path` (without the query) and `lookup`.
    pub fn new(path: &'a str, lookup: F) -> Self {
        RequestView { path, lookup }
    }
}

impl<'a, F> SignedRequest for RequestView<'a, F>
where
    F: Fn(&str) -> Option<&'a str>,
{
    fn path(&self) -> &str {
        self.path
    }
    fn header(&self, name: &str) -> Option<&str> {
        (self.lookup)(name)
    }
}

/// What the `Status` header said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextStatus {
    /// A context was accepted; `verified` is `Some` when the site uses signed visitor context.
    Accepted {
        /// `Some(true)` for `accepted; verified`, `Some(false)` for `accepted; unverified`.
        verified: Option<bool>,
    },
    /// No context was sent (or none is stored for the session).
    Absent,
    /// The context was discarded, with the edge's reason (`size`, `base64`, `bad_signature`, …).
    Discarded {
        /// The machine-readable reason.
        reason: String,
    },
}

impl ContextStatus {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "accepted" => Some(ContextStatus::Accepted { verified: None }),
            "accepted; verified" => Some(ContextStatus::Accepted {
                verified: Some(true),
            }),
            "accepted; unverified" => Some(ContextStatus::Accepted {
                verified: Some(false),
            }),
            "absent" | "" => Some(ContextStatus::Absent),
            _ => value
                .strip_prefix("discarded; reason=")
                .filter(|r| !r.is_empty())
                .map(|r| ContextStatus::Discarded {
                    reason: r.to_owned(),
                }),
        }
    }
}

/// The trusted headers of one request, signature checked and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedContext {
    /// The `Site` header (`None` when absent: not a widget route).
    pub site: Option<String>,
    /// The `Session` header (`None` when absent).
    pub session: Option<String>,
    /// The parsed `Status` header.
    pub status: ContextStatus,
    /// The accepted context pairs, in order.
    pub pairs: Vec<(String, String)>,
    /// The pre-fill slots, in the contract's fixed order.
    pub prefill: Vec<(String, String)>,
    /// The signature's timestamp (unix seconds).
    pub signed_at: u64,
}

impl TrustedContext {
    /// The value of context key `key`, if accepted.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of pre-fill slot `slot` (`visitor_email`, `name`, …), if filled.
    pub fn prefill_slot(&self, slot: &str) -> Option<&str> {
        self.prefill
            .iter()
            .find(|(k, _)| k == slot)
            .map(|(_, v)| v.as_str())
    }

    /// True when the host site signed the context and flowgate verified it.
    pub fn is_verified(&self) -> bool {
        self.status
            == ContextStatus::Accepted {
                verified: Some(true),
            }
    }
}

/// Why a request's trusted headers were rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// No secret was given to verify with.
    NoSecrets,
    /// The `Signature` header is missing: the request did not come through a signing flowgate.
    MissingSignature,
    /// The `Signature` header is not `t=<digits>,v1=<64 hex>`.
    MalformedSignature(FormatError),
    /// A trusted header occurs more than once (its name's suffix: `Context`, …).
    RepeatedHeader(&'static str),
    /// No secret produces the signature over these headers: forged or altered.
    Mismatch,
    /// Correctly signed, but `t` is older than the tolerance (replayed or a slow clock).
    Expired {
        /// Seconds between `t` and now.
        age: u64,
    },
    /// Correctly signed, but `t` is further in the future than the tolerance (clock skew).
    FromFuture {
        /// Seconds between now and `t`.
        ahead: u64,
    },
    /// Correctly signed, but a header could not be decoded (suffix name); a flowgate version
    /// newer than this kit, or a bug.
    Undecodable(&'static str),
}

impl VerifyError {
    /// A short machine-readable name for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            VerifyError::NoSecrets => "no_secrets",
            VerifyError::MissingSignature => "missing_signature",
            VerifyError::MalformedSignature(_) => "malformed_signature",
            VerifyError::RepeatedHeader(_) => "repeated_header",
            VerifyError::Mismatch => "mismatch",
            VerifyError::Expired { .. } => "expired",
            VerifyError::FromFuture { .. } => "from_future",
            VerifyError::Undecodable(_) => "undecodable",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::NoSecrets => f.write_str("no verification secret configured"),
            VerifyError::MissingSignature => f.write_str("signature header missing"),
            VerifyError::MalformedSignature(e) => {
                write!(f, "signature header malformed ({})", e.as_str())
            }
            VerifyError::RepeatedHeader(h) => write!(f, "trusted header {h} occurs more than once"),
            VerifyError::Mismatch => f.write_str("signature does not match the headers"),
            VerifyError::Expired { age } => write!(f, "signature is {age} s old"),
            VerifyError::FromFuture { ahead } => write!(f, "signature is {ahead} s in the future"),
            VerifyError::Undecodable(h) => write!(f, "trusted header {h} cannot be decoded"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Settings beyond the common case.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// Header-name prefix, when flowgate is configured with another than [`DEFAULT_PREFIX`].
    pub prefix: Option<&'a str>,
    /// The current unix time in seconds (tests, replays); the system clock when `None`.
    pub now: Option<u64>,
}

/// Checks the signature on `request`'s trusted headers with any of `secrets` and decodes them.
///
/// `tolerance` bounds `|now - t|` ([`DEFAULT_TOLERANCE`] is 300 s). MACs are compared in
/// constant time; a signature made with any secret of the list is accepted, so a rotation lists
/// the new secret first and the old one until every flowgate instance signs with the new one.
pub fn verify<R, S>(
    request: &R,
    secrets: &[S],
    tolerance: Duration,
) -> Result<TrustedContext, VerifyError>
where
    R: SignedRequest + ?Sized,
    S: AsRef<[u8]>,
{
    verify_with(request, secrets, tolerance, &Options::default())
}

/// [`verify`] with a header prefix and/or a fixed clock.
pub fn verify_with<R, S>(
    request: &R,
    secrets: &[S],
    tolerance: Duration,
    options: &Options<'_>,
) -> Result<TrustedContext, VerifyError>
where
    R: SignedRequest + ?Sized,
    S: AsRef<[u8]>,
{
    if secrets.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    let prefix = options.prefix.unwrap_or(DEFAULT_PREFIX);
    let name = |suffix: &str| format!("{prefix}{suffix}");
    let mut values = [""; 6];
    let mut present = [false; 6];
    for (i, suffix) in [SIGNATURE, SITE, SESSION, STATUS, CONTEXT, PREFILL]
        .into_iter()
        .enumerate()
    {
        let full = name(suffix);
        if request.header_count(&full) > 1 {
            return Err(VerifyError::RepeatedHeader(suffix));
        }
        if let Some(v) = request.header(&full) {
            values[i] = v;
            present[i] = true;
        }
    }
    let [sig_value, site, session, status, context, prefill] = values;
    if !present[0] {
        return Err(VerifyError::MissingSignature);
    }
    let sig = signature::parse(sig_value).map_err(VerifyError::MalformedSignature)?;
    let fields = SignedFields {
        path: request.path(),
        site,
        session,
        status,
        context,
        prefill,
    };
    if !signature::matches(secrets, &sig, &fields) {
        return Err(VerifyError::Mismatch);
    }
    let now = options.now.unwrap_or_else(unix_now);
    let tolerance = tolerance.as_secs();
    if now > sig.t && now - sig.t > tolerance {
        return Err(VerifyError::Expired { age: now - sig.t });
    }
    if sig.t > now && sig.t - now > tolerance {
        return Err(VerifyError::FromFuture { ahead: sig.t - now });
    }
    Ok(TrustedContext {
        site: present[1].then(|| site.to_owned()),
        session: present[2].then(|| session.to_owned()),
        status: ContextStatus::parse(status).ok_or(VerifyError::Undecodable(STATUS))?,
        pairs: decode_pairs(context).ok_or(VerifyError::Undecodable(CONTEXT))?,
        prefill: decode_pairs(prefill).ok_or(VerifyError::Undecodable(PREFILL))?,
        signed_at: sig.t,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Base64 of a JSON object of strings → its pairs in order (`""` → none).
fn decode_pairs(value: &str) -> Option<Vec<(String, String)>> {
    if value.is_empty() {
        return Some(Vec::new());
    }
    let json = STANDARD.decode(value).ok()?;
    let mut de = serde_json::Deserializer::from_slice(&json);
    let pairs = de.deserialize_map(PairsVisitor).ok()?;
    de.end().ok()?;
    Some(pairs)
}

struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<String, String>()? {
            out.push((k, v));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::signature::Signer;
    use crate::secret::Secret;

    const NOW: u64 = 1_800_000_000;

    fn secret(c: char) -> Secret {
        Secret::new(c.to_string().repeat(32))
    }

    fn signed(secret: &Secret, t: u64) -> http::Request<()> {
        let ctx = STANDARD.encode(r#"{"plan":"Pro","ims_email":"a@b.c"}"#);
        let pre = STANDARD.encode(r#"{"visitor_email":"a@b.c","email":"a@b.c"}"#);
        let fields = SignedFields {
            path: "/public_FlowWidget/init",
            site: "site1",
            session: "s1",
            status: "accepted; verified",
            context: &ctx,
            prefill: &pre,
        };
        let sig = Signer::new(secret).header_value(t, &fields);
        http::Request::builder()
            .uri("/public_FlowWidget/init?siteid=site1&jsSessionId=s1")
            .header("x-flowgate-site", "site1")
            .header("X-Flowgate-Session", "s1")
            .header("X-Flowgate-Status", "accepted; verified")
            .header("X-Flowgate-Context", ctx)
            .header("X-Flowgate-Prefill", pre)
            .header("X-Flowgate-Signature", sig)
            .body(())
            .unwrap()
    }

    fn at(now: u64) -> Options<'static> {
        Options {
            prefix: None,
            now: Some(now),
        }
    }

    #[test]
    fn fresh_request_verifies_and_decodes_in_order() {
        let k = secret('a');
        let ctx = verify_with(&signed(&k, NOW), &[&k], DEFAULT_TOLERANCE, &at(NOW)).unwrap();
        assert_eq!(ctx.site.as_deref(), Some("site1"));
        assert_eq!(ctx.session.as_deref(), Some("s1"));
        assert!(ctx.is_verified());
        assert_eq!(
            ctx.pairs,
            vec![
                ("plan".to_owned(), "Pro".to_owned()),
                ("ims_email".to_owned(), "a@b.c".to_owned())
            ]
        );
        assert_eq!(ctx.prefill_slot("email"), Some("a@b.c"));
        assert_eq!(ctx.get("plan"), Some("Pro"));
        assert_eq!(ctx.signed_at, NOW);
    }

    #[test]
    fn every_tampered_field_is_a_mismatch() {
        let k = secret('a');
        for header in [
            "X-Flowgate-Site",
            "X-Flowgate-Session",
            "X-Flowgate-Status",
            "X-Flowgate-Context",
            "X-Flowgate-Prefill",
        ] {
            let mut req = signed(&k, NOW);
            req.headers_mut()
                .insert(header, http::HeaderValue::from_static("e30="));
            assert_eq!(
                verify_with(&req, &[&k], DEFAULT_TOLERANCE, &at(NOW)),
                Err(VerifyError::Mismatch),
                "{header}"
            );
            let mut req = signed(&k, NOW);
            req.headers_mut().remove(header);
            assert_eq!(
                verify_with(&req, &[&k], DEFAULT_TOLERANCE, &at(NOW)),
                Err(VerifyError::Mismatch),
                "{header} removed"
            );
        }
        let mut req = signed(&k, NOW);
        *req.uri_mut() = "/public_FlowWidget/other".parse().unwrap();
        assert_eq!(
            verify_with(&req, &[&k], DEFAULT_TOLERANCE, &at(NOW)),
            Err(VerifyError::Mismatch)
        );
        // A different `t` with the old MAC.
        let mut req = signed(&k, NOW);
        let v = req.headers()["X-Flowgate-Signature"].to_str().unwrap();
        let moved = v.replacen(&NOW.to_string(), &(NOW + 1).to_string(), 1);
        req.headers_mut()
            .insert("X-Flowgate-Signature", moved.parse().unwrap());
        assert_eq!(
            verify_with(&req, &[&k], DEFAULT_TOLERANCE, &at(NOW)),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn time_window_and_secrets() {
        let (old, new) = (secret('o'), secret('n'));
        let req = signed(&old, NOW);
        assert!(verify_with(&req, &[&new, &old], DEFAULT_TOLERANCE, &at(NOW + 300)).is_ok());
        assert_eq!(
            verify_with(&req, &[&new, &old], DEFAULT_TOLERANCE, &at(NOW + 301)),
            Err(VerifyError::Expired { age: 301 })
        );
        assert_eq!(
            verify_with(&req, &[&new, &old], DEFAULT_TOLERANCE, &at(NOW - 301)),
            Err(VerifyError::FromFuture { ahead: 301 })
        );
        assert_eq!(
            verify_with(&req, &[&new], DEFAULT_TOLERANCE, &at(NOW)),
            Err(VerifyError::Mismatch)
        );
        let none: [&Secret; 0] = [];
        assert_eq!(
            verify_with(&req, &none, DEFAULT_TOLERANCE, &at(NOW)),
            Err(VerifyError::NoSecrets)
        );
    }

    #[test]
    fn missing_repeated_and_malformed_signature() {
        let k = secret('a');
        let mut req = signed(&k, NOW);
        req.headers_mut().remove("X-Flowgate-Signature");
        assert_eq!(
            verify_with(&req, &[&k], DEFAULT_TOLERANCE, &at(NOW)),
            Err(VerifyError::MissingSignature)
        );
        let mut req = signed(&k, NOW);
        req.headers_mut()
            .append("X-Flowgate-Context", http::HeaderValue::from_static("e30="));
        assert_eq!(
            verify_with(&req, &[&k], DEFAULT_TOLERANCE, &at(NOW)),
            Err(VerifyError::RepeatedHeader("Context"))
        );
        let mut req = signed(&k, NOW);
        req.headers_mut().insert(
            "X-Flowgate-Signature",
            http::HeaderValue::from_static("t=1"),
        );
        assert_eq!(
            verify_with(&req, &[&k], DEFAULT_TOLERANCE, &at(NOW)),
            Err(VerifyError::MalformedSignature(FormatError::NoMac))
        );
    }

    #[test]
    fn view_over_a_closure_and_a_custom_prefix() {
        let k = secret('a');
        let fields = SignedFields {
            path: "/x",
            status: "absent",
            ..SignedFields::default()
        };
        let sig = Signer::new(&k).header_value(NOW, &fields);
        let table = [("edge-status", "absent"), ("edge-signature", sig.as_str())];
        let view = RequestView::new("/x", |name: &str| {
            table
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        });
        let opts = Options {
            prefix: Some("Edge-"),
            now: Some(NOW),
        };
        let ctx = verify_with(&view, &[k.expose()], DEFAULT_TOLERANCE, &opts).unwrap();
        assert_eq!(ctx.status, ContextStatus::Absent);
        assert!(ctx.pairs.is_empty() && ctx.site.is_none());
    }

    #[test]
    fn status_forms() {
        assert_eq!(
            ContextStatus::parse("discarded; reason=bad_signature"),
            Some(ContextStatus::Discarded {
                reason: "bad_signature".into()
            })
        );
        assert_eq!(
            ContextStatus::parse("accepted; unverified"),
            Some(ContextStatus::Accepted {
                verified: Some(false)
            })
        );
        assert_eq!(ContextStatus::parse("discarded; reason="), None);
        assert_eq!(ContextStatus::parse("weird"), None);
    }
}
