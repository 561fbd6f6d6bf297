//! The [`Store`] on the embedded engine (redb): the durable queue and dead-letter list in the
//! same redb file as the deduplication window, written through the same writer thread
//! (concurrent enqueues, claims and reports share one commit, one fsync).
//!
//! Tables: `JOBS` (id → job), `DUE` (tenant tag ‖ due ms ‖ id: the claimable jobs of
//! each tenant, soonest first), `PENDING` (tenant tag ‖ id: every queued job, oldest
//! first), `LEASES` (id → epoch, token, until, due: jobs being run), `DEAD` (id → dead
//! letter), `TENANTS` (name → figures), `META` (id counter, epoch). A claimed job
//! leaves `DUE` for `LEASES`; each open of the file starts a new epoch and returns the
//! leases of earlier ones (a crashed process's) to `DUE`, counting them as redelivered.

mod window;

pub use window::Dedupe;

use super::{
    Attempt, Claimed, DeadFilter, DeadLetter, Enqueued, Job, Lease, Marked, MessageKey, NewJob,
    Store, StoreError, TenantStats, now_ms, store_error,
};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use redb::{ReadableDatabase as _, ReadableTable as _, Table, TableDefinition, WriteTransaction};
use segfn_sdk::abi::OutcomeKind;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use window::{TenantTag, WriteCtx, mark_in, seen_in, tenant_tag};

const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("queue_jobs_v1");
const DUE: TableDefinition<&[u8], ()> = TableDefinition::new("queue_due_v1");
const PENDING: TableDefinition<&[u8], ()> = TableDefinition::new("queue_pending_v1");
const LEASES: TableDefinition<u64, &[u8]> = TableDefinition::new("queue_leases_v1");
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("queue_dead_v1");
const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("queue_tenants_v1");
const META: TableDefinition<&str, u64> = TableDefinition::new("queue_meta_v1");

fn due_key(tag: &TenantTag, due_ms: u64, id: u64) -> [u8; 24] {
    let mut k = [0; 24];
    k[..8].copy_from_slice(tag);
    k[8..16].copy_from_slice(&due_ms.to_be_bytes());
    k[16..].copy_from_slice(&id.to_be_bytes());
    k
}

fn pending_key(tag: &TenantTag, id: u64) -> [u8; 16] {
    let mut k = [0; 16];
    k[..8].copy_from_slice(tag);
    k[8..].copy_from_slice(&id.to_be_bytes());
    k
}

/// A lease as stored: epoch, token, until (ms), and the due time to go back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LeaseRecord {
    epoch: u64,
    token: u64,
    until_ms: u64,
    due_ms: u64,
}

impl LeaseRecord {
    fn encode(&self) -> [u8; 32] {
        let mut b = [0; 32];
        for (i, v) in [self.epoch, self.token, self.until_ms, self.due_ms]
            .into_iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
        }
        b
    }

    fn decode(b: &[u8]) -> Option<LeaseRecord> {
        let word = |i: usize| {
            Some(u64::from_be_bytes(
                b.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        Some(LeaseRecord {
            epoch: word(0)?,
            token: word(1)?,
            until_ms: word(2)?,
            due_ms: word(3)?,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError(format!("a stored record is unreadable: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(store_error)
}

fn raw(json: &str) -> Result<Box<RawValue>, StoreError> {
    RawValue::from_string(json.to_owned()).map_err(store_error)
}

/// A tenant's figures as stored (the oldest age is computed when read).
fn load_stats(table: &Table<&str, &[u8]>, tenant: &str) -> Result<TenantStats, StoreError> {
    match table.get(tenant).map_err(store_error)? {
        Some(v) => decode(v.value()),
        None => Ok(TenantStats {
            tenant: tenant.to_owned(),
            ..TenantStats::default()
        }),
    }
}

fn save_stats(table: &mut Table<&str, &[u8]>, stats: &TenantStats) -> Result<(), StoreError> {
    table
        .insert(stats.tenant.as_str(), &encode(stats)?[..])
        .map_err(store_error)?;
    Ok(())
}

/// Updates `tenant`'s figures within `txn`.
fn update_stats(
    txn: &WriteTransaction,
    tenant: &str,
    f: impl FnOnce(&mut TenantStats),
) -> Result<(), StoreError> {
    let mut table = txn.open_table(TENANTS).map_err(store_error)?;
    let mut stats = load_stats(&table, tenant)?;
    f(&mut stats);
    save_stats(&mut table, &stats)
}

fn next_id(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META).map_err(store_error)?;
    let id = meta
        .get("next_id")
        .map_err(store_error)?
        .map_or(1, |v| v.value());
    meta.insert("next_id", id + 1).map_err(store_error)?;
    Ok(id)
}

/// The embedded store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedbStore {
    dedupe: Dedupe,
    epoch: u64,
    tokens: Arc<AtomicU64>,
}

impl RedbStore {
    /// Opens the queue in the deduplication store's file: creates the tables, starts a
    /// new epoch and returns the leases of earlier ones to the queue.
    pub fn open(dedupe: Dedupe) -> Result<RedbStore, StoreError> {
        let txn = dedupe.db().begin_write().map_err(store_error)?;
        let epoch;
        {
            txn.open_table(JOBS).map_err(store_error)?;
            txn.open_table(DUE).map_err(store_error)?;
            txn.open_table(PENDING).map_err(store_error)?;
            txn.open_table(DEAD).map_err(store_error)?;
            txn.open_table(TENANTS).map_err(store_error)?;
            let mut meta = txn.open_table(META).map_err(store_error)?;
            epoch = meta
                .get("epoch")
                .map_err(store_error)?
                .map_or(0, |v| v.value())
                + 1;
            meta.insert("epoch", epoch).map_err(store_error)?;
        }
        recover(&txn, epoch)?;
        txn.commit().map_err(store_error)?;
        Ok(RedbStore {
            dedupe,
            epoch,
            tokens: Arc::default(),
        })
    }

    /// The deduplication window underneath.
    pub fn dedupe(&self) -> &Dedupe {
        &self.dedupe
    }
}

/// Returns leases of other epochs (and expired ones of this epoch) to `DUE`. A lease
/// of another epoch means a process died while running the job: it runs again, and
/// the partner may see it twice, so it is counted.
fn recover(txn: &WriteTransaction, epoch: u64) -> Result<usize, StoreError> {
    let now = now_ms();
    let mut leases = txn.open_table(LEASES).map_err(store_error)?;
    let stale: Vec<(u64, LeaseRecord)> = leases
        .iter()
        .map_err(store_error)?
        .filter_map(|e| e.ok())
        .filter_map(|(k, v)| Some((k.value(), LeaseRecord::decode(v.value())?)))
        .filter(|(_, l)| l.epoch != epoch || l.until_ms <= now)
        .collect();
    let jobs = txn.open_table(JOBS).map_err(store_error)?;
    let mut due = txn.open_table(DUE).map_err(store_error)?;
    let mut redelivered: HashMap<String, u64> = HashMap::new();
    let mut expired: HashMap<String, u64> = HashMap::new();
    for (id, lease) in &stale {
        leases.remove(id).map_err(store_error)?;
        let Some(job) = jobs.get(id).map_err(store_error)? else {
            continue;
        };
        let job: Job = decode(job.value())?;
        due.insert(
            &due_key(&tenant_tag(&job.tenant), lease.due_ms, *id)[..],
            (),
        )
        .map_err(store_error)?;
        let counter = if lease.epoch != epoch {
            &mut redelivered
        } else {
            &mut expired
        };
        *counter.entry(job.tenant).or_default() += 1;
    }
    drop((jobs, due, leases));
    for (tenant, n) in &redelivered {
        update_stats(txn, tenant, |s| {
            s.redelivered += n;
            s.running = s.running.saturating_sub(*n);
        })?;
    }
    for (tenant, n) in &expired {
        update_stats(txn, tenant, |s| s.running = s.running.saturating_sub(*n))?;
    }
    Ok(stale.len())
}

fn enqueue_in(
    txn: &WriteTransaction,
    ctx: &mut WriteCtx,
    window: Duration,
    tenant: &str,
    jobs: Vec<NewJob>,
    max_pending: u64,
) -> Result<(Vec<Enqueued>, Marked), StoreError> {
    let pending = {
        let table = txn.open_table(TENANTS).map_err(store_error)?;
        load_stats(&table, tenant)?.pending
    };
    if pending.saturating_add(jobs.len() as u64) > max_pending {
        return Ok((vec![Enqueued::Full; jobs.len()], Marked::default()));
    }
    let keys: Vec<MessageKey> = jobs.iter().filter_map(|j| j.key).collect();
    let seen = seen_in(txn, window, &keys)?;
    let now = now_ms();
    let tag = tenant_tag(tenant);
    let mut out = Vec::with_capacity(jobs.len());
    let mut fresh_keys = Vec::new();
    let mut queued = 0;
    for new in jobs {
        if new
            .key
            .is_some_and(|k| seen.contains(&k) || fresh_keys.contains(&k))
        {
            out.push(Enqueued::Duplicate);
            continue;
        }
        fresh_keys.extend(new.key);
        let id = next_id(txn)?;
        let job = Job {
            tenant: tenant.to_owned(),
            message_id: new.message_id,
            event_type: new.event_type,
            enqueued_ms: now,
            window_start_ms: now,
            attempts: 0,
            last: None,
            settings: new.settings.as_deref().map(raw).transpose()?,
            event: raw(&new.event)?,
        };
        txn.open_table(JOBS)
            .map_err(store_error)?
            .insert(id, &encode(&job)?[..])
            .map_err(store_error)?;
        txn.open_table(DUE)
            .map_err(store_error)?
            .insert(&due_key(&tag, now, id)[..], ())
            .map_err(store_error)?;
        txn.open_table(PENDING)
            .map_err(store_error)?
            .insert(&pending_key(&tag, id)[..], ())
            .map_err(store_error)?;
        queued += 1;
        out.push(Enqueued::Queued(id));
    }
    let marked = if fresh_keys.is_empty() {
        Marked::default()
    } else {
        // Accepted: what becomes of the events is the queue's; a repeat is a duplicate.
        let accepted: Vec<(MessageKey, OutcomeKind)> = fresh_keys
            .iter()
            .map(|k| (*k, OutcomeKind::Success))
            .collect();
        mark_in(txn, ctx, tenant, &accepted)?
    };
    if queued > 0 {
        update_stats(txn, tenant, |s| s.pending += queued)?;
    }
    Ok((out, marked))
}

fn claim_in(
    txn: &WriteTransaction,
    epoch: u64,
    tokens: &AtomicU64,
    wants: &[(String, usize)],
    lease: Duration,
) -> Result<Vec<Claimed>, StoreError> {
    let now = now_ms();
    let until_ms = now + lease.as_millis() as u64;
    let mut out = Vec::new();
    for (tenant, n) in wants {
        let tag = tenant_tag(tenant);
        let end = due_key(&tag, now, u64::MAX);
        let mut due = txn.open_table(DUE).map_err(store_error)?;
        let picked: Vec<(Vec<u8>, u64, u64)> = due
            .range(&tag[..]..=&end[..])
            .map_err(store_error)?
            .take(*n)
            .map(|e| {
                e.map(|(k, _)| {
                    let k = k.value().to_vec();
                    let due_ms = u64::from_be_bytes(k[8..16].try_into().unwrap_or_default());
                    let id = u64::from_be_bytes(k[16..24].try_into().unwrap_or_default());
                    (k, due_ms, id)
                })
            })
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        let jobs = txn.open_table(JOBS).map_err(store_error)?;
        let mut leases = txn.open_table(LEASES).map_err(store_error)?;
        let mut claimed = 0;
        for (key, due_ms, id) in picked {
            due.remove(&key[..]).map_err(store_error)?;
            let Some(job) = jobs.get(id).map_err(store_error)? else {
                continue;
            };
            let job: Job = decode(job.value())?;
            let token = tokens.fetch_add(1, Ordering::Relaxed);
            let record = LeaseRecord {
                epoch,
                token,
                until_ms,
                due_ms,
            };
            leases
                .insert(id, &record.encode()[..])
                .map_err(store_error)?;
            claimed += 1;
            out.push(Claimed {
                lease: Lease { id, epoch, token },
                job,
            });
        }
        drop((due, jobs, leases));
        if claimed > 0 {
            update_stats(txn, tenant, |s| s.running += claimed)?;
        }
    }
    Ok(out)
}

/// Takes the lease off `lease.id` if it is still `lease`'s; returns the job.
fn take_lease(txn: &WriteTransaction, lease: Lease) -> Result<Option<Job>, StoreError> {
    let mut leases = txn.open_table(LEASES).map_err(store_error)?;
    let held = leases
        .get(lease.id)
        .map_err(store_error)?
        .and_then(|v| LeaseRecord::decode(v.value()));
    if !held.is_some_and(|h| h.epoch == lease.epoch && h.token == lease.token) {
        return Ok(None);
    }
    leases.remove(lease.id).map_err(store_error)?;
    let jobs = txn.open_table(JOBS).map_err(store_error)?;
    let job = jobs.get(lease.id).map_err(store_error)?;
    job.map(|j| decode(j.value())).transpose()
}

/// Removes a job from the queue's tables (not its lease).
fn remove_job(txn: &WriteTransaction, id: u64, job: &Job) -> Result<(), StoreError> {
    txn.open_table(JOBS)
        .map_err(store_error)?
        .remove(id)
        .map_err(store_error)?;
    txn.open_table(PENDING)
        .map_err(store_error)?
        .remove(&pending_key(&tenant_tag(&job.tenant), id)[..])
        .map_err(store_error)?;
    Ok(())
}

fn release_in(txn: &WriteTransaction, lease: Lease) -> Result<bool, StoreError> {
    let Some(job) = take_lease(txn, lease)? else {
        return Ok(false);
    };
    txn.open_table(DUE)
        .map_err(store_error)?
        .insert(
            &due_key(&tenant_tag(&job.tenant), now_ms(), lease.id)[..],
            (),
        )
        .map_err(store_error)?;
    update_stats(txn, &job.tenant, |s| {
        s.running = s.running.saturating_sub(1)
    })?;
    Ok(true)
}

fn complete_in(txn: &WriteTransaction, lease: Lease) -> Result<bool, StoreError> {
    let Some(job) = take_lease(txn, lease)? else {
        return Ok(false);
    };
    remove_job(txn, lease.id, &job)?;
    update_stats(txn, &job.tenant, |s| {
        s.pending = s.pending.saturating_sub(1);
        s.running = s.running.saturating_sub(1);
        if job.attempts > 0 {
            s.retrying = s.retrying.saturating_sub(1);
        }
        s.attempts += 1;
        s.completed += 1;
    })?;
    Ok(true)
}

fn reschedule_in(
    txn: &WriteTransaction,
    lease: Lease,
    due_ms: u64,
    attempt: Attempt,
) -> Result<bool, StoreError> {
    let Some(mut job) = take_lease(txn, lease)? else {
        return Ok(false);
    };
    let first_failure = job.attempts == 0;
    job.attempts += 1;
    job.last = Some(attempt);
    txn.open_table(JOBS)
        .map_err(store_error)?
        .insert(lease.id, &encode(&job)?[..])
        .map_err(store_error)?;
    txn.open_table(DUE)
        .map_err(store_error)?
        .insert(&due_key(&tenant_tag(&job.tenant), due_ms, lease.id)[..], ())
        .map_err(store_error)?;
    update_stats(txn, &job.tenant, |s| {
        s.running = s.running.saturating_sub(1);
        if first_failure {
            s.retrying += 1;
        }
        s.attempts += 1;
    })?;
    Ok(true)
}

fn dead_letter_in(
    txn: &WriteTransaction,
    lease: Lease,
    attempt: Attempt,
    report: Value,
) -> Result<bool, StoreError> {
    let Some(mut job) = take_lease(txn, lease)? else {
        return Ok(false);
    };
    remove_job(txn, lease.id, &job)?;
    let retried = job.attempts > 0;
    job.attempts += 1;
    job.last = Some(attempt);
    let letter = DeadLetter {
        id: lease.id,
        dead_ms: now_ms(),
        job,
        report,
    };
    txn.open_table(DEAD)
        .map_err(store_error)?
        .insert(lease.id, &encode(&letter)?[..])
        .map_err(store_error)?;
    update_stats(txn, &letter.job.tenant, |s| {
        s.pending = s.pending.saturating_sub(1);
        s.running = s.running.saturating_sub(1);
        if retried {
            s.retrying = s.retrying.saturating_sub(1);
        }
        s.attempts += 1;
        s.dead_letters += 1;
    })?;
    Ok(true)
}

/// The selected dead letters (all of them: an operator's list is short).
fn select_dead(
    table: &impl redb::ReadableTable<u64, &'static [u8]>,
    filter: &DeadFilter,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut out = Vec::new();
    let rows: Box<dyn Iterator<Item = _>> = match filter.id {
        Some(id) => Box::new(table.range(id..=id).map_err(store_error)?),
        None => Box::new(table.iter().map_err(store_error)?),
    };
    for row in rows {
        let (_, v) = row.map_err(store_error)?;
        let letter: DeadLetter = decode(v.value())?;
        if filter.matches(letter.id, &letter.job.tenant) {
            out.push(letter);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

fn retry_dead_in(txn: &WriteTransaction, filter: &DeadFilter) -> Result<usize, StoreError> {
    let letters = {
        let dead = txn.open_table(DEAD).map_err(store_error)?;
        select_dead(&dead, filter, usize::MAX)?
    };
    let now = now_ms();
    for letter in &letters {
        let mut job = letter.job.clone();
        job.attempts = 0;
        job.window_start_ms = now;
        let tag = tenant_tag(&job.tenant);
        txn.open_table(DEAD)
            .map_err(store_error)?
            .remove(letter.id)
            .map_err(store_error)?;
        txn.open_table(JOBS)
            .map_err(store_error)?
            .insert(letter.id, &encode(&job)?[..])
            .map_err(store_error)?;
        txn.open_table(DUE)
            .map_err(store_error)?
            .insert(&due_key(&tag, now, letter.id)[..], ())
            .map_err(store_error)?;
        txn.open_table(PENDING)
            .map_err(store_error)?
            .insert(&pending_key(&tag, letter.id)[..], ())
            .map_err(store_error)?;
        update_stats(txn, &job.tenant, |s| {
            s.dead_letters = s.dead_letters.saturating_sub(1);
            s.pending += 1;
        })?;
    }
    Ok(letters.len())
}

fn purge_dead_in(txn: &WriteTransaction, filter: &DeadFilter) -> Result<usize, StoreError> {
    let letters = {
        let dead = txn.open_table(DEAD).map_err(store_error)?;
        select_dead(&dead, filter, usize::MAX)?
    };
    for letter in &letters {
        txn.open_table(DEAD)
            .map_err(store_error)?
            .remove(letter.id)
            .map_err(store_error)?;
        update_stats(txn, &letter.job.tenant, |s| {
            s.dead_letters = s.dead_letters.saturating_sub(1)
        })?;
    }
    Ok(letters.len())
}

/// Deletes each tenant's oldest dead letters beyond `keep`. Letters are listed by id,
/// which grows with time; the tenants' figures say who is over before anything is read.
fn trim_dead_in(txn: &WriteTransaction, keep: u64) -> Result<Vec<(String, u64)>, StoreError> {
    let mut extra: std::collections::HashMap<String, u64> = {
        let tenants = txn.open_table(TENANTS).map_err(store_error)?;
        let mut over = std::collections::HashMap::new();
        for row in tenants.iter().map_err(store_error)? {
            let (_, v) = row.map_err(store_error)?;
            let stats: TenantStats = decode(v.value())?;
            if stats.dead_letters > keep {
                over.insert(stats.tenant, stats.dead_letters - keep);
            }
        }
        over
    };
    if extra.is_empty() {
        return Ok(Vec::new());
    }
    let mut victims: Vec<(u64, String)> = Vec::new();
    {
        let dead = txn.open_table(DEAD).map_err(store_error)?;
        for row in dead.iter().map_err(store_error)? {
            let (id, v) = row.map_err(store_error)?;
            let letter: DeadLetter = decode(v.value())?;
            if let Some(left) = extra.get_mut(&letter.job.tenant)
                && *left > 0
            {
                *left -= 1;
                victims.push((id.value(), letter.job.tenant));
            }
            if extra.values().all(|left| *left == 0) {
                break;
            }
        }
    }
    let mut dropped: std::collections::BTreeMap<String, u64> = Default::default();
    for (id, tenant) in victims {
        txn.open_table(DEAD)
            .map_err(store_error)?
            .remove(id)
            .map_err(store_error)?;
        update_stats(txn, &tenant, |s| {
            s.dead_letters = s.dead_letters.saturating_sub(1)
        })?;
        *dropped.entry(tenant).or_default() += 1;
    }
    Ok(dropped.into_iter().collect())
}

impl RedbStore {
    /// Whether any of `tenants` has a due job (a read, so an idle queue costs no commits).
    fn any_due(&self, tenants: &[(String, usize)]) -> Result<bool, StoreError> {
        let txn = self.dedupe.db().begin_read().map_err(store_error)?;
        let due = txn.open_table(DUE).map_err(store_error)?;
        let now = now_ms();
        for (tenant, _) in tenants {
            let tag = tenant_tag(tenant);
            let end = due_key(&tag, now, u64::MAX);
            if due
                .range(&tag[..]..=&end[..])
                .map_err(store_error)?
                .next()
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn next_due_now(&self, tenants: &[String]) -> Result<Option<u64>, StoreError> {
        let txn = self.dedupe.db().begin_read().map_err(store_error)?;
        let due = txn.open_table(DUE).map_err(store_error)?;
        let mut next: Option<u64> = None;
        for name in tenants {
            let tag = tenant_tag(name);
            let end = due_key(&tag, u64::MAX, u64::MAX);
            if let Some(first) = due.range(&tag[..]..=&end[..]).map_err(store_error)?.next() {
                let (k, _) = first.map_err(store_error)?;
                let at = u64::from_be_bytes(k.value()[8..16].try_into().unwrap_or_default());
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok(next)
    }

    fn stats_now(&self) -> Result<Vec<TenantStats>, StoreError> {
        let txn = self.dedupe.db().begin_read().map_err(store_error)?;
        let tenants = txn.open_table(TENANTS).map_err(store_error)?;
        let pending = txn.open_table(PENDING).map_err(store_error)?;
        let jobs = txn.open_table(JOBS).map_err(store_error)?;
        let now = now_ms();
        let mut out = Vec::new();
        for row in tenants.iter().map_err(store_error)? {
            let (_, v) = row.map_err(store_error)?;
            let mut stats: TenantStats = decode(v.value())?;
            let tag = tenant_tag(&stats.tenant);
            let end = pending_key(&tag, u64::MAX);
            if let Some(first) = pending
                .range(&tag[..]..=&end[..])
                .map_err(store_error)?
                .next()
            {
                let (k, _) = first.map_err(store_error)?;
                let id = u64::from_be_bytes(k.value()[8..16].try_into().unwrap_or_default());
                if let Some(job) = jobs.get(id).map_err(store_error)? {
                    let job: Job = decode(job.value())?;
                    stats.oldest_pending_ms = Some(now.saturating_sub(job.enqueued_ms));
                }
            }
            out.push(stats);
        }
        Ok(out)
    }

    fn dead_now(&self, filter: &DeadFilter, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let txn = self.dedupe.db().begin_read().map_err(store_error)?;
        let dead = txn.open_table(DEAD).map_err(store_error)?;
        select_dead(&dead, filter, limit)
    }
}

impl Store for RedbStore {
    fn seen(
        &self,
        keys: Vec<MessageKey>,
    ) -> BoxFuture<'_, Result<HashMap<MessageKey, OutcomeKind>, StoreError>> {
        // In place: see `Dedupe::seen_many`.
        let seen = self.dedupe.seen_many(&keys);
        async move { seen }.boxed()
    }

    fn mark(
        &self,
        tenant: &str,
        keys: Vec<(MessageKey, OutcomeKind)>,
    ) -> BoxFuture<'_, Result<Marked, StoreError>> {
        let tenant = tenant.to_owned();
        async move { self.dedupe.mark(&tenant, keys).await }.boxed()
    }

    fn purge_expired(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.dedupe.purge().boxed()
    }

    fn enqueue(
        &self,
        tenant: &str,
        jobs: Vec<NewJob>,
        max_pending: u64,
    ) -> BoxFuture<'_, Result<(Vec<Enqueued>, Marked), StoreError>> {
        let tenant = tenant.to_owned();
        let window = self.dedupe.window();
        self.dedupe
            .write(move |txn, ctx| enqueue_in(txn, ctx, window, &tenant, jobs, max_pending))
            .boxed()
    }

    fn claim(
        &self,
        wants: Vec<(String, usize)>,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Claimed>, StoreError>> {
        async move {
            if !self.any_due(&wants)? {
                return Ok(Vec::new());
            }
            let (epoch, tokens) = (self.epoch, self.tokens.clone());
            self.dedupe
                .write(move |txn, _| claim_in(txn, epoch, &tokens, &wants, lease))
                .await
        }
        .boxed()
    }

    /// Expired leases of this process (a worker that outlived its lease: its report
    /// will be refused).
    fn reap(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        let epoch = self.epoch;
        self.dedupe.write(move |txn, _| recover(txn, epoch)).boxed()
    }

    fn release(&self, lease: Lease) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.dedupe
            .write(move |txn, _| release_in(txn, lease))
            .boxed()
    }

    fn complete(&self, lease: Lease) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.dedupe
            .write(move |txn, _| complete_in(txn, lease))
            .boxed()
    }

    fn reschedule(
        &self,
        lease: Lease,
        due_ms: u64,
        attempt: Attempt,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.dedupe
            .write(move |txn, _| reschedule_in(txn, lease, due_ms, attempt))
            .boxed()
    }

    fn dead_letter(
        &self,
        lease: Lease,
        attempt: Attempt,
        report: Value,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.dedupe
            .write(move |txn, _| dead_letter_in(txn, lease, attempt, report))
            .boxed()
    }

    fn next_due(&self, tenants: Vec<String>) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        let next = self.next_due_now(&tenants);
        async move { next }.boxed()
    }

    fn trim_dead(&self, keep: u64) -> BoxFuture<'_, Result<Vec<(String, u64)>, StoreError>> {
        self.dedupe
            .write(move |txn, _| trim_dead_in(txn, keep))
            .boxed()
    }

    fn dead_letters(
        &self,
        filter: DeadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<DeadLetter>, StoreError>> {
        let letters = self.dead_now(&filter, limit);
        async move { letters }.boxed()
    }

    fn retry_dead(&self, filter: DeadFilter) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.dedupe
            .write(move |txn, _| retry_dead_in(txn, &filter))
            .boxed()
    }

    fn purge_dead(&self, filter: DeadFilter) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.dedupe
            .write(move |txn, _| purge_dead_in(txn, &filter))
            .boxed()
    }

    fn stats(&self) -> BoxFuture<'_, Result<Vec<TenantStats>, StoreError>> {
        let stats = self.stats_now();
        async move { stats }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> NewJob {
        NewJob {
            key: Some(MessageKey::new("t", id)),
            message_id: id.into(),
            event_type: "track".into(),
            event: format!(r#"{{"type":"track","messageId":"{id}"}}"#),
            settings: None,
        }
    }

    fn open(path: &std::path::Path) -> RedbStore {
        RedbStore::open(Dedupe::open(path, Duration::from_secs(3600), 1000).unwrap()).unwrap()
    }

    fn attempt() -> Attempt {
        Attempt {
            at_ms: now_ms(),
            outcome: "retry".into(),
            message: Some("partner answered 503".into()),
            partner_status: Some(503),
            reason: "partner 503".into(),
        }
    }

    async fn stats(s: &RedbStore, tenant: &str) -> TenantStats {
        s.stats()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.tenant == tenant)
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn enqueue_claim_complete_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir.path().join("s.redb"));
        let (out, _) = s
            .enqueue("t", vec![job("a"), job("b"), job("a")], u64::MAX)
            .await
            .unwrap();
        assert!(matches!(out[0], Enqueued::Queued(_)));
        assert!(matches!(out[1], Enqueued::Queued(_)));
        assert_eq!(
            out[2],
            Enqueued::Duplicate,
            "the same messageId twice in one call"
        );
        let (again, _) = s.enqueue("t", vec![job("a")], u64::MAX).await.unwrap();
        assert_eq!(again, [Enqueued::Duplicate], "the window holds it");
        assert!(s.seen(vec![MessageKey::new("t", "b")]).await.unwrap().len() == 1);

        let claimed = s
            .claim(vec![("t".into(), 10)], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        assert_eq!(claimed[0].job.message_id, "a");
        let none = s
            .claim(vec![("t".into(), 10)], Duration::from_secs(60))
            .await
            .unwrap();
        assert!(none.is_empty(), "leased jobs are not claimed twice");
        assert_eq!(stats(&s, "t").await.running, 2);
        assert!(s.release(claimed[1].lease).await.unwrap());
        let again = s
            .claim(vec![("t".into(), 10)], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(again.len(), 1, "a released job is claimable at once");
        assert_eq!(again[0].job.attempts, 0, "and no attempt was counted");
        assert!(
            !s.complete(claimed[1].lease).await.unwrap(),
            "its old lease is void"
        );
        assert!(s.complete(claimed[0].lease).await.unwrap());
        assert!(
            !s.complete(claimed[0].lease).await.unwrap(),
            "a lease reports once"
        );
        let st = stats(&s, "t").await;
        assert_eq!((st.pending, st.running, st.completed), (1, 1, 1));
        assert!(st.oldest_pending_ms.is_some());
    }

    #[tokio::test]
    async fn reschedule_dead_letter_retry_and_purge() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir.path().join("s.redb"));
        s.enqueue("t", vec![job("a")], u64::MAX).await.unwrap();
        let c = s
            .claim(vec![("t".into(), 1)], Duration::from_secs(60))
            .await
            .unwrap();
        let later = now_ms() + 60_000;
        assert!(s.reschedule(c[0].lease, later, attempt()).await.unwrap());
        assert!(
            s.claim(vec![("t".into(), 1)], Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty(),
            "not due yet"
        );
        assert_eq!(s.next_due(vec!["t".into()]).await.unwrap(), Some(later));
        assert_eq!(stats(&s, "t").await.retrying, 1);

        s.enqueue("t", vec![job("b")], u64::MAX).await.unwrap();
        let c = s
            .claim(vec![("t".into(), 1)], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(c[0].job.message_id, "b");
        assert!(
            s.dead_letter(c[0].lease, attempt(), serde_json::json!({"outcome": "x"}))
                .await
                .unwrap()
        );
        let dead = s.dead_letters(DeadFilter::default(), 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].job.attempts, 1);
        assert_eq!(dead[0].report["outcome"], "x");
        assert_eq!(stats(&s, "t").await.dead_letters, 1);

        let filter = DeadFilter {
            id: Some(dead[0].id),
            tenant: None,
        };
        assert_eq!(s.retry_dead(filter.clone()).await.unwrap(), 1);
        assert!(
            s.dead_letters(DeadFilter::default(), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let c = s
            .claim(vec![("t".into(), 5)], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(c.len(), 1, "b is due again; a is not");
        assert_eq!(c[0].job.attempts, 0, "a fresh retry budget");
        assert!(
            s.dead_letter(c[0].lease, attempt(), Value::Null)
                .await
                .unwrap()
        );
        assert_eq!(
            s.purge_dead(DeadFilter {
                tenant: Some("other".into()),
                id: None
            })
            .await
            .unwrap(),
            0
        );
        assert_eq!(s.purge_dead(DeadFilter::default()).await.unwrap(), 1);
        let st = stats(&s, "t").await;
        assert_eq!((st.pending, st.dead_letters, st.running), (1, 0, 0));
    }

    #[tokio::test]
    async fn a_restart_voids_leases_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let lease = {
            let s = open(&path);
            s.enqueue("t", vec![job("a")], u64::MAX).await.unwrap();
            let c = s
                .claim(vec![("t".into(), 1)], Duration::from_secs(600))
                .await
                .unwrap();
            c[0].lease
        };
        let s = open(&path);
        assert!(
            !s.complete(lease).await.unwrap(),
            "the old process's lease is void"
        );
        let c = s
            .claim(vec![("t".into(), 1)], Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(c.len(), 1, "claimable again after the restart");
        let st = stats(&s, "t").await;
        assert_eq!((st.redelivered, st.running), (1, 1));
    }

    #[tokio::test]
    async fn expired_leases_are_reaped_without_counting_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir.path().join("s.redb"));
        s.enqueue("t", vec![job("a")], u64::MAX).await.unwrap();
        let stuck = s
            .claim(vec![("t".into(), 1)], Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(stuck.len(), 1);
        assert_eq!(s.reap().await.unwrap(), 1);
        let again = s
            .claim(vec![("t".into(), 1)], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(again.len(), 1, "claimable again");
        assert!(
            !s.complete(stuck[0].lease).await.unwrap(),
            "the stuck worker's report is refused"
        );
        assert!(s.complete(again[0].lease).await.unwrap());
        let st = stats(&s, "t").await;
        assert_eq!((st.redelivered, st.running, st.completed), (0, 0, 1));
    }

    #[tokio::test]
    async fn a_full_queue_takes_nothing_of_a_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir.path().join("s.redb"));
        s.enqueue("t", vec![job("a"), job("b")], 3).await.unwrap();
        let (out, _) = s.enqueue("t", vec![job("c"), job("d")], 3).await.unwrap();
        assert_eq!(out, [Enqueued::Full, Enqueued::Full]);
        assert!(
            s.seen(vec![MessageKey::new("t", "c")])
                .await
                .unwrap()
                .is_empty(),
            "not remembered either: Segment's retry must be queued"
        );
        let (out, _) = s.enqueue("other", vec![job("c")], 3).await.unwrap();
        assert!(
            matches!(out[0], Enqueued::Queued(_)),
            "other tenants are not affected"
        );
    }

    #[tokio::test]
    async fn claims_take_each_tenants_share() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir.path().join("s.redb"));
        let many: Vec<NewJob> = (0..50)
            .map(|i| NewJob {
                key: None,
                ..job(&format!("n{i}"))
            })
            .collect();
        s.enqueue("noisy", many, u64::MAX).await.unwrap();
        s.enqueue(
            "quiet",
            vec![NewJob {
                key: None,
                ..job("q")
            }],
            u64::MAX,
        )
        .await
        .unwrap();
        let c = s
            .claim(
                vec![("noisy".into(), 4), ("quiet".into(), 4)],
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert_eq!(c.iter().filter(|c| c.job.tenant == "noisy").count(), 4);
        assert_eq!(c.iter().filter(|c| c.job.tenant == "quiet").count(), 1);
    }
}
