//! Source functions served as webhook URLs: `POST /webhooks/TOKEN` runs the source's
//! function (`onRequest`) on the request and sends the Segment calls it made to
//! Segment's Tracking API (and `Segment.set` objects to the Objects API) before it
//! answers, so a 200 means Segment accepted them. Webhook senders rarely sign or
//! authenticate, so the unguessable token in the URL selects the source (looked up by
//! its digest, never compared raw). Each event gets a `messageId` derived from the
//! source, the body and its position, so a sender's retry of the same webhook makes the
//! same ids and Segment drops the repeat.

pub mod config;
pub mod instance;
pub mod tracking;

pub use instance::Source;

use super::app::{AppState, key_hash};
use super::body;
use super::refusal::Refusal;
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
use std::time::{Duration, Instant};

/// Largest webhook body, compressed or not.
pub const MAX_WEBHOOK_BYTES: usize = 512 << 10;

/// How long sending the calls to Segment may take before the sender is asked to retry.
const SEND_WITHIN: Duration = Duration::from_secs(10);

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
    let answered = match source {
        None => Err(Refusal::NotFound("no webhook at this URL".into())),
        Some(source) => handle(&app, &source, method, &headers, &uri, body).await,
    };
    let (response, outcome) = match answered {
        Ok((response, outcome)) => (response, outcome),
        Err(refusal) => {
            app.metrics.refused(name.as_deref(), refusal.reason());
            (refusal.into_response(), "refused")
        }
    };
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
    stamp_message_ids(&source.name, &query, &bytes, &mut emitted.events);
    let to = tracking::Destination {
        tracking_api: &source.tracking_api,
        objects_api: &source.objects_api,
        write_key: &source.write_key,
    };
    let sent = tracking::send(
        &app.segment_client,
        &to,
        &emitted.events,
        &emitted.objects,
        Instant::now() + SEND_WITHIN,
    )
    .await;
    match sent {
        Ok(_) => {
            app.metrics.source_request(&source.name, "success");
            app.metrics
                .source_sent(&source.name, emitted.events.len() as u64);
            let body = json!({
                "message": "ok",
                "events": emitted.events.len(),
                "objects": emitted.objects.len(),
            });
            Ok((
                (StatusCode::OK, axum::Json(body)).into_response(),
                "success",
            ))
        }
        Err(e) => {
            // Segment's answer is quoted in it: redacted before it is logged or answered.
            let message = source.redactor.redact(&e.to_string()).into_owned();
            tracing::warn!(source = %source.name, error = %message, "sending a webhook's calls to Segment");
            app.metrics.source_request(&source.name, "not_sent");
            let (status, body) = match e {
                // The function made a message Segment would refuse: its error, not
                // Segment's (nothing was sent).
                tracking::SendError::TooLarge { .. } => (
                    StatusCode::BAD_REQUEST,
                    json!({"kind": OutcomeKind::BadRequest, "message": message}),
                ),
                e if e.retryable() => {
                    (StatusCode::SERVICE_UNAVAILABLE, json!({"message": message}))
                }
                _ => (StatusCode::BAD_GATEWAY, json!({"message": message})),
            };
            Ok(((status, axum::Json(body)).into_response(), "not_sent"))
        }
    }
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
fn stamp_message_ids(source: &str, query: &str, body: &[u8], events: &mut [Value]) {
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
