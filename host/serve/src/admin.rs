//! Operating the durable queue: the figures per tenant and the dead-letter list (list,
//! show, retry, purge), as one set of requests answered with JSON. The running server
//! answers them at `POST /_segfn/admin` when it has an `admin_token`; `segfn status` and
//! `segfn dlq` send them there, or answer them from the store file when no server has
//! it open (redb lets one process open a file at a time).

use super::store::{DeadFilter, DeadLetter, Store};
use super::store::{StoreError, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest as _;

/// Dead letters listed when no limit is given.
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// One operator's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AdminRequest {
    /// Figures per tenant.
    Status,
    /// Dead letters, oldest first, without their reports.
    List {
        /// Only this tenant's.
        tenant: Option<String>,
        /// At most this many.
        limit: Option<usize>,
    },
    /// One dead letter with its event and last report.
    Show {
        /// Its id.
        id: u64,
    },
    /// Queue the selected dead letters again with a fresh retry budget.
    Retry {
        /// Only this tenant's.
        tenant: Option<String>,
        /// Only this one.
        id: Option<u64>,
    },
    /// Delete the selected dead letters.
    Purge {
        /// Only this tenant's.
        tenant: Option<String>,
        /// Only this one.
        id: Option<u64>,
    },
}

/// Why an operator's request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No dead letter has this id.
    #[error("no dead letter {0}")]
    NotFound(u64),
}

/// A dead letter in a list: what it was and why it failed, without the event and report.
fn summary(letter: &DeadLetter, now: u64) -> Value {
    json!({
        "id": letter.id,
        "tenant": letter.job.tenant,
        "message_id": letter.job.message_id,
        "type": letter.job.event_type,
        "attempts": letter.job.attempts,
        "enqueued_ms": letter.job.enqueued_ms,
        "dead_ms": letter.dead_ms,
        "dead_for_secs": now.saturating_sub(letter.dead_ms) / 1000,
        "last": letter.job.last,
    })
}

/// Answers `request` from `store`. Retries that queue something return `true` in
/// `queued` so the server can wake its workers.
pub async fn answer(store: &dyn Store, request: AdminRequest) -> Result<Value, AdminError> {
    Ok(match request {
        AdminRequest::Status => json!({ "tenants": store.stats().await? }),
        AdminRequest::List { tenant, limit } => {
            let filter = DeadFilter { tenant, id: None };
            let letters = store
                .dead_letters(filter, limit.unwrap_or(DEFAULT_LIST_LIMIT))
                .await?;
            let now = now_ms();
            json!({ "dead_letters": letters.iter().map(|l| summary(l, now)).collect::<Vec<_>>() })
        }
        AdminRequest::Show { id } => {
            let filter = DeadFilter {
                tenant: None,
                id: Some(id),
            };
            let letter = store
                .dead_letters(filter, 1)
                .await?
                .pop()
                .ok_or(AdminError::NotFound(id))?;
            let merged = letter.job.settings.is_some();
            let mut shown = serde_json::to_value(&letter).map_err(|e| StoreError(e.to_string()))?;
            // Settings merged from X-Segment-Settings hold the customer's secrets: the
            // run uses them, an operator's screen does not show them.
            shown["job"]["settings"] = if merged {
                "[redacted: merged from X-Segment-Settings]".into()
            } else {
                Value::Null
            };
            shown
        }
        AdminRequest::Retry { tenant, id } => {
            let n = store.retry_dead(DeadFilter { tenant, id }).await?;
            json!({ "retried": n })
        }
        AdminRequest::Purge { tenant, id } => {
            let n = store.purge_dead(DeadFilter { tenant, id }).await?;
            json!({ "purged": n })
        }
    })
}

/// Whether `authorization` is `Bearer TOKEN` for `token`. Digests are compared, so
/// the time taken says nothing about the token's bytes.
pub fn authorized(token: &str, authorization: Option<&str>) -> bool {
    let Some(given) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
        return false;
    };
    sha2::Sha256::digest(given.trim().as_bytes()) == sha2::Sha256::digest(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert!(authorized("s3cret", Some("Bearer s3cret")));
        assert!(!authorized("s3cret", Some("Bearer s3cre")));
        assert!(!authorized("s3cret", Some("Basic s3cret")));
        assert!(!authorized("s3cret", None));
    }

    #[test]
    fn requests_read_as_json() {
        let r: AdminRequest = serde_json::from_str(r#"{"op":"retry","id":7}"#).unwrap();
        assert_eq!(
            r,
            AdminRequest::Retry {
                tenant: None,
                id: Some(7)
            }
        );
    }
}
