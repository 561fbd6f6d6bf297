//! The SQL of the PostgreSQL store: the schema's migrations and one statement per
//! operation (data-modifying CTEs, so each is one transaction and one round trip).
//! Parameters are cast where PostgreSQL could not infer their types.

/// Counter rows per tenant (see the module's note in `mod.rs`).
pub(super) const SHARDS: u64 = 16;
/// Rows removed per purge statement, so no purge holds locks for long.
pub(super) const PURGE_CHUNK: i64 = 5000;

/// The schema, one migration per entry, applied in order under an advisory lock.
/// Entries are never edited once released: a change is a new entry.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 2: the outcome a messageId was processed with, when not success (NULL), which a
    // repeat is answered with (store/mod.rs `outcome_code`).
    "ALTER TABLE segfn_dedupe ADD COLUMN outcome smallint;",
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

pub(super) const SEEN: &str =
    "SELECT key, outcome FROM segfn_dedupe WHERE key = ANY($1::bytea[]) AND at_ms > $2::bigint";

/// $1 keys (sorted, distinct), $2 tenant, $3 now, $4 shard, $5 their outcomes' codes
/// (NULL for success). Returns the tenant's entries.
pub(super) const MARK: &str = concat!(
    "WITH k AS (
        INSERT INTO segfn_dedupe (key, tenant, at_ms, outcome)
        SELECT k, $2::text, $3::bigint, o FROM unnest($1::bytea[], $5::smallint[]) AS u (k, o)
        ON CONFLICT (key) DO UPDATE SET at_ms = excluded.at_ms, tenant = excluded.tenant, outcome = excluded.outcome
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
pub(super) const ENQUEUE: &str = concat!(
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
        ON CONFLICT (key) DO UPDATE SET at_ms = excluded.at_ms, tenant = excluded.tenant, outcome = NULL
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
pub(super) const CLAIM: &str = concat!(
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
pub(super) const RELEASE: &str = concat!(
    "WITH u AS (UPDATE segfn_jobs SET due_ms = $4, lease_epoch = NULL, lease_token = NULL,
        leased_until_ms = NULL WHERE ",
    held!(),
    " RETURNING tenant) ",
    add_counters!("SELECT tenant, $5::smallint, 0, 0, -1, 0, 0, 0, 0 FROM u"),
    " RETURNING 1"
);

/// $4 shard.
pub(super) const COMPLETE: &str = concat!(
    "WITH d AS (DELETE FROM segfn_jobs WHERE ",
    held!(),
    " RETURNING tenant, attempts) ",
    add_counters!(
        "SELECT tenant, $4::smallint, -1, CASE WHEN attempts > 0 THEN -1 ELSE 0 END, -1, 0, 1, 1, 0 FROM d"
    ),
    " RETURNING 1"
);

/// $4 due, $5 the attempt (JSON), $6 shard.
pub(super) const RESCHEDULE: &str = concat!(
    "WITH u AS (UPDATE segfn_jobs SET due_ms = $4, attempts = attempts + 1, last = $5,
        lease_epoch = NULL, lease_token = NULL, leased_until_ms = NULL WHERE ",
    held!(),
    " RETURNING tenant, attempts) ",
    add_counters!(
        "SELECT tenant, $6::smallint, 0, CASE WHEN attempts = 1 THEN 1 ELSE 0 END, -1, 0, 1, 0, 0 FROM u"
    ),
    " RETURNING 1"
);

/// $4 the attempt (JSON), $5 now, $6 the report (JSON), $7 shard.
pub(super) const DEAD_LETTER: &str = concat!(
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
    ),
    " RETURNING 1"
);

/// Due jobs not leased: the soonest per tenant (each from its index), then the least.
pub(super) const NEXT_DUE: &str = "SELECT min(n.due_ms) FROM unnest($1::text[]) t(tenant)
    CROSS JOIN LATERAL (SELECT due_ms FROM segfn_jobs j WHERE j.tenant = t.tenant
        AND j.lease_epoch IS NULL ORDER BY due_ms LIMIT 1) n";

/// The dead-letter filter: $1 tenant or NULL, $2 id or NULL.
macro_rules! dead_filter {
    () => {
        "($1::text IS NULL OR tenant = $1) AND ($2::bigint IS NULL OR id = $2)"
    };
}

pub(super) const DEAD_LETTERS: &str = concat!(
    "SELECT id, tenant, message_id, event_type, enqueued_ms, window_start_ms, attempts, last,
        settings, event, dead_ms, report FROM segfn_dead WHERE ",
    dead_filter!(),
    " ORDER BY id LIMIT $3"
);

/// $3 now, $4 shard. The jobs keep their ids.
pub(super) const RETRY_DEAD: &str = concat!(
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
pub(super) const PURGE_DEAD: &str = concat!(
    "WITH d AS (DELETE FROM segfn_dead WHERE ",
    dead_filter!(),
    " RETURNING tenant), c AS (",
    add_counters!(
        "SELECT tenant, $3::smallint, 0, 0, 0, -count(*), 0, 0, 0 FROM d GROUP BY tenant"
    ),
    ") SELECT count(*) FROM d"
);

/// $1 letters kept per tenant, $2 shard: each tenant's oldest beyond them deleted.
pub(super) const TRIM_DEAD: &str = concat!(
    "WITH over AS (
        SELECT tenant, sum(dead_letters) - $1::bigint AS extra FROM segfn_counters
        GROUP BY tenant HAVING sum(dead_letters) > $1::bigint
     ), victims AS (
        SELECT v.id FROM over CROSS JOIN LATERAL (
            SELECT id FROM segfn_dead WHERE tenant = over.tenant ORDER BY id LIMIT over.extra
        ) v
     ), d AS (DELETE FROM segfn_dead WHERE id IN (SELECT id FROM victims) RETURNING tenant),
     c AS (",
    add_counters!(
        "SELECT tenant, $2::smallint, 0, 0, 0, -count(*), 0, 0, 0 FROM d GROUP BY tenant"
    ),
    ") SELECT tenant, count(*)::bigint FROM d GROUP BY tenant ORDER BY tenant"
);

pub(super) const STATS: &str =
    "SELECT c.tenant, sum(pending)::bigint, sum(retrying)::bigint, sum(running)::bigint,
        sum(dead_letters)::bigint, sum(attempts)::bigint, sum(completed)::bigint,
        sum(redelivered)::bigint,
        (SELECT min(enqueued_ms) FROM segfn_jobs j WHERE j.tenant = c.tenant)
    FROM segfn_counters c GROUP BY c.tenant ORDER BY c.tenant";

/// $1 cutoff, $2 shard, $3 chunk: one chunk of expired entries. The cutoff is checked
/// again on the row deleted (and rows being written are skipped): an entry that an
/// enqueue refreshed meanwhile stays.
pub(super) const PURGE_EXPIRED: &str = concat!(
    "WITH d AS (DELETE FROM segfn_dedupe WHERE key IN (
        SELECT key FROM segfn_dedupe WHERE at_ms <= $1::bigint LIMIT $3::bigint FOR UPDATE SKIP LOCKED)
        AND at_ms <= $1::bigint RETURNING tenant), c AS (",
    add_dedupe_counts!("SELECT tenant, $2::smallint, -count(*) FROM d GROUP BY tenant"),
    ") SELECT count(*) FROM d"
);

/// Tenants over the cap: $1 the cap.
pub(super) const OVER_CAP: &str =
    "SELECT tenant, sum(entries)::bigint - $1::bigint FROM segfn_dedupe_counts
    GROUP BY tenant HAVING sum(entries) > $1::bigint";

/// $1 tenant, $2 how many (at most a chunk), $3 shard: the tenant's oldest entries.
pub(super) const EVICT: &str = concat!(
    "WITH d AS (DELETE FROM segfn_dedupe WHERE key IN (
        SELECT key FROM segfn_dedupe WHERE tenant = $1::text ORDER BY at_ms LIMIT $2::bigint
        FOR UPDATE SKIP LOCKED)
        RETURNING tenant), c AS (",
    add_dedupe_counts!("SELECT tenant, $3::smallint, -count(*) FROM d GROUP BY tenant"),
    ") SELECT count(*) FROM d"
);
