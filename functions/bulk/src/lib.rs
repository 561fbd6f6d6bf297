//! Example batch function: translates every event of a batch and sends them to the
//! partner's bulk endpoint, up to `maxEventsPerRequest` events per request.
//!
//! What a partner with a bulk API copies: one request carries hundreds of events, so a
//! batch of 400 costs one round trip instead of 400. Each event still gets its own
//! outcome: one that cannot be translated is rejected alone, and the partner's answer to
//! a request applies to the events that request carried.

use segfn_sdk::{
    Error, Event, Function, HandlerResult, Identify, OrError, Request, Response, Track, fetch,
    fetch_all,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The function's settings, as configured per customer in Segment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The customer's key for the partner API (a secret setting).
    pub api_key: String,
    /// Base URL of the partner API; events go to `{endpoint}/batch`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The most events the partner takes in one request.
    #[serde(default = "default_max_events")]
    pub max_events_per_request: usize,
}

fn default_endpoint() -> String {
    "https://api.partner.example/v1".into()
}

fn default_max_events() -> usize {
    500
}

/// One event as the partner's bulk endpoint takes it.
#[derive(Debug, Serialize, PartialEq)]
pub struct Record<'a> {
    /// `track` or `identify`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Segment `userId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    /// Segment `anonymousId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<&'a str>,
    /// The track event's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// A track's properties or an identify's traits, unchanged.
    pub data: &'a Map<String, Value>,
    /// When it happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<&'a str>,
    /// Segment's `messageId`, which the partner uses to drop duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insert_id: Option<&'a str>,
}

/// The body of one bulk request.
#[derive(Debug, Serialize)]
struct BulkBody<'a> {
    events: &'a [Record<'a>],
}

/// The partner record for a track event.
pub fn track_record(event: &Track) -> Result<Record<'_>, Error> {
    let name = event
        .event()
        .or_invalid_payload("track event has no name")?;
    record(
        "track",
        Some(name),
        event.user_id(),
        event.anonymous_id(),
        event.properties(),
        event.timestamp(),
        event.message_id(),
    )
}

/// The partner record for an identify event.
pub fn identify_record(event: &Identify) -> Result<Record<'_>, Error> {
    record(
        "identify",
        None,
        event.user_id(),
        event.anonymous_id(),
        event.traits(),
        event.timestamp(),
        event.message_id(),
    )
}

fn record<'a>(
    kind: &'static str,
    name: Option<&'a str>,
    user_id: Option<&'a str>,
    anonymous_id: Option<&'a str>,
    data: &'a Map<String, Value>,
    time: Option<&'a str>,
    insert_id: Option<&'a str>,
) -> Result<Record<'a>, Error> {
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(Error::validation("userId or anonymousId is required"));
    }
    Ok(Record {
        kind,
        user_id,
        anonymous_id,
        name,
        data,
        time,
        insert_id,
    })
}

/// The function.
#[derive(Debug)]
pub struct Bulk;

impl Function for Bulk {
    type Settings = Settings;

    fn on_track(event: Track, settings: &Settings) -> HandlerResult {
        check(fetch(bulk_request(settings, &[track_record(&event)?])?)?)?;
        Ok(None)
    }

    fn on_identify(event: Identify, settings: &Settings) -> HandlerResult {
        check(fetch(bulk_request(settings, &[identify_record(&event)?])?)?)?;
        Ok(None)
    }

    /// Translates every event, sends the records in requests of at most
    /// `maxEventsPerRequest` (concurrently when there are several), and gives each event
    /// the outcome of its own translation or of the request that carried it.
    fn on_batch(events: Vec<Event>, settings: &Settings) -> Result<Vec<HandlerResult>, Error> {
        let mut results: Vec<HandlerResult> = Vec::with_capacity(events.len());
        let mut records = Vec::with_capacity(events.len());
        let mut carried = Vec::with_capacity(events.len());
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
        let per_request = settings.max_events_per_request.max(1);
        let requests = records
            .chunks(per_request)
            .map(|chunk| bulk_request(settings, chunk))
            .collect::<Result<Vec<_>, _>>()?;
        for (indices, response) in carried.chunks(per_request).zip(fetch_all(requests)) {
            let outcome = response.map_err(Error::from).and_then(check);
            for &i in indices {
                results[i] = outcome.clone().map(|_| None);
            }
        }
        Ok(results)
    }
}

/// A POST of `records` to the partner's bulk endpoint, with the customer's key.
fn bulk_request(settings: &Settings, records: &[Record<'_>]) -> Result<Request, Error> {
    let url = format!("{}/batch", settings.endpoint.trim_end_matches('/'));
    Request::post(url)
        .bearer_auth(&settings.api_key)
        .json(&BulkBody { events: records })
}

/// 2xx is success; 429 and 5xx are worth retrying; any other answer rejects the events.
pub fn check(response: Response) -> Result<Response, Error> {
    match response.status {
        200..=299 => Ok(response),
        429 | 500..=599 => Err(Error::retry(format!(
            "partner answered {}; Segment will retry",
            response.status
        ))),
        status => Err(Error::validation(format!(
            "partner rejected the events ({status}): {}",
            response.text()
        ))),
    }
}

segfn_sdk::export!(Bulk);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::testing;
    use segfn_sdk::{OutcomeKind, Response};
    use serde_json::json;

    fn settings(max: usize) -> Value {
        json!({"apiKey": "k-123", "endpoint": "https://partner.test/v1/", "maxEventsPerRequest": max})
    }

    fn track(i: usize) -> Value {
        json!({"type": "track", "event": "Played", "userId": format!("u{i}"),
               "messageId": format!("m{i}"), "properties": {"n": i}})
    }

    fn kinds(result: &Result<Vec<testing::Handled>, testing::Handled>) -> Vec<OutcomeKind> {
        result.as_ref().unwrap().iter().map(|r| r.kind).collect()
    }

    #[test]
    fn a_batch_goes_in_requests_of_at_most_the_configured_size() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let events: Vec<Value> = (0..5).map(track).collect();
        let result = testing::handle_batch::<Bulk>(events, settings(2));
        assert_eq!(kinds(&result), [OutcomeKind::Success; 5]);
        let sent = testing::requests();
        assert_eq!(sent.len(), 3);
        let mut ids = Vec::new();
        for request in &sent {
            assert_eq!(request.url, "https://partner.test/v1/batch");
            assert_eq!(request.header_value("authorization"), Some("Bearer k-123"));
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            for record in body["events"].as_array().unwrap() {
                ids.push(record["insert_id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(ids, ["m0", "m1", "m2", "m3", "m4"]);
        let first: Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(
            first["events"][0],
            json!({"type": "track", "user_id": "u0", "name": "Played", "data": {"n": 0}, "insert_id": "m0"})
        );
    }

    #[test]
    fn each_event_gets_the_outcome_of_its_request_or_its_own_error() {
        // Requests of two: the first is taken, the second throttled.
        let mut calls = 0;
        testing::mock_fetch(move |_| {
            calls += 1;
            Ok(Response::new(if calls == 1 { 200 } else { 429 }))
        });
        let events = vec![
            track(0),
            json!({"type": "page", "userId": "u1"}),
            json!({"type": "identify", "userId": "u2", "traits": {"email": "e@x.y"}}),
            json!({"type": "track", "event": "Anonymous"}),
            track(4),
        ];
        let result = testing::handle_batch::<Bulk>(events, settings(2));
        assert_eq!(
            kinds(&result),
            [
                OutcomeKind::Success,
                OutcomeKind::UnsupportedEventType,
                OutcomeKind::Success,
                OutcomeKind::MessageRejected,
                OutcomeKind::Retry,
            ]
        );
        assert_eq!(testing::requests().len(), 2);
    }

    #[test]
    fn a_failed_request_fails_only_the_events_it_carried() {
        testing::mock_fetch(|request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let first = body["events"][0]["insert_id"].as_str().unwrap().to_owned();
            Ok(Response::new(if first == "m2" { 400 } else { 200 }))
        });
        let result = testing::handle_batch::<Bulk>((0..4).map(track).collect(), settings(2));
        assert_eq!(
            kinds(&result),
            [
                OutcomeKind::Success,
                OutcomeKind::Success,
                OutcomeKind::MessageRejected,
                OutcomeKind::MessageRejected,
            ]
        );
    }

    #[test]
    fn single_events_are_a_bulk_request_of_one() {
        testing::mock_fetch(|_| Ok(Response::new(202)));
        let event = json!({"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro"}});
        let result = testing::handle::<Bulk>(event, settings(500));
        assert_eq!(result.kind, OutcomeKind::Success, "{result:?}");
        let body: Value = serde_json::from_slice(&testing::requests()[0].body).unwrap();
        assert_eq!(
            body,
            json!({"events": [{"type": "identify", "anonymous_id": "a1", "data": {"plan": "pro"}}]})
        );
    }
}
