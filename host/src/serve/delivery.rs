//! One accepted delivery: claim its messageIds, skip what was already processed, run
//! the function on the rest within Segment's 5 s, record what reached a final outcome,
//! and build the answer Segment expects.

use super::app::{AppState, Tenant, answer, busy};
use crate::outcome::{OutcomeKind, row};
use crate::{InvokeOptions, Redactor, Report};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use segfn_sdk::EventType;
use segfn_sdk::abi::{Call, EventResult};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// Segment waits this long for an answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Kept back from the invocation for recording the outcome and answering.
const ANSWER_MARGIN: Duration = Duration::from_millis(400);
/// Below this, the function is not started at all.
const MIN_BUDGET: Duration = Duration::from_millis(100);

/// A delivery that passed its checks.
pub(crate) struct Delivery {
    pub(crate) app: Arc<AppState>,
    pub(crate) tenant: Arc<Tenant>,
    pub(crate) call: Call,
    pub(crate) settings: Value,
    /// Keeps the settings' secrets out of the report.
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) started: Instant,
    /// Held until the delivery is done.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// The type label of a message: one of Segment's types, `other` for anything else (so a
/// sender cannot grow the metrics or forge log lines with made-up types).
pub(crate) fn known_type(event: &Value) -> &'static str {
    ["type", "action"]
        .iter()
        .find_map(|k| event.get(*k).and_then(Value::as_str))
        .and_then(EventType::parse)
        .map_or("other", EventType::as_str)
}

/// The messageIds of one delivery, marked as running until dropped.
struct InProgress<'a> {
    set: &'a Mutex<HashSet<String>>,
    keys: Vec<String>,
}

impl<'a> InProgress<'a> {
    /// Marks `keys` as running, or returns `None` if any already is.
    fn claim(set: &'a Mutex<HashSet<String>>, keys: Vec<String>) -> Option<InProgress<'a>> {
        let mut running = set.lock().unwrap_or_else(|e| e.into_inner());
        if keys.iter().any(|k| running.contains(k)) {
            return None;
        }
        running.extend(keys.iter().cloned());
        Some(InProgress { set, keys })
    }
}

impl Drop for InProgress<'_> {
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

/// What an answer may say: host faults are not described to the caller.
fn public_message(result: &EventResult) -> Option<String> {
    match (&result.kind, &result.message) {
        (OutcomeKind::Retry, Some(m)) if m.starts_with("host fault") => {
            Some("temporary host fault; retry later".into())
        }
        (_, m) => m.clone(),
    }
}

fn duplicate() -> EventResult {
    EventResult {
        kind: OutcomeKind::Success,
        message: Some("duplicate: this messageId was already processed".into()),
        output: None,
    }
}

/// Runs the delivery; returns the answer and the outcome for the log line.
pub(crate) async fn run(delivery: Delivery) -> (Response, String) {
    let Delivery {
        app,
        tenant,
        call,
        settings,
        redactor,
        started,
        permit: _permit,
    } = delivery;
    let (events, batch) = match call {
        Call::Event { event } => (vec![event], false),
        Call::Batch { events } => (events, true),
    };
    let ids: Vec<Option<String>> = events
        .iter()
        .map(|e| {
            e.get("messageId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    let types: Vec<&'static str> = events.iter().map(known_type).collect();

    // The same messageId twice in one batch runs once; the repeat shares its result.
    let mut first_at: HashMap<&str, usize> = HashMap::new();
    let repeat_of: Vec<Option<usize>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let id = id.as_deref()?;
            match first_at.get(id) {
                Some(&first) => Some(first),
                None => {
                    first_at.insert(id, i);
                    None
                }
            }
        })
        .collect();
    let unique: Vec<String> = ids
        .iter()
        .zip(&repeat_of)
        .filter(|(_, r)| r.is_none())
        .filter_map(|(id, _)| id.clone())
        .collect();

    // Claim before checking the store, so a concurrent delivery of the same messageId
    // cannot slip between the check and the record.
    let claim_keys = unique
        .iter()
        .map(|id| super::dedupe::key(&tenant.name, id))
        .collect();
    let Some(_claim) = InProgress::claim(&app.in_progress, claim_keys) else {
        return (
            busy("a delivery of this messageId is in progress; retry shortly"),
            "in progress".into(),
        );
    };
    let seen: HashSet<String> = match app.dedupe.seen_many(&tenant.name, unique.clone()).await {
        Ok(seen) => seen,
        Err(e) => {
            tracing::error!(tenant = %tenant.name, error = %e, "deduplication store");
            return (
                answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage is unavailable; retry later",
                ),
                "store error".into(),
            );
        }
    };
    let is_duplicate: Vec<bool> = ids
        .iter()
        .zip(&repeat_of)
        .map(|(id, r)| r.is_none() && id.as_ref().is_some_and(|id| seen.contains(id)))
        .collect();
    app.metrics.dedupe_hits(
        &tenant.name,
        is_duplicate.iter().filter(|d| **d).count() as u64,
    );

    let runs: Vec<bool> = is_duplicate
        .iter()
        .zip(&repeat_of)
        .map(|(d, r)| !d && r.is_none())
        .collect();
    let to_run: Vec<Value> = events
        .into_iter()
        .zip(&runs)
        .filter(|(_, r)| **r)
        .map(|(e, _)| e)
        .collect();
    let mut fresh: Vec<EventResult> = Vec::new();
    let mut report: Option<Report> = None;
    if !to_run.is_empty() {
        let _in_flight = InFlight::start(&app.metrics.in_flight);
        let budget = ANSWER_WITHIN
            .saturating_sub(started.elapsed())
            .saturating_sub(ANSWER_MARGIN);
        if budget < MIN_BUDGET {
            let message = "too little of Segment's 5 s is left to run the function; retry";
            return (
                answer(StatusCode::SERVICE_UNAVAILABLE, message),
                "no time left".into(),
            );
        }
        let mut limits = app.limits.clone();
        limits.deadline = limits.deadline.min(budget);
        let options = InvokeOptions {
            limits,
            client: tenant.client.clone(),
            redactor,
            capture_bodies: tenant.debug_responses,
        };
        let count = to_run.len();
        let call = if batch {
            Call::Batch { events: to_run }
        } else {
            Call::Event {
                event: to_run.into_iter().next().unwrap_or_default(),
            }
        };
        let r = tenant
            .function
            .current()
            .invoke(&options, call, settings)
            .await;
        app.metrics.invocation(&tenant.name, &r);
        fresh = match (&r.output, batch) {
            (Value::Array(items), true) if items.len() == count => items
                .iter()
                .map(|v| {
                    serde_json::from_value(v.clone()).unwrap_or(EventResult {
                        kind: OutcomeKind::BadRequest,
                        message: None,
                        output: None,
                    })
                })
                .collect(),
            // One message, or a batch that failed as a whole.
            _ => vec![
                EventResult {
                    kind: r.outcome.kind,
                    message: r.outcome.message.clone(),
                    output: (!batch && !r.output.is_null()).then(|| r.output.clone()),
                };
                count
            ],
        };
        report = Some(r);
    }

    // Assemble one result per event, in order.
    let mut fresh = fresh.into_iter();
    let mut results: Vec<EventResult> = Vec::with_capacity(ids.len());
    for i in 0..ids.len() {
        let result = if is_duplicate[i] {
            duplicate()
        } else if let Some(first) = repeat_of[i] {
            EventResult {
                message: Some("duplicate within this batch".into()),
                ..results[first].clone()
            }
        } else {
            fresh.next().unwrap_or_else(duplicate)
        };
        results.push(result);
    }

    // Remember what reached a final outcome; what asks for a retry runs again.
    let done: Vec<String> = ids
        .iter()
        .zip(&results)
        .zip(&runs)
        .filter(|((_, r), ran)| **ran && r.kind != OutcomeKind::Retry)
        .filter_map(|((id, _), _)| id.clone())
        .collect();
    if let Err(e) = app.dedupe.mark(&tenant.name, done.clone()).await {
        tracing::warn!(tenant = %tenant.name, error = %e, "recording messageIds failed; trying once more");
        if let Err(e) = app.dedupe.mark(&tenant.name, done).await {
            tracing::error!(tenant = %tenant.name, error = %e, "messageIds not recorded: a retry of this delivery will run them again");
        }
    }
    for (i, result) in results.iter().enumerate() {
        let outcome = if is_duplicate[i] || repeat_of[i].is_some() {
            "duplicate"
        } else {
            result.kind.as_str()
        };
        app.metrics.event(&tenant.name, types[i], outcome);
    }

    let debug_report = report.filter(|_| tenant.debug_responses);
    respond(
        batch,
        &results,
        is_duplicate.first() == Some(&true),
        debug_report,
    )
}

/// The answer Segment expects, and the outcome for the log line. One message: its
/// outcome's status. A batch: one result per event, and 500 only when some event needs
/// a retry.
fn respond(
    batch: bool,
    results: &[EventResult],
    first_is_duplicate: bool,
    report: Option<Report>,
) -> (Response, String) {
    let (status, mut body, outcome) = if batch {
        let retry = results.iter().any(|r| r.kind == OutcomeKind::Retry);
        let status = if retry {
            row(OutcomeKind::Retry).http_status
        } else {
            200
        };
        let body = json!({
            "message": if retry { "some events need a retry" } else { "ok" },
            "results": results.iter().map(|r| json!({
                "kind": r.kind,
                "status": row(r.kind).http_status,
                "message": public_message(r),
            })).collect::<Vec<_>>(),
        });
        let failed = results
            .iter()
            .filter(|r| r.kind != OutcomeKind::Success)
            .count();
        (
            status,
            body,
            format!("{failed} of {} events not successful", results.len()),
        )
    } else {
        let Some(result) = results.first() else {
            return (
                answer(StatusCode::BAD_REQUEST, "the delivery holds no message"),
                "empty".into(),
            );
        };
        let outcome = if first_is_duplicate {
            "duplicate"
        } else {
            result.kind.as_str()
        };
        let body = json!({ "kind": result.kind, "message": public_message(result).unwrap_or_else(|| "ok".into()) });
        (row(result.kind).http_status, body, outcome.to_owned())
    };
    if let Some(report) = report {
        body["report"] = serde_json::to_value(&report).unwrap_or(Value::Null);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ((status, axum::Json(body)).into_response(), outcome)
}
