//! A source's sender: the calls its webhooks made go to Segment batched across
//! webhooks, by one task per source. Batching is natural: whatever waits while a batch
//! is on its way goes together in the next one, so a lone webhook waits for nothing and
//! a busy source sends few, full batches.
//!
//! Two modes, as for destinations:
//! - direct: each webhook waits for Segment's acceptance of its calls (its 200 means
//!   Segment has them; on failure the sender is asked to retry);
//! - durable (`durable = true`): each webhook's calls are committed to the store's
//!   queue, under the tenant name `source:NAME`, before its 200; the task claims them
//!   (leases, as destination events are claimed), sends, and completes, retries on the
//!   server's schedule or dead-letters them. A crash between sending and completing
//!   sends them again; their `messageId`s let Segment drop the repeat.
//!
//! When Segment refuses a combined batch outright (a 4xx), each webhook's calls are sent
//! alone, so one webhook's bad calls cannot fail the others'.

use super::Source;
use super::parcel::{Parcel, Waiting};
use super::tracking::{self, SendError};
use crate::app::AppState;
use crate::retry::{Next, random_jitter};
use crate::store::{Attempt, Claimed, now_ms};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long sending one round to Segment may take.
pub const SEND_WITHIN: Duration = Duration::from_secs(10);
/// Webhooks whose calls go together at most (their events also stay within Segment's
/// 500 KB a batch: more is sent as several requests).
const MAX_GROUP: usize = 64;
/// The longest the durable sender sleeps without looking (due retries, leases).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// The tenant name a source's queued parcels are kept under.
pub fn queue_name(source: &str) -> String {
    format!("source:{source}")
}

/// Runs `source`'s sender until the server stops (durable) or its webhooks are gone
/// (direct).
pub async fn run(app: Arc<AppState>, source: Arc<Source>, stop: watch::Receiver<bool>) {
    if source.durable {
        durable(&app, &source, stop).await;
    } else if let Some(inbox) = source.take_inbox() {
        direct(&app, &source, inbox).await;
    }
}

/// The direct mode: takes what waits, sends it together, tells each webhook.
async fn direct(app: &AppState, source: &Source, mut inbox: mpsc::Receiver<Waiting>) {
    while let Some(first) = inbox.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match inbox.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (parcels, replies): (Vec<Parcel>, Vec<_>) = group.into_iter().unzip();
        let results = send(app, source, &parcels, Instant::now() + SEND_WITHIN).await;
        for (reply, result) in replies.into_iter().zip(results) {
            // A webhook whose client hung up no longer listens: its calls were sent anyway.
            let _ = reply.send(result);
        }
    }
}

/// Sends `parcels` together; when Segment refuses the whole, each alone. One result
/// per parcel.
async fn send(
    app: &AppState,
    source: &Source,
    parcels: &[Parcel],
    deadline: Instant,
) -> Vec<Result<(), SendError>> {
    let to = tracking::Destination {
        tracking_api: &source.tracking_api,
        objects_api: &source.objects_api,
        write_key: &source.write_key,
    };
    let all = |p: fn(&Parcel) -> &Vec<Value>| -> Vec<Value> {
        parcels.iter().flat_map(|x| p(x).iter().cloned()).collect()
    };
    let (events, objects) = (all(|p| &p.events), all(|p| &p.objects));
    let started = Instant::now();
    let sent = tracking::send(&app.segment_client, &to, &events, &objects, deadline).await;
    match sent {
        Ok(requests) => {
            tracing::info!(
                source = %source.name,
                webhooks = parcels.len(),
                events = events.len(),
                objects = objects.len(),
                requests,
                duration_ms = started.elapsed().as_millis() as u64,
                "sent to Segment"
            );
            app.metrics.source_sent(&source.name, events.len() as u64);
            parcels.iter().map(|_| Ok(())).collect()
        }
        Err(SendError::Refused { .. }) if parcels.len() > 1 => {
            let mut out = Vec::with_capacity(parcels.len());
            for parcel in parcels {
                let alone = Box::pin(send(app, source, std::slice::from_ref(parcel), deadline));
                out.extend(alone.await);
            }
            out
        }
        Err(e) => {
            // Segment's answer is quoted in it: redacted before it is logged.
            let message = source.redactor.redact(&e.to_string()).into_owned();
            tracing::warn!(source = %source.name, webhooks = parcels.len(), error = %message, "sending to Segment");
            parcels.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

/// The durable mode: claims queued parcels, sends them together, records each.
async fn durable(app: &AppState, source: &Source, mut stop: watch::Receiver<bool>) {
    let queue = queue_name(&source.name);
    let lease = SEND_WITHIN + app.lease_margin;
    loop {
        if *stop.borrow() {
            return;
        }
        let claimed = match app
            .store
            .claim(vec![(queue.clone(), MAX_GROUP)], lease)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::error!(source = %source.name, error = %e, "claiming queued webhook calls");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            let wait = match app.store.next_due(vec![queue.clone()]).await {
                Ok(Some(at)) => Duration::from_millis(at.saturating_sub(now_ms())).min(IDLE_POLL),
                _ => IDLE_POLL,
            };
            tokio::select! {
                _ = source.wake.notified() => {}
                _ = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
                _ = crate::listener::stopped(&mut stop) => return,
            }
            continue;
        }
        let mut parcels = Vec::with_capacity(claimed.len());
        let mut held = Vec::with_capacity(claimed.len());
        for c in claimed {
            match serde_json::from_str::<Parcel>(c.job.event.get()) {
                Ok(parcel) => {
                    parcels.push(parcel);
                    held.push(c);
                }
                Err(e) => {
                    let problem = SendError::Refused {
                        status: 0,
                        body: format!("the queued calls cannot be read: {e}"),
                    };
                    record(app, source, c, Err(problem)).await;
                }
            }
        }
        let results = send(app, source, &parcels, Instant::now() + SEND_WITHIN).await;
        // Recorded together: the embedded store groups concurrent writes into one commit.
        let records = held
            .into_iter()
            .zip(results)
            .map(|(c, result)| record(app, source, c, result));
        futures_util::future::join_all(records).await;
    }
}

/// Records how sending a queued parcel went: done, again later, or a dead letter.
async fn record(app: &AppState, source: &Source, claimed: Claimed, result: Result<(), SendError>) {
    let Claimed { lease, job } = claimed;
    let now = now_ms();
    let attempts = job.attempts + 1;
    let recorded = match result {
        Ok(()) => app.store.complete(lease).await,
        Err(e) => {
            let message = source.redactor.redact(&e.to_string()).into_owned();
            let attempt = |reason: &str| Attempt {
                at_ms: now,
                outcome: "not_sent".into(),
                message: Some(message.clone()),
                partner_status: match &e {
                    SendError::Refused { status, .. } if *status > 0 => Some(*status),
                    _ => None,
                },
                reason: reason.to_owned(),
            };
            let next = if e.retryable() {
                app.backoff
                    .next(attempts, job.window_start_ms, now, random_jitter())
            } else {
                Next::GiveUp
            };
            match next {
                Next::At(due) => {
                    app.store
                        .reschedule(lease, due, attempt("Segment did not accept them"))
                        .await
                }
                Next::GiveUp => {
                    let reason = if e.retryable() {
                        "Segment did not accept them; retries exhausted"
                    } else {
                        "Segment refused them"
                    };
                    tracing::warn!(source = %source.name, message_id = ?job.message_id, error = %message, "webhook calls dead-lettered");
                    let report = serde_json::json!({"outcome": "not_sent", "message": message});
                    app.store.dead_letter(lease, attempt(reason), report).await
                }
            }
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            source = %source.name,
            message_id = ?job.message_id,
            "a webhook's lease expired while it was sent; the next holder's record counts"
        ),
        Err(e) => tracing::error!(
            source = %source.name,
            message_id = ?job.message_id,
            error = %e,
            "recording a send; it is sent again when its lease expires"
        ),
    }
}
