//! A message as deep as the host lets through (`abi::MAX_NESTING`) survives the whole trip
//! inside the envelope: parsed by `handle_envelope`, handed to the handler, returned, and
//! read back from the result the way the host reads it.

use segfn_sdk::abi::{GuestResult, MAX_NESTING};
use segfn_sdk::{Function, HandlerResult, NoSettings, OutcomeKind, Track, handle_envelope};
use serde_json::Value;

/// An insert function that forwards every track event unchanged.
struct PassThrough;

impl Function for PassThrough {
    type Settings = NoSettings;
    fn on_track(event: Track, _: &NoSettings) -> HandlerResult {
        Ok(Some(event.into()))
    }
}

/// A track message `depth` levels deep: the message, `properties`, then nested objects.
fn nested_message(depth: usize) -> String {
    assert!(depth >= 2);
    let inner = depth - 2;
    format!(
        r#"{{"type":"track","event":"Deep","properties":{}{}}}"#,
        r#"{"a":"#.repeat(inner) + "{}",
        "}".repeat(inner)
    )
}

/// Nesting depth of a value; scalars are 0, `{}` is 1.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The result as the host reads it (serde_json, recursion limit included).
fn host_reads(result: &GuestResult) -> GuestResult {
    let bytes = segfn_sdk::guest::encode_result(result);
    serde_json::from_slice(&bytes).expect("the host parses the result")
}

#[test]
fn a_message_max_nesting_deep_passes_through_an_event_envelope() {
    let message = nested_message(MAX_NESTING);
    let value: Value = serde_json::from_str(&message).unwrap();
    assert_eq!(depth(&value), MAX_NESTING);

    let envelope = format!(r#"{{"abi":1,"call":"event","event":{message},"settings":{{}}}}"#);
    let result = host_reads(&handle_envelope::<PassThrough>(envelope.as_bytes()));
    assert_eq!(result.result.kind, OutcomeKind::Success, "{result:?}");
    assert_eq!(result.result.output, Some(value));
}

#[test]
fn a_message_max_nesting_deep_passes_through_a_batch_envelope() {
    let message = nested_message(MAX_NESTING);
    let value: Value = serde_json::from_str(&message).unwrap();

    let envelope = format!(r#"{{"abi":1,"call":"batch","events":[{message}],"settings":{{}}}}"#);
    let result = host_reads(&handle_envelope::<PassThrough>(envelope.as_bytes()));
    let results = result.results.expect("one result per event");
    assert_eq!(results[0].kind, OutcomeKind::Success, "{results:?}");
    assert_eq!(results[0].output, Some(value));
}

/// Why the limit exists: without it, a message the host could parse on its own would fail
/// in the guest, whose parser sees the envelope's level too.
#[test]
fn a_message_at_the_parsers_own_limit_fails_inside_the_envelope() {
    let message = nested_message(127);
    serde_json::from_str::<Value>(&message).expect("127 levels parse on their own");
    let envelope = format!(r#"{{"abi":1,"call":"event","event":{message},"settings":{{}}}}"#);
    let result = handle_envelope::<PassThrough>(envelope.as_bytes());
    assert_eq!(result.result.kind, OutcomeKind::BadRequest);
    let message = result.result.message.unwrap_or_default();
    assert!(message.contains("recursion limit"), "{message}");
}
