//! The HTTP endpoint Segment delivers to: authentication, body and header checks,
//! deduplication, backpressure, the invocation, and the answer Segment expects; plus
//! `/healthz`, `/readyz` and `/metrics`.

use super::auth;
use super::dedupe::Dedupe;
use super::metrics::Metrics;
use super::reload::FunctionSlot;
use crate::input::parse_delivery;
use crate::outcome::{OutcomeKind, row};
use crate::{FetchClient, InvokeOptions, Limits, Redactor, Report};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use segfn_sdk::abi::{Call, EventResult};
use serde_json::{Value, json};
use sha1::Digest as _;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Semaphore;

/// How long a request body may take to arrive.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One mutual customer: its settings, allow-list, secrets and function.
#[derive(Debug)]
pub struct Tenant {
    /// Name, for logs and metrics.
    pub name: String,
    /// The tenant's settings.
    pub settings: Value,
    /// Declared secret setting names.
    pub secret_settings: Vec<String>,
    /// The `fetch` client bound to the tenant's allow-list.
    pub client: FetchClient,
    /// Shared secret for `X-Signature`.
    pub shared_secret: Option<String>,
    /// The function that handles this tenant's deliveries.
    pub function: Arc<FunctionSlot>,
    /// Answer with the report (outcome, logs, trace) for Segment's Event Tester.
    pub debug_responses: bool,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Tenants by SHA-1 of their API key: the lookup never compares raw keys.
    pub tenants: HashMap<[u8; 20], Arc<Tenant>>,
    /// Per-invocation limits.
    pub limits: Limits,
    /// The deduplication store.
    pub dedupe: Dedupe,
    /// Metrics.
    pub metrics: Metrics,
    /// Invocations allowed at once.
    pub permits: Arc<Semaphore>,
    /// Set on shutdown: new deliveries get 503.
    pub draining: AtomicBool,
    /// Largest body accepted.
    pub max_body_bytes: usize,
    /// `tenant \0 messageId` of deliveries running now.
    pub in_progress: Mutex<HashSet<String>>,
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

/// The key under which a tenant is found.
pub fn key_hash(api_key: &str) -> [u8; 20] {
    sha1::Sha1::digest(api_key.as_bytes()).into()
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .fallback(deliver)
        .with_state(state)
}

async fn ready(State(app): State<Arc<AppState>>) -> Response {
    if app.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// An error answer: `{"message": ...}` with a status.
fn answer(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

/// Answers Segment's delivery. Every early return is a clear 4xx (or 429/503) with
/// `{"message"}`; only the function's outcome can ask for a retry with 5xx.
async fn deliver(
    State(app): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    if method != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "Segment delivers with POST");
    }
    if app.draining.load(Ordering::Relaxed) {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down; retry later",
        );
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let key = match auth::api_key(text("authorization")) {
        Ok(key) => key,
        Err(problem) => return answer(StatusCode::UNAUTHORIZED, problem),
    };
    let Some(tenant) = app.tenants.get(&key_hash(&key)).cloned() else {
        return answer(StatusCode::UNAUTHORIZED, "unknown API key");
    };
    let response = deliver_for(&app, &tenant, &headers, body).await;
    app.metrics
        .delivery(&tenant.name, response.status().as_u16());
    tracing::debug!(tenant = %tenant.name, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, "answered");
    response
}

async fn deliver_for(app: &AppState, tenant: &Tenant, headers: &HeaderMap, body: Body) -> Response {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let json_type = text("content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    // A client that trickles its body must not hold the delivery past Segment's patience.
    let read = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, app.max_body_bytes),
    );
    let bytes = match read.await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            let limit = crate::limits::bytes(app.max_body_bytes);
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body exceeds the limit of {limit}"),
            );
        }
        Err(_) => {
            return answer(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time",
            );
        }
    };
    let call = match parse_delivery(&bytes) {
        Ok(call) => call,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                &format!("the body is not a delivery: {e}"),
            );
        }
    };
    if let Some(secret) = &tenant.shared_secret {
        let first = match &call {
            Call::Batch { events } => events.first(),
            Call::Event { .. } => None,
        };
        if let Err(problem) = auth::verify_signature(secret, text("x-signature"), &bytes, first) {
            return answer(StatusCode::UNAUTHORIZED, problem);
        }
    }
    let settings = match headers.get("x-segment-settings") {
        None => tenant.settings.clone(),
        Some(value) => match value
            .to_str()
            .map_err(|_| "X-Segment-Settings is not ASCII")
            .and_then(auth::segment_settings)
        {
            Ok(extra) => auth::merge_settings(&tenant.settings, extra),
            Err(problem) => return answer(StatusCode::BAD_REQUEST, problem),
        },
    };
    let Ok(permit) = app.permits.clone().try_acquire_owned() else {
        let mut response = answer(
            StatusCode::TOO_MANY_REQUESTS,
            "too many deliveries in flight; retry shortly",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    app.metrics.in_flight.inc();
    let response = run(app, tenant, call, settings).await;
    app.metrics.in_flight.dec();
    drop(permit);
    response
}

/// A message's id and type, for deduplication, logs and metrics.
fn identity(event: &Value) -> (Option<String>, String) {
    let id = event
        .get("messageId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let kind = ["type", "action"]
        .iter()
        .find_map(|k| event.get(*k).and_then(Value::as_str))
        .unwrap_or("unknown")
        .to_ascii_lowercase();
    (id, kind)
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

async fn run(app: &AppState, tenant: &Tenant, call: Call, settings: Value) -> Response {
    let started = Instant::now();
    let events = match call {
        Call::Event { event } => vec![event],
        Call::Batch { events } => events,
    };
    let single = events.len() == 1;
    let ids: Vec<(Option<String>, String)> = events.iter().map(identity).collect();

    // Events already processed are answered without running the function again.
    let mut results: Vec<Option<EventResult>> = Vec::with_capacity(events.len());
    for (id, _) in &ids {
        let duplicate = match id {
            Some(id) => match app.dedupe.seen(&tenant.name, id).await {
                Ok(seen) => seen,
                Err(e) => {
                    tracing::error!(tenant = %tenant.name, error = %e, "deduplication store");
                    return answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "storage is unavailable; retry later",
                    );
                }
            },
            None => false,
        };
        if duplicate {
            app.metrics.dedupe_hit(&tenant.name);
        }
        results.push(duplicate.then(|| EventResult {
            kind: OutcomeKind::Success,
            message: Some("duplicate: this messageId was already processed".into()),
            output: None,
        }));
    }
    let duplicates: Vec<bool> = results.iter().map(Option::is_some).collect();
    // The same messageId delivered twice at once (Segment retrying a slow delivery) runs
    // once: the second is asked to come back, by which time it is a duplicate.
    let running: Vec<String> = ids
        .iter()
        .zip(&duplicates)
        .filter(|(_, dup)| !**dup)
        .filter_map(|((id, _), _)| id.as_ref().map(|id| super::dedupe::key(&tenant.name, id)))
        .collect();
    let Some(_claim) = InProgress::claim(&app.in_progress, running) else {
        let mut response = answer(
            StatusCode::TOO_MANY_REQUESTS,
            "a delivery of this messageId is in progress; retry shortly",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let to_run: Vec<Value> = events
        .into_iter()
        .zip(&results)
        .filter(|(_, r)| r.is_none())
        .map(|(e, _)| e)
        .collect();

    let mut report: Option<Report> = None;
    if !to_run.is_empty() {
        let function = tenant.function.current();
        let options = InvokeOptions {
            limits: app.limits.clone(),
            client: tenant.client.clone(),
            redactor: Arc::new(Redactor::from_settings(&settings, &tenant.secret_settings)),
            capture_bodies: tenant.debug_responses,
        };
        let count = to_run.len();
        let call = if single {
            Call::Event {
                event: to_run.into_iter().next().unwrap_or_default(),
            }
        } else {
            Call::Batch { events: to_run }
        };
        let r = function.invoke(&options, call, settings).await;
        app.metrics.invocation(&tenant.name, &r);
        let per_event: Vec<EventResult> = match (&r.output, single) {
            (Value::Array(items), false) if items.len() == count => items
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
                    output: single.then(|| r.output.clone()).filter(|o| !o.is_null()),
                };
                count
            ],
        };
        let mut fresh = per_event.into_iter();
        for slot in results.iter_mut().filter(|r| r.is_none()) {
            *slot = fresh.next();
        }
        report = Some(r);
    }
    let results: Vec<EventResult> = results
        .into_iter()
        .map(|r| {
            r.unwrap_or(EventResult {
                kind: OutcomeKind::Retry,
                message: None,
                output: None,
            })
        })
        .collect();

    // Remember what reached a final outcome; what asks for a retry runs again.
    let done: Vec<String> = ids
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.kind != OutcomeKind::Retry)
        .filter_map(|((id, _), _)| id.clone())
        .collect();
    if let Err(e) = app.dedupe.mark(&tenant.name, done).await {
        tracing::error!(tenant = %tenant.name, error = %e, "deduplication store");
    }

    for (((id, kind), result), duplicate) in ids.iter().zip(&results).zip(&duplicates) {
        let outcome = if *duplicate {
            "duplicate"
        } else {
            result.kind.as_str()
        };
        app.metrics.event(&tenant.name, kind, outcome);
        tracing::info!(
            tenant = %tenant.name,
            message_id = id.as_deref().unwrap_or("-"),
            r#type = %kind,
            outcome,
            duration_ms = started.elapsed().as_millis() as u64,
            "delivery"
        );
    }

    let status = if single {
        row(results[0].kind).http_status
    } else if results.iter().any(|r| r.kind == OutcomeKind::Retry) {
        row(OutcomeKind::Retry).http_status
    } else {
        200
    };
    let mut body = if single {
        json!({ "kind": results[0].kind, "message": public_message(&results[0]).unwrap_or_else(|| "ok".into()) })
    } else {
        json!({
            "message": if status == 200 { "ok" } else { "some events need a retry" },
            "results": results.iter().map(|r| json!({
                "kind": r.kind,
                "status": row(r.kind).http_status,
                "message": public_message(r),
            })).collect::<Vec<_>>(),
        })
    };
    if tenant.debug_responses
        && let Some(report) = report
    {
        body["report"] = serde_json::to_value(&report).unwrap_or(Value::Null);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}
