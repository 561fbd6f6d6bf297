//! Deduplication by `messageId` per tenant over a sliding window, kept in the embedded
//! store (one redb file) so that a restart, even `kill -9`, does not forget.
//!
//! Keys are fixed-size digests of tenant and `messageId`, never the sender's bytes, so
//! an entry costs the same whatever the sender puts in a `messageId`. Each tenant has a
//! cap on entries: past it, its oldest entries are forgotten early (its window
//! shrinks; other tenants are unaffected). Writes go through one writer thread that
//! commits whatever is queued in one transaction: concurrent deliveries share one
//! fsync, and each waits for the commit that holds its messageIds. The durable queue
//! ([`super::RedbStore`]) lives in the same file and writes through the same thread
//! ([`Dedupe::write`]), so an enqueue and its messageIds commit together.

use crate::store::{Marked, MessageKey, StoreError, now_ms, outcome_code, outcome_of, store_error};
use redb::{Database, ReadableDatabase as _, ReadableTable, TableDefinition, WriteTransaction};
use segfn_sdk::abi::OutcomeKind;
use sha2::Digest as _;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;
use tokio::sync::oneshot;

/// Message key → its stamp: when it was processed, as [`stamp`] writes it.
const SEEN: TableDefinition<&[u8], u64> = TableDefinition::new("seen_v2");
/// Tenant tag ‖ stamp (big-endian) ‖ message key: the tenant's entries oldest first,
/// for eviction and purging without a scan of other tenants.
const ORDER: TableDefinition<&[u8], ()> = TableDefinition::new("seen_order_v2");
/// Tenant tag → number of entries.
const COUNTS: TableDefinition<&[u8], u64> = TableDefinition::new("seen_counts_v2");
/// Message key → the outcome it was processed with, for the entries of [`SEEN`] whose
/// outcome was not success (a repeat is answered with it). Rare, so success costs
/// nothing here; an entry goes when its [`SEEN`] entry goes.
const OUTCOMES: TableDefinition<&[u8], u8> = TableDefinition::new("seen_outcomes_v1");
/// The first format stored raw messageIds; it is dropped on open.
const LEGACY: TableDefinition<&str, u64> = TableDefinition::new("seen_messages");

/// Entries removed per purge transaction, so no write waits long behind a purge.
const PURGE_CHUNK: usize = 5000;
/// Most queued writes committed together.
const MAX_GROUP: usize = 1024;

/// A tenant's key prefix in [`ORDER`].
pub(crate) type TenantTag = [u8; 8];

pub(crate) fn tenant_tag(tenant: &str) -> TenantTag {
    let digest = sha2::Sha256::digest(tenant.as_bytes());
    let mut tag = [0; 8];
    tag.copy_from_slice(&digest[..8]);
    tag
}

/// Bits of a stamp below the milliseconds: a sequence number, so that entries recorded
/// in the same millisecond keep their order of arrival.
const SEQ_BITS: u32 = 20;

/// A stamp: milliseconds since the epoch, then a sequence number.
fn stamp(ms: u64, seq: u64) -> u64 {
    (ms << SEQ_BITS) | (seq & ((1 << SEQ_BITS) - 1))
}

/// The milliseconds of a stamp.
fn stamp_ms(stamp: u64) -> u64 {
    stamp >> SEQ_BITS
}

fn order_key(tag: &TenantTag, at: u64, key: &MessageKey) -> [u8; 32] {
    let mut k = [0; 32];
    k[..8].copy_from_slice(tag);
    k[8..16].copy_from_slice(&at.to_be_bytes());
    k[16..].copy_from_slice(&key.0);
    k
}

/// One write applied inside a group's transaction. What it computes is sent back only
/// after the commit; a failed commit fails every write of the group (storage failures
/// concern them all; logical refusals, such as a lost lease, are values, not errors).
trait WriteOp: Send {
    fn apply(&mut self, txn: &WriteTransaction, ctx: &mut WriteCtx) -> Result<(), StoreError>;
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

/// What the writer thread keeps between transactions.
pub(crate) struct WriteCtx {
    /// Sequence numbers for stamps.
    seq: u64,
    /// Entries remembered per tenant.
    max_entries: u64,
}

struct Op<T, F> {
    f: Option<F>,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteOp for Op<T, F>
where
    T: Send,
    F: FnOnce(&WriteTransaction, &mut WriteCtx) -> Result<T, StoreError> + Send,
{
    fn apply(&mut self, txn: &WriteTransaction, ctx: &mut WriteCtx) -> Result<(), StoreError> {
        if let Some(f) = self.f.take() {
            self.value = Some(f(txn, ctx)?);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let Op { value, reply, .. } = *self;
        let result = committed
            .and_then(|()| value.ok_or_else(|| StoreError("a write was not applied".into())));
        let _ = reply.send(result);
    }
}

/// The deduplication window. Cheap to clone.
#[derive(Clone)]
pub struct Dedupe {
    db: Arc<Database>,
    window: Duration,
    writes: mpsc::Sender<Box<dyn WriteOp>>,
}

impl std::fmt::Debug for Dedupe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedupe")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Dedupe {
    /// Opens (or creates) the store at `path`, keeping at most `max_entries` per tenant.
    pub fn open(path: &Path, window: Duration, max_entries: u64) -> Result<Dedupe, StoreError> {
        let db = create_private(path)?;
        // Create the tables up front so reads never find them missing.
        let txn = db.begin_write().map_err(store_error)?;
        txn.open_table(SEEN).map_err(store_error)?;
        txn.open_table(ORDER).map_err(store_error)?;
        txn.open_table(COUNTS).map_err(store_error)?;
        txn.open_table(OUTCOMES).map_err(store_error)?;
        let _ = txn.delete_table(LEGACY);
        txn.commit().map_err(store_error)?;
        let db = Arc::new(db);
        let (writes, queue) = mpsc::channel();
        let writer = Writer {
            db: Arc::downgrade(&db),
            ctx: WriteCtx {
                seq: 0,
                max_entries: max_entries.max(1),
            },
        };
        std::thread::Builder::new()
            .name("segfn-store".into())
            .spawn(move || writer.run(queue))
            .map_err(store_error)?;
        Ok(Dedupe { db, window, writes })
    }

    /// The database, for reads beside the writer.
    pub(crate) fn db(&self) -> &Arc<Database> {
        &self.db
    }

    /// The window.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// Runs `f` in the writer's next transaction, shared with whatever else is queued
    /// (one fsync for all); returns its value once committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, &mut WriteCtx) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(Box::new(Op {
                f: Some(f),
                value: None,
                reply,
            }))
            .map_err(|_| StoreError("the store's writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError("the store's writer has stopped".into()))?
    }

    /// Which of `keys` were processed within the window (one read transaction). Run
    /// in place: a lookup of a few fixed-size keys in a B-tree whose pages the store
    /// caches costs microseconds, less than handing it to another thread.
    /// With each, the outcome it was processed with.
    pub fn seen_many(
        &self,
        keys: &[MessageKey],
    ) -> Result<HashMap<MessageKey, OutcomeKind>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let txn = self.db.begin_read().map_err(store_error)?;
        let seen = seen(
            &txn.open_table(SEEN).map_err(store_error)?,
            self.window,
            keys,
        )?;
        if seen.is_empty() {
            // The usual case: no repeat, nothing more to read.
            return Ok(HashMap::new());
        }
        let outcomes = txn.open_table(OUTCOMES).map_err(store_error)?;
        seen.into_iter()
            .map(|key| {
                let code = outcomes.get(&key.0[..]).map_err(store_error)?;
                Ok((
                    key,
                    code.map_or(OutcomeKind::Success, |c| outcome_of(c.value())),
                ))
            })
            .collect()
    }

    /// Records that these messages were processed, each with its outcome; returns once
    /// they are durable.
    pub async fn mark(
        &self,
        tenant: &str,
        keys: Vec<(MessageKey, OutcomeKind)>,
    ) -> Result<Marked, StoreError> {
        if keys.is_empty() {
            return Ok(Marked::default());
        }
        let tenant = tenant.to_owned();
        self.write(move |txn, ctx| mark_in(txn, ctx, &tenant, &keys))
            .await
    }

    /// Forgets entries older than the window; returns how many. Runs beside the
    /// writer, one short transaction per chunk, so recording waits at most one chunk.
    pub async fn purge(&self) -> Result<usize, StoreError> {
        let (db, window_ms) = (self.db.clone(), self.window.as_millis() as u64);
        tokio::task::spawn_blocking(move || purge_expired(&db, window_ms))
            .await
            .map_err(store_error)?
    }
}

/// Owns all writes: one transaction (one fsync) for every write queued meanwhile.
/// Holds the database weakly, so it closes as soon as the last [`Dedupe`] is dropped.
struct Writer {
    db: std::sync::Weak<Database>,
    ctx: WriteCtx,
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Box<dyn WriteOp>>) {
        while let Ok(first) = queue.recv() {
            let mut ops = vec![first];
            while ops.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            let Some(db) = self.db.upgrade() else { return };
            let committed = self.apply_all(&db, &mut ops);
            // Closed before anyone hears back: whoever drops the last handle next may
            // reopen the file at once.
            drop(db);
            for op in ops {
                op.finish(
                    committed
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| StoreError(e.0.clone())),
                );
            }
        }
    }

    fn apply_all(&mut self, db: &Database, ops: &mut [Box<dyn WriteOp>]) -> Result<(), StoreError> {
        let txn = db.begin_write().map_err(store_error)?;
        for op in ops.iter_mut() {
            op.apply(&txn, &mut self.ctx)?;
        }
        txn.commit().map_err(store_error)
    }
}

/// Records `keys` as processed for `tenant` within `txn`, each with its outcome,
/// evicting the tenant's oldest entries beyond its cap.
pub(crate) fn mark_in(
    txn: &WriteTransaction,
    ctx: &mut WriteCtx,
    tenant: &str,
    keys: &[(MessageKey, OutcomeKind)],
) -> Result<Marked, StoreError> {
    let mut seen = txn.open_table(SEEN).map_err(store_error)?;
    let mut order = txn.open_table(ORDER).map_err(store_error)?;
    let mut counts = txn.open_table(COUNTS).map_err(store_error)?;
    let mut outcomes = txn.open_table(OUTCOMES).map_err(store_error)?;
    let now = now_ms();
    let tag = tenant_tag(tenant);
    let mut count = counts
        .get(&tag[..])
        .map_err(store_error)?
        .map_or(0, |v| v.value());
    for (key, outcome) in keys {
        let seq = ctx.seq;
        ctx.seq = seq.wrapping_add(1);
        let now = stamp(now, seq);
        let existed = match seen.insert(&key.0[..], now).map_err(store_error)? {
            Some(before) => {
                let before = before.value();
                order
                    .remove(&order_key(&tag, before, key)[..])
                    .map_err(store_error)?;
                true
            }
            None => {
                count += 1;
                false
            }
        };
        if *outcome != OutcomeKind::Success {
            outcomes
                .insert(&key.0[..], outcome_code(*outcome))
                .map_err(store_error)?;
        } else if existed {
            // Recorded again after its window passed: the earlier outcome is gone.
            outcomes.remove(&key.0[..]).map_err(store_error)?;
        }
        order
            .insert(&order_key(&tag, now, key)[..], ())
            .map_err(store_error)?;
    }
    let mut evicted = 0;
    if count > ctx.max_entries {
        let excess = (count - ctx.max_entries) as usize;
        let oldest: Vec<Vec<u8>> = order
            .range(&tag[..]..)
            .map_err(store_error)?
            .take(excess)
            .map(|e| e.map(|(k, _)| k.value().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        for k in oldest.iter().filter(|k| k.starts_with(&tag)) {
            order.remove(&k[..]).map_err(store_error)?;
            seen.remove(&k[16..]).map_err(store_error)?;
            outcomes.remove(&k[16..]).map_err(store_error)?;
            evicted += 1;
        }
        count -= evicted;
    }
    counts.insert(&tag[..], count).map_err(store_error)?;
    Ok(Marked {
        entries: count,
        evicted,
    })
}

/// Which of `keys` the window holds, read inside a write transaction (so a check and
/// the record that follows it cannot be split by another write).
pub(crate) fn seen_in(
    txn: &WriteTransaction,
    window: Duration,
    keys: &[MessageKey],
) -> Result<HashSet<MessageKey>, StoreError> {
    seen(&txn.open_table(SEEN).map_err(store_error)?, window, keys)
}

/// Which of `keys` `table` (the [`SEEN`] table, read or written) holds within `window`.
fn seen(
    table: &impl ReadableTable<&'static [u8], u64>,
    window: Duration,
    keys: &[MessageKey],
) -> Result<HashSet<MessageKey>, StoreError> {
    let now = now_ms();
    let window = window.as_millis() as u64;
    let mut seen = HashSet::new();
    for key in keys {
        let at = table
            .get(&key.0[..])
            .map_err(store_error)?
            .map(|v| stamp_ms(v.value()));
        if at.is_some_and(|at| now.saturating_sub(at) < window) {
            seen.insert(*key);
        }
    }
    Ok(seen)
}

/// Opens (or creates) the store file, private to its user: it holds the settings sent
/// with queued events, secrets among them. Its directory is created (private too) when
/// missing. A file another server holds open is refused with the way out: redb locks
/// it, and two processes writing one file would each believe their commits durable.
fn create_private(path: &Path) -> Result<Database, StoreError> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError(format!("creating {}: {e}", dir.display())))?;
    }
    // Created private before redb writes a byte to it, not made so afterwards.
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError(format!("creating {shown}: {e}")))?;
    }
    let db = Database::create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError(format!(
            "{shown} is in use by another segfn serve: one store file serves one server. \
             Give this one its own --store, or run replicas on one PostgreSQL store \
             (--store postgres://...)"
        )),
        e => StoreError(format!("{shown}: {e}")),
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StoreError(format!("making {shown} private to its user: {e}")))?;
    Ok(db)
}

/// Removes expired entries tenant by tenant, in chunks of [`PURGE_CHUNK`], each its own
/// transaction.
fn purge_expired(db: &Database, window_ms: u64) -> Result<usize, StoreError> {
    let cutoff = now_ms().saturating_sub(window_ms);
    let tags: Vec<TenantTag> = {
        let txn = db.begin_read().map_err(store_error)?;
        let counts = txn.open_table(COUNTS).map_err(store_error)?;
        counts
            .iter()
            .map_err(store_error)?
            .filter_map(|e| e.ok().and_then(|(k, _)| k.value().try_into().ok()))
            .collect()
    };
    let mut total = 0;
    for tag in tags {
        loop {
            let txn = db.begin_write().map_err(store_error)?;
            let removed;
            {
                let mut seen = txn.open_table(SEEN).map_err(store_error)?;
                let mut order = txn.open_table(ORDER).map_err(store_error)?;
                let mut counts = txn.open_table(COUNTS).map_err(store_error)?;
                let mut outcomes = txn.open_table(OUTCOMES).map_err(store_error)?;
                let end = order_key(&tag, stamp(cutoff, 0), &MessageKey([0; 16]));
                let expired: Vec<Vec<u8>> = order
                    .range(&tag[..]..&end[..])
                    .map_err(store_error)?
                    .take(PURGE_CHUNK)
                    .map(|e| e.map(|(k, _)| k.value().to_vec()))
                    .collect::<Result<_, _>>()
                    .map_err(store_error)?;
                for k in &expired {
                    order.remove(&k[..]).map_err(store_error)?;
                    seen.remove(&k[16..]).map_err(store_error)?;
                    outcomes.remove(&k[16..]).map_err(store_error)?;
                }
                removed = expired.len();
                let count = counts
                    .get(&tag[..])
                    .map_err(store_error)?
                    .map_or(0, |v| v.value());
                counts
                    .insert(&tag[..], count.saturating_sub(removed as u64))
                    .map_err(store_error)?;
            }
            txn.commit().map_err(store_error)?;
            total += removed;
            if removed < PURGE_CHUNK {
                break;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn seen(d: &Dedupe, tenant: &str, id: &str) -> bool {
        let key = MessageKey::new(tenant, id);
        d.seen_many(&[key]).unwrap().contains_key(&key)
    }

    async fn mark(d: &Dedupe, tenant: &str, ids: &[&str]) -> Marked {
        let keys = ids
            .iter()
            .map(|id| (MessageKey::new(tenant, id), OutcomeKind::Success))
            .collect();
        d.mark(tenant, keys).await.unwrap()
    }

    /// A failure's outcome is kept with its entry, read back with it, replaced when the
    /// messageId is recorded again after its window, and goes when the entry goes.
    #[tokio::test]
    async fn outcomes_other_than_success_are_remembered_and_forgotten_with_their_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.redb");
        let key = |id: &str| MessageKey::new("a", id);
        {
            let d = Dedupe::open(&path, Duration::from_secs(3600), 2).unwrap();
            d.mark(
                "a",
                vec![
                    (key("bad"), OutcomeKind::MessageRejected),
                    (key("ok"), OutcomeKind::Success),
                ],
            )
            .await
            .unwrap();
            let seen = d.seen_many(&[key("bad"), key("ok"), key("new")]).unwrap();
            assert_eq!(seen.get(&key("bad")), Some(&OutcomeKind::MessageRejected));
            assert_eq!(seen.get(&key("ok")), Some(&OutcomeKind::Success));
            assert_eq!(seen.get(&key("new")), None);
            // Recorded again (its window passed): the new outcome replaces the old.
            d.mark("a", vec![(key("bad"), OutcomeKind::Success)])
                .await
                .unwrap();
            assert_eq!(
                d.seen_many(&[key("bad")]).unwrap()[&key("bad")],
                OutcomeKind::Success
            );
            d.mark("a", vec![(key("bad"), OutcomeKind::Dropped)])
                .await
                .unwrap();
            // Evicted past the cap of 2 (`ok` is the oldest, then `bad`): its outcome too.
            d.mark(
                "a",
                vec![
                    (key("c"), OutcomeKind::Success),
                    (key("d"), OutcomeKind::Success),
                ],
            )
            .await
            .unwrap();
            assert!(d.seen_many(&[key("bad")]).unwrap().is_empty());
            let txn = d.db.begin_read().unwrap();
            let outcomes = txn.open_table(OUTCOMES).unwrap();
            assert!(
                outcomes.get(&key("bad").0[..]).unwrap().is_none(),
                "evicted with its entry"
            );
        }
        // Purged after the window: the outcome table is emptied with it.
        let d = Dedupe::open(&path, Duration::from_secs(3600), 10).unwrap();
        d.mark("a", vec![(key("late"), OutcomeKind::BadRequest)])
            .await
            .unwrap();
        drop(d);
        let short = Dedupe::open(&path, Duration::ZERO, 10).unwrap();
        short.purge().await.unwrap();
        let txn = short.db.begin_read().unwrap();
        let outcomes = txn.open_table(OUTCOMES).unwrap();
        assert_eq!(redb::ReadableTableMetadata::len(&outcomes).unwrap(), 0);
    }

    #[tokio::test]
    async fn remembers_per_tenant_across_reopen_and_forgets_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        {
            let d = Dedupe::open(&path, Duration::from_secs(3600), 100).unwrap();
            assert!(!seen(&d, "a", "m1").await);
            mark(&d, "a", &["m1"]).await;
            assert!(seen(&d, "a", "m1").await);
            assert!(!seen(&d, "b", "m1").await, "tenants are separate");
        }
        let d = Dedupe::open(&path, Duration::from_secs(3600), 100).unwrap();
        assert!(seen(&d, "a", "m1").await, "survives reopening");
        drop(d);
        let short = Dedupe::open(&path, Duration::ZERO, 100).unwrap();
        assert!(!seen(&short, "a", "m1").await);
        assert_eq!(short.purge().await.unwrap(), 1);
        drop(short);
        let d = Dedupe::open(&path, Duration::from_secs(3600), 100).unwrap();
        assert!(!seen(&d, "a", "m1").await, "purged");
    }

    #[tokio::test]
    async fn each_tenant_is_capped_and_forgets_its_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dedupe::open(&dir.path().join("s.redb"), Duration::from_secs(3600), 3).unwrap();
        mark(&d, "b", &["b1"]).await;
        // Within one millisecond too, the order of arrival is kept.
        for id in ["a1", "a2", "a3"] {
            mark(&d, "a", &[id]).await;
        }
        let marked = mark(&d, "a", &["a4", "a5"]).await;
        assert_eq!(
            marked,
            Marked {
                entries: 3,
                evicted: 2
            }
        );
        assert!(!seen(&d, "a", "a1").await && !seen(&d, "a", "a2").await);
        assert!(seen(&d, "a", "a3").await && seen(&d, "a", "a5").await);
        assert!(seen(&d, "b", "b1").await, "another tenant's entries stay");
        // Marking again refreshes an entry without counting it twice.
        assert_eq!(
            mark(&d, "a", &["a3"]).await,
            Marked {
                entries: 3,
                evicted: 0
            }
        );
    }

    #[tokio::test]
    async fn huge_message_ids_cost_a_fixed_size_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let d = Dedupe::open(&path, Duration::from_secs(3600), 1000).unwrap();
        let huge = "m".repeat(1 << 20);
        for i in 0..20 {
            mark(&d, "a", &[&format!("{huge}{i}")]).await;
        }
        assert!(seen(&d, "a", &format!("{huge}7")).await);
        drop(d);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(
            size < 4 << 20,
            "20 MiB of messageIds took {size} bytes on disk"
        );
    }

    #[tokio::test]
    async fn concurrent_marks_are_all_durable() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dedupe::open(
            &dir.path().join("s.redb"),
            Duration::from_secs(3600),
            1_000_000,
        )
        .unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let d = d.clone();
                tokio::spawn(async move {
                    d.mark(
                        "t",
                        vec![(MessageKey::new("t", &format!("m{i}")), OutcomeKind::Success)],
                    )
                    .await
                    .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        for i in 0..200 {
            assert!(seen(&d, "t", &format!("m{i}")).await);
        }
    }
}
