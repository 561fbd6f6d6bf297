//! Why the endpoint refuses a request instead of running the function: one enum, and
//! one table (`Refusal::row`) from each reason to its HTTP status and the label logs
//! and `segfn_refused_total` use, as `segfn_engine::outcome` is for outcomes. Every
//! refusal answers `{"message": ...}`; a 429 adds `Retry-After`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

/// Why a request was refused, with the message the sender gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a POST (the message says what the path takes).
    Method(&'static str),
    /// The server is shutting down.
    Draining,
    /// No usable API key, or one no tenant has (or no admin token).
    Unauthorized(Cow<'static, str>),
    /// `X-Signature` missing, malformed or wrong.
    Signature(Cow<'static, str>),
    /// A `Content-Type` or `Content-Encoding` the endpoint does not take.
    MediaType(&'static str),
    /// The body, as declared, as sent or decompressed, is over the cap.
    TooLarge(String),
    /// The body did not arrive in time.
    SlowBody(String),
    /// The request cannot be used: an unreadable body, not a delivery, an unusable
    /// `X-Segment-Settings`, a malformed admin request.
    BadRequest(String),
    /// An admin request for something that is not there.
    NotFound(String),
    /// The tenant's share of capacity is in use (or its queue is full).
    TenantBusy(&'static str),
    /// The server's capacity is in use, or a delivery of the same messageId runs.
    Busy(&'static str),
    /// The store is unreachable, or too little time is left: nothing ran.
    Unavailable(Cow<'static, str>),
}

impl Refusal {
    /// The table: the label logs and metrics use, and the HTTP status.
    pub fn row(&self) -> (&'static str, StatusCode) {
        match self {
            Refusal::Method(_) => ("method", StatusCode::METHOD_NOT_ALLOWED),
            Refusal::Draining => ("draining", StatusCode::SERVICE_UNAVAILABLE),
            Refusal::Unauthorized(_) => ("unauthorized", StatusCode::UNAUTHORIZED),
            Refusal::Signature(_) => ("signature", StatusCode::UNAUTHORIZED),
            Refusal::MediaType(_) => ("media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            Refusal::TooLarge(_) => ("too_large", StatusCode::PAYLOAD_TOO_LARGE),
            Refusal::SlowBody(_) => ("slow_body", StatusCode::REQUEST_TIMEOUT),
            Refusal::BadRequest(_) => ("bad_request", StatusCode::BAD_REQUEST),
            Refusal::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
            Refusal::TenantBusy(_) => ("tenant_busy", StatusCode::TOO_MANY_REQUESTS),
            Refusal::Busy(_) => ("busy", StatusCode::TOO_MANY_REQUESTS),
            Refusal::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        }
    }

    /// The label in logs and metrics.
    pub fn reason(&self) -> &'static str {
        self.row().0
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.row().1
    }

    /// What the sender is told.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Draining => "the server is shutting down; retry later",
            Refusal::Method(m) | Refusal::MediaType(m) | Refusal::TenantBusy(m) => m,
            Refusal::Busy(m) => m,
            Refusal::Unauthorized(m) | Refusal::Signature(m) | Refusal::Unavailable(m) => m,
            Refusal::TooLarge(m)
            | Refusal::SlowBody(m)
            | Refusal::BadRequest(m)
            | Refusal::NotFound(m) => m,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            axum::Json(serde_json::json!({ "message": self.message() })),
        )
            .into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_a_4xx_or_503_with_its_message() {
        let all = [
            Refusal::Method("Segment delivers with POST"),
            Refusal::Draining,
            Refusal::Unauthorized("no key".into()),
            Refusal::Signature("bad".into()),
            Refusal::MediaType("json only"),
            Refusal::TooLarge("big".into()),
            Refusal::SlowBody("slow".into()),
            Refusal::BadRequest("bad".into()),
            Refusal::NotFound("none".into()),
            Refusal::TenantBusy("tenant busy"),
            Refusal::Busy("busy"),
            Refusal::Unavailable("store".into()),
        ];
        let mut reasons = std::collections::HashSet::new();
        for refusal in all {
            let status = refusal.status();
            assert!(
                status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
                "{refusal:?}"
            );
            assert!(
                reasons.insert(refusal.reason()),
                "{refusal:?}: one label each"
            );
            assert!(!refusal.message().is_empty());
            let response = refusal.into_response();
            assert_eq!(
                response.headers().contains_key(header::RETRY_AFTER),
                status == StatusCode::TOO_MANY_REQUESTS
            );
        }
    }
}
