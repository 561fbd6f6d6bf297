//! Group commits on PostgreSQL: the writes of concurrent deliveries and workers
//! (enqueue, mark, and the reports under a lease) are queued to a few writer tasks,
//! each of which runs whatever is waiting as one transaction, its statements
//! pipelined on one connection, and answers each once the transaction committed. On
//! the embedded store one fsync serves a whole group; here one WAL flush does, where
//! a transaction per write made every delivery wait for a flush of its own (measured:
//! the backends spent most of their time in `WALWrite`/`WALSync` waits).
//!
//! A group's statements add to one counter row per tenant (the writer's shard), so two
//! writers never lock the same counter rows in opposite orders. A group that fails
//! (a statement's error, a deadlock with another replica's group, a lost connection)
//! is rolled back and its writes are run again one by one, each in a transaction of
//! its own, so one bad write fails alone. Each statement is safe to run again after
//! an unknown commit: an enqueue finds its keys taken and answers duplicate (the
//! events are queued), a report finds its lease gone and answers `false`.

use super::{SHARDS, db_error};
use crate::serve::dedupe::StoreError;
use deadpool_postgres::Pool;
use deadpool_postgres::tokio_postgres::Row;
use deadpool_postgres::tokio_postgres::types::ToSql;
use std::sync::Arc;
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
pub(super) fn start(pool: Pool, target: String) -> mpsc::UnboundedSender<Write> {
    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Arc::new(Mutex::new(rx));
    for index in 0..WRITERS {
        let (pool, target, rx) = (pool.clone(), target.clone(), rx.clone());
        tokio::spawn(async move { run(index, &pool, &target, &rx).await });
    }
    tx
}

async fn run(
    index: usize,
    pool: &Pool,
    target: &str,
    queue: &Mutex<mpsc::UnboundedReceiver<Write>>,
) {
    // Each writer has its own shards: index, index + WRITERS, ... in turn.
    let shards = (SHARDS as usize / WRITERS).max(1);
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
        let shard = ((index + WRITERS * (turn % shards)) % SHARDS as usize) as i16;
        turn += 1;
        commit(pool, target, shard, group).await;
    }
}

/// Runs `group` as one transaction, or one by one when that fails; answers each.
async fn commit(pool: &Pool, target: &str, shard: i16, mut group: Vec<Write>) {
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
            Err(e) => tracing::debug!(
                error = %e,
                writes = group.len(),
                "a group of writes failed; running them one by one"
            ),
        }
    }
    for write in group {
        let result = alone(pool, target, &write).await;
        let _ = write.reply.send(result);
    }
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

async fn together(pool: &Pool, target: &str, group: &[Write]) -> Result<Vec<Vec<Row>>, StoreError> {
    let what = "committing a group of writes";
    let mut client = pool
        .get()
        .await
        .map_err(|e| db_error(&format!("connecting to {target}"), e))?;
    let txn = client.transaction().await.map_err(|e| db_error(what, e))?;
    let mut statements = Vec::with_capacity(group.len());
    for write in group {
        statements.push(
            txn.prepare_cached(write.sql)
                .await
                .map_err(|e| db_error(write.what, e))?,
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
    let rows = results
        .into_iter()
        .zip(group)
        .map(|(r, w)| r.map_err(|e| db_error(w.what, e)))
        .collect::<Result<Vec<_>, _>>()?;
    txn.commit().await.map_err(|e| db_error(what, e))?;
    Ok(rows)
}

async fn alone(pool: &Pool, target: &str, write: &Write) -> Result<Vec<Row>, StoreError> {
    let client = pool
        .get()
        .await
        .map_err(|e| db_error(&format!("connecting to {target}"), e))?;
    let statement = client
        .prepare_cached(write.sql)
        .await
        .map_err(|e| db_error(write.what, e))?;
    client
        .query(&statement, &refs(&write.params))
        .await
        .map_err(|e| db_error(write.what, e))
}
