//! What happens to each message of a delivery, decided before anything runs: run it,
//! answer it as a duplicate, share the result of an earlier copy in the same batch, or
//! refuse it (too deep, messageId too long).

use super::store::MessageKey;
use segfn_engine::input::{MessageProblem, RawMessage};
use segfn_sdk::EventType;
use segfn_sdk::abi::OutcomeKind;
use std::collections::HashMap;

/// The fate of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Run the function on it.
    Run,
    /// Processed within the deduplication window, with this outcome: answered with it,
    /// without running.
    Duplicate(OutcomeKind),
    /// The same messageId as message `n` of this batch: shares its result.
    Repeat(usize),
    /// Refused before running.
    Refuse(MessageProblem),
}

/// One message of a delivery with what the endpoint reads from it.
#[derive(Debug)]
pub(crate) struct Message {
    /// The message's JSON text as received (plus `receivedAt`).
    pub json: String,
    /// Its `messageId`, for logs (cut and cleaned for a log line).
    pub id_for_log: String,
    /// Its deduplication key, when it has a `messageId`.
    pub key: Option<MessageKey>,
    /// One of Segment's types, or `other`.
    pub event_type: &'static str,
}

/// The type label of a message: one of Segment's types, `other` for anything else (so a
/// sender cannot grow the metrics or forge log lines with made-up types).
fn known_type(event_type: Option<&str>) -> &'static str {
    event_type
        .and_then(EventType::parse)
        .map_or("other", EventType::as_str)
}

/// A messageId as it may appear in a log line: at most 100 characters, no control
/// characters (no forged lines).
fn id_for_log(id: Option<&str>) -> String {
    match id {
        Some(id) => id.chars().filter(|c| !c.is_control()).take(100).collect(),
        None => "-".into(),
    }
}

/// Reads each message and plans it without the store: refusals, repeats within the
/// batch, and `Run` for the rest (some of which the store may turn into duplicates).
pub(crate) fn first_pass(tenant: &str, events: Vec<RawMessage>) -> (Vec<Message>, Vec<Plan>) {
    let mut first_at: HashMap<MessageKey, usize> = HashMap::new();
    let mut messages = Vec::with_capacity(events.len());
    let mut plans = Vec::with_capacity(events.len());
    for (i, event) in events.into_iter().enumerate() {
        let id = event.message_id.as_deref();
        let key = id.map(|id| MessageKey::new(tenant, id));
        let plan = match event.check() {
            Err(problem) => Plan::Refuse(problem),
            Ok(()) => match key {
                Some(key) => match first_at.get(&key) {
                    Some(&first) => Plan::Repeat(first),
                    None => {
                        first_at.insert(key, i);
                        Plan::Run
                    }
                },
                None => Plan::Run,
            },
        };
        let key = match plan {
            Plan::Refuse(_) => None,
            _ => key,
        };
        messages.push(Message {
            id_for_log: id_for_log(id),
            key,
            event_type: known_type(event.event_type.as_deref()),
            json: event.json,
        });
        plans.push(plan);
    }
    (messages, plans)
}

/// The keys of the messages planned to run: what to claim and look up.
pub(crate) fn keys_to_run(messages: &[Message], plans: &[Plan]) -> Vec<MessageKey> {
    messages
        .iter()
        .zip(plans)
        .filter(|(_, p)| **p == Plan::Run)
        .filter_map(|(m, _)| m.key)
        .collect()
}

/// Turns `Run` into `Duplicate` for messages the store has seen, with the outcome they
/// had.
pub(crate) fn mark_duplicates(
    messages: &[Message],
    plans: &mut [Plan],
    seen: &HashMap<MessageKey, OutcomeKind>,
) {
    for (m, plan) in messages.iter().zip(plans.iter_mut()) {
        if *plan == Plan::Run
            && let Some(outcome) = m.key.and_then(|k| seen.get(&k))
        {
            *plan = Plan::Duplicate(*outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repeats_refusals_and_duplicates() {
        let batch = json!([
            {"type": "track", "messageId": "a"},
            {"type": "track", "messageId": "b"},
            {"type": "track", "messageId": "a"},
            {"type": "bogus", "messageId": "x".repeat(300)},
            {"type": "page"},
        ]);
        let events = segfn_engine::input::read_delivery(batch.to_string().as_bytes())
            .unwrap()
            .messages;
        let (messages, mut plans) = first_pass("t", events);
        assert_eq!(
            plans,
            [
                Plan::Run,
                Plan::Run,
                Plan::Repeat(0),
                Plan::Refuse(MessageProblem::MessageIdTooLong),
                Plan::Run
            ]
        );
        assert_eq!(messages[3].event_type, "other");
        assert_eq!(messages[3].id_for_log.len(), 100);
        assert_eq!(
            keys_to_run(&messages, &plans).len(),
            2,
            "a and b; none for page"
        );
        let seen = [(MessageKey::new("t", "b"), OutcomeKind::MessageRejected)]
            .into_iter()
            .collect();
        mark_duplicates(&messages, &mut plans, &seen);
        assert_eq!(plans[1], Plan::Duplicate(OutcomeKind::MessageRejected));
        assert_eq!(plans[0], Plan::Run);
    }

    #[test]
    fn log_ids_cannot_forge_lines() {
        assert_eq!(id_for_log(Some("a\nfake line\r")), "afake line");
        assert_eq!(id_for_log(None), "-");
    }
}
