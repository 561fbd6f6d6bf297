//! Example batch function: translates every event of a batch and sends them to the
//! partner's bulk endpoint, up to `maxEventsPerRequest` events per request.
//!
//! What a partner with a bulk API copies: one request carries hundreds of events, so a
//! batch of 400 costs one round trip instead of 400. Each event still gets its own
//! outcome: one that cannot be translated is rejected alone, and the partner's answer to
//! a request applies to the events that request carried.

use segfn_sdk::{Error, Event, Function, HandlerResult, Object, OrError, Part, Request, fetch_all};
use serde::{Deserialize, Serialize};

/// The function's settings, as configured per customer in Segment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The customer's key for the partner API (a secret setting).
    pub api_key: String,
    /// Base URL of the partner API; events go to `{endpoint}/batch`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The most events the partner takes in one request (Segment sends it as text).
    #[serde(
        default = "default_max_events",
        deserialize_with = "segfn_sdk::json::number_or_text"
    )]
    pub max_events_per_request: usize,
}

fn default_endpoint() -> String {
    "https://api.partner.example/v1".into()
}

fn default_max_events() -> usize {
    500
}

/// One event as the partner's bulk endpoint takes it; absent values are left out.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub struct Record<'a> {
    /// `track` or `identify`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    /// A track's properties or an identify's traits, unchanged: copied as the text
    /// they came as, never parsed.
    data: &'a Part<Object>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<&'a str>,
    /// Segment's `messageId`, which the partner uses to drop duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    insert_id: Option<&'a str>,
}

/// The partner record for a track or identify event.
pub fn record(event: &Event) -> Result<Record<'_>, Error> {
    let (kind, name, data, time) = match event {
        Event::Track(e) => {
            let name = e.event().or_invalid_payload("track event has no name")?;
            ("track", Some(name), e.properties(), e.timestamp())
        }
        Event::Identify(e) => ("identify", None, e.traits(), e.timestamp()),
        other => {
            let kind = other.type_name().unwrap_or("a message without a type");
            return Err(Error::not_supported(format!("{kind} is not supported")));
        }
    };
    let (user_id, anonymous_id) = (event.user_id(), event.anonymous_id());
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
        insert_id: event.message_id(),
    })
}

/// The function. Single events are a bulk request of one.
#[derive(Debug)]
pub struct Bulk;

impl Function for Bulk {
    type Settings = Settings;

    fn on_track(event: segfn_sdk::Track, settings: &Settings) -> HandlerResult {
        one(event.into(), settings)
    }

    fn on_identify(event: segfn_sdk::Identify, settings: &Settings) -> HandlerResult {
        one(event.into(), settings)
    }

    /// Translates every event (one that cannot be translated fails alone), sends the
    /// records in requests of at most `maxEventsPerRequest`, all at once, and gives each
    /// event the outcome of the request that carried it.
    fn on_batch(events: Vec<Event>, settings: &Settings) -> Result<Vec<HandlerResult>, Error> {
        let records: Vec<Result<Record, Error>> = events.iter().map(record).collect();
        let valid: Vec<&Record> = records.iter().flatten().collect();
        let per_request = settings.max_events_per_request.max(1);
        let url = format!("{}/batch", settings.endpoint.trim_end_matches('/'));
        let requests = valid
            .chunks(per_request)
            // `{"events": [...]}`, written straight from the borrowed records.
            .map(|events| {
                Request::post(&url)
                    .bearer_auth(&settings.api_key)
                    .json(&std::collections::BTreeMap::from([("events", events)]))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sizes: Vec<usize> = valid.chunks(per_request).map(<[_]>::len).collect();
        let mut outcomes = fetch_all(requests)
            .into_iter()
            .zip(sizes)
            .flat_map(|(response, n)| {
                std::iter::repeat_n(
                    response
                        .map_err(Error::from)
                        .and_then(|r| r.error_for_status().map(|_| None)),
                    n,
                )
            });
        let answered =
            |record: Result<Record, Error>| record.and_then(|_| outcomes.next().unwrap());
        Ok(records.into_iter().map(answered).collect())
    }
}

/// One event through `on_batch`.
fn one(event: Event, settings: &Settings) -> HandlerResult {
    Bulk::on_batch(vec![event], settings)?.remove(0)
}

segfn_sdk::export!(Bulk);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::testing;
    use segfn_sdk::{OutcomeKind, Response};
    use serde_json::{Value, json};

    fn settings(max: usize) -> Value {
        // As text, as Segment sends it.
        json!({"apiKey": "k-123", "endpoint": "https://partner.test/v1/", "maxEventsPerRequest": max.to_string()})
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
