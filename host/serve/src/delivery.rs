//! One accepted delivery: plan each message, claim the ones to run, skip what was
//! already processed, run the function on the rest within Segment's 5 s, record what
//! reached a final outcome, log one line per message, and answer. In durable mode:
//! plan, commit the events to the queue (with their messageIds), and answer 202.

use super::answer;
use super::app::{AppState, Tenant};
use super::plan::{self, Message, Plan};
use super::refusal::Refusal;
use super::store::MessageKey;
use super::store::{Enqueued, NewJob};
use axum::response::Response;
use segfn_engine::input::RawMessage;
use segfn_engine::outcome::{OutcomeKind, row};
use segfn_engine::{Fault, InvokeOptions, Output, Redactor, Report};
use segfn_sdk::abi::{EventResult, RawCall};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// Segment waits this long for an answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Kept back from the invocation for recording the outcome and answering.
const ANSWER_MARGIN: Duration = Duration::from_millis(400);
/// Below this, the function is not started at all.
const MIN_BUDGET: Duration = Duration::from_millis(100);
/// What a sender is told of a host fault (the cause goes to the log).
const HOST_FAULT: &str = "temporary host fault; retry later";

/// A delivery that passed its checks.
pub(crate) struct Delivery {
    pub(crate) app: Arc<AppState>,
    pub(crate) tenant: Arc<Tenant>,
    pub(crate) messages: Vec<RawMessage>,
    /// Answered as a batch (an array or `{"batch"}` body), even of one.
    pub(crate) batch: bool,
    /// The settings, as JSON text.
    pub(crate) settings: Arc<str>,
    /// Keeps the settings' secrets out of the report.
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) started: Instant,
    /// The tenant's and the server's invocation permits, held until done (none in
    /// durable mode: the workers take them).
    pub(crate) permits: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

/// The messages of one delivery, marked as running until dropped.
struct Claim<'a> {
    set: &'a Mutex<HashSet<MessageKey>>,
    keys: Vec<MessageKey>,
}

impl<'a> Claim<'a> {
    /// Marks `keys` as running, or returns `None` if any already is.
    fn take(set: &'a Mutex<HashSet<MessageKey>>, keys: Vec<MessageKey>) -> Option<Claim<'a>> {
        let mut running = set.lock().unwrap_or_else(|e| e.into_inner());
        if keys.iter().any(|k| running.contains(k)) {
            return None;
        }
        running.extend(keys.iter().copied());
        Some(Claim { set, keys })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut running = self.set.lock().unwrap_or_else(|e| e.into_inner());
        for key in &self.keys {
            running.remove(key);
        }
    }
}

/// Counts an invocation in flight for as long as it lives.
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> InFlight<'a> {
    fn start(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn result(kind: OutcomeKind, message: impl Into<String>) -> EventResult {
    EventResult {
        kind,
        message: Some(message.into()),
        output: None,
    }
}

/// Runs the delivery and answers it.
pub(crate) async fn run(delivery: Delivery) -> Result<Response, Refusal> {
    let Delivery {
        app,
        tenant,
        messages,
        batch,
        settings,
        redactor,
        started,
        permits: _permits,
    } = delivery;
    let (messages, mut plans) = plan::first_pass(&tenant.name, messages);
    let span = tracing::Span::current();
    span.record("segfn.events", messages.len() as i64);
    if let [only] = messages.as_slice() {
        span.record("segfn.message_id", only.id_for_log.as_str());
    }
    if tenant.durable {
        return enqueue(&app, &tenant, messages, &plans, batch, &settings, started).await;
    }

    // Claim before checking the store, so a concurrent delivery of the same messageId
    // cannot slip between the check and the record.
    let keys = plan::keys_to_run(&messages, &plans);
    let Some(_claim) = Claim::take(&app.in_progress, keys.clone()) else {
        return Err(Refusal::Busy(
            "a delivery of this messageId is in progress; retry shortly",
        ));
    };
    match app.store.seen(keys).await {
        Ok(seen) => plan::mark_duplicates(&messages, &mut plans, &seen),
        Err(e) => {
            tracing::error!(tenant = %tenant.name, error = %e, "deduplication store");
            return Err(Refusal::Unavailable(
                "storage is unavailable; retry later".into(),
            ));
        }
    }
    let duplicates = plans
        .iter()
        .filter(|p| matches!(p, Plan::Duplicate(_)))
        .count();
    app.metrics.dedupe_hits(&tenant.name, duplicates as u64);

    let to_run: Vec<&str> = messages
        .iter()
        .zip(&plans)
        .filter(|(_, p)| **p == Plan::Run)
        .map(|(m, _)| m.json.as_str())
        .collect();
    let to_run_len = to_run.len();
    let mut report = None;
    let mut fresh = Vec::new().into_iter();
    if !to_run.is_empty() {
        let budget = ANSWER_WITHIN
            .saturating_sub(started.elapsed())
            .saturating_sub(ANSWER_MARGIN);
        if budget < MIN_BUDGET {
            return Err(Refusal::Unavailable(
                "too little of Segment's 5 s is left to run the function; retry".into(),
            ));
        }
        let r = invoke(&app, &tenant, &to_run, batch, &settings, redactor, budget).await;
        fresh = per_event(&r, to_run.len(), batch).into_iter();
        if r.fault == Some(Fault::Host) {
            app.metrics.host_fault();
            tracing::error!(tenant = %tenant.name, cause = r.outcome.message.as_deref().unwrap_or(""), "host fault");
        }
        report = Some(r);
    }

    // One result per message, in order.
    let mut results: Vec<EventResult> = Vec::with_capacity(plans.len());
    for plan in &plans {
        let r = match plan {
            Plan::Run => fresh
                .next()
                .unwrap_or_else(|| result(OutcomeKind::Retry, HOST_FAULT)),
            // Answered as the first delivery was: a repeat of a refused event is
            // refused again, not turned into a success.
            Plan::Duplicate(OutcomeKind::Success) => result(
                OutcomeKind::Success,
                "duplicate: this messageId was already processed",
            ),
            Plan::Duplicate(outcome) => result(
                *outcome,
                format!(
                    "duplicate: this messageId was already processed, with the outcome {}",
                    outcome.as_str()
                ),
            ),
            Plan::Repeat(first) => EventResult {
                message: Some("duplicate within this batch".into()),
                ..results[*first].clone()
            },
            Plan::Refuse(problem) => result(OutcomeKind::BadRequest, problem.to_string()),
        };
        results.push(r);
    }

    // Remember what reached a final outcome, and which; what asks for a retry runs again.
    let done: Vec<(MessageKey, OutcomeKind)> = messages
        .iter()
        .zip(&plans)
        .zip(&results)
        .filter(|((_, p), r)| **p == Plan::Run && r.kind != OutcomeKind::Retry)
        .filter_map(|((m, _), r)| Some((m.key?, r.kind)))
        .collect();
    record(&app, &tenant, done).await;
    let ran_ms = report.as_ref().map(|r| r.stats.duration_ms.round() as u64);
    let ran = Ran {
        ms: ran_ms,
        batch_size: to_run_len,
    };
    log_events(&app, &tenant, &messages, &plans, &results, ran, started);

    let debug = report.as_ref().filter(|_| tenant.debug_responses);
    Ok(answer::outcome(batch, &results, debug))
}

/// Durable mode: commits the messages to run to the queue, with their messageIds, in
/// one transaction, then answers: 202 once committed (a batch: 202 with each event's
/// fate), 200 for a duplicate, 400 for a refused message, 503 if the store failed.
async fn enqueue(
    app: &AppState,
    tenant: &Tenant,
    messages: Vec<Message>,
    plans: &[Plan],
    batch: bool,
    settings: &Arc<str>,
    started: Instant,
) -> Result<Response, Refusal> {
    // The tenant's own settings are read when the event runs; settings merged from
    // `X-Segment-Settings` go with the event.
    let custom = (!Arc::ptr_eq(settings, &tenant.settings_json)).then(|| settings.to_string());
    let mut jobs = Vec::new();
    let mut job_of = vec![None; plans.len()];
    for (i, (m, plan)) in messages.iter().zip(plans).enumerate() {
        if *plan == Plan::Run {
            job_of[i] = Some(jobs.len());
            jobs.push(NewJob {
                key: m.key,
                message_id: m.id_for_log.clone(),
                event_type: m.event_type.to_owned(),
                event: m.json.clone(),
                settings: custom.clone(),
            });
        }
    }
    let enqueued = if jobs.is_empty() {
        Vec::new()
    } else {
        match app.store.enqueue(&tenant.name, jobs, app.max_queued).await {
            Ok((enqueued, _)) if enqueued.contains(&Enqueued::Full) => {
                tracing::warn!(tenant = %tenant.name, max_queued = app.max_queued, "queue full: delivery refused");
                return Err(Refusal::TenantBusy(
                    "this tenant's queue is full (max_queued); retry later",
                ));
            }
            Ok((enqueued, marked)) => {
                app.metrics.dedupe_stored(&tenant.name, marked);
                enqueued
            }
            Err(e) => {
                tracing::error!(tenant = %tenant.name, error = %e, "queueing a delivery");
                return Err(Refusal::Unavailable(
                    "storage is unavailable; retry later".into(),
                ));
            }
        }
    };
    app.wake.notify_one();
    let mut fates: Vec<answer::Fate> = Vec::with_capacity(plans.len());
    for (i, plan) in plans.iter().enumerate() {
        let fate = match (plan, job_of[i].and_then(|j| enqueued.get(j))) {
            (Plan::Run, Some(Enqueued::Queued(id))) => answer::Fate::Queued(*id),
            (Plan::Repeat(first), _) => fates[*first].clone().repeated(),
            (Plan::Refuse(problem), _) => answer::Fate::Refused(problem.to_string()),
            _ => answer::Fate::Duplicate,
        };
        fates.push(fate);
    }
    let duplicates = fates
        .iter()
        .filter(|f| matches!(f, answer::Fate::Duplicate))
        .count();
    app.metrics.dedupe_hits(&tenant.name, duplicates as u64);
    let delivery_ms = started.elapsed().as_millis() as u64;
    for (m, fate) in messages.iter().zip(&fates) {
        let outcome = fate.label();
        if !matches!(fate, answer::Fate::Queued(_)) {
            app.metrics.event(&tenant.name, m.event_type, outcome);
        }
        let reason = match fate {
            answer::Fate::Refused(problem) => Some(problem.as_str()),
            _ => None,
        };
        tracing::info!(
            tenant = %tenant.name,
            message_id = m.id_for_log.as_str(),
            r#type = m.event_type,
            outcome,
            status = fate.status(),
            reason,
            delivery_ms,
            "event"
        );
    }
    Ok(answer::queued(batch, &fates))
}

/// Invokes the function on the messages to run, within `budget`.
pub(crate) async fn invoke(
    app: &AppState,
    tenant: &Tenant,
    events: &[&str],
    batch: bool,
    settings: &str,
    redactor: Arc<Redactor>,
    budget: Duration,
) -> Report {
    let _in_flight = InFlight::start(&app.metrics.in_flight);
    let mut limits = app.limits.clone();
    limits.deadline = limits.deadline.min(budget);
    let options = InvokeOptions {
        limits,
        client: tenant.client.clone(),
        redactor,
        capture_bodies: tenant.debug_responses,
    };
    let call = match events {
        [event] if !batch => RawCall::Event(event),
        events => RawCall::Batch(events),
    };
    let report = tenant
        .function
        .current()
        .invoke_json(&options, call, settings)
        .await;
    app.metrics.invocation(&tenant.name, &report);
    report
}

/// One result per message run, from the report.
pub(crate) fn per_event(report: &Report, count: usize, batch: bool) -> Vec<EventResult> {
    let whole = |kind, message: Option<String>| {
        vec![
            EventResult {
                kind,
                message,
                output: None,
            };
            count
        ]
    };
    match (&report.output, report.fault) {
        (Output::Batch(results), _) if results.len() == count => results.clone(),
        (_, Some(Fault::Host)) => whole(OutcomeKind::Retry, Some(HOST_FAULT.into())),
        // A batch too big for a limit as a whole is not the events' fault: never
        // remember it as processed; Segment retries (and may send smaller batches).
        (_, Some(fault)) if batch && count > 1 && fault.is_size_limit() => whole(
            OutcomeKind::Retry,
            Some(format!(
                "the batch of {count} events failed as a whole: {}; retry with smaller batches",
                report
                    .outcome
                    .message
                    .as_deref()
                    .unwrap_or("a limit was exceeded")
            )),
        ),
        (Output::Event(event), _) if !batch => vec![EventResult {
            kind: report.outcome.kind,
            message: report.outcome.message.clone(),
            output: Some(event.clone()),
        }],
        _ => whole(report.outcome.kind, report.outcome.message.clone()),
    }
}

/// Records the messageIds that reached a final outcome (durably, before answering).
async fn record(app: &AppState, tenant: &Tenant, done: Vec<(MessageKey, OutcomeKind)>) {
    if done.is_empty() {
        return;
    }
    for attempt in 0..2 {
        match app.store.mark(&tenant.name, done.clone()).await {
            Ok(marked) => {
                app.metrics.dedupe_stored(&tenant.name, marked);
                return;
            }
            Err(e) if attempt == 0 => {
                tracing::warn!(tenant = %tenant.name, error = %e, "recording messageIds failed; trying once more");
            }
            Err(e) => {
                tracing::error!(tenant = %tenant.name, error = %e, "messageIds not recorded: a retry of this delivery will run them again");
            }
        }
    }
}

/// The invocation that ran a delivery's events: how long it took, and how many events
/// it ran together (more than one for a batch, whose events share its time).
#[derive(Debug, Clone, Copy)]
struct Ran {
    ms: Option<u64>,
    batch_size: usize,
}

/// One log line and one count per event: the outcome, why (the function's or the
/// host's message for any outcome but success, redacted as the report is), the time of
/// the invocation that ran it (absent for events that did not run: duplicates and
/// refusals) and of the whole delivery. A `messageId` is logged quoted, so one with
/// spaces cannot pass for other fields.
fn log_events(
    app: &AppState,
    tenant: &Tenant,
    messages: &[Message],
    plans: &[Plan],
    results: &[EventResult],
    ran: Ran,
    started: Instant,
) {
    let delivery_ms = started.elapsed().as_millis() as u64;
    for ((m, plan), r) in messages.iter().zip(plans).zip(results) {
        let outcome = match plan {
            Plan::Duplicate(_) | Plan::Repeat(_) => "duplicate",
            _ => r.kind.as_str(),
        };
        let ran_here = *plan == Plan::Run;
        app.metrics.event(&tenant.name, m.event_type, outcome);
        tracing::info!(
            tenant = %tenant.name,
            message_id = m.id_for_log.as_str(),
            r#type = m.event_type,
            outcome,
            status = row(r.kind).http_status,
            reason = r.message.as_deref().filter(|_| r.kind != OutcomeKind::Success),
            invocation_ms = ran.ms.filter(|_| ran_here),
            batch_size = (ran_here && ran.batch_size > 1).then_some(ran.batch_size),
            delivery_ms,
            "event"
        );
    }
}
