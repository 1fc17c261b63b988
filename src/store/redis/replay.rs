//! One-time token ids in Redis: `SET <prefix>jti:<site>:<sha256 hex> 1 NX PX <lifetime>` — one
//! key, so one slot and one round trip on every topology; `NX` makes the first use win across
//! every instance sharing the store. The key has no hash tag (one-time ids spread over the
//! Cluster's slots) and no `{`, so a site purge's `SCAN` pattern never matches it: erasing a
//! site's contexts must not make its used tokens usable again.

use std::time::Duration;

use super::RedisStore;
use super::metrics::Command;
use crate::store::{StoreError, one_time_digest};

/// The Redis key remembering one used one-time token id of `site`.
pub(crate) fn one_time_key(prefix: &str, site: &str, id: &str) -> String {
    format!("{prefix}jti:{site}:{}", one_time_digest(id))
}

impl RedisStore {
    /// `true` when `id` had not been used for `site` (and now is, for `ttl`).
    pub(super) async fn claim(
        &self,
        site: &str,
        id: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut cmd = redis::cmd("SET");
        let key = one_time_key(&self.core.prefix, site, id);
        cmd.arg(&key).arg(1u8).arg("NX").arg("PX").arg(millis);
        let reply: Option<String> = self.core.call(Command::Set, &key, &cmd).await?;
        Ok(reply.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_site_hashed_and_outside_every_session_pattern() {
        let k = one_time_key("flowgate:", "site1", "token-1");
        assert!(k.starts_with("flowgate:jti:site1:"), "{k}");
        assert_eq!(k.len(), "flowgate:jti:site1:".len() + 64);
        assert!(!k.contains('{'));
        assert_ne!(k, one_time_key("flowgate:", "site2", "token-1"));
    }
}
