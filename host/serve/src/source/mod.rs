//! Source functions served as webhook URLs: `POST /webhooks/TOKEN` runs the source's
//! function (`onRequest`) on the request and hands the Segment calls it made to the
//! source's sender ([`outbox`]), which sends them to Segment's Tracking API (and
//! `Segment.set` objects to the Objects API) batched across webhooks. The webhook is
//! answered 200 once Segment accepted them, or, in durable mode, once they are queued in
//! the store. Webhook senders rarely sign or authenticate, so the unguessable token in
//! the URL selects the source (looked up by its digest, never compared raw). Each event
//! gets a `messageId` derived from the source, the query, the body and its position, so
//! a sender's retry of the same webhook makes the same ids and Segment drops the repeat.

pub mod config;
pub mod instance;
pub mod outbox;
pub mod parcel;
pub mod tracking;

pub use instance::Source;

use super::app::{AppState, key_hash};
use super::body;
use super::refusal::Refusal;
use super::store::{Enqueued, MessageKey, NewJob};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use segfn_engine::outcome::row;
use segfn_engine::{InvokeOptions, Output};
use segfn_sdk::abi::{OutcomeKind, RawCall};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tracing::Instrument as _;

/// Largest webhook body, compressed or not.
pub const MAX_WEBHOOK_BYTES: usize = 512 << 10;

/// `POST /webhooks/TOKEN`.
pub async fn webhook(
    State(app): State<Arc<AppState>>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Body,
) -> Response {
    let started = Instant::now();
    let source = app.sources.get(&key_hash(&token)).cloned();
    let name = source.as_ref().map(|s| s.name.clone());
    // The webhook's span (`[server.traces]`), parent of its invocation's; the token
    // is not in it, only the source's name.
    let span = tracing::info_span!(
        "webhook",
        otel.kind = "server",
        segfn.source = name.as_deref(),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let answered = match source {
        None => Err(Refusal::NotFound("no webhook at this URL".into())),
        Some(source) => {
            handle(&app, &source, method, &headers, &uri, body)
                .instrument(span.clone())
                .await
        }
    };
    let (response, outcome) = match answered {
        Ok((response, outcome)) => (response, outcome),
        Err(refusal) => {
            app.metrics.refused(name.as_deref(), refusal.reason());
            (refusal.into_response(), "refused")
        }
    };
    span.record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    tracing::info!(
        source = name.as_deref().unwrap_or("-"),
        outcome,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        "webhook"
    );
    response
}

/// Checks, reads and runs one webhook, and sends what the function made.
async fn handle(
    app: &AppState,
    source: &Source,
    method: Method,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: Body,
) -> Result<(Response, &'static str), Refusal> {
    if method != Method::POST {
        return Err(Refusal::Method("a webhook takes POST"));
    }
    if app.draining.load(Ordering::Relaxed) {
        return Err(Refusal::Draining);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|ct| ct.trim().to_ascii_lowercase());
    if !matches!(
        content_type.as_deref(),
        Some("application/json" | "application/x-www-form-urlencoded")
    ) {
        return Err(Refusal::MediaType(
            "Content-Type must be application/json or application/x-www-form-urlencoded",
        ));
    }
    let encoding = body::encoding(headers)?;
    body::check_declared_length(headers, MAX_WEBHOOK_BYTES)?;
    // The source's share covers the whole request; the server's invocation permits only
    // the invocation (a slow Tracking API must not starve destinations' deliveries),
    // and bodies are read under the server's body permits, as deliveries' are.
    let _permit = source.permits.clone().try_acquire_owned().map_err(|_| {
        Refusal::TenantBusy("too many of this source's webhooks at once; retry shortly")
    })?;
    let reading = app
        .body_permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| Refusal::Busy("too many requests arriving at once; retry shortly"))?;
    let bytes = body::read(body, encoding, MAX_WEBHOOK_BYTES, app.body_timeout).await?;
    drop(reading);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Refusal::BadRequest("the body is not UTF-8 text".into()))?;

    // The URL without its token: events are data, sent on as the function made them,
    // and a function that copies its URL into one must not hand the credential on.
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let request = json!({
        "body": text,
        "headers": header_object(headers),
        "url": format!(
            "https://{}/webhooks/{TOKEN_SHOWN}{query}",
            headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
        ),
    });
    let options = InvokeOptions {
        limits: app.limits.clone(),
        client: source.client.clone(),
        redactor: source.redactor.clone(),
        capture_bodies: false,
    };
    let function = source.function.current();
    let invoking = app
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| Refusal::Busy("too many requests in flight; retry shortly"))?;
    // The settings go as the text they are kept as (no tree to build and write back).
    let report = function
        .invoke_json::<&str>(
            &options,
            RawCall::Request(&request.to_string()),
            &source.settings_json,
        )
        .await;
    drop(invoking);
    if report.outcome.kind != OutcomeKind::Success {
        let status = StatusCode::from_u16(row(report.outcome.kind).http_status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = report.outcome.message.clone().unwrap_or_default();
        app.metrics
            .source_request(&source.name, report.outcome.kind.as_str());
        let body = json!({"kind": report.outcome.kind, "message": message});
        return Ok((
            (status, axum::Json(body)).into_response(),
            report.outcome.kind.as_str(),
        ));
    }
    let Output::Emitted(mut emitted) = report.output else {
        return Err(Refusal::Unavailable(
            "the function gave no calls; retry".into(),
        ));
    };
    let base = stamp_message_ids(&source.name, &query, &bytes, &mut emitted.events);
    if let Err(e) = tracking::check(&emitted.events) {
        // The function made a message Segment would refuse: its error, not Segment's.
        app.metrics.source_request(&source.name, "not_sent");
        let body = json!({"kind": OutcomeKind::BadRequest, "message": e.to_string()});
        return Ok((
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
            "not_sent",
        ));
    }
    let counts = json!({"events": emitted.events.len(), "objects": emitted.objects.len()});
    if emitted.events.is_empty() && emitted.objects.is_empty() {
        // Nothing to send (a webhook the function ignores): nothing to wait for or keep.
        app.metrics.source_request(&source.name, "success");
        let mut body = counts;
        body["message"] = "nothing to send".into();
        return Ok((
            (StatusCode::OK, axum::Json(body)).into_response(),
            "success",
        ));
    }
    let parcel = parcel::Parcel {
        events: emitted.events,
        objects: emitted.objects,
    };
    let (outcome, message) = if source.durable {
        queue(app, source, &base, &parcel).await?
    } else {
        match hand_over(source, parcel).await? {
            Ok(()) => ("success", "ok"),
            Err(e) => {
                // Segment's answer is quoted in it: redacted before it is answered.
                let message = source.redactor.redact(&e.to_string()).into_owned();
                app.metrics.source_request(&source.name, "not_sent");
                let status = if e.retryable() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_GATEWAY
                };
                let body = json!({"message": message});
                return Ok(((status, axum::Json(body)).into_response(), "not_sent"));
            }
        }
    };
    app.metrics.source_request(&source.name, outcome);
    let mut body = counts;
    body["message"] = message.into();
    Ok(((StatusCode::OK, axum::Json(body)).into_response(), outcome))
}

/// Durable mode: commits the parcel to the source's queue (once per webhook: a
/// sender's retry of one already queued is a duplicate) and wakes the sender.
async fn queue(
    app: &AppState,
    source: &Source,
    base: &str,
    parcel: &parcel::Parcel,
) -> Result<(&'static str, &'static str), Refusal> {
    let name = outbox::queue_name(&source.name);
    let job = NewJob {
        key: Some(MessageKey::new(&name, base)),
        message_id: base.to_owned(),
        event_type: "webhook".into(),
        event: serde_json::to_string(parcel).unwrap_or_default(),
        settings: None,
    };
    match app.store.enqueue(&name, vec![job], app.max_queued).await {
        Ok((enqueued, _)) => match enqueued.first() {
            Some(Enqueued::Queued(_)) => {
                source.wake.notify_one();
                Ok(("queued", "queued"))
            }
            Some(Enqueued::Duplicate) => Ok(("duplicate", "already queued")),
            _ => {
                tracing::warn!(source = %source.name, max_queued = app.max_queued, "queue full: webhook refused");
                Err(Refusal::TenantBusy(
                    "this source's queue is full (max_queued); retry later",
                ))
            }
        },
        Err(e) => {
            tracing::error!(source = %source.name, error = %e, "queueing a webhook's calls");
            Err(Refusal::Unavailable(
                "storage is unavailable; retry later".into(),
            ))
        }
    }
}

/// Direct mode: hands the parcel to the sender and waits for Segment's answer.
async fn hand_over(
    source: &Source,
    parcel: parcel::Parcel,
) -> Result<Result<(), tracking::SendError>, Refusal> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    source.outbox.try_send((parcel, reply)).map_err(|_| {
        Refusal::TenantBusy("too many of this source's webhooks waiting for Segment; retry shortly")
    })?;
    answer
        .await
        .map_err(|_| Refusal::Unavailable("the sender stopped; retry".into()))
}

/// The request's headers as the function sees them: names to values, several values of
/// one name joined with `, `.
fn header_object(headers: &HeaderMap) -> Value {
    let mut out = serde_json::Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                out.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    Value::Object(out)
}

/// What the function sees of the webhook's URL in place of its token.
const TOKEN_SHOWN: &str = "[token]";

/// Gives each event without a `messageId` one derived from the source, the webhook's
/// query and body and the event's position: the same webhook sent again makes the same
/// ids. Two webhooks alike in all of these are one for Segment (a function that must
/// tell them apart sets its own `messageId`, from the sender's event id).
/// Returns the webhook's digest the ids start with.
fn stamp_message_ids(source: &str, query: &str, body: &[u8], events: &mut [Value]) -> String {
    let mut digest = sha2::Sha256::new();
    for part in [source.as_bytes(), query.as_bytes(), body] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    let base = hex::encode(&digest.finalize()[..12]);
    for (i, event) in events.iter_mut().enumerate() {
        if let Some(fields) = event.as_object_mut()
            && !fields.contains_key("messageId")
        {
            fields.insert(
                "messageId".into(),
                Value::String(format!("segfn-{base}-{i}")),
            );
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_depend_on_the_source_the_body_and_the_position() {
        let mut a = vec![
            json!({"type": "track"}),
            json!({"type": "identify", "messageId": "own"}),
        ];
        let mut b = a.clone();
        stamp_message_ids("gh", "", b"{}", &mut a);
        stamp_message_ids("gh", "", b"{}", &mut b);
        assert_eq!(a, b, "the same webhook again: the same ids");
        assert_eq!(a[1]["messageId"], "own", "an id the function set is kept");
        let mut c = vec![json!({"type": "track"})];
        stamp_message_ids("gh", "", b"{\"x\":1}", &mut c);
        assert_ne!(a[0]["messageId"], c[0]["messageId"]);
        let mut d = vec![json!({"type": "track"})];
        stamp_message_ids("gh", "?form=2", b"{}", &mut d);
        assert_ne!(
            a[0]["messageId"], d[0]["messageId"],
            "another query, another id"
        );
    }
}
