//! The [`Store`] on PostgreSQL: one database shared by any number of `segfn serve`
//! replicas (`--store postgres://...`). Each operation is one statement ([`sql`]);
//! the writes of concurrent deliveries and workers are grouped into one transaction
//! ([`writer`]), so they share a WAL flush. Claims take due jobs with `FOR UPDATE SKIP
//! LOCKED` and commit a lease (`leased_until_ms`), so replicas never wait for each
//! other, and a dead replica's work is claimed again once its leases expire.
//!
//! Per-tenant figures are kept in 16 counter rows per tenant (`segfn_counters`, one
//! picked per operation, summed when read) rather than one: a single row would be
//! locked by every enqueue and outcome of the tenant until its commit, serialising
//! them. Times are the replicas' clocks (milliseconds since the epoch), as on the
//! embedded store; replicas are expected to keep their clocks in sync (NTP), and
//! leases are long enough (deadline + margin) that a skew of a second does not matter.

use super::{
    Attempt, Claimed, DeadFilter, DeadLetter, Enqueued, Job, Lease, Marked, MessageKey, NewJob,
    Store, StoreError, TenantStats, now_ms, outcome_code, outcome_of,
};
use deadpool_postgres::tokio_postgres::{self, NoTls, Row, config::SslMode, types::ToSql};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use segfn_sdk::abi::OutcomeKind;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod sql;
pub mod tls;
mod writer;

use sql::*;
use writer::Param;

/// The shared store. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// This process's claims (a random number per open): a lease is `(epoch, token)`.
    epoch: i64,
    window: Duration,
    max_entries: u64,
    /// Picks the counter row of each operation.
    shard: std::sync::Arc<AtomicU64>,
    /// Where it connects, without credentials: for messages.
    target: String,
    /// The group writers' queue.
    writes: tokio::sync::mpsc::UnboundedSender<writer::Write>,
    /// Groups whose writes were run again one by one (a statement was refused).
    regrouped: std::sync::Arc<AtomicU64>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// A database error, with where it happened and its causes (tokio-postgres says only
/// "db error" at the top); never the connection string (it may hold a password).
fn db_error(what: &str, e: impl std::error::Error) -> StoreError {
    let mut text = format!("PostgreSQL, {what}: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    StoreError(text)
}

/// `host:port/dbname` of a connection string, without user or password.
pub fn describe_url(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("(default database)");
    format!("{host}:{port}/{db}")
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn raw(json: String) -> Result<Box<RawValue>, StoreError> {
    RawValue::from_string(json)
        .map_err(|e| StoreError(format!("a stored event is unreadable: {e}")))
}

fn attempt_of(text: Option<String>) -> Result<Option<Attempt>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| StoreError(format!("a stored attempt is unreadable: {e}")))
    })
    .transpose()
}

/// A job from a row of `segfn_jobs` or `segfn_dead` (columns by name).
fn job_of(row: &Row) -> Result<Job, StoreError> {
    Ok(Job {
        tenant: row.get("tenant"),
        message_id: row.get("message_id"),
        event_type: row.get("event_type"),
        enqueued_ms: u64_of(row.get("enqueued_ms")),
        window_start_ms: u64_of(row.get("window_start_ms")),
        attempts: u32::try_from(row.get::<_, i32>("attempts")).unwrap_or(0),
        last: attempt_of(row.get("last"))?,
        settings: row
            .get::<_, Option<String>>("settings")
            .map(raw)
            .transpose()?,
        event: raw(row.get("event"))?,
    })
}

fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError(e.to_string()))
}

impl PgStore {
    /// Connects to `url` and creates or migrates the schema. `pool_size` connections
    /// at most; `window` and `max_entries` as for the embedded store.
    pub async fn connect(
        url: &str,
        pool_size: usize,
        window: Duration,
        max_entries: u64,
    ) -> Result<PgStore, StoreError> {
        let (url, tls) = tls::split(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError(format!(
                "the PostgreSQL connection string is not valid ({e}); expected \
                 postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            ))
        })?;
        let target = describe_url(&config);
        let tls_config =
            tls::client_config(&tls).map_err(|e| StoreError(format!("{target}: {e}")))?;
        if tls_config.is_some() {
            // tokio-postgres knows `require` only; the verify modes are the connector's.
            config.ssl_mode(SslMode::Require);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("segfn");
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls_config {
            Some(tls) => Manager::from_config(
                config,
                tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                manager_config,
            ),
            None => Manager::from_config(config, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| db_error(&target, e))?;
        let mut epoch = [0u8; 8];
        getrandom::fill(&mut epoch).map_err(|e| StoreError(e.to_string()))?;
        let epoch = i64::from_le_bytes(epoch) & i64::MAX;
        let regrouped = std::sync::Arc::default();
        let writes = writer::start(
            pool.clone(),
            target.clone(),
            epoch as u64,
            Arc::clone(&regrouped),
        );
        let store = PgStore {
            writes,
            regrouped,
            pool,
            epoch,
            window,
            max_entries: max_entries.max(1),
            shard: std::sync::Arc::default(),
            target,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Groups of writes run again one by one because the database refused one of
    /// their statements (a bad write, or a deadlock with another replica's group).
    pub fn regrouped(&self) -> u64 {
        self.regrouped.load(Ordering::Relaxed)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| db_error(&format!("connecting to {}", self.target), e))
    }

    fn shard(&self) -> i16 {
        (self.shard.fetch_add(1, Ordering::Relaxed) % SHARDS) as i16
    }

    /// Applies the migrations this database lacks, one transaction under an advisory
    /// lock, so replicas starting together migrate once.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let txn = client
            .transaction()
            .await
            .map_err(|e| db_error("migrating", e))?;
        txn.batch_execute(
            "SELECT pg_advisory_xact_lock(7418251903);
             CREATE TABLE IF NOT EXISTS segfn_migrations (
                version integer PRIMARY KEY, applied_ms bigint NOT NULL)",
        )
        .await
        .map_err(|e| db_error("migrating", e))?;
        let current: i32 = txn
            .query_one(
                "SELECT coalesce(max(version), 0) FROM segfn_migrations",
                &[],
            )
            .await
            .map_err(|e| db_error("migrating", e))?
            .get(0);
        let known = MIGRATIONS.len() as i32;
        if current > known {
            return Err(StoreError(format!(
                "{}: the database's segfn schema is version {current}, newer than this \
                 segfn knows ({known}); run the newer segfn",
                self.target
            )));
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = version as i32 + 1;
            txn.batch_execute(sql)
                .await
                .map_err(|e| db_error(&format!("migration {version}"), e))?;
            txn.execute(
                "INSERT INTO segfn_migrations (version, applied_ms) VALUES ($1, $2)",
                &[&version, &i64_of(now_ms())],
            )
            .await
            .map_err(|e| db_error(&format!("migration {version}"), e))?;
        }
        txn.commit().await.map_err(|e| db_error("migrating", e))
    }

    /// Runs one write statement in the writers' next group transaction; returns its
    /// rows once committed. `shard_param` is the index of the counter shard parameter.
    async fn write(
        &self,
        what: &'static str,
        sql: &'static str,
        params: Vec<Param>,
        shard_param: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StoreError("the PostgreSQL writers have stopped".into());
        self.writes
            .send(writer::Write {
                what,
                sql,
                params,
                shard_param,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs one statement and returns its rows.
    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| db_error(what, e))?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| db_error(what, e))
    }

    fn window_start(&self, now: u64) -> i64 {
        i64_of(now.saturating_sub(self.window.as_millis() as u64))
    }

    async fn enqueue_now(
        &self,
        tenant: &str,
        jobs: Vec<NewJob>,
        max_pending: u64,
    ) -> Result<(Vec<Enqueued>, Marked), StoreError> {
        // A messageId twice in one delivery: the first is queued, the others are
        // repeats, not sent to the database at all.
        let total = jobs.len();
        let mut firsts = HashSet::new();
        let repeats: Vec<bool> = jobs
            .iter()
            .map(|j| j.key.is_some_and(|k| !firsts.insert(k)))
            .collect();
        let sent = jobs.into_iter().zip(&repeats).filter(|(_, r)| !**r);
        let (mut keys, mut ids, mut types, mut settings, mut events) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (job, _) in sent {
            keys.push(job.key.map(|k| k.0.to_vec()));
            ids.push(job.message_id);
            types.push(job.event_type);
            settings.push(job.settings);
            events.push(job.event);
        }
        let now = now_ms();
        let params: Vec<Param> = vec![
            Box::new(tenant.to_owned()),
            Box::new(i64_of(now)),
            Box::new(self.window_start(now)),
            Box::new(i64_of(max_pending)),
            Box::new(0i16),
            Box::new(keys),
            Box::new(ids),
            Box::new(types),
            Box::new(settings),
            Box::new(events),
        ];
        let rows = self
            .write("queueing a delivery", ENQUEUE, params, 4)
            .await?;
        if rows.first().is_some_and(|r| !r.get::<_, bool>("ok")) {
            return Ok((vec![Enqueued::Full; total], Marked::default()));
        }
        let entries = rows.first().map_or(0, |r| u64_of(r.get("entries")));
        let mut rows = rows.iter();
        let out = repeats
            .iter()
            .map(|repeat| match (!repeat).then(|| rows.next()).flatten() {
                Some(row) if row.get::<_, bool>("queued") => {
                    Enqueued::Queued(u64_of(row.get("id")))
                }
                _ => Enqueued::Duplicate,
            })
            .collect();
        Ok((
            out,
            Marked {
                entries,
                evicted: 0,
            },
        ))
    }

    async fn claim_now(
        &self,
        wants: Vec<(String, usize)>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now = now_ms();
        let until = i64_of(now + lease.as_millis() as u64);
        let mut out = Vec::new();
        for (tenant, n) in wants.iter().filter(|(_, n)| *n > 0) {
            let rows = self
                .query(
                    "claiming due events",
                    CLAIM,
                    &[
                        tenant,
                        &i64_of(now),
                        &i64_of(*n as u64),
                        &self.epoch,
                        &until,
                        &self.shard(),
                    ],
                )
                .await?;
            for row in rows {
                out.push(Claimed {
                    lease: Lease {
                        id: u64_of(row.get("id")),
                        epoch: u64_of(self.epoch),
                        token: u64_of(row.get("lease_token")),
                    },
                    job: job_of(&row)?,
                });
            }
        }
        Ok(out)
    }

    /// A report under `lease`: `sql` with the lease first, then `rest`, the last of
    /// which is the counter shard; whether the lease still held.
    async fn report(
        &self,
        what: &'static str,
        sql: &'static str,
        lease: Lease,
        rest: Vec<Param>,
    ) -> Result<bool, StoreError> {
        let mut params: Vec<Param> = vec![
            Box::new(i64_of(lease.id)),
            Box::new(i64_of(lease.epoch)),
            Box::new(i64_of(lease.token)),
        ];
        params.extend(rest);
        let shard = params.len() - 1;
        Ok(!self.write(what, sql, params, shard).await?.is_empty())
    }

    /// Purges, unless another replica is purging (one advisory lock for all): the
    /// over-cap trimming must not run once per replica.
    async fn purge_now(&self) -> Result<usize, StoreError> {
        const PURGE_LOCK: i64 = 7_418_251_904;
        let holder = self.client().await?;
        let locked: bool = holder
            .query_one("SELECT pg_try_advisory_lock($1)", &[&PURGE_LOCK])
            .await
            .map_err(|e| db_error("purging", e))?
            .get(0);
        if !locked {
            return Ok(0);
        }
        let purged = self.purge_locked().await;
        let unlocked = holder
            .execute("SELECT pg_advisory_unlock($1)", &[&PURGE_LOCK])
            .await;
        if unlocked.is_err() {
            // The session keeps the lock: leave it out of the pool, which closes it.
            let _ = deadpool_postgres::Object::take(holder);
        }
        purged
    }

    async fn purge_locked(&self) -> Result<usize, StoreError> {
        let cutoff = self.window_start(now_ms());
        let mut removed = 0;
        loop {
            let rows = self
                .query(
                    "purging expired messageIds",
                    PURGE_EXPIRED,
                    &[&cutoff, &self.shard(), &PURGE_CHUNK],
                )
                .await?;
            let n = rows.first().map_or(0, |r| r.get::<_, i64>(0));
            removed += u64_of(n) as usize;
            if n < PURGE_CHUNK {
                break;
            }
        }
        // Tenants over their cap lose their oldest entries (their window shrinks).
        let over = self
            .query(
                "counting messageIds",
                OVER_CAP,
                &[&i64_of(self.max_entries)],
            )
            .await?;
        for row in over {
            let tenant: String = row.get(0);
            let mut excess: i64 = row.get(1);
            while excess > 0 {
                let chunk = excess.min(PURGE_CHUNK);
                let rows = self
                    .query(
                        "forgetting messageIds over the cap",
                        EVICT,
                        &[&tenant, &chunk, &self.shard()],
                    )
                    .await?;
                let n = rows.first().map_or(0, |r| r.get::<_, i64>(0));
                removed += u64_of(n) as usize;
                if n < chunk {
                    break;
                }
                excess -= n;
            }
        }
        Ok(removed)
    }
}

fn filter_params(filter: &DeadFilter) -> (Option<String>, Option<i64>) {
    (filter.tenant.clone(), filter.id.map(i64_of))
}

impl Store for PgStore {
    fn seen(
        &self,
        keys: Vec<MessageKey>,
    ) -> BoxFuture<'_, Result<HashMap<MessageKey, OutcomeKind>, StoreError>> {
        async move {
            if keys.is_empty() {
                return Ok(HashMap::new());
            }
            let bytes: Vec<&[u8]> = keys.iter().map(|k| &k.0[..]).collect();
            let rows = self
                .query(
                    "reading the deduplication window",
                    SEEN,
                    &[&bytes, &self.window_start(now_ms())],
                )
                .await?;
            Ok(rows
                .iter()
                .filter_map(|r| {
                    let key: &[u8] = r.get(0);
                    let outcome: Option<i16> = r.get(1);
                    let outcome = outcome
                        .and_then(|code| u8::try_from(code).ok())
                        .map_or(OutcomeKind::Success, outcome_of);
                    Some((MessageKey(key.try_into().ok()?), outcome))
                })
                .collect())
        }
        .boxed()
    }

    fn mark(
        &self,
        tenant: &str,
        mut keys: Vec<(MessageKey, OutcomeKind)>,
    ) -> BoxFuture<'_, Result<Marked, StoreError>> {
        let tenant = tenant.to_owned();
        async move {
            if keys.is_empty() {
                return Ok(Marked::default());
            }
            // Sorted: concurrent marks lock their keys in one order.
            keys.sort_unstable_by_key(|(k, _)| k.0);
            keys.dedup_by_key(|(k, _)| k.0);
            let bytes: Vec<Vec<u8>> = keys.iter().map(|(k, _)| k.0.to_vec()).collect();
            let outcomes: Vec<Option<i16>> = keys
                .iter()
                .map(|(_, o)| (*o != OutcomeKind::Success).then(|| i16::from(outcome_code(*o))))
                .collect();
            let params: Vec<Param> = vec![
                Box::new(bytes),
                Box::new(tenant),
                Box::new(i64_of(now_ms())),
                Box::new(0i16),
                Box::new(outcomes),
            ];
            let rows = self.write("recording messageIds", MARK, params, 3).await?;
            Ok(Marked {
                entries: rows.first().map_or(0, |r| u64_of(r.get(0))),
                evicted: 0,
            })
        }
        .boxed()
    }

    fn purge_expired(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.purge_now().boxed()
    }

    fn enqueue(
        &self,
        tenant: &str,
        jobs: Vec<NewJob>,
        max_pending: u64,
    ) -> BoxFuture<'_, Result<(Vec<Enqueued>, Marked), StoreError>> {
        let tenant = tenant.to_owned();
        async move { self.enqueue_now(&tenant, jobs, max_pending).await }.boxed()
    }

    fn claim(
        &self,
        wants: Vec<(String, usize)>,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Claimed>, StoreError>> {
        self.claim_now(wants, lease).boxed()
    }

    /// Nothing to do: claims take expired leases themselves.
    fn reap(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        async { Ok(0) }.boxed()
    }

    fn release(&self, lease: Lease) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let rest: Vec<Param> = vec![Box::new(i64_of(now_ms())), Box::new(0i16)];
            self.report("giving back an event", RELEASE, lease, rest)
                .await
        }
        .boxed()
    }

    fn complete(&self, lease: Lease) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            self.report(
                "recording an outcome",
                COMPLETE,
                lease,
                vec![Box::new(0i16)],
            )
            .await
        }
        .boxed()
    }

    fn reschedule(
        &self,
        lease: Lease,
        due_ms: u64,
        attempt: Attempt,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let rest: Vec<Param> = vec![
                Box::new(i64_of(due_ms)),
                Box::new(json_text(&attempt)?),
                Box::new(0i16),
            ];
            self.report("scheduling a retry", RESCHEDULE, lease, rest)
                .await
        }
        .boxed()
    }

    fn dead_letter(
        &self,
        lease: Lease,
        attempt: Attempt,
        report: Value,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let rest: Vec<Param> = vec![
                Box::new(json_text(&attempt)?),
                Box::new(i64_of(now_ms())),
                Box::new(json_text(&report)?),
                Box::new(0i16),
            ];
            self.report("dead-lettering an event", DEAD_LETTER, lease, rest)
                .await
        }
        .boxed()
    }

    fn next_due(&self, tenants: Vec<String>) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        async move {
            let rows = self
                .query("reading the queue", NEXT_DUE, &[&tenants])
                .await?;
            Ok(rows
                .first()
                .and_then(|r| r.get::<_, Option<i64>>(0))
                .map(u64_of))
        }
        .boxed()
    }

    fn dead_letters(
        &self,
        filter: DeadFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<DeadLetter>, StoreError>> {
        async move {
            let (tenant, id) = filter_params(&filter);
            let limit = i64_of(limit as u64);
            let rows = self
                .query(
                    "reading dead letters",
                    DEAD_LETTERS,
                    &[&tenant, &id, &limit],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    let report: String = row.get("report");
                    Ok(DeadLetter {
                        id: u64_of(row.get("id")),
                        job: job_of(row)?,
                        dead_ms: u64_of(row.get("dead_ms")),
                        report: serde_json::from_str(&report).map_err(|e| {
                            StoreError(format!("a stored report is unreadable: {e}"))
                        })?,
                    })
                })
                .collect()
        }
        .boxed()
    }

    fn retry_dead(&self, filter: DeadFilter) -> BoxFuture<'_, Result<usize, StoreError>> {
        async move {
            let (tenant, id) = filter_params(&filter);
            let (now, shard) = (i64_of(now_ms()), self.shard());
            let rows = self
                .query(
                    "retrying dead letters",
                    RETRY_DEAD,
                    &[&tenant, &id, &now, &shard],
                )
                .await?;
            Ok(rows.first().map_or(0, |r| u64_of(r.get(0)) as usize))
        }
        .boxed()
    }

    fn purge_dead(&self, filter: DeadFilter) -> BoxFuture<'_, Result<usize, StoreError>> {
        async move {
            let (tenant, id) = filter_params(&filter);
            let shard = self.shard();
            let rows = self
                .query("purging dead letters", PURGE_DEAD, &[&tenant, &id, &shard])
                .await?;
            Ok(rows.first().map_or(0, |r| u64_of(r.get(0)) as usize))
        }
        .boxed()
    }

    fn trim_dead(&self, keep: u64) -> BoxFuture<'_, Result<Vec<(String, u64)>, StoreError>> {
        async move {
            let keep = i64_of(keep);
            let shard = self.shard();
            let rows = self
                .query("trimming dead letters", TRIM_DEAD, &[&keep, &shard])
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), u64_of(r.get(1))))
                .collect())
        }
        .boxed()
    }

    fn stats(&self) -> BoxFuture<'_, Result<Vec<TenantStats>, StoreError>> {
        async move {
            let rows = self.query("reading the figures", STATS, &[]).await?;
            let now = now_ms();
            Ok(rows
                .iter()
                .map(|r| TenantStats {
                    tenant: r.get(0),
                    pending: u64_of(r.get(1)),
                    retrying: u64_of(r.get(2)),
                    running: u64_of(r.get(3)),
                    dead_letters: u64_of(r.get(4)),
                    attempts: u64_of(r.get(5)),
                    completed: u64_of(r.get(6)),
                    redelivered: u64_of(r.get(7)),
                    oldest_pending_ms: r
                        .get::<_, Option<i64>>(8)
                        .map(|at| now.saturating_sub(u64_of(at))),
                })
                .collect())
        }
        .boxed()
    }
}
