//! The HTTP side of the endpoint: routes, and the checks a delivery passes before it
//! runs, cheapest first and everything that needs no body before the body is read
//! (method, key, content type and encoding, declared length, signature header,
//! settings header, capacity); plus `/healthz`, `/readyz`, `/metrics` and, with an
//! `admin_token`, `POST /_segfn/admin` (the durable queue's figures and dead letters).

use super::admin::{AdminError, AdminRequest};
use super::app::{AppState, HeaderSettings, Tenant, key_hash};
use super::auth;
use super::body;
use super::config::BatchSignature;
use super::delivery::{self, Delivery};
use super::refusal::Refusal;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use segfn_engine::Redactor;
use segfn_engine::input::read_delivery;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};
use tracing::Instrument as _;
use tracing::field::Empty;

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route(ADMIN_PATH, axum::routing::any(admin))
        .route(
            "/webhooks/{token}",
            axum::routing::any(super::source::webhook),
        )
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
    match app.store.stats().await {
        Ok(stats) => app.metrics.queue(&stats),
        Err(e) => tracing::error!(error = %e, "reading the queue's figures"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 64 << 10;

/// Where the admin API answers. Segment may deliver to any path: while the API is
/// off (no `admin_token`), this one is a delivery like any other.
pub const ADMIN_PATH: &str = "/_segfn/admin";

/// `POST /_segfn/admin` with `Authorization: Bearer TOKEN` and an [`AdminRequest`] as
/// JSON: checked before the body is read.
async fn admin(
    State(app): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(token) = &app.admin_token else {
        return deliver(State(app), method, headers, body).await;
    };
    match answer_admin(&app, token, method, &headers, body).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn answer_admin(
    app: &AppState,
    token: &str,
    method: Method,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    if method != Method::POST {
        return Err(Refusal::Method("the admin API takes POST"));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !super::admin::authorized(token, given) {
        return Err(Refusal::Unauthorized(
            "the admin API needs Authorization: Bearer <admin_token>".into(),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_ADMIN_BODY)
        .await
        .map_err(|_| Refusal::TooLarge("admin request too large".into()))?;
    let request: AdminRequest = serde_json::from_slice(&bytes)
        .map_err(|e| Refusal::BadRequest(format!("admin request: {e}")))?;
    let retry = matches!(request, AdminRequest::Retry { .. });
    match super::admin::answer(app.store.as_ref(), request).await {
        Ok(answer) => {
            if retry {
                app.wake.notify_one();
            }
            Ok((StatusCode::OK, axum::Json(answer)).into_response())
        }
        Err(e @ AdminError::NotFound(_)) => Err(Refusal::NotFound(e.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "admin request");
            Err(Refusal::Unavailable(e.to_string().into()))
        }
    }
}

/// A delivery refused before it ran is logged (and counted) when dropped: also when
/// the sender hangs up while it runs on. Accepted deliveries log one line per event.
struct Refused<'a> {
    app: &'a AppState,
    started: Instant,
    tenant: Option<String>,
    status: Option<u16>,
    /// Why it was refused, when it was.
    reason: Option<&'static str>,
    accepted: bool,
}

impl Drop for Refused<'_> {
    fn drop(&mut self) {
        if let (Some(status), Some(tenant)) = (self.status, &self.tenant) {
            self.app.metrics.delivery(tenant, status);
        }
        if let Some(reason) = self.reason {
            self.app.metrics.refused(self.tenant.as_deref(), reason);
        }
        if self.accepted && self.status.is_some() {
            return;
        }
        tracing::info!(
            tenant = self.tenant.as_deref().unwrap_or("-"),
            outcome = if self.status.is_some() {
                "refused"
            } else {
                "client gone; delivery finishing"
            },
            status = self.status.unwrap_or(0),
            reason = self.reason.unwrap_or("-"),
            duration_ms = self.started.elapsed().as_millis() as u64,
            "delivery"
        );
    }
}

/// Answers one delivery.
async fn deliver(
    State(app): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut line = Refused {
        app: &app,
        started: Instant::now(),
        tenant: None,
        status: None,
        reason: None,
        accepted: false,
    };
    // The delivery's span (`[server.traces]`): the invocation and its requests are
    // its children. Nothing is built when no subscriber takes it.
    let span = tracing::info_span!(
        "delivery",
        otel.kind = "server",
        segfn.tenant = Empty,
        segfn.message_id = Empty,
        segfn.events = Empty,
        segfn.refusal = Empty,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    let handled = handle(&app, method, &headers, body, &mut line)
        .instrument(span.clone())
        .await;
    let response = match handled {
        Ok(response) => response,
        Err(refusal) => {
            line.accepted = false;
            line.reason = Some(refusal.reason());
            span.record("segfn.refusal", refusal.reason());
            refusal.into_response()
        }
    };
    let status = response.status();
    line.status = Some(status.as_u16());
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// The settings for this delivery and the redactor for them: the tenant's own, or
/// merged with `X-Segment-Settings` (cached: Segment sends the same header each time).
/// An unusable header is a message for a 400.
///
/// A new header is read on the blocking pool, not on the async workers that answer
/// every tenant: building its redactor is linear in the secrets' size (at most
/// [`segfn_engine::redact::MAX_SECRET_BYTES`]), but milliseconds all the same. The caller holds
/// the tenant's body permits meanwhile, so one tenant's headers wait on its own share.
async fn settings_for(
    tenant: &Arc<Tenant>,
    headers: &HeaderMap,
) -> Result<(Arc<str>, Arc<Redactor>), String> {
    let Some(value) = headers.get("x-segment-settings") else {
        return Ok((tenant.settings_json.clone(), tenant.redactor.clone()));
    };
    let header = value
        .to_str()
        .map_err(|_| "X-Segment-Settings is not ASCII".to_owned())?;
    let cached = tenant
        .header_settings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|c| c.header == header)
        .cloned();
    if let Some(cached) = cached {
        return Ok((cached.settings_json.clone(), cached.redactor.clone()));
    }
    let (owner, header) = (tenant.clone(), header.to_owned());
    let entry = tokio::task::spawn_blocking(move || header_settings(&owner, header))
        .await
        .map_err(|_| "X-Segment-Settings could not be read; retry".to_owned())??;
    let entry = Arc::new(entry);
    let mut cache = tenant
        .header_settings
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache.insert(0, entry.clone());
    cache.truncate(HEADER_SETTINGS_KEPT);
    Ok((entry.settings_json.clone(), entry.redactor.clone()))
}

/// The tenant's settings with an `X-Segment-Settings` value merged over them.
fn header_settings(tenant: &Tenant, header: String) -> Result<HeaderSettings, String> {
    let extra = auth::segment_settings(&header)?;
    let merged = auth::merge_settings(
        &tenant.settings,
        extra,
        tenant.overridable_settings.as_ref(),
    );
    let redactor = Redactor::from_settings(&merged, &tenant.secret_settings)
        .map_err(|e| format!("X-Segment-Settings: {e}"))?;
    Ok(HeaderSettings {
        header,
        settings_json: merged.to_string().into(),
        settings: merged,
        redactor: Arc::new(redactor),
    })
}

/// Distinct `X-Segment-Settings` values kept ready per tenant.
const HEADER_SETTINGS_KEPT: usize = 4;

/// Every refusal is a clear 4xx (or 429/503) with `{"message"}`, decided cheapest
/// first.
async fn handle(
    app: &Arc<AppState>,
    method: Method,
    headers: &HeaderMap,
    body: Body,
    line: &mut Refused<'_>,
) -> Result<Response, Refusal> {
    if method != Method::POST {
        return Err(Refusal::Method("Segment delivers with POST"));
    }
    if app.draining.load(Ordering::Relaxed) {
        return Err(Refusal::Draining);
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let key = auth::api_key(text("authorization")).map_err(|p| Refusal::Unauthorized(p.into()))?;
    let Some(tenant) = app.tenants.get(&key_hash(&key)).cloned() else {
        return Err(Refusal::Unauthorized(
            "unknown API key: it must be a tenant's api_key in the segfn configuration".into(),
        ));
    };
    line.tenant = Some(tenant.name.clone());
    tracing::Span::current().record("segfn.tenant", tenant.name.as_str());

    let json_type = text("content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(Refusal::MediaType("Content-Type must be application/json"));
    }
    let encoding = body::encoding(headers)?;
    body::check_declared_length(headers, app.max_body_bytes)?;
    if tenant.shared_secret.is_some() && headers.get("x-signature").is_none() {
        return Err(Refusal::Signature(auth::MISSING_SIGNATURE.into()));
    }
    // Every body read holds up to `max_body_bytes`, and parsing and the settings work
    // that follow cost in proportion: bounded per tenant, so one tenant's slow bodies
    // cannot hold up the others', and in all.
    let tenant_reading = tenant
        .body_permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            Refusal::TenantBusy(
                "too many of this tenant's deliveries arriving at once; retry shortly",
            )
        })?;
    let reading = app
        .body_permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| Refusal::Busy("too many deliveries arriving at once; retry shortly"))?;
    let bytes = body::read(body, encoding, app.max_body_bytes, app.body_timeout).await?;
    // A signature over the whole body is checked before anything is built from it.
    let unsigned = match &tenant.shared_secret {
        Some(secret) => match auth::verify_signature(secret, text("x-signature"), &bytes, None) {
            Ok(()) => None,
            Err(problem) if tenant.batch_signature == BatchSignature::WholeBody => {
                return Err(Refusal::Signature(problem.into()));
            }
            Err(problem) => Some((secret, problem)),
        },
        None => None,
    };
    let mut delivery = read_delivery(&bytes)
        .map_err(|e| Refusal::BadRequest(format!("the body is not a delivery: {e}")))?;
    if let Some((secret, problem)) = unsigned {
        // Segment signs a batch's first event only (as it was sent, before the batch's
        // `sentAt` and `writeKey` were added to it).
        let first_signed = delivery.batch
            && delivery.first_as_sent.as_deref().is_some_and(|first| {
                auth::verify_signature(secret, text("x-signature"), first.as_bytes(), Some(first))
                    .is_ok()
            });
        if !first_signed {
            return Err(Refusal::Signature(problem.into()));
        }
    }
    let (settings, redactor) = settings_for(&tenant, headers)
        .await
        .map_err(Refusal::BadRequest)?;
    drop((tenant_reading, reading));
    let now = SystemTime::now();
    for message in &mut delivery.messages {
        message.stamp_received_at(now);
    }

    // Durable deliveries only commit to the store here; the workers take the
    // invocation permits.
    let permits = if tenant.durable {
        None
    } else {
        let tenant_permit = tenant.permits.clone().try_acquire_owned().map_err(|_| {
            Refusal::TenantBusy("this tenant has too many deliveries in flight; retry shortly")
        })?;
        let permit = app
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Busy("too many deliveries in flight; retry shortly"))?;
        Some((tenant_permit, permit))
    };
    line.accepted = true;
    // The delivery runs in its own task: if Segment hangs up, the function still
    // finishes and its messageIds are still recorded, so a retry is not run twice.
    let work = Delivery {
        app: app.clone(),
        tenant,
        messages: delivery.messages,
        batch: delivery.batch,
        settings,
        redactor,
        started: line.started,
        permits,
    };
    match tokio::spawn(delivery::run(work).in_current_span()).await {
        Ok(answered) => answered,
        Err(e) => {
            tracing::error!(error = %e, "delivery task failed");
            Err(Refusal::Unavailable(
                "temporary host fault; retry later".into(),
            ))
        }
    }
}
