//! {{Name}}: a Segment destination function for a partner with a bulk API. A batch's
//! events are translated one by one and sent in bulk requests of at most
//! `maxEventsPerRequest`; each event keeps its own outcome. Single events are a bulk
//! request of one.

use segfn_sdk::schemars::{self, JsonSchema};
use segfn_sdk::{
    Error, Event, Function, HandlerResult, Identify, OrError, Request, Response, Secret, Track,
    fetch, fetch_all,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The settings a customer fills in when they add the destination in Segment. Each
/// field's doc comment is its description in `segfn schema` and `segfn docs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    // A `Secret`: kept out of logs and traces, and listed as sensitive.
    /// Your API key for the partner, from the partner dashboard.
    pub api_key: Secret,
    /// The partner's API; events go to `{endpoint}/batch`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The most events the partner takes in one request.
    // Segment's settings have no number type: the value may come as text ("500").
    #[serde(
        default = "default_max_events",
        deserialize_with = "segfn_sdk::json::number_or_text"
    )]
    #[schemars(with = "String")]
    pub max_events_per_request: usize,
}

fn default_endpoint() -> String {
    "https://api.partner.example/v1".into()
}

fn default_max_events() -> usize {
    500
}

/// The function.
#[derive(Debug)]
pub struct {{Name}};

impl Function for {{Name}} {
    type Settings = Settings;

    fn on_track(event: Track, settings: &Settings) -> HandlerResult {
        check(fetch(bulk_request(settings, &[track_record(&event)?])?)?)
    }

    fn on_identify(event: Identify, settings: &Settings) -> HandlerResult {
        check(fetch(bulk_request(settings, &[identify_record(&event)?])?)?)
    }

    fn on_batch(events: Vec<Event>, settings: &Settings) -> Result<Vec<HandlerResult>, Error> {
        // Translate every event; one that cannot be sent fails alone.
        let mut results: Vec<HandlerResult> = Vec::with_capacity(events.len());
        let mut records = Vec::new();
        let mut carried = Vec::new();
        for event in &events {
            let record = match event {
                Event::Track(e) => track_record(e),
                Event::Identify(e) => identify_record(e),
                other => Err(Error::not_supported(format!(
                    "{} is not supported",
                    other.type_name().unwrap_or("a message without a type")
                ))),
            };
            match record {
                Ok(record) => {
                    carried.push(results.len());
                    records.push(record);
                    results.push(Ok(None));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        // Send them in chunks, all at once; each event gets its chunk's answer.
        let per_request = settings.max_events_per_request.max(1);
        let requests = records
            .chunks(per_request)
            .map(|chunk| bulk_request(settings, chunk))
            .collect::<Result<Vec<_>, _>>()?;
        for (indices, response) in carried.chunks(per_request).zip(fetch_all(requests)) {
            let outcome = response.map_err(Error::from).and_then(check);
            for &i in indices {
                results[i] = outcome.clone();
            }
        }
        Ok(results)
    }
}

fn track_record(event: &Track) -> Result<Value, Error> {
    Ok(json!({
        "type": "track",
        "event": event.event().or_invalid_payload("track event has no name")?,
        "userId": user(event.user_id(), event.anonymous_id())?,
        "properties": event.properties(),
        "timestamp": event.timestamp(),
        "messageId": event.message_id(),
    }))
}

fn identify_record(event: &Identify) -> Result<Value, Error> {
    Ok(json!({
        "type": "identify",
        "userId": user(event.user_id(), event.anonymous_id())?,
        "traits": event.traits(),
        "messageId": event.message_id(),
    }))
}

fn user<'a>(user_id: Option<&'a str>, anonymous_id: Option<&'a str>) -> Result<&'a str, Error> {
    user_id
        .or(anonymous_id)
        .or_invalid_payload("userId or anonymousId is required")
}

fn bulk_request(settings: &Settings, records: &[Value]) -> Result<Request, Error> {
    let url = format!("{}/batch", settings.endpoint.trim_end_matches('/'));
    Request::post(url)
        .bearer_auth(settings.api_key.expose())
        .json(&json!({ "events": records }))
}

/// The partner's answer as the event's outcome: `error_for_status` retries 408, 423,
/// 429 and 5xx other than 501 and rejects other failures; write your own `match` on
/// `response.status` if your partner's API means something else.
fn check(response: Response) -> HandlerResult {
    response.error_for_status().map(|_| None)
}

// `schema`: the module also describes its settings, for `segfn schema` and `segfn docs`.
segfn_sdk::export!({{Name}}, schema);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::{OutcomeKind, testing};

    fn settings(max: usize) -> Value {
        json!({"apiKey": "test-key", "endpoint": "https://partner.test/v1", "maxEventsPerRequest": max})
    }

    fn sample_batch() -> Vec<Value> {
        let path = format!("{}/events/batch.json", env!("CARGO_MANIFEST_DIR"));
        let batch: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        batch["batch"].as_array().unwrap().clone()
    }

    #[test]
    fn a_batch_goes_in_bulk_requests() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let events = sample_batch();
        let results = testing::handle_batch::<{{Name}}>(events.clone(), settings(2)).unwrap();
        assert!(
            results.iter().all(|r| r.kind == OutcomeKind::Success),
            "{results:?}"
        );
        let sent = testing::requests();
        assert_eq!(sent.len(), events.len().div_ceil(2));
        let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(body["events"].as_array().unwrap().len(), 2);
        assert_eq!(
            sent[0].header_value("authorization"),
            Some("Bearer test-key")
        );
    }

    #[test]
    fn each_event_keeps_its_own_outcome() {
        // The first request is taken, the second throttled.
        let mut calls = 0;
        testing::mock_fetch(move |_| {
            calls += 1;
            Ok(Response::new(if calls == 1 { 200 } else { 429 }))
        });
        let events = vec![
            json!({"type": "track", "event": "A", "userId": "u1"}),
            json!({"type": "page", "userId": "u1"}),
            json!({"type": "track", "userId": "u1"}),
            json!({"type": "identify", "userId": "u2"}),
            json!({"type": "identify", "userId": "u3"}),
        ];
        let results = testing::handle_batch::<{{Name}}>(events, settings(2)).unwrap();
        let classes: Vec<_> = results.iter().map(|r| r.class()).collect();
        assert_eq!(
            classes,
            [
                None,
                Some("EventNotSupported"),
                Some("InvalidEventPayload"),
                None,
                Some("RetryError")
            ]
        );
    }
}
