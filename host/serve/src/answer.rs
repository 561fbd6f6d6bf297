//! The answers Segment gets for a delivery that ran or was queued (refusals are
//! [`super::refusal`]'s): one message's status and result, or a batch's results in
//! order; in durable mode, what became of each event (queued, duplicate, refused).

use super::refusal::Refusal;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use segfn_engine::Report;
use segfn_engine::outcome::{OutcomeKind, row};
use segfn_sdk::abi::EventResult;
use serde_json::{Value, json};

/// One message's part of an answer.
fn result_json(result: &EventResult) -> Value {
    let mut out = json!({
        "kind": result.kind,
        "status": row(result.kind).http_status,
        "message": result.message,
    });
    if let Some(event) = &result.output {
        out["output"] = event.clone();
    }
    out
}

/// A delivery's answer. One message: its outcome's status with `{kind, status,
/// message, output?}`. A batch: `{message, results: [...]}`, 500 when some event needs
/// a retry, 200 otherwise. With `report` (debug responses), the report too.
pub(crate) fn outcome(batch: bool, results: &[EventResult], report: Option<&Report>) -> Response {
    let (status, mut body) = if batch {
        let retry = results.iter().any(|r| r.kind == OutcomeKind::Retry);
        let status = if retry {
            row(OutcomeKind::Retry).http_status
        } else {
            200
        };
        let body = json!({
            "message": if retry { "some events need a retry" } else { "ok" },
            "results": results.iter().map(result_json).collect::<Vec<_>>(),
        });
        (status, body)
    } else {
        let Some(result) = results.first() else {
            return Refusal::BadRequest("the delivery holds no message".into()).into_response();
        };
        let mut body = result_json(result);
        if body["message"].is_null() {
            body["message"] = "ok".into();
        }
        (row(result.kind).http_status, body)
    };
    if let Some(report) = report {
        body["report"] = serde_json::to_value(report).unwrap_or(Value::Null);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

/// What durable mode did with one event of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Committed to the queue under this id.
    Queued(u64),
    /// Already processed or queued within the window.
    Duplicate,
    /// The same messageId as an earlier event of this batch.
    Repeat(Box<Fate>),
    /// Refused before queueing (the problem).
    Refused(String),
}

impl Fate {
    /// The fate of a repeat of this event within a batch.
    pub(crate) fn repeated(self) -> Fate {
        match self {
            Fate::Repeat(first) => Fate::Repeat(first),
            first => Fate::Repeat(Box::new(first)),
        }
    }

    /// The outcome label in logs and metrics.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Fate::Queued(_) => "queued",
            Fate::Duplicate | Fate::Repeat(_) => "duplicate",
            Fate::Refused(_) => "bad_request",
        }
    }

    /// This event's HTTP status.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Fate::Queued(_) => 202,
            Fate::Duplicate => 200,
            Fate::Repeat(first) => first.status(),
            Fate::Refused(_) => row(OutcomeKind::BadRequest).http_status,
        }
    }

    fn json(&self) -> Value {
        let (kind, message) = match self {
            Fate::Queued(_) => (
                "queued",
                "queued: the server runs it and retries it".to_owned(),
            ),
            Fate::Duplicate => (
                "success",
                "duplicate: this messageId was already processed or queued".to_owned(),
            ),
            Fate::Repeat(first) => {
                let mut out = first.json();
                out["message"] = "duplicate within this batch".into();
                return out;
            }
            Fate::Refused(problem) => (OutcomeKind::BadRequest.as_str(), problem.clone()),
        };
        let mut out = json!({ "kind": kind, "status": self.status(), "message": message });
        if let Fate::Queued(id) = self {
            out["id"] = (*id).into();
        }
        out
    }
}

/// A durable delivery's answer. One message: its fate's status (202 queued, 200
/// duplicate, 400 refused). A batch: 202 with each event's fate, in order.
pub(crate) fn queued(batch: bool, fates: &[Fate]) -> Response {
    let (status, body) = if batch {
        (
            202,
            json!({
                "message": "queued",
                "results": fates.iter().map(Fate::json).collect::<Vec<_>>(),
            }),
        )
    } else {
        let Some(fate) = fates.first() else {
            return Refusal::BadRequest("the delivery holds no message".into()).into_response();
        };
        (fate.status(), fate.json())
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}
