//! Group commits on PostgreSQL: the writes of concurrent deliveries and workers
//! (enqueue, mark, and the reports under a lease) are queued to a few writer tasks,
//! each of which runs whatever is waiting as one transaction, its statements
//! pipelined on one connection, and answers each once the transaction committed. On
//! the embedded store one fsync serves a whole group; here one WAL flush does, where
//! a transaction per write made every delivery wait for a flush of its own (measured:
//! the backends spent most of their time in `WALWrite`/`WALSync` waits).
//!
//! A group's statements add to one counter row per tenant (the writer's shard), so two
//! writers of one process never lock the same counter rows; another replica's writer
//! can (shards are offset by each process's epoch, so seldom), and then PostgreSQL
//! breaks the deadlock by failing one group. A group whose statement the database
//! refused (a bad write, such a deadlock) is rolled back and its writes run again one
//! by one, so one bad write fails alone; a group whose commit's outcome is unknown (a
//! broken connection) fails as a whole, since running its writes again could queue an
//! event without a `messageId` twice.

use super::{SHARDS, db_error};
use crate::store::StoreError;
use deadpool_postgres::Pool;
use deadpool_postgres::tokio_postgres::error::SqlState;
use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::tokio_postgres::{self, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Writer tasks per process: groups in flight at once.
pub(super) const WRITERS: usize = 4;
/// Most writes in one transaction.
const MAX_GROUP: usize = 256;

/// An owned statement parameter.
pub(super) type Param = Box<dyn ToSql + Send + Sync>;

/// One write: a statement of `sql.rs`, its parameters, and which of them is the
/// counter shard (the writer sets it).
pub(super) struct Write {
    pub what: &'static str,
    pub sql: &'static str,
    pub params: Vec<Param>,
    pub shard_param: usize,
    pub reply: oneshot::Sender<Result<Vec<Row>, StoreError>>,
}

/// Starts the writers; they stop when every sender is gone.
/// `seed` (the process's epoch) offsets the writers' shards, so that replicas' writers
/// seldom share counter rows.
/// `regrouped` counts the groups run again write by write.
pub(super) fn start(
    pool: Pool,
    target: String,
    seed: u64,
    regrouped: Arc<AtomicU64>,
) -> mpsc::UnboundedSender<Write> {
    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Arc::new(Mutex::new(rx));
    for index in 0..WRITERS {
        let (pool, target, rx, regrouped) =
            (pool.clone(), target.clone(), rx.clone(), regrouped.clone());
        tokio::spawn(async move { run(index, seed, &pool, &target, &rx, &regrouped).await });
    }
    tx
}

async fn run(
    index: usize,
    seed: u64,
    pool: &Pool,
    target: &str,
    queue: &Mutex<mpsc::UnboundedReceiver<Write>>,
    regrouped: &AtomicU64,
) {
    // Each writer has its own shards: index, index + WRITERS, ... in turn (offset by
    // the seed), so two writers of this process never share a counter row.
    let shards = (SHARDS as usize / WRITERS).max(1);
    let offset = (seed % SHARDS) as usize / WRITERS * WRITERS;
    let mut turn = 0;
    loop {
        let group = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(write) => group.push(write),
                    Err(_) => break,
                }
            }
            group
        };
        let shard = ((offset + index + WRITERS * (turn % shards)) % SHARDS as usize) as i16;
        turn += 1;
        commit(pool, target, shard, group, regrouped).await;
    }
}

/// Runs `group` as one transaction; answers each. When a statement failed (the
/// database refused it, so the transaction certainly rolled back), the writes run
/// again one by one, so the bad one fails alone. When the commit's outcome is unknown
/// (the connection broke) or no connection could be had, every write of the group
/// gets the error at once: running them again could queue an event without a
/// `messageId` twice, and waiting for a dead database write after write would hold
/// the deliveries for minutes.
async fn commit(
    pool: &Pool,
    target: &str,
    shard: i16,
    mut group: Vec<Write>,
    regrouped: &AtomicU64,
) {
    for write in &mut group {
        write.params[write.shard_param] = Box::new(shard);
    }
    if group.len() > 1 {
        match together(pool, target, &group).await {
            Ok(results) => {
                for (write, rows) in group.into_iter().zip(results) {
                    let _ = write.reply.send(Ok(rows));
                }
                return;
            }
            Err(Failed::Refused(e)) => {
                regrouped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    error = %e,
                    writes = group.len(),
                    "a statement of a group was refused; running the writes one by one"
                );
            }
            Err(Failed::Unknown(e)) => {
                for write in group {
                    let _ = write.reply.send(Err(StoreError(e.0.clone())));
                }
                return;
            }
        }
    }
    for write in group {
        let result = alone(pool, target, &write).await;
        let _ = write.reply.send(result);
    }
}

/// Why a group did not commit.
enum Failed {
    /// The database refused a statement: nothing of the group is committed.
    Refused(StoreError),
    /// No connection, or the connection broke: the outcome may be unknown.
    Unknown(StoreError),
}

/// Whether PostgreSQL answered with an error (rather than the connection failing).
fn refused(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some()
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

async fn together(pool: &Pool, target: &str, group: &[Write]) -> Result<Vec<Vec<Row>>, Failed> {
    let what = "committing a group of writes";
    let statement_error = |what: &str, e: tokio_postgres::Error| {
        if refused(&e) {
            Failed::Refused(db_error(what, e))
        } else {
            Failed::Unknown(db_error(what, e))
        }
    };
    let mut client = pool
        .get()
        .await
        .map_err(|e| Failed::Unknown(db_error(&format!("connecting to {target}"), e)))?;
    let txn = client
        .transaction()
        .await
        .map_err(|e| Failed::Unknown(db_error(what, e)))?;
    let mut statements = Vec::with_capacity(group.len());
    for write in group {
        statements.push(
            txn.prepare_cached(write.sql)
                .await
                .map_err(|e| statement_error(write.what, e))?,
        );
    }
    let params: Vec<Vec<&(dyn ToSql + Sync)>> = group.iter().map(|w| refs(&w.params)).collect();
    // Sent together, run in order: one round trip for the group.
    let results = futures_util::future::join_all(
        statements
            .iter()
            .zip(&params)
            .map(|(statement, params)| txn.query(statement, params)),
    )
    .await;
    let mut rows = Vec::with_capacity(group.len());
    let mut failure = None;
    for (result, write) in results.into_iter().zip(group) {
        match result {
            Ok(r) => rows.push(r),
            // The first error is the cause; the later ones say "transaction aborted".
            Err(e) => {
                failure.get_or_insert_with(|| statement_error(write.what, e));
            }
        }
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    // A failed COMMIT is an unknown outcome, whatever it says.
    txn.commit()
        .await
        .map_err(|e| Failed::Unknown(db_error(what, e)))?;
    Ok(rows)
}

/// One write in a transaction of its own; a deadlock with another replica's group
/// (which PostgreSQL breaks by failing one side) is tried again a few times.
async fn alone(pool: &Pool, target: &str, write: &Write) -> Result<Vec<Row>, StoreError> {
    let client = pool
        .get()
        .await
        .map_err(|e| db_error(&format!("connecting to {target}"), e))?;
    let statement = client
        .prepare_cached(write.sql)
        .await
        .map_err(|e| db_error(write.what, e))?;
    let mut tries = 0;
    loop {
        match client.query(&statement, &refs(&write.params)).await {
            Err(e)
                if tries < 3
                    && e.code().is_some_and(|c| {
                        *c == SqlState::T_R_DEADLOCK_DETECTED
                            || *c == SqlState::T_R_SERIALIZATION_FAILURE
                    }) =>
            {
                tries += 1;
            }
            result => return result.map_err(|e| db_error(write.what, e)),
        }
    }
}
