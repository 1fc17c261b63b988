//! The verification kit for the chat backend: check flowgate's signature, decode its headers.
//!
//! flowgate sets `X-Flowgate-Site`, `-Session`, `-Status`, `-Context`, `-Prefill`,
//! `X-Request-Id`, `X-Real-IP` and, when a signing secret is configured,
//! `X-Flowgate-Signature: t=<unix>,v2=<hex HMAC-SHA256>` over the method, host, target, client
//! address, request id and trusted headers (the exact string is in
//! [`crate::headers::signature`]). A backend that calls [`verify`] on every request knows the
//! request came through flowgate, unchanged, recently — and, with a [`ReplayCache`], once.
//!
//! ```
//! use flowgate::upstream::{self, Options};
//!
//! // Once, at start-up: the same list as flowgate's FLOWGATE_SIGNING_SECRET. An empty list,
//! // or any secret shorter than 32 bytes, is refused here — never a silent fail-open.
//! let options = Options::new(&["0123456789abcdef0123456789abcdef"]).expect("signing secrets");
//!
//! fn handle(req: &http::Request<()>, options: &Options) -> Result<(), upstream::VerifyError> {
//!     let trusted = upstream::verify(req, options)?;
//!     // Pre-fill only what the host site's server signed: `None` for a browser's claims.
//!     if let Some(email) = trusted.verified_prefill().and_then(|p| p.get("visitor_email")) {
//!         // skip the "what is your email?" step
//!         let _ = email;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Pure: no I/O; the clock is read once unless [`Options::now`] is given. The request type is
//! anything implementing [`SignedRequest`] — `http::Request`, `http::request::Parts`, or
//! [`RequestView`] around any method, target and header lookup.

mod context;
mod replay;
mod request;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use context::{AcknowledgeUnsigned, ContextStatus, Pairs, TrustedContext};
pub use replay::{DEFAULT_MAX_ENTRIES, MemoryReplayCache, ReplayCache};
pub use request::{RequestView, SignedRequest};

pub use crate::headers::DEFAULT_PREFIX;
pub use crate::headers::signature::Version;
use crate::headers::signature::{self, Key, SignedFields};
use crate::headers::{CONTEXT, PREFILL, SESSION, SIGNATURE, SITE, STATUS};

/// The default accepted distance between the signature's `t` and the verifier's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// Shortest secret accepted, in bytes (flowgate refuses shorter ones too).
pub const MIN_SECRET_BYTES: usize = 32;
/// The default request id header.
pub const DEFAULT_REQUEST_ID_HEADER: &str = "X-Request-Id";
/// The default client address header.
pub const DEFAULT_CLIENT_IP_HEADER: &str = "X-Real-IP";

/// A secret list that must not be verified with: refused before any request is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsError {
    /// No secret at all (an unset variable, an empty list).
    None,
    /// Secret number `position` (1-based) is empty.
    Empty {
        /// 1-based position in the list.
        position: usize,
    },
    /// Secret number `position` (1-based) is shorter than [`MIN_SECRET_BYTES`].
    TooShort {
        /// 1-based position in the list.
        position: usize,
    },
}

impl fmt::Display for SecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fix = "use the list flowgate signs with (FLOWGATE_SIGNING_SECRET, newest first)";
        match self {
            SecretsError::None => write!(f, "no verification secret given; {fix}"),
            SecretsError::Empty { position } => {
                write!(f, "verification secret #{position} is empty; {fix}")
            }
            SecretsError::TooShort { position } => write!(
                f,
                "verification secret #{position} is shorter than {MIN_SECRET_BYTES} bytes; {fix}"
            ),
        }
    }
}

impl std::error::Error for SecretsError {}

/// Why a request's trusted headers were rejected. Names are stable ([`VerifyError::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// No `Signature` header: the request did not come through a signing flowgate.
    MissingSignature,
    /// The `Signature` header is not `t=<digits>,v2=<64 hex>` (or repeats a field).
    MalformedSignature,
    /// No version this verifier checks: no `v2=` (and no `v1=` accepted by
    /// [`Options::accept_v1`]).
    UnsupportedVersion,
    /// Correctly signed, but `t` is further than the tolerance from now, either way (replayed
    /// late, or a clock off). `skew` is `now - t` in seconds.
    Expired {
        /// `now - t`, seconds (negative: from the future).
        skew: i64,
    },
    /// No secret produces the signature over this request: forged or altered.
    BadSignature,
    /// Correctly signed and recent, but this request id was already verified (replay cache).
    Replayed,
    /// A signed header occurs twice, or cannot be decoded (suffix or header name).
    BadHeader,
}

impl VerifyError {
    /// The stable machine-readable name, the same in every kit.
    pub fn as_str(&self) -> &'static str {
        match self {
            VerifyError::MissingSignature => "missing_signature",
            VerifyError::MalformedSignature => "malformed_signature",
            VerifyError::UnsupportedVersion => "unsupported_version",
            VerifyError::Expired { .. } => "expired",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::Replayed => "replayed",
            VerifyError::BadHeader => "bad_header",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Expired { skew } => write!(f, "expired (signed {skew} s from now)"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl std::error::Error for VerifyError {}

/// How to verify: the secrets (checked when built) and the rest, with defaults.
#[derive(Clone)]
pub struct Options {
    keys: Vec<Key>,
    tolerance: u64,
    now: Option<u64>,
    prefix: String,
    accept_v1: bool,
    replay: Option<Arc<dyn ReplayCache>>,
    request_id_header: String,
    client_ip_header: String,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("secrets", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .field("prefix", &self.prefix)
            .field("accept_v1", &self.accept_v1)
            .field("replay", &self.replay.is_some())
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Options verifying with any of `secrets` (newest first); refused when the list is empty
    /// or any secret is empty or shorter than [`MIN_SECRET_BYTES`].
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Result<Options, SecretsError> {
        if secrets.is_empty() {
            return Err(SecretsError::None);
        }
        let mut keys = Vec::with_capacity(secrets.len());
        for (i, s) in secrets.iter().enumerate() {
            let position = i + 1;
            match s.as_ref().len() {
                0 => return Err(SecretsError::Empty { position }),
                n if n < MIN_SECRET_BYTES => return Err(SecretsError::TooShort { position }),
                _ => keys.push(Key::new(s.as_ref())),
            }
        }
        Ok(Options {
            keys,
            tolerance: DEFAULT_TOLERANCE.as_secs(),
            now: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            accept_v1: false,
            replay: None,
            request_id_header: DEFAULT_REQUEST_ID_HEADER.to_owned(),
            client_ip_header: DEFAULT_CLIENT_IP_HEADER.to_owned(),
        })
    }

    /// [`Options::new`] with the comma-separated list in environment variable `name` (blank
    /// entries skipped, surrounding spaces trimmed: flowgate's own format).
    pub fn from_env(name: &str) -> Result<Options, SecretsError> {
        let text = std::env::var(name).unwrap_or_default();
        let list: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        Options::new(&list)
    }

    /// The accepted distance between `t` and now ([`DEFAULT_TOLERANCE`], 300 s).
    pub fn tolerance(mut self, tolerance: Duration) -> Options {
        self.tolerance = tolerance.as_secs();
        self
    }

    /// Verify at unix time `now` instead of the system clock (tests).
    pub fn now(mut self, now: u64) -> Options {
        self.now = Some(now);
        self
    }

    /// The trusted header prefix, when flowgate's `headers.prefix` is not [`DEFAULT_PREFIX`].
    pub fn prefix(mut self, prefix: &str) -> Options {
        self.prefix = prefix.to_owned();
        self
    }

    /// Also accept a `v1` signature when there is no `v2` (while flowgate runs with
    /// `signing.versions: [v1, v2]` or older). `v1` does not cover the method, host, query,
    /// client address or request id.
    pub fn accept_v1(mut self, accept: bool) -> Options {
        self.accept_v1 = accept;
        self
    }

    /// Refuse a second request with the same signed request id (`replayed`).
    pub fn replay(mut self, cache: Arc<dyn ReplayCache>) -> Options {
        self.replay = Some(cache);
        self
    }

    /// The request id header, when flowgate's `client_ip.request_id_header` is not the default.
    pub fn request_id_header(mut self, name: &str) -> Options {
        self.request_id_header = name.to_owned();
        self
    }

    /// The client address header, when flowgate's `client_ip.real_ip_header` is not the
    /// default.
    pub fn client_ip_header(mut self, name: &str) -> Options {
        self.client_ip_header = name.to_owned();
        self
    }
}

/// Checks the signature on `request` and decodes its trusted headers.
///
/// In order: the signature header is present and well-formed; it has a version this verifier
/// checks (`v2`; `v1` only with [`Options::accept_v1`] and no `v2`); a secret of the list
/// produces it (constant-time); `t` is within the tolerance; the headers decode; the request
/// id was not seen before (with [`Options::replay`], which needs `v2`: a `v1`-only request is
/// then `unsupported_version`).
pub fn verify<R>(request: &R, options: &Options) -> Result<TrustedContext, VerifyError>
where
    R: SignedRequest + ?Sized,
{
    fn text(v: Option<&str>) -> &str {
        v.unwrap_or("")
    }
    let p = &options.prefix;
    let names = [SIGNATURE, SITE, SESSION, STATUS, CONTEXT, PREFILL].map(|s| format!("{p}{s}"));
    let mut values = [None; 8];
    let all = names.iter().map(String::as_str).chain([
        options.request_id_header.as_str(),
        options.client_ip_header.as_str(),
    ]);
    for (slot, name) in values.iter_mut().zip(all) {
        if request.header_count(name) > 1 {
            return Err(VerifyError::BadHeader);
        }
        *slot = request.header(name);
    }
    let [
        sig,
        site,
        session,
        status,
        context,
        prefill,
        request_id,
        client_ip,
    ] = values;
    if request.header_count("host") > 1 {
        return Err(VerifyError::BadHeader);
    }
    let sig = signature::parse(sig.ok_or(VerifyError::MissingSignature)?)
        .map_err(|_| VerifyError::MalformedSignature)?;
    let version = match (sig.v2, sig.v1) {
        (Some(_), _) => Version::V2,
        (None, Some(_)) if options.accept_v1 => Version::V1,
        _ => return Err(VerifyError::UnsupportedVersion),
    };
    let fields = SignedFields {
        method: request.method(),
        host: text(request.host()),
        target: signature::canonical_target(request.target()),
        request_id: text(request_id),
        client_ip: text(client_ip),
        site: text(site),
        session: text(session),
        status: text(status),
        context: text(context),
        prefill: text(prefill),
    };
    let mac = sig.mac(version).ok_or(VerifyError::UnsupportedVersion)?;
    if !signature::matches(&options.keys, version, sig.t, mac, &fields) {
        return Err(VerifyError::BadSignature);
    }
    let now = options.now.unwrap_or_else(unix_now);
    let skew = i128::from(now) - i128::from(sig.t);
    if skew.abs() > i128::from(options.tolerance) {
        let skew = i64::try_from(skew).unwrap_or(i64::MAX);
        return Err(VerifyError::Expired { skew });
    }
    // v1 does not sign these: they are not the edge's word.
    let signed = |v: Option<&str>| {
        v.filter(|v| version == Version::V2 && !v.is_empty())
            .map(str::to_owned)
    };
    let trusted = TrustedContext {
        site: site.map(str::to_owned),
        session: session.map(str::to_owned),
        status: ContextStatus::parse(fields.status).ok_or(VerifyError::BadHeader)?,
        context: Pairs::decode(fields.context).ok_or(VerifyError::BadHeader)?,
        request_id: signed(request_id),
        client_ip: signed(client_ip),
        signed_at: sig.t,
        version,
        prefill: Pairs::decode(fields.prefill).ok_or(VerifyError::BadHeader)?,
    };
    if let Some(cache) = &options.replay {
        // v1 signs no request id: a replay could not be told apart, so the opt-in refuses it.
        if version != Version::V2 {
            return Err(VerifyError::UnsupportedVersion);
        }
        let id = trusted
            .request_id
            .as_deref()
            .ok_or(VerifyError::BadHeader)?;
        if cache.seen(id, sig.t) {
            return Err(VerifyError::Replayed);
        }
    }
    Ok(trusted)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
