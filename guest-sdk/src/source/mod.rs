//! Source functions: a third party's webhook in ([`WebhookRequest`]), Segment calls out
//! ([`Segment`]), as Segment's `onRequest(request, settings)` with `Segment.track(...)`
//! and friends. The calls are validated and written as Segment's own harness does:
//! track needs `event`, group `groupId`, alias `previousId`, an object `collection` and
//! `id`; every event call needs `userId` or `anonymousId`; only the fields a call knows
//! are kept, and only when set (not `null`, `false`, `0` or `""`), in the harness's order.
//!
//! ```
//! use segfn_sdk::source::{Segment, WebhookRequest, track};
//! use segfn_sdk::Error;
//!
//! fn on_request(request: &WebhookRequest, segment: &mut Segment) -> Result<(), Error> {
//!     let body: serde_json::Value = request.json()?;
//!     let event = request.header("X-GitHub-Event").unwrap_or("unknown");
//!     segment.send(track(event).user_id(body["sender"]["id"].to_string()))?;
//!     Ok(())
//! }
//!
//! let request = WebhookRequest::from_json(serde_json::json!({"sender": {"id": 7}}))
//!     .with_header("x-github-event", "ping");
//! let mut segment = Segment::default();
//! on_request(&request, &mut segment).unwrap();
//! assert_eq!(
//!     segment.emitted().events[0],
//!     serde_json::json!({"type": "track", "event": "ping", "userId": "7"})
//! );
//! ```

mod calls;
mod harness;
mod request;

pub use crate::abi::Emitted;
pub use calls::{Call, Segment, SetObject, alias, group, identify, object, page, screen, track};
pub use harness::{HarnessFile, read_harness};
pub use request::WebhookRequest;

use serde_json::Value;

/// What JavaScript counts as set: not `null`, `false`, `0` or `""` (as
/// `facade::truthy`, which ports use for their own tests).
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}
