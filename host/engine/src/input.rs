//! Reading what Segment delivers: one message, a JSON array of messages, or
//! `{"batch": [...]}` (the tracking API's batch, whose `sentAt` and `writeKey` reach
//! each event as Segment would set them); and the checks every message
//! passes before a function sees it.

use segfn_sdk::abi::{Call, MAX_NESTING};
use serde::Deserialize;
use serde_json::value::RawValue;
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
    /// More messages than [`MAX_MESSAGES`].
    #[error("the delivery holds more than {MAX_MESSAGES} messages; send smaller batches")]
    TooMany,
    /// Not UTF-8.
    #[error("not valid JSON: the body is not UTF-8")]
    Utf8,
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

/// A delivery read without building a tree of its messages: each message's own JSON
/// text (handed to the guest as it is, so it parses each message once) and the few
/// fields the endpoint reads.
#[derive(Debug)]
pub struct RawDelivery {
    /// The messages, in order.
    pub messages: Vec<RawMessage>,
    /// An array or `{"batch"}` body (answered as a batch, even of one).
    pub batch: bool,
    /// A batch's first message as it was sent, before fields of the batch were added
    /// to it: what Segment's signature covers.
    pub first_as_sent: Option<String>,
}

/// Most messages one delivery may hold. Segment's batches are far smaller (its
/// tracking API takes 500 KB per batch); the cap bounds the work a small, well
/// compressed body can cause.
pub const MAX_MESSAGES: usize = 10_000;

/// One message as received.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// Its JSON text.
    pub json: String,
    /// `type` (or the legacy `action`), when a string.
    pub event_type: Option<String>,
    /// `messageId`, when a string.
    pub message_id: Option<String>,
    received_at: bool,
    sent_at: bool,
    write_key: bool,
}

/// The fields read from a message (or a batch body), borrowed from the body; the rest
/// is skipped without being built.
#[derive(Deserialize, Default)]
struct Fields<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    action: Option<&'a RawValue>,
    #[serde(rename = "messageId", default, borrow)]
    message_id: Option<&'a RawValue>,
    #[serde(rename = "receivedAt", default, borrow)]
    received_at: Option<&'a RawValue>,
    #[serde(rename = "sentAt", default, borrow)]
    sent_at: Option<&'a RawValue>,
    #[serde(rename = "writeKey", default, borrow)]
    write_key: Option<&'a RawValue>,
    #[serde(default, borrow)]
    batch: Option<&'a RawValue>,
}

/// A JSON string's value, or `None` for any other JSON.
fn string(raw: Option<&RawValue>) -> Option<String> {
    raw.filter(|r| r.get().starts_with('"'))
        .and_then(|r| serde_json::from_str(r.get()).ok())
}

impl RawMessage {
    fn new(raw: &RawValue) -> RawMessage {
        // Not an object, or an object with a repeated key: nothing read, passed on as is.
        let fields: Fields = serde_json::from_str(raw.get()).unwrap_or_default();
        RawMessage {
            json: raw.get().to_owned(),
            event_type: string(fields.kind).or_else(|| string(fields.action)),
            message_id: string(fields.message_id),
            received_at: fields.received_at.is_some(),
            sent_at: fields.sent_at.is_some(),
            write_key: fields.write_key.is_some(),
        }
    }

    /// Adds `"key":value` (value already JSON) at the end of the message object.
    fn add_field(&mut self, key: &str, value: &str) {
        let Some(close) = self.json.rfind('}').filter(|_| self.json.starts_with('{')) else {
            return;
        };
        let empty = self.json[1..close].trim().is_empty();
        let field = format!("{}\"{key}\":{value}", if empty { "" } else { "," });
        self.json.insert_str(close, &field);
    }

    /// Sets `receivedAt` (now, ISO 8601 in UTC with milliseconds, as Segment writes it)
    /// when the message has none: Segment sets it on arrival, so messages sent straight
    /// from a client library get it here.
    pub fn stamp_received_at(&mut self, now: SystemTime) {
        if !self.received_at {
            self.add_field("receivedAt", &format!("\"{}\"", iso8601_millis(now)));
            self.received_at = true;
        }
    }

    /// Checks nesting depth (at most [`MAX_NESTING`]) and `messageId` length (at most
    /// [`MAX_MESSAGE_ID_BYTES`]).
    pub fn check(&self) -> Result<(), MessageProblem> {
        if text_depth(&self.json) > MAX_NESTING {
            return Err(MessageProblem::TooDeep);
        }
        if self
            .message_id
            .as_ref()
            .is_some_and(|id| id.len() > MAX_MESSAGE_ID_BYTES)
        {
            return Err(MessageProblem::MessageIdTooLong);
        }
        Ok(())
    }
}

/// Reads a delivery body: one message, an array of messages, or `{"batch": [...]}`
/// (whose `sentAt` and `writeKey` reach each event that lacks them).
pub fn read_delivery(body: &[u8]) -> Result<RawDelivery, InputError> {
    let text = std::str::from_utf8(body).map_err(|_| InputError::Utf8)?;
    let mut first_as_sent = None;
    let (messages, batch) = match text.trim_start().as_bytes().first() {
        Some(b'[') => {
            check_count(text)?;
            let events: Vec<&RawValue> = serde_json::from_str(text)?;
            first_as_sent = events.first().map(|e| e.get().to_owned());
            (events.into_iter().map(RawMessage::new).collect(), true)
        }
        Some(b'{') => {
            let outer: Fields = serde_json::from_str(text)?;
            match outer
                .batch
                .filter(|b| b.get().starts_with('[') && outer.kind.is_none())
            {
                Some(batch) => {
                    check_count(batch.get())?;
                    let events: Vec<&RawValue> = serde_json::from_str(batch.get())?;
                    first_as_sent = events.first().map(|e| e.get().to_owned());
                    let mut messages: Vec<RawMessage> =
                        events.into_iter().map(RawMessage::new).collect();
                    for m in &mut messages {
                        if let (Some(sent_at), false) = (outer.sent_at, m.sent_at) {
                            m.add_field("sentAt", sent_at.get());
                        }
                        if let (Some(write_key), false) = (outer.write_key, m.write_key) {
                            m.add_field("writeKey", write_key.get());
                        }
                    }
                    (messages, true)
                }
                None => {
                    let whole: &RawValue = serde_json::from_str(text)?;
                    (vec![RawMessage::new(whole)], false)
                }
            }
        }
        _ => {
            // Not an object or array: say what it is (the value is small or invalid).
            let value: Value = serde_json::from_str(text)?;
            return Err(InputError::Shape(match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                _ => "a string",
            }));
        }
    };
    if messages.is_empty() {
        return Err(InputError::EmptyBatch);
    }
    Ok(RawDelivery {
        messages,
        batch,
        first_as_sent,
    })
}

/// Walks the structure of JSON text without building anything: calls `visit` with
/// each bracket or comma outside strings and the nesting depth after it, until `visit`
/// returns `false`.
fn walk(json: &str, mut visit: impl FnMut(u8, usize) -> bool) {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json.as_bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' => {}
            _ => continue,
        }
        if !visit(b, depth) {
            return;
        }
    }
}

/// Refuses an array of more than [`MAX_MESSAGES`] items, counted on the text before
/// anything is built from it.
fn check_count(array: &str) -> Result<(), InputError> {
    let mut items = 0;
    walk(array, |b, depth| {
        if b == b',' && depth == 1 {
            items += 1;
        }
        items < MAX_MESSAGES
    });
    if items >= MAX_MESSAGES {
        return Err(InputError::TooMany);
    }
    Ok(())
}

/// Levels of arrays and objects in JSON text, strings skipped; one pass, no recursion.
fn text_depth(json: &str) -> usize {
    let mut deepest = 0;
    walk(json, |_, depth| {
        deepest = deepest.max(depth);
        true
    });
    deepest
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
    fn iso8601_dates() {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(1_795_796_096_123);
        assert_eq!(iso8601_millis(at), "2026-11-27T16:14:56.123Z");
        assert_eq!(iso8601_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(iso8601_millis(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn nesting_and_message_ids_are_bounded() {
        let message = |json: String| read_delivery(json.as_bytes()).unwrap().messages.remove(0);
        let nest = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let at_limit = message(format!("{{\"p\":{}}}", nest(MAX_NESTING - 1)));
        assert_eq!(at_limit.check(), Ok(()));
        let deeper = message(format!("{{\"p\":{}}}", nest(MAX_NESTING)));
        assert_eq!(deeper.check(), Err(MessageProblem::TooDeep));
        let strings_do_not_count = message(format!("{{\"p\":\"{}\\\"{}\"}}", "[".repeat(200), "{"));
        assert_eq!(strings_do_not_count.check(), Ok(()));
        let long = message(format!(
            "{{\"messageId\":\"{}\"}}",
            "m".repeat(MAX_MESSAGE_ID_BYTES + 1)
        ));
        assert_eq!(long.check(), Err(MessageProblem::MessageIdTooLong));
    }

    #[test]
    fn raw_deliveries_read_what_the_endpoint_needs_and_keep_the_rest() {
        let d = read_delivery(br#" {"type":"track","messageId":"m1","n":1.50,"x":[{"y":"}"}]}"#)
            .unwrap();
        assert!(!d.batch);
        let m = &d.messages[0];
        assert_eq!(
            m.json,
            r#"{"type":"track","messageId":"m1","n":1.50,"x":[{"y":"}"}]}"#
        );
        assert_eq!(
            (m.event_type.as_deref(), m.message_id.as_deref()),
            (Some("track"), Some("m1"))
        );
        assert_eq!(text_depth(&m.json), 3);

        let body = br#"{"batch":[{"type":"page","sentAt":"own"},{},7,{"action":"Track","messageId":12}],"sentAt":"2024-01-01T00:00:00.000Z","writeKey":"wk"}"#;
        let d = read_delivery(body).unwrap();
        assert!(d.batch);
        let json: Vec<&str> = d.messages.iter().map(|m| m.json.as_str()).collect();
        assert_eq!(
            json,
            [
                r#"{"type":"page","sentAt":"own","writeKey":"wk"}"#,
                r#"{"sentAt":"2024-01-01T00:00:00.000Z","writeKey":"wk"}"#,
                "7",
                r#"{"action":"Track","messageId":12,"sentAt":"2024-01-01T00:00:00.000Z","writeKey":"wk"}"#,
            ]
        );
        assert_eq!(d.messages[3].event_type.as_deref(), Some("Track"));
        assert_eq!(
            d.messages[3].message_id, None,
            "a number is not a messageId"
        );

        let mut m = read_delivery(b"{}").unwrap().messages.remove(0);
        m.stamp_received_at(UNIX_EPOCH);
        assert_eq!(m.json, r#"{"receivedAt":"1970-01-01T00:00:00.000Z"}"#);
        m.stamp_received_at(SystemTime::now());
        assert_eq!(
            m.json, r#"{"receivedAt":"1970-01-01T00:00:00.000Z"}"#,
            "never twice"
        );

        assert!(matches!(read_delivery(b"[]"), Err(InputError::EmptyBatch)));
        assert!(matches!(
            read_delivery(b"null"),
            Err(InputError::Shape("null"))
        ));
        assert!(matches!(
            read_delivery(b"{\"type\":"),
            Err(InputError::Json(_))
        ));
        assert!(matches!(read_delivery(b"\xff"), Err(InputError::Utf8)));
        let deep = format!(
            "{{\"p\":{}1{}}}",
            "[".repeat(MAX_NESTING),
            "]".repeat(MAX_NESTING)
        );
        let d = read_delivery(deep.as_bytes()).unwrap();
        assert_eq!(d.messages[0].check(), Err(MessageProblem::TooDeep));
    }

    #[test]
    fn the_number_of_messages_is_capped_before_parsing() {
        let at_cap = format!("[{}{{}}]", "{},".repeat(MAX_MESSAGES - 1));
        assert_eq!(
            read_delivery(at_cap.as_bytes()).unwrap().messages.len(),
            MAX_MESSAGES
        );
        let over = format!("[{}{{}}]", "{},".repeat(MAX_MESSAGES));
        assert!(matches!(
            read_delivery(over.as_bytes()),
            Err(InputError::TooMany)
        ));
        let wrapped = format!("{{\"batch\":{over}}}");
        assert!(matches!(
            read_delivery(wrapped.as_bytes()),
            Err(InputError::TooMany)
        ));
        // Commas inside messages and strings do not count.
        let inner = format!(
            "[{{\"a\":[{}1],\"s\":\"{}\"}}]",
            "1,".repeat(MAX_MESSAGES),
            ",".repeat(MAX_MESSAGES)
        );
        assert_eq!(read_delivery(inner.as_bytes()).unwrap().messages.len(), 1);
    }

    #[test]
    fn the_first_message_as_sent_is_kept_for_the_signature() {
        let d = read_delivery(br#"{"batch":[{"type":"track"}],"sentAt":"s"}"#).unwrap();
        assert_eq!(d.first_as_sent.as_deref(), Some(r#"{"type":"track"}"#));
        assert_eq!(d.messages[0].json, r#"{"type":"track","sentAt":"s"}"#);
    }
}
