//! The bound write (`sessions.bind: key`): an init's `SET` or `DEL` made by one `EVAL` that
//! first reads the stored entry's key hash, so the check and the write are one atomic step on
//! every topology (one key, so one slot). A bound logout that does not land waits in `pending`
//! with the hash it presented, and is retried as the same bound delete.

use std::sync::Arc;

use super::metrics::{Command, metrics};
use super::pending::Waiting;
use super::{Core, RedisStore, background, codec};
use crate::store::{KeyHash, SessionKey, StoreError, Write};

impl Core {
    /// One bound write: `SET` of `value`, or `DEL` when `None`; `Ok(false)` when the stored
    /// entry is bound to another key and was left alone.
    async fn bound_write(
        self: &Arc<Self>,
        key: &str,
        value: Option<&[u8]>,
        presented: &KeyHash,
    ) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(codec::BOUND_WRITE)
            .arg(1)
            .arg(key)
            .arg(&presented[..])
            .arg(value.unwrap_or_default())
            .arg(self.expiry.0)
            .arg(self.expiry.1);
        let written: i64 = self.call(Command::Eval, key, &cmd).await?;
        Ok(written == 1)
    }

    /// A bound delete; once it reached Redis (whatever it found) it no longer waits.
    async fn bound_delete(
        self: &Arc<Self>,
        key: &str,
        presented: &KeyHash,
    ) -> Result<bool, StoreError> {
        let deleted = self.bound_write(key, None, presented).await?;
        self.pending.landed(key, presented);
        metrics().pending(self.pending.len());
        Ok(deleted)
    }

    /// Runs the deletes waiting for `key`; `Ok` once none waits.
    pub(super) async fn settle(self: &Arc<Self>, key: &str) -> Result<(), StoreError> {
        match self.pending.waiting(key) {
            None => Ok(()),
            Some(Waiting::Any) => self.delete(key).await,
            Some(Waiting::Bound(hashes)) => {
                for hash in hashes {
                    self.bound_delete(key, &hash).await?;
                }
                Ok(())
            }
        }
    }
}

impl RedisStore {
    /// [`crate::store::SessionStore::write_bound`] for Redis.
    pub(super) async fn bound(
        &self,
        key: SessionKey<'_>,
        write: Write<'_>,
        presented: &KeyHash,
    ) -> Result<bool, StoreError> {
        let key = self.key(key);
        match write {
            Write::Put(entry) => {
                let value = codec::encode(entry);
                let written = self.core.bound_write(&key, Some(&value), presented).await?;
                if written {
                    // The new value replaced whatever a waiting logout was to remove.
                    self.core.pending.done(&key);
                }
                Ok(written)
            }
            Write::Delete => {
                // Recorded before the call, so a call cut short by the caller's deadline is
                // not lost; with its hash, so its retry is the same bound delete.
                self.core.queue_delete(&key, Some(presented));
                let result = self.core.bound_delete(&key, presented).await;
                if result.is_err() {
                    metrics().pending(self.core.pending.len());
                    background::start_drain(&self.core);
                }
                result
            }
        }
    }
}
