//! The page's HTTP API (axum): the page itself, the status and its event stream, the
//! samples, runs and the run history, a manual rebuild. Every error is JSON
//! (`{"error": "..."}`), request bodies are bounded, and only requests addressed to
//! this loopback server are served (a page elsewhere cannot reach it through DNS
//! rebinding, nor post to it from another origin).

use super::MAX_REQUEST_BYTES;
use super::builder::{BuildState, Builds};
use super::samples;
use super::session::Dev;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use segfn_engine::{InvokeOptions, Redactor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The page: one file, no build step, nothing fetched from elsewhere.
const PAGE: &str = include_str!("page.html");

/// The page may run only its own inline script and talk only to this server.
const PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// Longest run label kept.
const MAX_LABEL_CHARS: usize = 200;

#[derive(Debug, Clone)]
struct App {
    dev: Arc<Dev>,
    builds: Builds,
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

/// The names this server answers to, with its port.
#[derive(Debug, Clone)]
struct Local {
    hosts: Arc<[String]>,
}

/// The routes, for the server at `addr`.
pub(crate) fn router(dev: Arc<Dev>, builds: Builds, addr: SocketAddr) -> Router {
    let port = addr.port();
    let local = Local {
        hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")].into(),
    };
    Router::new()
        .route("/", get(page))
        .route("/api/status", get(status))
        .route("/api/events", get(events))
        .route("/api/samples", get(sample_list))
        .route("/api/run", post(run))
        .route("/api/runs", get(runs))
        .route("/api/runs/{id}", get(run_record))
        .route("/api/rebuild", post(rebuild))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(middleware::from_fn_with_state(local, local_only))
        .with_state(App { dev, builds })
}

/// Refuses requests not addressed to this server by its loopback name (DNS rebinding)
/// and requests from pages of other origins.
async fn local_only(State(local): State<Local>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if !host.is_some_and(|h| local.hosts.iter().any(|l| l.eq_ignore_ascii_case(h))) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "segfn dev answers only requests addressed to http://{}/ (this one was for {:?})",
                local.hosts[0],
                host.unwrap_or("no host")
            ),
        )
        .into_response();
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let ours = local
            .hosts
            .iter()
            .any(|l| origin.eq_ignore_ascii_case(&format!("http://{l}")));
        if !ours {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                format!("requests from {origin:?} are refused: only the segfn dev page may call this API"),
            )
            .into_response();
        }
    }
    next.run(request).await
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        PAGE,
    )
        .into_response()
}

async fn status(State(app): State<App>) -> Response {
    axum::Json(app.dev.status()).into_response()
}

/// The status now, then again after every change, as server-sent events named
/// `status`.
async fn events(State(app): State<App>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = app.dev.subscribe();
    let stream = futures_util::stream::unfold(
        (changes, app.dev, true),
        |(mut changes, dev, first)| async move {
            if first {
                changes.borrow_and_update();
            } else if changes.changed().await.is_err() {
                return None;
            }
            let event = Event::default()
                .event("status")
                .json_data(dev.status())
                .unwrap_or_else(|_| Event::default().event("status").data("{}"));
            Some((Ok(event), (changes, dev, false)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn sample_list(State(app): State<App>) -> Response {
    let dir = app.dev.options.dir.clone();
    match tokio::task::spawn_blocking(move || samples::all(&dir)).await {
        Ok(samples) => axum::Json(samples).into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// What `POST /api/run` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    /// One message, an array of messages or `{"batch": [...]}`, as `segfn run --event`;
    /// or a webhook request (`{"payload": {...}}`), as `segfn run --request`.
    event: Box<RawValue>,
    /// The settings object; missing or null is `{}`.
    #[serde(default)]
    settings: Option<Value>,
    /// What the run list calls it.
    #[serde(default)]
    label: Option<String>,
}

/// Runs the current module once on the event with the settings, keeps the run, and
/// answers the report exactly as `segfn run --json` prints it; the run's id is in
/// `X-Segfn-Run-Id` and `Location`.
async fn run(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                e.status(),
                format!(
                    "the request is larger than {} MiB: send a smaller event",
                    MAX_REQUEST_BYTES >> 20
                ),
            )
        } else {
            ApiError::new(e.status(), e.body_text())
        }
    })?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the run as JSON (Content-Type: application/json): {\"event\": {...}, \"settings\": {...}}",
        ));
    }
    let request: RunRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the request is not a run: {e}; send {{\"event\": {{...}}, \"settings\": {{...}}, \"label\": \"...\"}}"
            ),
        )
    })?;
    let call = read_call(request.event.get())?;
    let settings = match request.settings {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(settings @ Value::Object(_)) => settings,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "the settings must be a JSON object of setting names to values",
            ));
        }
    };
    let redactor = Redactor::from_settings(&settings, &app.dev.options.secrets)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the settings: {e}")))?;
    let Some(module) = app.dev.module() else {
        let build = app.dev.build();
        return Err(if build.state == BuildState::Building {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no module yet: the first build is still running",
            )
        } else {
            ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "no module to run: the build failed ({}); fix the build errors",
                    build.error.as_deref().unwrap_or("see the build errors")
                ),
            )
        });
    };
    let options = InvokeOptions {
        limits: app.dev.options.limits.clone(),
        client: app.dev.options.client.clone(),
        redactor: Arc::new(redactor),
        capture_bodies: true,
    };
    let report = module.function.invoke(&options, call, settings).await;
    let label = request
        .label
        .map(|l| l.trim().chars().take(MAX_LABEL_CHARS).collect::<String>())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "Custom event".to_owned());
    let record = app
        .dev
        .runs()
        .add(now_ms(), label, module.build, request.event, report);
    app.dev.run_added();
    let body = serde_json::to_vec(&record.report)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let id = record.id.to_string();
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert("x-segfn-run-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("/api/runs/{id}")) {
        headers.insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The call the editor's text is: a webhook request for a source function (in the
/// shape of Segment's harness, as `segfn run --request`), or a delivery, as `--event`.
fn read_call(text: &str) -> Result<segfn_sdk::abi::Call, ApiError> {
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if samples::is_request(&value) {
        let file = segfn_sdk::source::read_harness(text.as_bytes()).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the webhook request is not usable: {e}"),
            )
        })?;
        return Ok(segfn_sdk::abi::Call::Request {
            request: file.request.to_value(),
        });
    }
    segfn_engine::input::parse_delivery(text.as_bytes()).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the event is not usable: {e}"),
        )
    })
}

async fn runs(State(app): State<App>) -> Response {
    axum::Json(app.dev.runs().summaries()).into_response()
}

async fn run_record(State(app): State<App>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let record = id
        .parse::<u64>()
        .ok()
        .and_then(|id| app.dev.runs().get(id))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no run {id:?} is kept (the page keeps the last {} runs)",
                    app.dev.options.keep_runs.max(1)
                ),
            )
        })?;
    Ok(axum::Json(&*record).into_response())
}

async fn rebuild(State(app): State<App>) -> Response {
    app.builds.request("requested");
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({ "requested": true })),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such page or API route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method",
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
