//! The store behind the endpoint, as one interface: the deduplication window, the
//! durable queue with leases, and the dead-letter list, with the types they share.
//! Two engines implement it: the embedded one ([`redb::RedbStore`], one file) and a
//! shared one ([`postgres::PgStore`], for several replicas), possible since every
//! operation is one transaction and a claim is a lease (`FOR UPDATE SKIP LOCKED` and a
//! `leased_until` column), never a lock held while the function runs. Only
//! [`location`] knows both: it parses where the store is and opens it.

pub mod location;
pub mod postgres;
pub mod redb;

use futures_util::future::BoxFuture;
use segfn_sdk::abi::OutcomeKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::Digest as _;
use std::collections::HashMap;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

/// One event to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its deduplication key, when it has a `messageId`.
    pub key: Option<MessageKey>,
    /// The `messageId`, as shown to operators (cut for logs).
    pub message_id: String,
    /// Segment's type, or `other`.
    pub event_type: String,
    /// The event's JSON text.
    pub event: String,
    /// Settings merged from `X-Segment-Settings`, when they differ from the tenant's.
    pub settings: Option<String>,
}

/// What enqueueing did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Committed under this id.
    Queued(u64),
    /// Its `messageId` is in the window: not queued again.
    Duplicate,
    /// The tenant's queue is full: nothing of this delivery was queued.
    Full,
}

/// The summary of one failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it ended (ms since the epoch).
    pub at_ms: u64,
    /// The outcome kind, as in the outcome table.
    pub outcome: String,
    /// The outcome's message.
    pub message: Option<String>,
    /// The partner's last status, when it answered.
    pub partner_status: Option<u16>,
    /// Why it was (or was not) retried.
    pub reason: String,
}

/// A queued event as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The tenant's name.
    pub tenant: String,
    /// The `messageId` (cut), for operators.
    pub message_id: String,
    /// Segment's type.
    pub event_type: String,
    /// When Segment's delivery was committed (ms since the epoch).
    pub enqueued_ms: u64,
    /// When the retry window started: the enqueue, or a `dlq retry`.
    pub window_start_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last failed attempt.
    pub last: Option<Attempt>,
    /// Settings merged from the delivery's header, when not the tenant's own.
    pub settings: Option<Box<RawValue>>,
    /// The event.
    pub event: Box<RawValue>,
}

/// Who holds a claimed job: a worker's proof when it reports back. A lease expires
/// (`until`); on the embedded engine a restart also voids all leases of the process
/// before it at once, on PostgreSQL a dead process's leases wait for their expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The job's id.
    pub id: u64,
    /// The store's epoch when claimed (one per open).
    pub epoch: u64,
    /// Distinguishes claims of the same job within an epoch.
    pub token: u64,
}

/// A job claimed by a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The lease to report back with.
    pub lease: Lease,
    /// The job.
    pub job: Job,
}

/// An event that exhausted its retries (or could not be run), with its last report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its id (the job's).
    pub id: u64,
    /// The job as it was.
    pub job: Job,
    /// When it was dead-lettered (ms since the epoch).
    pub dead_ms: u64,
    /// The last invocation's report (outcome, logs, request trace; secrets redacted).
    pub report: Value,
}

/// Which dead letters an operation applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadFilter {
    /// Only this tenant's.
    pub tenant: Option<String>,
    /// Only this one.
    pub id: Option<u64>,
}

impl DeadFilter {
    /// Whether `letter` is selected.
    pub fn matches(&self, id: u64, tenant: &str) -> bool {
        self.id.is_none_or(|want| want == id) && self.tenant.as_deref().is_none_or(|t| t == tenant)
    }
}

/// One tenant's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantStats {
    /// The tenant.
    pub tenant: String,
    /// Events queued and not yet final (due, waiting for a retry, or running).
    pub pending: u64,
    /// Of those, events that failed at least once.
    pub retrying: u64,
    /// Running now (leased).
    pub running: u64,
    /// Age of the oldest pending event, in ms.
    pub oldest_pending_ms: Option<u64>,
    /// Events in the dead-letter list.
    pub dead_letters: u64,
    /// Attempts made, all time.
    pub attempts: u64,
    /// Events that reached a final outcome, all time.
    pub completed: u64,
    /// Events run again because a crash fell between an attempt's start and its
    /// record: the partner may have received them twice. (PostgreSQL counts every
    /// expired lease taken over, also one whose holder was alive but too slow; the
    /// embedded engine counts leases of an earlier process.)
    pub redelivered: u64,
}

/// The store: one interface for every engine.
///
/// Writes are durable when their future resolves (the embedded engine groups
/// concurrent writes into one commit). Lease-checked operations return `false` when
/// the lease was lost (expired and claimed again, or voided by a restart): the other
/// holder's report then counts.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Which of `keys` were processed within the deduplication window, each with the
    /// outcome it was processed with (a repeat is answered with it; a queued event's is
    /// success: it was accepted).
    fn seen(
        &self,
        keys: Vec<MessageKey>,
    ) -> BoxFuture<'_, Result<HashMap<MessageKey, OutcomeKind>, StoreError>>;

    /// Records these messages as processed, each with its final outcome (synchronous
    /// mode, after they ran).
    fn mark(
        &self,
        tenant: &str,
        keys: Vec<(MessageKey, OutcomeKind)>,
    ) -> BoxFuture<'_, Result<Marked, StoreError>>;

    /// Forgets deduplication entries older than the window; returns how many.
    fn purge_expired(&self) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Queues a delivery's events and records their `messageId`s in the window, in
    /// one transaction: all or nothing. Events whose `messageId` the window holds are
    /// not queued; when the tenant would have more than `max_pending` events pending,
    /// none is (all [`Enqueued::Full`]). One result per job, in order.
    fn enqueue(
        &self,
        tenant: &str,
        jobs: Vec<NewJob>,
        max_pending: u64,
    ) -> BoxFuture<'_, Result<(Vec<Enqueued>, Marked), StoreError>>;

    /// Claims up to `n` due jobs for each `(tenant, n)`, each with a lease of `lease`.
    fn claim(
        &self,
        wants: Vec<(String, usize)>,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Claimed>, StoreError>>;

    /// Returns expired leases to the queue; returns how many. (An engine whose claims
    /// take expired leases directly, such as `leased_until < now()`, does nothing.)
    fn reap(&self) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Gives a claimed job back unrun (no attempt counted): claimable again at once.
    fn release(&self, lease: Lease) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// The job reached a final outcome: it leaves the queue.
    fn complete(&self, lease: Lease) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// The attempt failed and will be retried at `due_ms`.
    fn reschedule(
        &self,
        lease: Lease,
        due_ms: u64,
        attempt: Attempt,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// The job goes to the dead-letter list with its last report.
    fn dead_letter(
        &self,
        lease: Lease,
        attempt: Attempt,
        report: Value,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// When the next job of one of `tenants` falls due (ms since the epoch), if any is
    /// waiting. (Each sender asks for its own: a job only another one claims must not
    /// keep it awake.)
    fn next_due(&self, tenants: Vec<String>) -> BoxFuture<'_, Result<Option<u64>, StoreError>>;

    /// Dead letters, oldest first, at most `limit`.
    fn dead_letters(
        &self,
        filter: DeadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<DeadLetter>, StoreError>>;

    /// Queues the selected dead letters again with a fresh retry budget; returns how many.
    fn retry_dead(&self, filter: DeadFilter) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Deletes the selected dead letters; returns how many.
    fn purge_dead(&self, filter: DeadFilter) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Keeps at most `keep` dead letters per tenant, deleting each tenant's oldest
    /// beyond them; returns how many were deleted, per tenant that had too many.
    fn trim_dead(&self, keep: u64) -> BoxFuture<'_, Result<Vec<(String, u64)>, StoreError>>;

    /// Figures per tenant that has or had queued work.
    fn stats(&self) -> BoxFuture<'_, Result<Vec<TenantStats>, StoreError>>;
}

/// A message's key: a digest of tenant and `messageId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageKey(pub(crate) [u8; 16]);

impl MessageKey {
    /// The key of `message_id` for `tenant`.
    pub fn new(tenant: &str, message_id: &str) -> MessageKey {
        let mut h = sha2::Sha256::new();
        h.update((tenant.len() as u64).to_be_bytes());
        h.update(tenant.as_bytes());
        h.update(message_id.as_bytes());
        let digest = h.finalize();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        MessageKey(key)
    }
}

/// The store failed (disk full, corrupt file, ...).
#[derive(Debug, thiserror::Error)]
#[error("the deduplication store failed: {0}")]
pub struct StoreError(pub(crate) String);

pub(crate) fn store_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// What recording a tenant's messages did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Marked {
    /// The tenant's entries afterwards.
    pub entries: u64,
    /// Entries forgotten early to stay under the cap.
    pub evicted: u64,
}

/// Outcomes as the stores record them: fixed codes, never reused (stored data outlives
/// any order of [`OutcomeKind`]).
const OUTCOME_CODES: [(OutcomeKind, u8); 7] = [
    (OutcomeKind::Success, 0),
    (OutcomeKind::Retry, 1),
    (OutcomeKind::UnsupportedEventType, 2),
    (OutcomeKind::MessageRejected, 3),
    (OutcomeKind::BadRequest, 4),
    (OutcomeKind::InvalidSettings, 5),
    (OutcomeKind::Dropped, 6),
];

/// An outcome's code in the stores.
pub(crate) fn outcome_code(kind: OutcomeKind) -> u8 {
    OUTCOME_CODES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, code)| *code)
}

/// The outcome a store recorded; an unknown code (a newer version's) reads as success,
/// as an entry recorded before outcomes were kept does.
pub(crate) fn outcome_of(code: u8) -> OutcomeKind {
    OUTCOME_CODES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or(OutcomeKind::Success, |(kind, _)| *kind)
}

/// Milliseconds since the Unix epoch, as the stores record times.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
