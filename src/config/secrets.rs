//! The secrets the configuration names, read: the per-site token keys → a [`TrustPolicy`], and
//! the header-signing secrets. Problems carry the key that named the secret, never its bytes.

use std::path::Path;

use super::{Problem, Problems, SecretSource, TrustConfig};
use crate::secret::{self, MIN_SECRET_BYTES, Secret};
use crate::trust::{SiteKey, SitePolicy, TrustPolicy};

/// The environment variable holding the header-signing secrets (comma-separated).
pub(crate) const SIGNING_SECRET_ENV: &str = "FLOWGATE_SIGNING_SECRET";

impl TrustConfig {
    /// Reads every site's secrets and builds the policy; every problem is listed.
    pub(crate) fn policy(&self) -> Result<TrustPolicy, Problems> {
        let mut problems = Problems::default();
        let mut policy = TrustPolicy::new();
        policy.set_default_rules(self.sites_default.over(&Default::default()));
        for (id, site) in &self.sites {
            policy.set_rules(id.clone(), site.rules.over(&self.sites_default));
            let mut keys = Vec::with_capacity(site.keys.len());
            for (i, key) in site.keys.iter().enumerate() {
                let path = format!("sites.{id}.keys[{i}]");
                match resolve(&key.secret, &path) {
                    Ok(secret) => keys.push(SiteKey::new(key.kid.clone(), &secret)),
                    Err(p) => problems.0.push(p),
                }
            }
            policy.insert(
                id.clone(),
                SitePolicy {
                    mode: site.mode,
                    keys,
                    leeway_secs: site.leeway_secs,
                    max_token_age_secs: site.max_token_age_secs,
                    bind_session: site.bind_session,
                },
            );
        }
        problems.or(policy)
    }

    /// The header-signing secrets: `FLOWGATE_SIGNING_SECRET` when set, else
    /// `signing.secret_file`, else `None` (requests go out unsigned; the proxy warns).
    pub(crate) fn signing_secrets(&self) -> Result<Option<Vec<Secret>>, Problem> {
        if let Some(list) = secret::from_env(SIGNING_SECRET_ENV)
            .map_err(|e| Problem::new(SIGNING_SECRET_ENV, e.to_string()))?
        {
            return Ok(Some(list));
        }
        match &self.signing_secret_file {
            Some(path) => secret::from_file(path)
                .map(Some)
                .map_err(|e| Problem::new("signing.secret_file", e.to_string())),
            None => Ok(None),
        }
    }

    /// Every problem with the secrets the file names (for `flowgate check`).
    pub(crate) fn check_secrets(&self) -> Problems {
        let mut problems = self.policy().err().unwrap_or_default();
        if let Err(p) = self.signing_secrets() {
            problems.0.push(p);
        }
        problems
    }
}

fn resolve(source: &SecretSource, path: &str) -> Result<Secret, Problem> {
    let short = |key: String| {
        Problem::new(
            key,
            format!(
                "the secret is shorter than {MIN_SECRET_BYTES} bytes; use a longer one (e.g. `openssl rand -hex 32`)"
            ),
        )
    };
    match source {
        SecretSource::Inline(s) => Ok(s.clone()),
        SecretSource::Env(name) => {
            let key = format!("{path}.secret_env");
            match std::env::var(name) {
                Ok(v) if v.trim().len() >= MIN_SECRET_BYTES => Ok(Secret::new(v.trim())),
                Ok(v) if v.trim().is_empty() => Err(Problem::new(
                    key,
                    format!("environment variable {name} is empty; set it"),
                )),
                Ok(_) => Err(short(key)),
                Err(_) => Err(Problem::new(
                    key,
                    format!("environment variable {name} is not set (or not UTF-8); set it"),
                )),
            }
        }
        SecretSource::File(file) => {
            let key = format!("{path}.secret_file");
            first_line(file).map_err(|e| Problem::new(key, e))
        }
    }
}

fn first_line(file: &Path) -> Result<Secret, String> {
    let list = secret::from_file(file).map_err(|e| e.to_string())?;
    list.into_iter()
        .next()
        .ok_or_else(|| format!("file {}: no secret found", file.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{KeyConfig, SiteConfig};
    use crate::trust::Mode;

    #[test]
    fn secrets_from_a_file() {
        let dir = std::env::temp_dir().join(format!("flowgate-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("k");
        std::fs::write(&f, "# site1 current\nabcdefghijabcdefghijabcdefghij12\n").unwrap();
        let c = TrustConfig {
            signing_secret_file: Some(f.clone()),
            signing_versions: Default::default(),
            sites_default: Default::default(),
            sites: BTreeMap::from([(
                "s".to_owned(),
                SiteConfig {
                    mode: Mode::Optional,
                    leeway_secs: 1,
                    max_token_age_secs: 60,
                    bind_session: false,
                    keys: vec![KeyConfig {
                        kid: "k".into(),
                        secret: SecretSource::File(f.clone()),
                    }],
                    rules: Default::default(),
                },
            )]),
        };
        let policy = c.policy().unwrap();
        assert_eq!(policy.mode("s"), Mode::Optional);
        assert_eq!(policy.site("s").unwrap().keys[0].kid(), "k");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
