//! Reading what Segment delivers: one message, a JSON array of messages, or
//! `{"batch": [...]}`.

use segfn_sdk::abi::Call;
use serde_json::Value;

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
                Some(Value::Array(events)) => events,
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
}
