//! The [`Store`] on PostgreSQL: one database shared by any number of `segfn serve`
//! replicas (`--store postgres://...`). Each operation is one statement (so one
//! transaction and one round trip); claims take due jobs with `FOR UPDATE SKIP LOCKED`
//! and commit a lease (`leased_until_ms`), so replicas never wait for each other, and a
//! dead replica's work is claimed again once its leases expire.
//!
//! Per-tenant figures are kept in 16 counter rows per tenant (`segfn_counters`, one
//! picked per operation, summed when read) rather than one: a single row would be
//! locked by every enqueue and outcome of the tenant until its commit, serialising
//! them. Times are the replicas' clocks (milliseconds since the epoch), as on the
//! embedded store; replicas are expected to keep their clocks in sync (NTP), and
//! leases are long enough (deadline + margin) that a skew of a second does not matter.

use super::dedupe::{Marked, MessageKey, StoreError, now_ms};
use super::store::{
    Attempt, Claimed, DeadFilter, DeadLetter, Enqueued, Job, Lease, NewJob, Store, TenantStats,
};
use deadpool_postgres::tokio_postgres::{self, NoTls, Row, config::SslMode, types::ToSql};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counter rows per tenant (see the module's note).
const SHARDS: u64 = 16;
/// Rows removed per purge statement, so no purge holds locks for long.
const PURGE_CHUNK: i64 = 5000;

/// The schema, one migration per entry, applied in order under an advisory lock.
/// Entries are never edited once released: a change is a new entry.
const MIGRATIONS: &[&str] = &[
    // 1: the deduplication window, the queue, the dead letters, the figures.
    "CREATE TABLE segfn_dedupe (
        key bytea PRIMARY KEY,
        tenant text NOT NULL,
        at_ms bigint NOT NULL
     );
     CREATE INDEX segfn_dedupe_by_tenant ON segfn_dedupe (tenant, at_ms);
     CREATE INDEX segfn_dedupe_by_age ON segfn_dedupe (at_ms);
     CREATE TABLE segfn_dedupe_counts (
        tenant text NOT NULL,
        shard smallint NOT NULL,
        entries bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, shard)
     );
     CREATE TABLE segfn_jobs (
        id bigserial PRIMARY KEY,
        tenant text NOT NULL,
        message_id text NOT NULL,
        event_type text NOT NULL,
        enqueued_ms bigint NOT NULL,
        window_start_ms bigint NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        last text,
        settings text,
        event text NOT NULL,
        due_ms bigint NOT NULL,
        lease_epoch bigint,
        lease_token bigint,
        leased_until_ms bigint
     );
     CREATE INDEX segfn_jobs_by_due ON segfn_jobs (tenant, due_ms, id);
     CREATE INDEX segfn_jobs_by_age ON segfn_jobs (tenant, enqueued_ms);
     CREATE SEQUENCE segfn_lease_tokens;
     CREATE TABLE segfn_dead (
        id bigint PRIMARY KEY,
        tenant text NOT NULL,
        message_id text NOT NULL,
        event_type text NOT NULL,
        enqueued_ms bigint NOT NULL,
        window_start_ms bigint NOT NULL,
        attempts integer NOT NULL,
        last text,
        settings text,
        event text NOT NULL,
        dead_ms bigint NOT NULL,
        report text NOT NULL
     );
     CREATE INDEX segfn_dead_by_tenant ON segfn_dead (tenant, id);
     CREATE TABLE segfn_counters (
        tenant text NOT NULL,
        shard smallint NOT NULL,
        pending bigint NOT NULL DEFAULT 0,
        retrying bigint NOT NULL DEFAULT 0,
        running bigint NOT NULL DEFAULT 0,
        dead_letters bigint NOT NULL DEFAULT 0,
        attempts bigint NOT NULL DEFAULT 0,
        completed bigint NOT NULL DEFAULT 0,
        redelivered bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, shard)
     );",
];

/// Adds a row of deltas (tenant, shard, then the seven figures) to the counters.
macro_rules! add_counters {
    ($select:literal) => {
        concat!(
            "INSERT INTO segfn_counters (tenant, shard, pending, retrying, running, dead_letters, attempts, completed, redelivered) ",
            $select,
            " ON CONFLICT (tenant, shard) DO UPDATE SET
                pending = segfn_counters.pending + excluded.pending,
                retrying = segfn_counters.retrying + excluded.retrying,
                running = segfn_counters.running + excluded.running,
                dead_letters = segfn_counters.dead_letters + excluded.dead_letters,
                attempts = segfn_counters.attempts + excluded.attempts,
                completed = segfn_counters.completed + excluded.completed,
                redelivered = segfn_counters.redelivered + excluded.redelivered"
        )
    };
}

/// Adds to a tenant's count of deduplication entries.
macro_rules! add_dedupe_counts {
    ($select:literal) => {
        concat!(
            "INSERT INTO segfn_dedupe_counts (tenant, shard, entries) ",
            $select,
            " ON CONFLICT (tenant, shard) DO UPDATE SET entries = segfn_dedupe_counts.entries + excluded.entries"
        )
    };
}

const SEEN: &str =
    "SELECT key FROM segfn_dedupe WHERE key = ANY($1::bytea[]) AND at_ms > $2::bigint";

/// $1 keys (sorted, distinct), $2 tenant, $3 now, $4 shard. Returns the tenant's
/// entries.
const MARK: &str = concat!(
    "WITH k AS (
        INSERT INTO segfn_dedupe (key, tenant, at_ms) SELECT k, $2::text, $3::bigint FROM unnest($1::bytea[]) AS k
        ON CONFLICT (key) DO UPDATE SET at_ms = excluded.at_ms, tenant = excluded.tenant
        RETURNING (xmax = 0) AS inserted
     ), c AS (",
    add_dedupe_counts!(
        "SELECT $2::text, $4::smallint, count(*) FILTER (WHERE inserted) FROM k HAVING count(*) FILTER (WHERE inserted) > 0"
    ),
    ") SELECT coalesce((SELECT sum(entries) FROM segfn_dedupe_counts WHERE tenant = $2::text), 0)::bigint
        + (SELECT count(*) FILTER (WHERE inserted) FROM k)"
);

/// $1 tenant, $2 now, $3 window start, $4 max pending, $5 shard, then one array per
/// column: $6 keys (NULL: no messageId, or a repeat within the delivery), $7 message
/// ids, $8 types, $9 settings, $10 events. Returns one row per job, in order: whether
/// it was queued and its id; plus whether the tenant's cap allowed the delivery.
///
/// Everything is one statement: the cap check, the window check and record, the jobs
/// and the figures commit together or not at all. A concurrent delivery of the same
/// `messageId` waits on the key's row and then finds it taken.
const ENQUEUE: &str = concat!(
    "WITH cap AS (
        SELECT coalesce(sum(pending), 0)::bigint + cardinality($10::text[]) <= $4::bigint AS ok
        FROM segfn_counters WHERE tenant = $1::text
     ), src AS (
        SELECT nextval('segfn_jobs_id_seq') AS id, u.*
        FROM unnest($6::bytea[], $7::text[], $8::text[], $9::text[], $10::text[])
             WITH ORDINALITY AS u(key, message_id, event_type, settings, event, ord)
     ), k AS (
        INSERT INTO segfn_dedupe (key, tenant, at_ms)
        SELECT key, $1::text, $2::bigint FROM src WHERE key IS NOT NULL AND (SELECT ok FROM cap) ORDER BY key
        ON CONFLICT (key) DO UPDATE SET at_ms = excluded.at_ms, tenant = excluded.tenant
            WHERE segfn_dedupe.at_ms <= $3::bigint
        RETURNING key, (xmax = 0) AS inserted
     ), fresh AS (
        SELECT src.* FROM src
        WHERE (SELECT ok FROM cap) AND (src.key IS NULL OR src.key IN (SELECT key FROM k))
     ), ins AS (
        INSERT INTO segfn_jobs (id, tenant, message_id, event_type, enqueued_ms, window_start_ms, settings, event, due_ms)
        SELECT id, $1::text, message_id, event_type, $2::bigint, $2::bigint, settings, event, $2::bigint FROM fresh
     ), c AS (",
    add_counters!(
        "SELECT $1::text, $5::smallint, count(*), 0, 0, 0, 0, 0, 0 FROM fresh HAVING count(*) > 0"
    ),
    "), d AS (",
    add_dedupe_counts!(
        "SELECT $1::text, $5::smallint, count(*) FILTER (WHERE inserted) FROM k HAVING count(*) FILTER (WHERE inserted) > 0"
    ),
    ") SELECT src.id, src.id IN (SELECT id FROM fresh) AS queued, (SELECT ok FROM cap) AS ok,
        coalesce((SELECT sum(entries) FROM segfn_dedupe_counts WHERE tenant = $1::text), 0)::bigint
            + (SELECT count(*) FILTER (WHERE inserted) FROM k) AS entries
      FROM src ORDER BY src.ord"
);

/// $1 tenant, $2 now, $3 how many, $4 epoch, $5 lease until, $6 shard. A job whose
/// lease expired is taken over and counted as redelivered: its holder may have called
/// the partner before it died (or is still running past its lease; its report will be
/// refused).
const CLAIM: &str = concat!(
    "WITH c AS (
        SELECT id, lease_epoch IS NOT NULL AS stolen FROM segfn_jobs
        WHERE tenant = $1::text AND due_ms <= $2::bigint
            AND (lease_epoch IS NULL OR leased_until_ms <= $2::bigint)
        ORDER BY due_ms, id LIMIT $3::bigint FOR UPDATE SKIP LOCKED
     ), u AS (
        UPDATE segfn_jobs j SET lease_epoch = $4, lease_token = nextval('segfn_lease_tokens'),
            leased_until_ms = $5
        FROM c WHERE j.id = c.id
        RETURNING j.id, j.lease_token, j.tenant, j.message_id, j.event_type, j.enqueued_ms,
            j.window_start_ms, j.attempts, j.last, j.settings, j.event
     ), s AS (",
    add_counters!(
        "SELECT $1::text, $6::smallint, 0, 0, count(*) FILTER (WHERE NOT stolen), 0, 0, 0, count(*) FILTER (WHERE stolen)
         FROM c HAVING count(*) > 0"
    ),
    ") SELECT * FROM u"
);

/// The lease check of every report: $1 id, $2 epoch, $3 token.
macro_rules! held {
    () => {
        "id = $1 AND lease_epoch = $2 AND lease_token = $3"
    };
}

/// $4 now, $5 shard.
const RELEASE: &str = concat!(
    "WITH u AS (UPDATE segfn_jobs SET due_ms = $4, lease_epoch = NULL, lease_token = NULL,
        leased_until_ms = NULL WHERE ",
    held!(),
    " RETURNING tenant) ",
    add_counters!("SELECT tenant, $5::smallint, 0, 0, -1, 0, 0, 0, 0 FROM u")
);

/// $4 shard.
const COMPLETE: &str = concat!(
    "WITH d AS (DELETE FROM segfn_jobs WHERE ",
    held!(),
    " RETURNING tenant, attempts) ",
    add_counters!(
        "SELECT tenant, $4::smallint, -1, CASE WHEN attempts > 0 THEN -1 ELSE 0 END, -1, 0, 1, 1, 0 FROM d"
    )
);

/// $4 due, $5 the attempt (JSON), $6 shard.
const RESCHEDULE: &str = concat!(
    "WITH u AS (UPDATE segfn_jobs SET due_ms = $4, attempts = attempts + 1, last = $5,
        lease_epoch = NULL, lease_token = NULL, leased_until_ms = NULL WHERE ",
    held!(),
    " RETURNING tenant, attempts) ",
    add_counters!(
        "SELECT tenant, $6::smallint, 0, CASE WHEN attempts = 1 THEN 1 ELSE 0 END, -1, 0, 1, 0, 0 FROM u"
    )
);

/// $4 the attempt (JSON), $5 now, $6 the report (JSON), $7 shard.
const DEAD_LETTER: &str = concat!(
    "WITH d AS (DELETE FROM segfn_jobs WHERE ",
    held!(),
    " RETURNING *), x AS (
        INSERT INTO segfn_dead (id, tenant, message_id, event_type, enqueued_ms, window_start_ms,
            attempts, last, settings, event, dead_ms, report)
        SELECT id, tenant, message_id, event_type, enqueued_ms, window_start_ms, attempts + 1,
            $4::text, settings, event, $5::bigint, $6::text FROM d
     ) ",
    add_counters!(
        "SELECT tenant, $7::smallint, -1, CASE WHEN attempts > 0 THEN -1 ELSE 0 END, -1, 1, 1, 0, 0 FROM d"
    )
);

/// Due jobs not leased: the soonest per tenant (each from its index), then the least.
const NEXT_DUE: &str = "SELECT min(n.due_ms) FROM (SELECT DISTINCT tenant FROM segfn_counters) t
    CROSS JOIN LATERAL (SELECT due_ms FROM segfn_jobs j WHERE j.tenant = t.tenant
        AND j.lease_epoch IS NULL ORDER BY due_ms LIMIT 1) n";

/// The dead-letter filter: $1 tenant or NULL, $2 id or NULL.
macro_rules! dead_filter {
    () => {
        "($1::text IS NULL OR tenant = $1) AND ($2::bigint IS NULL OR id = $2)"
    };
}

const DEAD_LETTERS: &str = concat!(
    "SELECT id, tenant, message_id, event_type, enqueued_ms, window_start_ms, attempts, last,
        settings, event, dead_ms, report FROM segfn_dead WHERE ",
    dead_filter!(),
    " ORDER BY id LIMIT $3"
);

/// $3 now, $4 shard. The jobs keep their ids.
const RETRY_DEAD: &str = concat!(
    "WITH d AS (DELETE FROM segfn_dead WHERE ",
    dead_filter!(),
    " RETURNING *), j AS (
        INSERT INTO segfn_jobs (id, tenant, message_id, event_type, enqueued_ms, window_start_ms,
            attempts, last, settings, event, due_ms)
        SELECT id, tenant, message_id, event_type, enqueued_ms, $3::bigint, 0, last, settings,
            event, $3::bigint FROM d
     ), c AS (",
    add_counters!(
        "SELECT tenant, $4::smallint, count(*), 0, 0, -count(*), 0, 0, 0 FROM d GROUP BY tenant"
    ),
    ") SELECT count(*) FROM d"
);

/// $3 shard.
const PURGE_DEAD: &str = concat!(
    "WITH d AS (DELETE FROM segfn_dead WHERE ",
    dead_filter!(),
    " RETURNING tenant), c AS (",
    add_counters!(
        "SELECT tenant, $3::smallint, 0, 0, 0, -count(*), 0, 0, 0 FROM d GROUP BY tenant"
    ),
    ") SELECT count(*) FROM d"
);

const STATS: &str =
    "SELECT c.tenant, sum(pending)::bigint, sum(retrying)::bigint, sum(running)::bigint,
        sum(dead_letters)::bigint, sum(attempts)::bigint, sum(completed)::bigint,
        sum(redelivered)::bigint,
        (SELECT min(enqueued_ms) FROM segfn_jobs j WHERE j.tenant = c.tenant)
    FROM segfn_counters c GROUP BY c.tenant ORDER BY c.tenant";

/// $1 cutoff, $2 shard, $3 chunk: one chunk of expired entries.
const PURGE_EXPIRED: &str = concat!(
    "WITH d AS (DELETE FROM segfn_dedupe WHERE key IN (
        SELECT key FROM segfn_dedupe WHERE at_ms <= $1::bigint LIMIT $3::bigint) RETURNING tenant), c AS (",
    add_dedupe_counts!("SELECT tenant, $2::smallint, -count(*) FROM d GROUP BY tenant"),
    ") SELECT count(*) FROM d"
);

/// Tenants over the cap: $1 the cap.
const OVER_CAP: &str = "SELECT tenant, sum(entries)::bigint - $1::bigint FROM segfn_dedupe_counts
    GROUP BY tenant HAVING sum(entries) > $1::bigint";

/// $1 tenant, $2 how many (at most a chunk), $3 shard: the tenant's oldest entries.
const EVICT: &str = concat!(
    "WITH d AS (DELETE FROM segfn_dedupe WHERE key IN (
        SELECT key FROM segfn_dedupe WHERE tenant = $1::text ORDER BY at_ms LIMIT $2::bigint)
        RETURNING tenant), c AS (",
    add_dedupe_counts!("SELECT tenant, $3::smallint, -count(*) FROM d GROUP BY tenant"),
    ") SELECT count(*) FROM d"
);

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
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// A database error, with where it happened; never the connection string (it may
/// hold a password) nor parameters.
fn db_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("PostgreSQL, {what}: {e}"))
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
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError(format!(
                "the PostgreSQL connection string is not valid ({e}); expected \
                 postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            ))
        })?;
        let target = describe_url(&config);
        if config.get_ssl_mode() == SslMode::Require {
            return Err(StoreError(format!(
                "{target}: sslmode=require, but segfn connects to PostgreSQL without TLS \
                 for now; use a Unix socket, a private network, or a local TLS proxy"
            )));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("segfn");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| db_error(&target, e))?;
        let mut epoch = [0u8; 8];
        getrandom::fill(&mut epoch).map_err(|e| StoreError(e.to_string()))?;
        let store = PgStore {
            pool,
            epoch: i64::from_le_bytes(epoch) & i64::MAX,
            window,
            max_entries: max_entries.max(1),
            shard: std::sync::Arc::default(),
            target,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Where it connects (no credentials).
    pub fn target(&self) -> &str {
        &self.target
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

    /// Runs one statement; returns the rows it changed.
    async fn execute(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| db_error(what, e))?;
        client
            .execute(&statement, params)
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
        let mut firsts = HashSet::new();
        let repeats: Vec<bool> = jobs
            .iter()
            .map(|j| j.key.is_some_and(|k| !firsts.insert(k)))
            .collect();
        let sent: Vec<&NewJob> = jobs
            .iter()
            .zip(&repeats)
            .filter(|(_, repeat)| !**repeat)
            .map(|(j, _)| j)
            .collect();
        let keys: Vec<Option<&[u8]>> = sent
            .iter()
            .map(|j| j.key.as_ref().map(|k| &k.0[..]))
            .collect();
        let ids: Vec<&str> = sent.iter().map(|j| j.message_id.as_str()).collect();
        let types: Vec<&str> = sent.iter().map(|j| j.event_type.as_str()).collect();
        let settings: Vec<Option<&str>> = sent.iter().map(|j| j.settings.as_deref()).collect();
        let events: Vec<&str> = sent.iter().map(|j| j.event.as_str()).collect();
        let now = now_ms();
        let rows = self
            .query(
                "queueing a delivery",
                ENQUEUE,
                &[
                    &tenant,
                    &i64_of(now),
                    &self.window_start(now),
                    &i64_of(max_pending),
                    &self.shard(),
                    &keys,
                    &ids,
                    &types,
                    &settings,
                    &events,
                ],
            )
            .await?;
        if rows.first().is_some_and(|r| !r.get::<_, bool>("ok")) {
            return Ok((vec![Enqueued::Full; jobs.len()], Marked::default()));
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

    /// A report under `lease`: `sql` with the lease first, then `rest`.
    async fn report(
        &self,
        what: &str,
        sql: &str,
        lease: Lease,
        rest: &[&(dyn ToSql + Sync)],
    ) -> Result<bool, StoreError> {
        let (id, epoch, token) = (i64_of(lease.id), i64_of(lease.epoch), i64_of(lease.token));
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id, &epoch, &token];
        params.extend_from_slice(rest);
        Ok(self.execute(what, sql, &params).await? > 0)
    }

    async fn purge_now(&self) -> Result<usize, StoreError> {
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
    ) -> BoxFuture<'_, Result<HashSet<MessageKey>, StoreError>> {
        async move {
            if keys.is_empty() {
                return Ok(HashSet::new());
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
                    Some(MessageKey(key.try_into().ok()?))
                })
                .collect())
        }
        .boxed()
    }

    fn mark(
        &self,
        tenant: &str,
        keys: Vec<MessageKey>,
    ) -> BoxFuture<'_, Result<Marked, StoreError>> {
        let tenant = tenant.to_owned();
        async move {
            if keys.is_empty() {
                return Ok(Marked::default());
            }
            // Sorted: concurrent marks lock their keys in one order, so never deadlock.
            let mut bytes: Vec<&[u8]> = keys.iter().map(|k| &k.0[..]).collect();
            bytes.sort_unstable();
            bytes.dedup();
            let now = now_ms();
            let rows = self
                .query(
                    "recording messageIds",
                    MARK,
                    &[&bytes, &tenant, &i64_of(now), &self.shard()],
                )
                .await?;
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
            let (now, shard) = (i64_of(now_ms()), self.shard());
            self.report("giving back an event", RELEASE, lease, &[&now, &shard])
                .await
        }
        .boxed()
    }

    fn complete(&self, lease: Lease) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let shard = self.shard();
            self.report("recording an outcome", COMPLETE, lease, &[&shard])
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
            let (due, attempt, shard) = (i64_of(due_ms), json_text(&attempt)?, self.shard());
            self.report(
                "scheduling a retry",
                RESCHEDULE,
                lease,
                &[&due, &attempt, &shard],
            )
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
            let attempt = json_text(&attempt)?;
            let report = json_text(&report)?;
            let (now, shard) = (i64_of(now_ms()), self.shard());
            self.report(
                "dead-lettering an event",
                DEAD_LETTER,
                lease,
                &[&attempt, &now, &report, &shard],
            )
            .await
        }
        .boxed()
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        async move {
            let rows = self.query("reading the queue", NEXT_DUE, &[]).await?;
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
