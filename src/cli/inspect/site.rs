//! The signed-context part of `flowgate inspect`: for a site, a token and/or an unsigned
//! context, what the edge decides and — when a token is refused — why.
//!
//! `flowgate inspect --site site1 --session <jsSessionId> --token <JWT> -c flowgate.yaml [B64]`
//!
//! `inspect` never claims a one-time token (`jti`): it says the proxy would accept it once.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::{write_context_headers, write_pairs};
use crate::config::TrustConfig;
use crate::context::{Context, Pipeline};
use crate::headers;
use crate::trust::{
    InitInput, Mode, PageHeaders, SiteRules, TokenError, TokenOutcome, TrustPolicy, evaluate,
};

/// What `inspect` was asked about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// The site id the init request names.
    pub(crate) site: &'a str,
    /// The `jsSessionId` the init request names, if given.
    pub(crate) session: Option<&'a str>,
    /// The `visitor_context_token` value, if any.
    pub(crate) token: Option<&'a str>,
    /// The unsigned `visitor_context` value, if any.
    pub(crate) context: Option<&'a [u8]>,
    /// The configuration file holding `sites:` (keys and modes), if any.
    pub(crate) config: Option<&'a Path>,
    /// Trusted header prefix for the header lines.
    pub(crate) prefix: &'a str,
    /// The init's `Origin` header, if any.
    pub(crate) origin: Option<&'a str>,
}

/// A sentence for each refusal, for people reading `inspect` output.
pub(crate) fn explain(e: TokenError) -> &'static str {
    match e {
        TokenError::TooLong => "the token is longer than 20000 characters",
        TokenError::Malformed => {
            "not a JWT: three base64url parts with a JSON header and a JSON object payload (no `crit`)"
        }
        TokenError::AlgNotAllowed => "alg must be HS256, HS384 or HS512",
        TokenError::MissingKid => "the header has no kid; set it to a kid configured for the site",
        TokenError::BadKid => "the header's kid is not a string; write it as \"kid\": \"…\"",
        TokenError::UnknownKid => "no key of this site has the token's kid",
        TokenError::BadSignature => {
            "the MAC does not match: wrong secret for this kid, or the token was altered"
        }
        TokenError::Expired => "exp is in the past (beyond the site's leeway)",
        TokenError::NotYetValid => "nbf or iat is in the future (beyond the site's leeway)",
        TokenError::TooOld => {
            "iat is older than the site's max_token_age_seconds: sign a fresh token for each page"
        }
        TokenError::WrongAudience => "aud is not this site's id",
        TokenError::MissingClaim => "exp, iat and aud are required",
        TokenError::BadClaim => {
            "exp, nbf or iat is not a whole number of seconds, aud is not a string (or list of strings), or sid/jti is not a non-empty string of at most 256 bytes"
        }
        TokenError::WrongSession => {
            "sid is not the request's jsSessionId (pass it with --session), or the site has bind_session and the token has no sid"
        }
        TokenError::Replayed => "the token's jti was used before: one-time tokens work once",
        TokenError::ReplayUnchecked => {
            "the session store could not say whether the token's jti was used, so it is not accepted"
        }
    }
}

/// Reads the config's `signing`/`sites` sections and resolves the site keys.
pub(crate) fn load_policy(path: &Path) -> Result<TrustPolicy, String> {
    TrustConfig::load(path)
        .and_then(|config| config.policy())
        .map_err(|problems| problems.to_string())
}

/// Writes the report; a configuration that cannot be used is an error.
pub(crate) fn write_report(req: &Request<'_>, out: &mut impl Write) -> io::Result<()> {
    let policy = match req.config {
        Some(path) => load_policy(path).map_err(io::Error::other)?,
        None => TrustPolicy::new(),
    };
    let site = policy.site(req.site);
    let mode = policy.mode(req.site);
    match site {
        Some(s) => writeln!(
            out,
            "site: {} (mode {mode}, {} key(s): {}, leeway {} s, max token age {} s{})",
            req.site,
            s.keys.len(),
            s.keys
                .iter()
                .map(|k| k.kid())
                .collect::<Vec<_>>()
                .join(", "),
            s.leeway_secs,
            s.max_token_age_secs,
            if s.bind_session {
                ", bind_session: tokens need sid"
            } else {
                ""
            }
        )?,
        None if req.config.is_some() => writeln!(
            out,
            "site: {} (not under sites: in the config, so mode off)",
            req.site
        )?,
        None => writeln!(
            out,
            "site: {} (no -c given, so mode off; pass the config to check tokens)",
            req.site
        )?,
    }
    if let Some(token) = req.token {
        writeln!(out, "token: {} characters", token.len())?;
        for line in describe_token(token) {
            writeln!(out, "  {line}")?;
        }
    }

    write_rules(policy.rules(req.site), req.origin, out)?;
    let mut ctx = Context::new();
    let outcome = evaluate(
        &policy,
        &InitInput {
            site: req.site,
            session: req.session.unwrap_or(""),
            context: req.context,
            token: req.token.map(str::as_bytes),
            page: PageHeaders {
                origin: req.origin.map(str::as_bytes),
                referer: None,
            },
        },
        &mut Pipeline::new(),
        &mut ctx,
    );
    match &outcome.token {
        TokenOutcome::Absent if mode != Mode::Off => writeln!(
            out,
            "token: none sent, so the context is unverified{}",
            if mode == Mode::Required {
                " and its ims_* keys are dropped"
            } else {
                ""
            }
        )?,
        TokenOutcome::Absent => {}
        TokenOutcome::Ignored => writeln!(out, "token: ignored (the site's mode is off)")?,
        TokenOutcome::Verified { kid } => {
            writeln!(out, "token: verified with kid {kid}")?;
            if outcome.one_time.is_some() {
                writeln!(
                    out,
                    "token: one-time (jti): the proxy accepts it once, then discards it as replayed"
                )?;
            }
        }
        TokenOutcome::Rejected(e) => {
            writeln!(out, "token: REFUSED ({}): {}", e.as_str(), explain(*e))?
        }
    }
    let status = outcome.status;
    for (reason, n) in outcome.would_drop.iter() {
        writeln!(out, "would drop (enforce: report): {n} × {reason}")?;
    }
    writeln!(out, "status: {status}")?;
    if outcome.is_accepted() {
        write_pairs(&ctx, out)?;
    }
    let prefix = req.prefix;
    writeln!(out, "\nheaders:")?;
    writeln!(out, "  {prefix}{}: {}", headers::SITE, req.site)?;
    writeln!(out, "  {prefix}{}: {status}", headers::STATUS)?;
    if outcome.is_accepted() {
        write_context_headers(&ctx, prefix, out)?;
    }
    Ok(())
}

/// The site's page rules, and the decision on the origin given.
fn write_rules(rules: &SiteRules, origin: Option<&str>, out: &mut impl Write) -> io::Result<()> {
    let list = |l: &[String]| l.join(", ");
    match &rules.origins {
        None => writeln!(
            out,
            "origins: any (no origins: set; CORS left to the backend)"
        )?,
        Some(o) => {
            let shown: Vec<String> = o.iter().map(ToString::to_string).collect();
            writeln!(out, "origins: {}", list(&shown))?;
            let verdict = match origin {
                Some(v) if rules.lists_origin(v.as_bytes()) => "listed".to_owned(),
                Some(_) => "NOT listed: context discarded (reason origin)".to_owned(),
                None => "no --origin given: an init without Origin or Referer is discarded \
                         (reason origin)"
                    .to_owned(),
            };
            writeln!(out, "origin: {} → {verdict}", origin.unwrap_or("(none)"))?;
        }
    }
    let pats = |p: &[crate::trust::policy::KeyPattern]| {
        let v: Vec<String> = p.iter().map(|k| k.as_str().to_owned()).collect();
        list(&v)
    };
    match &rules.allow {
        Some(a) => writeln!(out, "keys.allow: {} (other keys: key_not_allowed)", pats(a))?,
        None => writeln!(out, "keys.allow: any")?,
    }
    if !rules.signed_only.is_empty() {
        writeln!(
            out,
            "keys.signed_only: {} (without a verified token: unverified_key)",
            pats(&rules.signed_only)
        )?;
    }
    writeln!(
        out,
        "enforce: {}, values: {}",
        rules.enforce.as_str(),
        rules.values.as_str()
    )
}

/// The token's header and time claims, decoded without verification, for diagnosis only.
fn describe_token(token: &str) -> Vec<String> {
    let mut parts = token.split('.');
    let decode = |p: Option<&str>| -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(p?).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let mut lines = Vec::new();
    match decode(parts.next()) {
        Some(h) => lines.push(format!(
            "header: alg {}, kid {}",
            h.get("alg").map_or("(none)".into(), Value::to_string),
            h.get("kid").map_or("(none)".into(), Value::to_string)
        )),
        None => lines.push("header: not base64url JSON".to_owned()),
    }
    let Some(claims) = decode(parts.next()) else {
        lines.push("payload: not base64url JSON".to_owned());
        return lines;
    };
    let now = jsonwebtoken::get_current_timestamp();
    let mut line = format!(
        "claims: aud {}, sid {}, jti {}",
        claims.get("aud").map_or("(none)".into(), Value::to_string),
        if claims.get("sid").is_some() {
            "present"
        } else {
            "(none)"
        },
        if claims.get("jti").is_some() {
            "present"
        } else {
            "(none)"
        },
    );
    for name in ["exp", "nbf", "iat"] {
        match claims.get(name) {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(t) if t >= now => {
                    let _ = write!(line, ", {name} {t} (in {} s)", t - now);
                }
                Some(t) => {
                    let _ = write!(line, ", {name} {t} ({} s ago)", now - t);
                }
                None => {
                    let _ = write!(line, ", {name} {n} (not whole seconds)");
                }
            },
            Some(other) => {
                let _ = write!(line, ", {name} {other} (not a number)");
            }
            None => {}
        }
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::sign::{HostKey, sign_context};

    #[test]
    fn report_explains_a_refused_token() {
        let dir = std::env::temp_dir().join(format!("flowgate-inspect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("f.yaml");
        std::fs::write(
            &conf,
            "listen: 0.0.0.0:1\nsites:\n  s1:\n    mode: required\n    keys:\n      - {kid: k1, secret: \"0123456789abcdef0123456789abcdef\"}\n",
        )
        .unwrap();
        let key = HostKey {
            kid: "k1",
            secret: b"0123456789abcdef0123456789abcdef",
            alg: jsonwebtoken::Algorithm::HS256,
        };
        let now = jsonwebtoken::get_current_timestamp();
        let good = sign_context(&[("ims_email", "a@b.c")], "s1", &key, now, 60).unwrap();
        let old = sign_context(&[("ims_email", "a@b.c")], "s1", &key, now - 4000, 60).unwrap();
        let run = |token: &str| {
            let mut out = Vec::new();
            write_report(
                &Request {
                    site: "s1",
                    session: Some("chat-1"),
                    token: Some(token),
                    context: None,
                    config: Some(&conf),
                    prefix: "X-Flowgate-",
                    origin: None,
                },
                &mut out,
            )
            .unwrap();
            String::from_utf8(out).unwrap()
        };
        let ok = run(&good);
        assert!(ok.contains("token: verified with kid k1"), "{ok}");
        assert!(ok.contains("status: accepted; verified"), "{ok}");
        assert!(ok.contains("visitor_email = \"a@b.c\""), "{ok}");
        let bad = run(&old);
        assert!(bad.contains("REFUSED (expired)"), "{bad}");
        assert!(bad.contains("s ago"), "{bad}");
        assert!(
            bad.contains("status: discarded; reason=bad_signature"),
            "{bad}"
        );
        assert!(!bad.contains("0123456789abcdef"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
