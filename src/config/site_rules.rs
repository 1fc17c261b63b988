//! A site's page rules (`origins`, `keys: {allow, signed_only}`, `enforce`, `values`,
//! `credentials`) and the `sites_default:` section the sites without their own follow.
//!
//! A site's key left unset takes the value of `sites_default`, and that of the built-in
//! default (any origin, any key, `enforce: drop`, `values: php`, no credentials).

use yaml_serde::Value;

use super::Problems;
use super::table::Table;
use crate::trust::origin::OriginPattern;
use crate::trust::policy::KeyPattern;
use crate::trust::{Enforce, SiteRules, Values};

/// The page rules as written for one site or for `sites_default`; `None`: not set there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesConfig {
    /// `origins`.
    pub origins: Option<Vec<OriginPattern>>,
    /// `keys.allow`.
    pub allow: Option<Vec<KeyPattern>>,
    /// `keys.signed_only`.
    pub signed_only: Option<Vec<KeyPattern>>,
    /// `enforce`.
    pub enforce: Option<Enforce>,
    /// `values`.
    pub values: Option<Values>,
    /// `credentials`.
    pub credentials: Option<bool>,
}

impl RulesConfig {
    /// These rules, each unset key taken from `default`.
    pub(crate) fn over(&self, default: &RulesConfig) -> SiteRules {
        SiteRules {
            origins: self.origins.clone().or_else(|| default.origins.clone()),
            allow: self.allow.clone().or_else(|| default.allow.clone()),
            signed_only: self
                .signed_only
                .clone()
                .or_else(|| default.signed_only.clone())
                .unwrap_or_default(),
            enforce: self.enforce.or(default.enforce).unwrap_or_default(),
            values: self.values.or(default.values).unwrap_or_default(),
            credentials: self.credentials.or(default.credentials).unwrap_or(false),
        }
    }
}

/// Reads the page-rule keys of one site's table (or of `sites_default`), except `keys`.
pub(super) fn read_rules(t: &mut Table<'_>, rules: &mut RulesConfig, problems: &mut Problems) {
    const ORIGINS: &str =
        "a list of origins like \"https://shop.example.com\" or \"https://*.example.com\"";
    if let Some(list) = t.field::<Vec<String>>("origins", ORIGINS, problems) {
        let path = t.key_path("origins");
        if list.is_empty() {
            problems.push(
                path.clone(),
                "an empty list refuses every page; list the origins or remove the key",
            );
        }
        let mut parsed = Vec::new();
        for (i, o) in list.iter().enumerate() {
            match OriginPattern::parse(o) {
                Ok(p) => parsed.push(p),
                Err(why) => problems.push(format!("{path}[{i}]"), format!("{o:?} {why}")),
            }
        }
        rules.origins = Some(parsed);
    }
    if let Some(v) = t.field::<String>("enforce", "drop (default) or report", problems) {
        match Enforce::parse(&v) {
            Some(e) => rules.enforce = Some(e),
            None => problems.push(t.key_path("enforce"), "must be drop (default) or report"),
        }
    }
    if let Some(v) = t.field::<String>("values", "php (default) or strict", problems) {
        match Values::parse(&v) {
            Some(e) => rules.values = Some(e),
            None => problems.push(t.key_path("values"), "must be php (default) or strict"),
        }
    }
    if let Some(v) = t.field::<bool>("credentials", "true or false (default)", problems) {
        rules.credentials = Some(v);
    }
}

/// Reads `keys` as the key policy mapping `{allow, signed_only}` (and, for a site, `verify`:
/// its token keys); returns the `verify` list.
pub(super) fn read_key_policy<'v>(
    path: String,
    value: &'v Value,
    with_verify: bool,
    rules: &mut RulesConfig,
    problems: &mut Problems,
) -> Option<&'v Vec<Value>> {
    let mut t = Table::nested(path.clone(), Some(value), "", problems);
    const KEYS: &str = "a list of context keys; a trailing * matches a prefix (ims_*)";
    let patterns = |t: &mut Table<'_>, key: &'static str, problems: &mut Problems| {
        let list = t.field::<Vec<String>>(key, KEYS, problems)?;
        let mut out = Vec::new();
        for (i, k) in list.iter().enumerate() {
            match KeyPattern::parse(k) {
                Some(p) => out.push(p),
                None => problems.push(
                    format!("{}[{i}]", t.key_path(key)),
                    format!("{k:?} is not a context key (A-Z a-z 0-9 _ -, optionally ending in *)"),
                ),
            }
        }
        Some(out)
    };
    rules.allow = patterns(&mut t, "allow", problems);
    rules.signed_only = patterns(&mut t, "signed_only", problems);
    let verify = if with_verify {
        t.list(
            "verify",
            "a list of {kid, secret_env|secret_file|secret}",
            problems,
        )
    } else {
        None
    };
    t.finish(problems);
    if let (Some(allow), Some(signed)) = (&rules.allow, &rules.signed_only) {
        for s in signed {
            if allow.contains(s) {
                problems.push(
                    format!("{path}.signed_only"),
                    format!(
                        "{:?} is in both allow and signed_only; keep it in signed_only only (signed_only keys are allowed from a verified token)",
                        s.as_str()
                    ),
                );
            }
        }
    }
    verify
}

/// The `sites_default:` section.
pub(super) fn read_sites_default(top: &mut Table<'_>, problems: &mut Problems) -> RulesConfig {
    let mut rules = RulesConfig::default();
    let raw = top.raw("sites_default");
    let mut t = Table::nested(
        "sites_default".to_owned(),
        raw,
        "must be a mapping (origins, keys, enforce, values, credentials)",
        problems,
    );
    read_rules(&mut t, &mut rules, problems);
    match t.raw("keys") {
        None => {}
        Some(v @ Value::Mapping(_)) => {
            read_key_policy("sites_default.keys".into(), v, false, &mut rules, problems);
        }
        Some(_) => problems.push(
            "sites_default.keys",
            "must be a mapping {allow: [...], signed_only: [...]}",
        ),
    }
    t.finish(problems);
    // Spelling out a built-in default is the same as leaving it out.
    rules.enforce = rules.enforce.filter(|e| *e != Enforce::default());
    rules.values = rules.values.filter(|v| *v != Values::default());
    rules.credentials = rules.credentials.filter(|c| *c);
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_inherits_what_it_does_not_set() {
        let default = RulesConfig {
            origins: Some(vec![OriginPattern::parse("https://a.example.com").unwrap()]),
            enforce: Some(Enforce::Report),
            ..RulesConfig::default()
        };
        let site = RulesConfig {
            values: Some(Values::Strict),
            enforce: Some(Enforce::Drop),
            ..RulesConfig::default()
        };
        let r = site.over(&default);
        assert_eq!(r.origins, default.origins);
        assert_eq!((r.enforce, r.values), (Enforce::Drop, Values::Strict));
        assert_eq!(
            RulesConfig::default().over(&RulesConfig::default()),
            SiteRules::default()
        );
    }
}
