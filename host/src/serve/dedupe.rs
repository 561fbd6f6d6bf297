//! Deduplication by `messageId` per tenant over a sliding window, kept in the embedded
//! store (one redb file) so that a restart, even `kill -9`, does not forget.

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `tenant \0 messageId` → when it was processed (ms since the epoch).
const SEEN: TableDefinition<&str, u64> = TableDefinition::new("seen_messages");

/// The store failed (disk full, corrupt file, ...).
#[derive(Debug, thiserror::Error)]
#[error("the deduplication store failed: {0}")]
pub struct StoreError(String);

fn store_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// The deduplication window. Cheap to clone.
#[derive(Clone)]
pub struct Dedupe {
    db: Arc<Database>,
    window: Duration,
}

impl std::fmt::Debug for Dedupe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedupe")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The store's (and the in-progress set's) key for a tenant's message.
pub(crate) fn key(tenant: &str, message_id: &str) -> String {
    format!("{tenant}\0{message_id}")
}

impl Dedupe {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path, window: Duration) -> Result<Dedupe, StoreError> {
        let db =
            Database::create(path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        // Create the table up front so reads never find it missing.
        let txn = db.begin_write().map_err(store_error)?;
        txn.open_table(SEEN).map_err(store_error)?;
        txn.commit().map_err(store_error)?;
        Ok(Dedupe {
            db: Arc::new(db),
            window,
        })
    }

    /// Which of `message_ids` were processed for `tenant` within the window (one read).
    pub async fn seen_many(
        &self,
        tenant: &str,
        message_ids: Vec<String>,
    ) -> Result<HashSet<String>, StoreError> {
        if message_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let (db, tenant, window) = (
            self.db.clone(),
            tenant.to_owned(),
            self.window.as_millis() as u64,
        );
        blocking(move || {
            let txn = db.begin_read().map_err(store_error)?;
            let table = txn.open_table(SEEN).map_err(store_error)?;
            let now = now_ms();
            let mut seen = HashSet::new();
            for id in message_ids {
                let at = table
                    .get(key(&tenant, &id).as_str())
                    .map_err(store_error)?
                    .map(|v| v.value());
                if at.is_some_and(|at| now.saturating_sub(at) < window) {
                    seen.insert(id);
                }
            }
            Ok(seen)
        })
        .await
    }

    /// Whether `message_id` was processed for `tenant` within the window.
    #[cfg(test)]
    async fn seen(&self, tenant: &str, message_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .seen_many(tenant, vec![message_id.to_owned()])
            .await?
            .contains(message_id))
    }

    /// Records that these messages were processed (durably, before the answer is sent).
    pub async fn mark(&self, tenant: &str, message_ids: Vec<String>) -> Result<(), StoreError> {
        if message_ids.is_empty() {
            return Ok(());
        }
        let (db, tenant) = (self.db.clone(), tenant.to_owned());
        blocking(move || {
            let txn = db.begin_write().map_err(store_error)?;
            {
                let mut table = txn.open_table(SEEN).map_err(store_error)?;
                let now = now_ms();
                for id in &message_ids {
                    table
                        .insert(key(&tenant, id).as_str(), now)
                        .map_err(store_error)?;
                }
            }
            txn.commit().map_err(store_error)
        })
        .await
    }

    /// Forgets entries older than the window; returns how many. Works in chunks so no
    /// write transaction (which `mark` waits for) lasts long.
    pub async fn purge(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let (db, window) = (self.db.clone(), self.window.as_millis() as u64);
            let removed = blocking(move || {
                let expired: Vec<String> = {
                    let txn = db.begin_read().map_err(store_error)?;
                    let table = txn.open_table(SEEN).map_err(store_error)?;
                    let now = now_ms();
                    let mut expired = Vec::new();
                    for entry in table.iter().map_err(store_error)? {
                        let (k, at) = entry.map_err(store_error)?;
                        if now.saturating_sub(at.value()) >= window {
                            expired.push(k.value().to_owned());
                            if expired.len() == PURGE_CHUNK {
                                break;
                            }
                        }
                    }
                    expired
                };
                if expired.is_empty() {
                    return Ok(0);
                }
                let txn = db.begin_write().map_err(store_error)?;
                {
                    let mut table = txn.open_table(SEEN).map_err(store_error)?;
                    for k in &expired {
                        table.remove(k.as_str()).map_err(store_error)?;
                    }
                }
                txn.commit().map_err(store_error)?;
                Ok(expired.len())
            })
            .await?;
            total += removed;
            if removed < PURGE_CHUNK {
                return Ok(total);
            }
        }
    }
}

/// Entries removed per purge transaction.
const PURGE_CHUNK: usize = 5000;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(store_error)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remembers_per_tenant_across_reopen_and_forgets_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        {
            let d = Dedupe::open(&path, Duration::from_secs(3600)).unwrap();
            assert!(!d.seen("a", "m1").await.unwrap());
            d.mark("a", vec!["m1".into()]).await.unwrap();
            assert!(d.seen("a", "m1").await.unwrap());
            assert!(!d.seen("b", "m1").await.unwrap(), "tenants are separate");
        }
        let d = Dedupe::open(&path, Duration::from_secs(3600)).unwrap();
        assert!(d.seen("a", "m1").await.unwrap(), "survives reopening");
        let short = Dedupe {
            db: d.db.clone(),
            window: Duration::ZERO,
        };
        assert!(!short.seen("a", "m1").await.unwrap());
        assert_eq!(short.purge().await.unwrap(), 1);
        assert!(!d.seen("a", "m1").await.unwrap());
    }
}
