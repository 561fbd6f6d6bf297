//! The HTTP side of the endpoint: routes, the checks a delivery passes before it runs
//! (method, key, content type, body, signature, settings header, capacity), and one log
//! line per delivery; plus `/healthz`, `/readyz` and `/metrics`.

use super::auth;
use super::dedupe::Dedupe;
use super::delivery::{self, Delivery, known_type};
use super::metrics::Metrics;
use super::reload::FunctionSlot;
use crate::input::parse_delivery;
use crate::{FetchClient, Limits, Redactor};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use segfn_sdk::abi::Call;
use serde_json::{Value, json};
use sha1::Digest as _;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a request body may take to arrive.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(4);

/// One mutual customer: its settings, allow-list, secrets and function.
#[derive(Debug)]
pub struct Tenant {
    /// Name, for logs and metrics.
    pub name: String,
    /// The tenant's settings.
    pub settings: Value,
    /// Declared secret setting names.
    pub secret_settings: Vec<String>,
    /// The redactor for the tenant's own settings, built once.
    pub redactor: Arc<Redactor>,
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
    /// Bodies being read at once (each up to `max_body_bytes`).
    pub body_permits: Arc<Semaphore>,
    /// Set on shutdown: new deliveries get 503.
    pub draining: AtomicBool,
    /// Largest body accepted.
    pub max_body_bytes: usize,
    /// `tenant \0 messageId` of deliveries running now.
    pub in_progress: Mutex<HashSet<String>>,
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
pub(crate) fn answer(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

/// 429 with `Retry-After`.
pub(crate) fn busy(message: &str) -> Response {
    let mut response = answer(StatusCode::TOO_MANY_REQUESTS, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The delivery's log line, written (and counted) when dropped: also when Segment
/// hangs up before the answer, while the delivery itself runs on.
struct LogLine<'a> {
    app: &'a AppState,
    started: Instant,
    tenant: String,
    message_id: String,
    event_type: &'static str,
    outcome: String,
    status: Option<u16>,
}

impl Drop for LogLine<'_> {
    fn drop(&mut self) {
        if let (Some(status), true) = (self.status, self.tenant != "-") {
            self.app.metrics.delivery(&self.tenant, status);
        }
        let outcome = if self.status.is_some() {
            self.outcome.as_str()
        } else {
            "client gone; delivery finishing"
        };
        tracing::info!(
            tenant = %self.tenant,
            message_id = %self.message_id,
            r#type = self.event_type,
            outcome,
            status = self.status.unwrap_or(0),
            duration_ms = self.started.elapsed().as_millis() as u64,
            "delivery"
        );
    }
}

/// Answers one delivery and logs one line for it, whatever the answer.
async fn deliver(
    State(app): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let mut line = LogLine {
        app: &app,
        started,
        tenant: "-".into(),
        message_id: "-".into(),
        event_type: "-",
        outcome: "refused".into(),
        status: None,
    };
    let response = handle(&app, method, &headers, body, started, &mut line).await;
    line.status = Some(response.status().as_u16());
    response
}

/// Every early return is a clear 4xx (or 429/503) with `{"message"}`; only the
/// function's outcome can ask for a retry with 5xx.
async fn handle(
    app: &Arc<AppState>,
    method: Method,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
    line: &mut LogLine<'_>,
) -> Response {
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
        return answer(
            StatusCode::UNAUTHORIZED,
            "unknown API key: it must be a tenant's api_key in the segfn configuration",
        );
    };
    line.tenant = tenant.name.clone();

    let json_type = text("content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    let bytes = {
        // Bounded too: every body read holds up to `max_body_bytes` in memory.
        let Ok(_reading) = app.body_permits.clone().try_acquire_owned() else {
            return busy("too many deliveries arriving at once; retry shortly");
        };
        match tokio::time::timeout(
            BODY_READ_TIMEOUT,
            axum::body::to_bytes(body, app.max_body_bytes),
        )
        .await
        {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) if is_length_limit(&e) => {
                let limit = crate::limits::bytes(app.max_body_bytes);
                return answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the body exceeds the limit of {limit}"),
                );
            }
            Ok(Err(_)) => return answer(StatusCode::BAD_REQUEST, "the body could not be read"),
            Err(_) => {
                return answer(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body did not arrive in time",
                );
            }
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
    match &call {
        Call::Event { event } => {
            line.message_id = event
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .chars()
                .take(100)
                .collect();
            line.event_type = known_type(event);
        }
        Call::Batch { events } => {
            line.message_id = format!("({} events)", events.len());
            line.event_type = "batch";
        }
    }
    if let Some(secret) = &tenant.shared_secret {
        let first = match &call {
            Call::Batch { events } => events.first(),
            Call::Event { .. } => None,
        };
        if let Err(problem) = auth::verify_signature(secret, text("x-signature"), &bytes, first) {
            return answer(StatusCode::UNAUTHORIZED, problem);
        }
    }
    // The tenant's redactor serves unless this delivery brings settings of its own.
    let (settings, redactor) = match headers.get("x-segment-settings") {
        None => (tenant.settings.clone(), tenant.redactor.clone()),
        Some(value) => match value
            .to_str()
            .map_err(|_| "X-Segment-Settings is not ASCII")
            .and_then(auth::segment_settings)
        {
            Ok(extra) => {
                let merged = auth::merge_settings(&tenant.settings, extra);
                let redactor = Arc::new(Redactor::from_settings(&merged, &tenant.secret_settings));
                (merged, redactor)
            }
            Err(problem) => return answer(StatusCode::BAD_REQUEST, problem),
        },
    };
    let Ok(permit) = app.permits.clone().try_acquire_owned() else {
        return busy("too many deliveries in flight; retry shortly");
    };
    // The delivery runs in its own task: if Segment hangs up, the function still
    // finishes and its messageIds are still recorded, so a retry is not run twice.
    let work = Delivery {
        app: app.clone(),
        tenant,
        call,
        settings,
        redactor,
        started,
        permit,
    };
    match tokio::spawn(delivery::run(work)).await {
        Ok((response, outcome)) => {
            line.outcome = outcome;
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "delivery task failed");
            line.outcome = "host fault".into();
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporary host fault; retry later",
            )
        }
    }
}

/// Whether a body error is the size limit (and not a broken connection).
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}
