//! Reading what Segment delivers: one message, a JSON array of messages, or
//! `{"batch": [...]}` (the tracking API's batch, whose `sentAt` and `writeKey` reach
//! each event as Segment would set them); and the checks every message
//! passes before a function sees it.

use segfn_sdk::abi::{Call, MAX_NESTING};
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a delivery body is not a message or batch.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Not JSON at all.
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but neither a message nor a batch.
    #[error(
        "expected a Segment message (a JSON object), an array of messages or {{\"batch\": [...]}}, found {0}"
    )]
    Shape(&'static str),
    /// An empty batch.
    #[error("the batch is empty")]
    EmptyBatch,
}

/// Parses a delivery body into the call to make.
pub fn parse_delivery(body: &[u8]) -> Result<Call, InputError> {
    let value: Value = serde_json::from_slice(body)?;
    let events = match value {
        Value::Array(events) => events,
        Value::Object(mut map)
            if matches!(map.get("batch"), Some(Value::Array(_))) && !map.contains_key("type") =>
        {
            match map.remove("batch") {
                Some(Value::Array(mut events)) => {
                    inherit_batch_fields(&mut events, &map);
                    events
                }
                _ => unreachable!("checked above"),
            }
        }
        Value::Object(map) => {
            return Ok(Call::Event {
                event: Value::Object(map),
            });
        }
        Value::Null => return Err(InputError::Shape("null")),
        Value::Bool(_) => return Err(InputError::Shape("a boolean")),
        Value::Number(_) => return Err(InputError::Shape("a number")),
        Value::String(_) => return Err(InputError::Shape("a string")),
    };
    if events.is_empty() {
        return Err(InputError::EmptyBatch);
    }
    Ok(Call::Batch { events })
}

/// What the tracking API copies from a batch onto each of its events that lacks it.
const BATCH_FIELDS: [&str; 2] = ["sentAt", "writeKey"];

fn inherit_batch_fields(events: &mut [Value], batch: &Map<String, Value>) {
    for event in events {
        let Value::Object(event) = event else {
            continue;
        };
        for field in BATCH_FIELDS {
            if let Some(value) = batch.get(field)
                && !event.contains_key(field)
            {
                event.insert(field.to_owned(), value.clone());
            }
        }
    }
}

/// Sets `receivedAt` (now, ISO 8601 in UTC with milliseconds, as Segment writes it)
/// on a message that has none: Segment sets it on arrival, so messages sent straight
/// from a client library get it here.
pub fn stamp_received_at(event: &mut Value, now: SystemTime) {
    if let Value::Object(map) = event
        && !map.contains_key("receivedAt")
    {
        map.insert("receivedAt".into(), Value::String(iso8601_millis(now)));
    }
}

/// `2026-11-27T16:14:56.123Z`.
pub fn iso8601_millis(time: SystemTime) -> String {
    let ms = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()) as i64;
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// Why a message is refused before any function sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageProblem {
    /// Nested deeper than [`MAX_NESTING`].
    #[error("the message nests deeper than {MAX_NESTING} levels of arrays and objects")]
    TooDeep,
    /// A `messageId` longer than [`MAX_MESSAGE_ID_BYTES`].
    #[error("its messageId is longer than {MAX_MESSAGE_ID_BYTES} bytes")]
    MessageIdTooLong,
}

/// Longest `messageId` accepted. Segment's are 36 to about 60 characters.
pub const MAX_MESSAGE_ID_BYTES: usize = 256;

/// Checks a message's nesting depth and `messageId` length.
pub fn check_message(event: &Value) -> Result<(), MessageProblem> {
    if depth(event) > MAX_NESTING {
        return Err(MessageProblem::TooDeep);
    }
    if event
        .get("messageId")
        .and_then(Value::as_str)
        .is_some_and(|id| id.len() > MAX_MESSAGE_ID_BYTES)
    {
        return Err(MessageProblem::MessageIdTooLong);
    }
    Ok(())
}

/// Levels of arrays and objects: `1` for `{}`, `0` for a scalar. Without recursion,
/// so no input can exhaust the stack.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1)];
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(level);
        stack.extend(children.map(|v| (v, level + 1)));
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        assert!(matches!(
            parse_delivery(br#"{"type":"track"}"#).unwrap(),
            Call::Event { .. }
        ));
        let Call::Batch { events } =
            parse_delivery(br#"[{"type":"track"},{"type":"page"}]"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(events.len(), 2);
        let Call::Batch { events } = parse_delivery(br#"{"batch":[{"type":"track"}]}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(events, vec![json!({"type": "track"})]);
        assert!(matches!(parse_delivery(b"[]"), Err(InputError::EmptyBatch)));
        assert!(matches!(
            parse_delivery(b"\"x\""),
            Err(InputError::Shape("a string"))
        ));
        assert!(matches!(
            parse_delivery(b"{\"type\":"),
            Err(InputError::Json(_))
        ));
    }

    #[test]
    fn batch_fields_reach_each_event_that_lacks_them() {
        let body = br#"{"batch":[{"type":"track"},{"type":"page","sentAt":"own"}],"sentAt":"2024-01-01T00:00:00.000Z","writeKey":"wk"}"#;
        let Call::Batch { events } = parse_delivery(body).unwrap() else {
            panic!()
        };
        assert_eq!(events[0]["sentAt"], "2024-01-01T00:00:00.000Z");
        assert_eq!(events[0]["writeKey"], "wk");
        assert_eq!(events[1]["sentAt"], "own");
    }

    #[test]
    fn received_at_is_iso8601_and_never_overwritten() {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(1_795_796_096_123);
        assert_eq!(iso8601_millis(at), "2026-11-27T16:14:56.123Z");
        assert_eq!(iso8601_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(iso8601_millis(leap), "2000-02-29T00:00:00.000Z");
        let mut e = json!({"type": "track"});
        stamp_received_at(&mut e, at);
        assert_eq!(e["receivedAt"], "2026-11-27T16:14:56.123Z");
        let mut kept = json!({"receivedAt": "earlier"});
        stamp_received_at(&mut kept, at);
        assert_eq!(kept["receivedAt"], "earlier");
    }

    #[test]
    fn nesting_and_message_ids_are_bounded() {
        let nest = |n: usize| -> Value {
            let text = format!("{}1{}", "[".repeat(n), "]".repeat(n));
            serde_json::from_str(&text).unwrap()
        };
        let at_limit = json!({ "properties": nest(MAX_NESTING - 1) });
        assert_eq!(check_message(&at_limit), Ok(()));
        let deeper = json!({ "properties": nest(MAX_NESTING) });
        assert_eq!(check_message(&deeper), Err(MessageProblem::TooDeep));
        let long = json!({ "messageId": "m".repeat(MAX_MESSAGE_ID_BYTES + 1) });
        assert_eq!(check_message(&long), Err(MessageProblem::MessageIdTooLong));
        assert_eq!(check_message(&json!({ "messageId": "ajs-next-1" })), Ok(()));
    }
}
