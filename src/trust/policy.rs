//! A site's policy on what its visitors' pages may send: the origins it embeds the widget on,
//! the keys it takes (and which of them only from a verified token), whether values are made
//! strict, and whether all of that is enforced or only reported. Pure: [`super::evaluate`]
//! applies it, and `flowgate inspect --site` shows the same decisions.

use std::fmt;

use super::origin::{OriginPattern, RequestOrigin};
use crate::context::{Context, DropReason};

/// Whether a site's policy drops what it refuses, or only counts what it would drop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Enforce {
    /// Refused origins discard the context; refused keys are dropped (the default).
    #[default]
    Drop,
    /// Everything is evaluated and counted (`flowgate_policy_would_drop_total`), nothing dropped.
    Report,
}

impl Enforce {
    /// The config-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforce::Drop => "drop",
            Enforce::Report => "report",
        }
    }

    /// Parses the config-file spelling.
    pub fn parse(s: &str) -> Option<Enforce> {
        match s {
            "drop" => Some(Enforce::Drop),
            "report" => Some(Enforce::Report),
            _ => None,
        }
    }
}

/// How a site's values are cleaned after the PHP-exact pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Values {
    /// Exactly what PHP's pipeline gives (the default).
    #[default]
    Php,
    /// Controls and bidi overrides removed, NFC ([`crate::context::strict`]).
    Strict,
}

impl Values {
    /// The config-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Values::Php => "php",
            Values::Strict => "strict",
        }
    }

    /// Parses the config-file spelling.
    pub fn parse(s: &str) -> Option<Values> {
        match s {
            "php" => Some(Values::Php),
            "strict" => Some(Values::Strict),
            _ => None,
        }
    }
}

/// A key name or a prefix ending in `*` (`ims_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern(String);

impl KeyPattern {
    /// Parses `name` or `prefix*`; the characters are those of a context key.
    pub fn parse(s: &str) -> Option<KeyPattern> {
        let body = s.strip_suffix('*').unwrap_or(s);
        let ok = (!body.is_empty() || s == "*")
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| KeyPattern(s.to_owned()))
    }

    /// Whether `key` matches.
    pub fn matches(&self, key: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => key == self.0,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a policy refused something: the reasons of `flowgate_policy_would_drop_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyReason {
    /// The init's origin is not listed.
    Origin,
    /// A key outside `keys.allow`.
    KeyNotAllowed,
    /// A `keys.signed_only` key without a verified token.
    UnverifiedKey,
    /// An `ims_*` key without a verified token on a `required` site.
    UnverifiedIdentity,
}

impl PolicyReason {
    /// Every reason, in a stable order.
    pub const ALL: [PolicyReason; 4] = [
        PolicyReason::Origin,
        PolicyReason::KeyNotAllowed,
        PolicyReason::UnverifiedKey,
        PolicyReason::UnverifiedIdentity,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyReason::Origin => "origin",
            PolicyReason::KeyNotAllowed => "key_not_allowed",
            PolicyReason::UnverifiedKey => "unverified_key",
            PolicyReason::UnverifiedIdentity => "unverified_identity",
        }
    }

    /// The pair drop reason it becomes when enforced (not for [`PolicyReason::Origin`], which
    /// discards the whole context).
    pub(crate) fn drop_reason(self) -> DropReason {
        match self {
            PolicyReason::KeyNotAllowed => DropReason::KeyNotAllowed,
            PolicyReason::UnverifiedKey => DropReason::UnverifiedKey,
            PolicyReason::Origin | PolicyReason::UnverifiedIdentity => {
                DropReason::UnverifiedIdentity
            }
        }
    }
}

impl fmt::Display for PolicyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One site's page policy (`origins`, `keys.allow`, `keys.signed_only`, `enforce`, `values`,
/// `credentials`); the default lets everything through, as before sites had one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteRules {
    /// Allowed origins; `None`: any origin, and CORS is left to the backend.
    pub origins: Option<Vec<OriginPattern>>,
    /// Keys taken from any source; `None`: every key.
    pub allow: Option<Vec<KeyPattern>>,
    /// Keys taken only from a verified token.
    pub signed_only: Vec<KeyPattern>,
    /// Drop, or only report.
    pub enforce: Enforce,
    /// PHP-exact or strict values.
    pub values: Values,
    /// CORS answers carry `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
}

/// Where an init came from, as its headers say.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageHeaders<'a> {
    /// The `Origin` header value.
    pub origin: Option<&'a [u8]>,
    /// The `Referer` header value, used when there is no `Origin`.
    pub referer: Option<&'a [u8]>,
}

impl SiteRules {
    /// Whether the CORS origin `origin` (an `Origin` header value) is listed; `false` when the
    /// site lists no origins.
    pub fn lists_origin(&self, origin: &[u8]) -> bool {
        let Some(list) = &self.origins else {
            return false;
        };
        RequestOrigin::from_origin(origin).is_some_and(|o| list.iter().any(|p| p.matches(&o)))
    }

    /// Whether an init with these headers passes the origin rule (always, without `origins`).
    /// Without `Origin`, the `Referer`'s origin decides; without either, it does not pass.
    pub fn origin_allowed(&self, page: &PageHeaders<'_>) -> bool {
        let Some(list) = &self.origins else {
            return true;
        };
        let origin = match page.origin {
            Some(o) => RequestOrigin::from_origin(o),
            None => page.referer.and_then(RequestOrigin::from_referer),
        };
        origin.is_some_and(|o| list.iter().any(|p| p.matches(&o)))
    }

    /// The rule a key breaks, if any; `verified`: the pairs came from a verified token.
    pub fn key_refusal(&self, key: &str, verified: bool) -> Option<PolicyReason> {
        if self.signed_only.iter().any(|p| p.matches(key)) {
            return (!verified).then_some(PolicyReason::UnverifiedKey);
        }
        match &self.allow {
            Some(allow) if !allow.iter().any(|p| p.matches(key)) => {
                Some(PolicyReason::KeyNotAllowed)
            }
            _ => None,
        }
    }
}

/// What a policy would drop in `report` mode, counted by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WouldDrop([u32; PolicyReason::ALL.len()]);

impl WouldDrop {
    /// Counts one refusal.
    pub fn add(&mut self, reason: PolicyReason) {
        if let Some(i) = PolicyReason::ALL.iter().position(|r| *r == reason) {
            self.0[i] += 1;
        }
    }

    /// Each reason counted at least once, with its count.
    pub fn iter(&self) -> impl Iterator<Item = (PolicyReason, u32)> + '_ {
        PolicyReason::ALL
            .iter()
            .zip(self.0)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (*r, n))
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|n| *n == 0)
    }
}

/// Applies the key rules (and, for a `required` site, the `ims_*` rule) to accepted pairs:
/// enforced, the pairs are dropped; reported, they are only counted in `would`.
pub(crate) fn apply_keys(
    rules: &SiteRules,
    verified: bool,
    identity_needs_token: bool,
    out: &mut Context,
    would: &mut WouldDrop,
) {
    let refusal = |key: &str| {
        rules.key_refusal(key, verified).or_else(|| {
            (identity_needs_token && !verified && key.starts_with("ims_"))
                .then_some(PolicyReason::UnverifiedIdentity)
        })
    };
    match rules.enforce {
        Enforce::Report => {
            for (key, _) in out.pairs() {
                if let Some(r) = refusal(key) {
                    would.add(r);
                }
            }
        }
        Enforce::Drop => {
            for reason in [
                PolicyReason::UnverifiedKey,
                PolicyReason::KeyNotAllowed,
                PolicyReason::UnverifiedIdentity,
            ] {
                out.drop_where(|k| refusal(k) == Some(reason), reason.drop_reason());
            }
        }
    }
}

/// Applies `values: strict` to accepted pairs.
pub(crate) fn apply_values(rules: &SiteRules, out: &mut Context) {
    if rules.values == Values::Strict {
        out.rewrite_values(crate::context::strict::strict_into);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: Option<&[&str]>, signed_only: &[&str]) -> SiteRules {
        let pats = |l: &[&str]| l.iter().map(|s| KeyPattern::parse(s).unwrap()).collect();
        SiteRules {
            allow: allow.map(pats),
            signed_only: pats(signed_only),
            ..SiteRules::default()
        }
    }

    #[test]
    fn key_rules() {
        let r = rules(Some(&["name", "page_*"]), &["plan", "ims_*"]);
        assert_eq!(r.key_refusal("name", false), None);
        assert_eq!(r.key_refusal("page_url", false), None);
        assert_eq!(
            r.key_refusal("other", true),
            Some(PolicyReason::KeyNotAllowed)
        );
        assert_eq!(
            r.key_refusal("plan", false),
            Some(PolicyReason::UnverifiedKey)
        );
        assert_eq!(r.key_refusal("ims_email", true), None);
        let open = rules(None, &["plan"]);
        assert_eq!(open.key_refusal("anything", false), None);
        assert!(KeyPattern::parse("a b").is_none() && KeyPattern::parse("").is_none());
    }

    #[test]
    fn origin_rule_falls_back_to_referer() {
        let mut r = SiteRules::default();
        assert!(r.origin_allowed(&PageHeaders::default()));
        r.origins = Some(vec![
            OriginPattern::parse("https://shop.example.com").unwrap(),
        ]);
        let page = |o: Option<&'static str>, re: Option<&'static str>| PageHeaders {
            origin: o.map(str::as_bytes),
            referer: re.map(str::as_bytes),
        };
        assert!(r.origin_allowed(&page(Some("https://shop.example.com"), None)));
        assert!(!r.origin_allowed(&page(Some("https://evil.example"), None)));
        assert!(r.origin_allowed(&page(None, Some("https://shop.example.com/p?q"))));
        // An Origin header wins over a Referer that would pass.
        assert!(!r.origin_allowed(&page(Some("null"), Some("https://shop.example.com/"))));
        assert!(!r.origin_allowed(&page(None, None)));
    }
}
