//! The `erasure:` section → [`ErasureConfig`], and the admin token it names: the bearer token
//! that authorises the admin listener's erasure routes (`DELETE /sessions/…`).
//!
//! The token comes from `FLOWGATE_ADMIN_TOKEN` (comma-separated, so a new token can be rolled
//! out before the old one is removed) or, when that is unset, from `erasure.token_file` (one
//! token per line). Neither set: the erasure routes are off (`404`). Each token is at least
//! 32 bytes, like every other secret.

use super::table::Table;
use super::{ErasureConfig, Problem, Problems};
use crate::secret::{self, Secret};

/// The environment variable holding the admin token(s).
pub(crate) const ADMIN_TOKEN_ENV: &str = "FLOWGATE_ADMIN_TOKEN";

/// Reads `erasure:` into `out`.
pub(super) fn read_erasure(out: &mut ErasureConfig, top: &mut Table<'_>, problems: &mut Problems) {
    let mut t = top.table("erasure", problems);
    if let Some(v) = t.field::<String>("token_file", "a file path", problems) {
        if v.is_empty() {
            out.token_file = None;
        } else {
            out.token_file = Some(v.into());
        }
    }
    t.finish_with(
        &format!("the admin token goes in {ADMIN_TOKEN_ENV} or the file"),
        problems,
    );
}

impl ErasureConfig {
    /// The admin tokens: `FLOWGATE_ADMIN_TOKEN` when set, else `erasure.token_file`, else
    /// `None` (the erasure routes are off).
    pub(crate) fn admin_tokens(&self) -> Result<Option<Vec<Secret>>, Problem> {
        if let Some(list) = secret::from_env(ADMIN_TOKEN_ENV)
            .map_err(|e| Problem::new(ADMIN_TOKEN_ENV, e.to_string()))?
        {
            return Ok(Some(list));
        }
        match &self.token_file {
            Some(path) => secret::from_file(path)
                .map(Some)
                .map_err(|e| Problem::new("erasure.token_file", e.to_string())),
            None => Ok(None),
        }
    }
}
