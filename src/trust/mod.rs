//! Signed visitor context: per-site JWT verification of what the host site's server signed.
//!
//! # Trust model
//! An unsigned visitor context is built in the visitor's browser: anyone can claim any
//! `ims_email`. A site that wants identity pre-fill it can rely on turns on signed context: the
//! host site's *server* signs the context as a JWT with a secret it shares with flowgate, and the
//! page hands the token to the widget, which sends it as the `visitor_context_token` parameter
//! of the init request. flowgate verifies it ([`token::verify`]) and runs the private claims
//! through the same SPEC §1 pipeline as an unsigned context.
//!
//! Per site, `mode` decides:
//!
//! | mode | token verifies | token present but bad | no token, unsigned context |
//! | --- | --- | --- | --- |
//! | `off` (default) | token ignored | token ignored | `accepted` |
//! | `optional` | `accepted; verified` | `discarded; reason=bad_signature` | `accepted; unverified` |
//! | `required` | `accepted; verified` | `discarded; reason=bad_signature` | `accepted; unverified`, every `ims_*` key dropped (`unverified_identity`) |
//!
//! A token may be bound to one chat session: its `sid` claim must equal the request's
//! `jsSessionId` (`bind_session: true` makes `sid` required), else `wrong_session`. A token with
//! a `jti` works once: the session store remembers each used `jti` for the token's lifetime, and
//! a second use is `replayed` (`replay_unchecked` when the store cannot answer: a one-time token
//! is never accepted unchecked).
//!
//! A bad token is never downgraded to an unverified context: the request's context is
//! discarded, so a tampered identity cannot slip through as "unverified but pre-filled".
//!
//! # Why a separate parameter
//! The token travels in its own query parameter rather than in `visitor_context`: the unsigned
//! path keeps its exact, conformance-tested behaviour; flowgate never has to guess whether a
//! value is base64 JSON or a JWT; and a page can migrate site by site with both in place (when a
//! token is present, the unsigned `visitor_context` of the same request is ignored).

mod claims;
mod evaluate;
pub mod origin;
pub mod policy;
pub(crate) mod provider;
pub mod sign;
pub mod token;

use std::collections::HashMap;
use std::fmt;

pub use crate::secret::Secret;
pub use evaluate::{InitInput, OneTimeUse, Outcome, TokenOutcome, evaluate};
pub use policy::{Enforce, PageHeaders, PolicyReason, SiteRules, Values, WouldDrop};
pub use token::{SiteKey, TimeRules, TokenError, VerifiedToken};

/// The default clock-skew allowance for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;

/// The default maximum age of a token (`now - iat`), in seconds.
pub const DEFAULT_MAX_TOKEN_AGE_SECS: u64 = 3_600;

/// How a site treats signed visitor context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Tokens are ignored; the unsigned context is handled as always (`Status: accepted`).
    #[default]
    Off,
    /// A token is verified when present; an unsigned context is accepted as `unverified`.
    Optional,
    /// Like `optional`, but an unsigned context loses its `ims_*` keys.
    Required,
}

impl Mode {
    /// The config-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Optional => "optional",
            Mode::Required => "required",
        }
    }

    /// Parses the config-file spelling.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "off" => Some(Mode::Off),
            "optional" => Some(Mode::Optional),
            "required" => Some(Mode::Required),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Site ids follow the widget's rule: 1–128 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_site_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One site's signed-context settings.
#[derive(Debug, Clone)]
pub struct SitePolicy {
    /// The site's mode.
    pub mode: Mode,
    /// The keys a token may name with its `kid`.
    pub keys: Vec<SiteKey>,
    /// Allowed clock skew for `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Oldest a token may be (`now - iat`), in seconds; `iat` is required.
    pub max_token_age_secs: u64,
    /// Every token must carry a `sid` equal to the request's `jsSessionId`.
    pub bind_session: bool,
}

impl SitePolicy {
    /// The time rules its tokens are checked against.
    pub fn time_rules(&self) -> TimeRules {
        TimeRules {
            leeway: self.leeway_secs,
            max_age: self.max_token_age_secs,
        }
    }
}

/// Every site's settings; a site that is not listed is [`Mode::Off`] and follows the default
/// page rules (`sites_default:`).
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    sites: HashMap<String, SitePolicy>,
    rules: HashMap<String, SiteRules>,
    default_rules: SiteRules,
}

impl TrustPolicy {
    /// An empty policy: every site off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the policy of `site`.
    pub fn insert(&mut self, site: impl Into<String>, policy: SitePolicy) {
        self.sites.insert(site.into(), policy);
    }

    /// Sets the page rules of `site` (origins, key policy, enforcement, values).
    pub fn set_rules(&mut self, site: impl Into<String>, rules: SiteRules) {
        self.rules.insert(site.into(), rules);
    }

    /// Sets the page rules of every site without its own (`sites_default:`).
    pub fn set_default_rules(&mut self, rules: SiteRules) {
        self.default_rules = rules;
    }

    /// The page rules `site` follows: its own, or the default.
    pub fn rules(&self, site: &str) -> &SiteRules {
        self.rules.get(site).unwrap_or(&self.default_rules)
    }

    /// Whether `site` has page rules of its own (its id may then be a metric label value).
    pub fn has_own_rules(&self, site: &str) -> bool {
        self.rules.contains_key(site)
    }

    /// The policy of `site`, if it is listed.
    pub fn site(&self, site: &str) -> Option<&SitePolicy> {
        self.sites.get(site)
    }

    /// The mode of `site` ([`Mode::Off`] when not listed).
    pub fn mode(&self, site: &str) -> Mode {
        self.site(site).map_or(Mode::Off, |p| p.mode)
    }

    /// Whether any site uses signed context.
    pub fn is_empty(&self) -> bool {
        self.sites.values().all(|p| p.mode == Mode::Off)
    }
}
