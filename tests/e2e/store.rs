//! The store's contract, run against both engines: the embedded file and a real
//! PostgreSQL server. Then what only a shared store has to get right: two replicas
//! enqueueing the same `messageId` at once, claiming from one queue at once, and one
//! taking over another's expired lease.

use crate::pg::Postgres;
use segfn_sdk::abi::OutcomeKind;
use segfn_serve::store::{Attempt, DeadFilter, Enqueued, Lease, NewJob, TenantStats};
use segfn_serve::{MessageKey, PgStore, Store, StoreLocation};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

const WINDOW: Duration = Duration::from_secs(3600);
const LEASE: Duration = Duration::from_secs(60);

fn job(tenant: &str, id: &str) -> NewJob {
    NewJob {
        key: Some(MessageKey::new(tenant, id)),
        message_id: id.into(),
        event_type: "track".into(),
        event: format!(r#"{{"type":"track","messageId":"{id}","properties":{{"b":1,"a":2.50}}}}"#),
        settings: None,
    }
}

fn attempt(reason: &str) -> Attempt {
    Attempt {
        at_ms: 1,
        outcome: "retry".into(),
        message: Some("the partner answered 503".into()),
        partner_status: Some(503),
        reason: reason.into(),
    }
}

async fn stats(store: &dyn Store, tenant: &str) -> TenantStats {
    store
        .stats()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.tenant == tenant)
        .unwrap_or_default()
}

async fn open(location: &StoreLocation) -> Arc<dyn Store> {
    location
        .open(WINDOW, 1000, 4)
        .await
        .expect("opening the store")
}

/// What every engine must do, from one empty store.
async fn contract(store: &dyn Store) {
    // Enqueue: a messageId twice in one delivery is queued once; an event without
    // one is always queued; the window answers for what was queued.
    let mut no_id = job("acme", "x");
    no_id.key = None;
    let (queued, _) = store
        .enqueue(
            "acme",
            vec![job("acme", "m1"), job("acme", "m1"), no_id],
            100,
        )
        .await
        .unwrap();
    assert!(matches!(queued[0], Enqueued::Queued(_)), "{queued:?}");
    assert_eq!(queued[1], Enqueued::Duplicate);
    assert!(matches!(queued[2], Enqueued::Queued(_)));
    let (again, _) = store
        .enqueue("acme", vec![job("acme", "m1")], 100)
        .await
        .unwrap();
    assert_eq!(again, vec![Enqueued::Duplicate], "the window remembers m1");
    let seen = store
        .seen(vec![
            MessageKey::new("acme", "m1"),
            MessageKey::new("acme", "m2"),
        ])
        .await
        .unwrap();
    assert_eq!(
        seen,
        HashMap::from([(MessageKey::new("acme", "m1"), OutcomeKind::Success)]),
        "a queued event was accepted"
    );
    // Another tenant's m1 is another message.
    let (other, _) = store
        .enqueue("globex", vec![job("globex", "m1")], 100)
        .await
        .unwrap();
    assert!(matches!(other[0], Enqueued::Queued(_)));

    // Synchronous mode's record counts for enqueueing too.
    store
        .mark(
            "acme",
            vec![(MessageKey::new("acme", "sync-1"), OutcomeKind::Success)],
        )
        .await
        .unwrap();
    // It keeps each message's outcome: a repeat is answered with it.
    store
        .mark(
            "acme",
            vec![
                (
                    MessageKey::new("acme", "sync-2"),
                    OutcomeKind::MessageRejected,
                ),
                (MessageKey::new("acme", "sync-3"), OutcomeKind::Dropped),
            ],
        )
        .await
        .unwrap();
    let outcomes = store
        .seen(vec![
            MessageKey::new("acme", "sync-1"),
            MessageKey::new("acme", "sync-2"),
            MessageKey::new("acme", "sync-3"),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        HashMap::from([
            (MessageKey::new("acme", "sync-1"), OutcomeKind::Success),
            (
                MessageKey::new("acme", "sync-2"),
                OutcomeKind::MessageRejected
            ),
            (MessageKey::new("acme", "sync-3"), OutcomeKind::Dropped),
        ])
    );
    let (dup, _) = store
        .enqueue("acme", vec![job("acme", "sync-1")], 100)
        .await
        .unwrap();
    assert_eq!(dup, vec![Enqueued::Duplicate]);

    // The cap: a delivery that would exceed it is refused whole, its ids unrecorded.
    let (full, _) = store
        .enqueue("acme", vec![job("acme", "c1"), job("acme", "c2")], 3)
        .await
        .unwrap();
    assert_eq!(full, vec![Enqueued::Full, Enqueued::Full]);
    assert!(
        store
            .seen(vec![MessageKey::new("acme", "c1")])
            .await
            .unwrap()
            .is_empty(),
        "a refused delivery records no messageId"
    );
    let s = stats(store, "acme").await;
    assert_eq!((s.pending, s.running, s.completed), (2, 0, 0), "{s:?}");
    assert!(s.oldest_pending_ms.is_some());

    // Claims: per tenant, at most n, each with a lease; the event's text as sent.
    let claimed = store
        .claim(vec![("acme".into(), 1), ("globex".into(), 5)], LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    let first = claimed.iter().find(|c| c.job.tenant == "acme").unwrap();
    assert_eq!(first.job.message_id, "m1");
    assert_eq!(
        first.job.event.get(),
        r#"{"type":"track","messageId":"m1","properties":{"b":1,"a":2.50}}"#,
        "the event comes back byte for byte"
    );
    assert_eq!(stats(store, "acme").await.running, 1);

    // Complete: once; a second report with the same lease is refused.
    assert!(store.complete(first.lease).await.unwrap());
    assert!(!store.complete(first.lease).await.unwrap());
    let forged = Lease {
        token: first.lease.token + 1_000_000,
        ..first.lease
    };
    assert!(
        !store.complete(forged).await.unwrap(),
        "a forged lease is refused"
    );

    // Release: back at once, no attempt counted.
    let next = store.claim(vec![("acme".into(), 5)], LEASE).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(store.release(next[0].lease).await.unwrap());
    let next = store.claim(vec![("acme".into(), 5)], LEASE).await.unwrap();
    assert_eq!(next.len(), 1, "a released event is claimable at once");
    assert_eq!(next[0].job.attempts, 0);

    // Reschedule: not due until its time; then again, with the attempt recorded.
    let due = segfn_now() + 300;
    assert!(
        store
            .reschedule(next[0].lease, due, attempt("503 from the partner"))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim(vec![("acme".into(), 5)], LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_due(vec!["acme".into()]).await.unwrap(),
        Some(due)
    );
    assert_eq!(
        store.next_due(vec!["other".into()]).await.unwrap(),
        None,
        "another tenant's due job does not wake a sender that cannot claim it"
    );
    let s = stats(store, "acme").await;
    assert_eq!(
        (s.pending, s.retrying, s.running, s.attempts),
        (1, 1, 0, 2),
        "{s:?}"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let retry = store.claim(vec![("acme".into(), 5)], LEASE).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].job.attempts, 1);
    assert_eq!(
        retry[0].job.last.as_ref().map(|a| a.reason.as_str()),
        Some("503 from the partner")
    );

    // Dead letter: with its report; listed, retried with a fresh budget, purged.
    let report = json!({"outcome": {"kind": "retry"}, "logs": ["a", "b"]});
    assert!(
        store
            .dead_letter(retry[0].lease, attempt("exhausted"), report.clone())
            .await
            .unwrap()
    );
    let s = stats(store, "acme").await;
    assert_eq!(
        (s.pending, s.retrying, s.running, s.dead_letters),
        (0, 0, 0, 1),
        "{s:?}"
    );
    let letters = store.dead_letters(DeadFilter::default(), 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].report, report);
    assert_eq!(letters[0].job.attempts, 2);
    assert_eq!(letters[0].job.tenant, "acme");
    let only_globex = DeadFilter {
        tenant: Some("globex".into()),
        id: None,
    };
    assert!(
        store
            .dead_letters(only_globex.clone(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.retry_dead(only_globex).await.unwrap(), 0);
    let this_one = DeadFilter {
        tenant: None,
        id: Some(letters[0].id),
    };
    assert_eq!(store.retry_dead(this_one.clone()).await.unwrap(), 1);
    let back = store.claim(vec![("acme".into(), 5)], LEASE).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        back[0].lease.id, letters[0].id,
        "a retried letter keeps its id"
    );
    assert_eq!(back[0].job.attempts, 0, "a fresh retry budget");
    assert!(
        store
            .dead_letter(back[0].lease, attempt("again"), json!(null))
            .await
            .unwrap()
    );
    assert_eq!(store.purge_dead(this_one).await.unwrap(), 1);
    let s = stats(store, "acme").await;
    assert_eq!((s.pending, s.dead_letters), (0, 0), "{s:?}");
    assert_eq!(s.completed, 1);

    // The dead-letter list is bounded per tenant: the oldest beyond the cap go.
    for (tenant, n) in [("acme", 5), ("globex", 2)] {
        let jobs = (0..n)
            .map(|i| job(tenant, &format!("dl-{tenant}-{i}")))
            .collect();
        store.enqueue(tenant, jobs, u64::MAX).await.unwrap();
        for c in store.claim(vec![(tenant.into(), 10)], LEASE).await.unwrap() {
            assert!(
                store
                    .dead_letter(c.lease, attempt("exhausted"), json!(null))
                    .await
                    .unwrap()
            );
        }
    }
    assert_eq!(stats(store, "acme").await.dead_letters, 5);
    assert_eq!(store.trim_dead(10).await.unwrap(), vec![]);
    assert_eq!(
        store.trim_dead(3).await.unwrap(),
        vec![("acme".to_owned(), 2)],
        "only the tenant over the cap loses letters"
    );
    let acme = DeadFilter {
        tenant: Some("acme".into()),
        id: None,
    };
    let kept: Vec<String> = store
        .dead_letters(acme.clone(), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.job.message_id)
        .collect();
    assert_eq!(
        kept,
        ["dl-acme-2", "dl-acme-3", "dl-acme-4"],
        "the newest stay"
    );
    assert_eq!(stats(store, "acme").await.dead_letters, 3);
    assert_eq!(stats(store, "globex").await.dead_letters, 2);
    assert_eq!(store.purge_dead(DeadFilter::default()).await.unwrap(), 5);

    // Purging the window keeps what is inside it.
    store.purge_expired().await.unwrap();
    assert_eq!(
        store
            .seen(vec![MessageKey::new("acme", "m1")])
            .await
            .unwrap()
            .len(),
        1
    );
}

fn segfn_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn the_embedded_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&StoreLocation::File(dir.path().join("store.redb"))).await;
    contract(store.as_ref()).await;
}

#[tokio::test]
async fn postgres_keeps_the_contract_and_migrates_once() {
    let Some(pg) = Postgres::start() else { return };
    let location = StoreLocation::parse(&pg.url).unwrap();
    // Two replicas starting together: one creates the schema, the other finds it.
    let (a, b) = tokio::join!(open(&location), open(&location));
    contract(a.as_ref()).await;
    // The second replica sees the first's work.
    let s = stats(b.as_ref(), "acme").await;
    assert_eq!(s.completed, 1, "{s:?}");
    drop((a, b));
    // Reopened, through the Unix socket this time: the schema is there; nothing is lost.
    let c = open(&StoreLocation::parse(&pg.socket_url()).unwrap()).await;
    assert_eq!(stats(c.as_ref(), "acme").await.completed, 1);
}

#[tokio::test]
async fn postgres_replicas_share_one_window_and_one_queue() {
    let Some(pg) = Postgres::start() else { return };
    let location = StoreLocation::parse(&pg.url).unwrap();
    let (a, b) = tokio::join!(open(&location), open(&location));

    // The same messageIds delivered to both replicas at once: each queued once.
    let ids: Vec<String> = (0..200).map(|i| format!("race-{i}")).collect();
    let send = |store: Arc<dyn Store>| {
        let ids = ids.clone();
        tokio::spawn(async move {
            let mut queued = HashSet::new();
            for chunk in ids.chunks(4) {
                let jobs = chunk.iter().map(|id| job("acme", id)).collect();
                let (out, _) = store.enqueue("acme", jobs, 10_000).await.unwrap();
                for (id, e) in chunk.iter().zip(out) {
                    if matches!(e, Enqueued::Queued(_)) {
                        queued.insert(id.clone());
                    }
                }
            }
            queued
        })
    };
    let (qa, qb) = tokio::join!(send(a.clone()), send(b.clone()));
    let (qa, qb) = (qa.unwrap(), qb.unwrap());
    assert!(qa.is_disjoint(&qb), "an id queued by both replicas");
    assert_eq!(qa.len() + qb.len(), ids.len(), "every id queued once");
    assert_eq!(stats(a.as_ref(), "acme").await.pending, ids.len() as u64);

    // Both claim at once, in small bites: no event is claimed twice.
    let drain = |store: Arc<dyn Store>| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim(vec![("acme".into(), 7)], LEASE).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                for c in claimed {
                    assert!(store.complete(c.lease).await.unwrap());
                    mine.push(c.job.message_id);
                }
            }
        })
    };
    let (da, db) = tokio::join!(drain(a.clone()), drain(b.clone()));
    let (da, db) = (da.unwrap(), db.unwrap());
    let all: HashSet<&String> = da.iter().chain(&db).collect();
    assert_eq!(da.len() + db.len(), ids.len(), "each event claimed once");
    assert_eq!(all.len(), ids.len());
    let s = stats(b.as_ref(), "acme").await;
    assert_eq!(
        (s.pending, s.running, s.completed),
        (0, 0, ids.len() as u64),
        "{s:?}"
    );
}

#[tokio::test]
async fn postgres_an_expired_lease_is_taken_over_and_counted() {
    let Some(pg) = Postgres::start() else { return };
    let location = StoreLocation::parse(&pg.url).unwrap();
    let (a, b) = tokio::join!(open(&location), open(&location));
    store_one(a.as_ref(), "lease-1").await;
    let held = a
        .claim(vec![("acme".into(), 1)], Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    // While the lease holds, the other replica gets nothing.
    assert!(
        b.claim(vec![("acme".into(), 1)], LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Expired (its replica died, or outlived it): the other replica takes it over.
    let taken = b.claim(vec![("acme".into(), 1)], LEASE).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].job.message_id, "lease-1");
    assert_ne!(taken[0].lease, held[0].lease);
    let s = stats(a.as_ref(), "acme").await;
    assert_eq!((s.redelivered, s.running), (1, 1), "{s:?}");
    // The first holder's late report is refused; the new holder's counts.
    assert!(!a.complete(held[0].lease).await.unwrap());
    assert!(
        !a.reschedule(held[0].lease, 0, attempt("late"))
            .await
            .unwrap(),
        "a lost lease cannot reschedule"
    );
    assert!(b.complete(taken[0].lease).await.unwrap());
    let s = stats(a.as_ref(), "acme").await;
    assert_eq!((s.pending, s.running, s.completed), (0, 0, 1), "{s:?}");
}

async fn store_one(store: &dyn Store, id: &str) {
    let (out, _) = store
        .enqueue("acme", vec![job("acme", id)], 100)
        .await
        .unwrap();
    assert!(matches!(out[0], Enqueued::Queued(_)));
}

#[tokio::test]
async fn postgres_errors_name_the_problem_without_the_password() {
    // Nothing listens on port 1 of 127.0.0.1: the connection is refused at once.
    // Any case of the scheme, and the key=value form, are connection strings; an
    // unknown scheme is refused without being repeated (it may hold a password).
    assert!(matches!(
        StoreLocation::parse("POSTGRES://u:hunter2@h/db"),
        Ok(StoreLocation::Postgres(_))
    ));
    assert!(matches!(
        StoreLocation::parse("host=127.0.0.1 password=hunter2 dbname=db"),
        Ok(StoreLocation::Postgres(_))
    ));
    let typo = StoreLocation::parse("postgress://u:hunter2@h/db").unwrap_err();
    assert!(
        typo.contains("postgress://") && !typo.contains("hunter2"),
        "{typo}"
    );
    assert!(matches!(
        StoreLocation::parse("data/segfn-store.redb"),
        Ok(StoreLocation::File(_))
    ));
    let location = StoreLocation::parse("postgres://segfn:hunter2-secret@127.0.0.1:1/db").unwrap();
    assert_eq!(format!("{location:?}"), "postgres://127.0.0.1:1/db");
    let err = location
        .open(WINDOW, 1000, 1)
        .await
        .expect_err("nothing listens there")
        .to_string();
    assert!(err.contains("127.0.0.1:1/db"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // TLS settings are read (not refused): a missing CA file is named, the password not.
    let missing_ca = StoreLocation::parse(
        "postgres://a:hunter2@127.0.0.1:1/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    )
    .unwrap();
    assert_eq!(format!("{missing_ca:?}"), "postgres://127.0.0.1:1/db");
    let err = missing_ca
        .open(WINDOW, 1000, 1)
        .await
        .expect_err("no CA file")
        .to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn postgres_one_bad_write_fails_alone_in_its_group() {
    let Some(pg) = Postgres::start() else { return };
    let pg_store = Arc::new(PgStore::connect(&pg.url, 4, WINDOW, 1000).await.unwrap());
    let store: Arc<dyn Store> = pg_store.clone();
    // PostgreSQL's text refuses a NUL character: this write's statement fails. The
    // writes sent with it share its group transaction, which is rolled back and run
    // again one by one: they succeed, it alone fails.
    let mut bad = job("acme", "bad");
    bad.event = "{\"type\":\"track\",\"x\":\"\0\"}".into();
    let writes = (0..40).map(|i| {
        let store = store.clone();
        let job = if i == 20 {
            bad.clone()
        } else {
            job("acme", &format!("good-{i}"))
        };
        async move { store.enqueue("acme", vec![job], 1000).await }
    });
    let results = futures_util::future::join_all(writes).await;
    for (i, result) in results.iter().enumerate() {
        if i == 20 {
            let err = result.as_ref().expect_err("the NUL is refused").to_string();
            assert!(err.contains("queueing a delivery"), "{err}");
            assert!(err.contains("0x00"), "the database says why: {err}");
        } else {
            let (out, _) = result.as_ref().expect("a good write succeeds");
            assert!(matches!(out[0], Enqueued::Queued(_)), "{i}: {out:?}");
        }
    }
    assert_eq!(stats(store.as_ref(), "acme").await.pending, 39);
    assert!(
        pg_store.regrouped() >= 1,
        "the writes were grouped, and the group was run again write by write"
    );
    assert!(
        store
            .seen(vec![MessageKey::new("acme", "bad")])
            .await
            .unwrap()
            .is_empty(),
        "the failed write left nothing behind"
    );
}

/// TLS to PostgreSQL, against a cluster that takes TCP connections over TLS only, its
/// certificate self-signed for `db.internal`: `verify-full` checks the name (127.0.0.1
/// is not it), `verify-ca` the chain alone, `require` encrypts without checking; a
/// plain connection and another CA are refused, each with a message saying why.
#[tokio::test]
async fn postgres_over_tls_verifies_as_sslmode_says() {
    let cert = rcgen::generate_simple_self_signed(vec!["db.internal".into()]).unwrap();
    let Some(pg) = Postgres::start_tls(&cert.cert.pem(), &cert.signing_key.serialize_pem()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["db.internal".into()]).unwrap();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, other.cert.pem()).unwrap();
    let with = |query: String| StoreLocation::parse(&format!("{}?{query}", pg.url)).unwrap();
    let attempt = |location: StoreLocation| async move {
        location
            .open(Duration::from_secs(60), 1000, 2)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };

    // Over TLS, the chain checked: the store works.
    let ca_query = format!("sslmode=verify-ca&sslrootcert={}", ca.display());
    let store = open(&with(ca_query)).await;
    contract(store.as_ref()).await;
    attempt(with("sslmode=require".into()))
        .await
        .expect("require: encrypted");

    // verify-full: the certificate names db.internal, not 127.0.0.1.
    let full = attempt(with(format!(
        "sslmode=verify-full&sslrootcert={}",
        ca.display()
    )))
    .await;
    assert!(
        full.as_ref().is_err_and(|e| e.contains("certificate")),
        "{full:?}"
    );
    // Another CA: refused.
    let wrong = attempt(with(format!(
        "sslmode=verify-ca&sslrootcert={}",
        other_ca.display()
    )))
    .await;
    assert!(
        wrong.as_ref().is_err_and(|e| e.contains("certificate")),
        "{wrong:?}"
    );
    // Without TLS: the server refuses it (hostssl only).
    let plain = attempt(StoreLocation::parse(&pg.url).unwrap()).await;
    assert!(plain.is_err(), "a plain connection got through");
}
