//! Example function: forwards `track` and `identify` events to a partner's REST API.
//!
//! What a partner copies to start: settings with an API key, field mapping, and the
//! partner's answer turned into Segment outcomes (429 and 5xx retry, other 4xx reject).

use segfn_sdk::schemars::{self, JsonSchema};
use segfn_sdk::{
    Error, Event, Function, HandlerResult, Identify, Object, OrError, Part, Request, Secret, Track,
    batch, fetch, info,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The function's settings, as configured per customer in Segment. The doc comments are
/// the settings' descriptions in `segfn schema` and `segfn docs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Your API key for the partner API, from the partner dashboard's API keys page.
    pub api_key: Secret,
    /// Base URL of the partner API; change it only to use a regional or test endpoint.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
}

fn default_endpoint() -> String {
    "https://api.partner.example/v1".into()
}

/// What the partner's `/track` endpoint takes.
#[derive(Debug, Serialize, PartialEq)]
pub struct PartnerEvent<'a> {
    /// The user, by Segment `userId` or, failing that, `anonymousId`.
    pub user: PartnerUser<'a>,
    /// The event's name.
    pub name: &'a str,
    /// The event's properties, unchanged: copied as the text they came as, never
    /// parsed.
    pub attributes: &'a Part<Object>,
    /// When it happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<&'a str>,
    /// Segment's `messageId`, which the partner uses to drop duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<&'a str>,
}

/// What the partner's `/users` endpoint takes.
#[derive(Debug, Serialize, PartialEq)]
pub struct PartnerProfile<'a> {
    /// The user.
    pub user: PartnerUser<'a>,
    /// The user's email, lifted out of the traits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    /// Every trait, unchanged (copied as text).
    pub traits: &'a Part<Object>,
}

/// The partner's user reference.
#[derive(Debug, Serialize, PartialEq)]
pub struct PartnerUser<'a> {
    /// Known user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// Anonymous id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<&'a str>,
}

impl<'a> PartnerUser<'a> {
    fn new(user_id: Option<&'a str>, anonymous_id: Option<&'a str>) -> Result<Self, Error> {
        if user_id.is_none() && anonymous_id.is_none() {
            return Err(Error::validation("userId or anonymousId is required"));
        }
        Ok(PartnerUser {
            id: user_id,
            anonymous_id,
        })
    }
}

/// The function.
#[derive(Debug)]
pub struct Forwarder;

impl Function for Forwarder {
    type Settings = Settings;

    fn on_track(event: Track, settings: &Settings) -> HandlerResult {
        fetch(track_request(&event, settings)?)?.error_for_status()?;
        info!("forwarded {:?}", event.event().unwrap_or_default());
        Ok(None)
    }

    fn on_identify(event: Identify, settings: &Settings) -> HandlerResult {
        fetch(identify_request(&event, settings)?)?.error_for_status()?;
        info!("updated profile with {} traits", event.traits().len());
        Ok(None)
    }

    /// A batch: one request per event, sent concurrently, so a batch of 100 waits for
    /// the slowest answer rather than for the sum of them; each event gets its own
    /// outcome.
    fn on_batch(events: Vec<Event>, settings: &Settings) -> Result<Vec<HandlerResult>, Error> {
        let results = batch::fetch_each(
            &events,
            |event| match event {
                Event::Track(e) => track_request(e, settings),
                Event::Identify(e) => identify_request(e, settings),
                other => Err(Error::not_supported(format!(
                    "{} is not supported",
                    other.type_name().unwrap_or("a message without a type")
                ))),
            },
            |response| response.error_for_status().map(|_| None),
        );
        info!("forwarded a batch of {} events", events.len());
        Ok(results)
    }
}

/// The partner request for a track event.
fn track_request(event: &Track, settings: &Settings) -> Result<Request, Error> {
    let body = PartnerEvent {
        user: PartnerUser::new(event.user_id(), event.anonymous_id())?,
        name: event
            .event()
            .or_invalid_payload("track event has no name")?,
        attributes: event.properties(),
        occurred_at: event.timestamp(),
        idempotency_key: event.message_id(),
    };
    partner_request(settings, "track", &body)
}

/// The partner request for an identify event.
fn identify_request(event: &Identify, settings: &Settings) -> Result<Request, Error> {
    let body = PartnerProfile {
        user: PartnerUser::new(event.user_id(), event.anonymous_id())?,
        email: event.traits().get("email").and_then(Value::as_str),
        traits: event.traits(),
    };
    partner_request(settings, "users", &body)
}

/// A POST of `body` to the partner's `path`, with the customer's key.
fn partner_request<T: Serialize>(
    settings: &Settings,
    path: &str,
    body: &T,
) -> Result<Request, Error> {
    let url = format!("{}/{path}", settings.endpoint.trim_end_matches('/'));
    Request::post(url)
        .bearer_auth(settings.api_key.expose())
        .json(body)
}

// `schema`: the module also describes its settings, for `segfn schema` and `segfn docs`.
segfn_sdk::export!(Forwarder, schema);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::testing;
    use segfn_sdk::{OutcomeKind, Response};
    use serde_json::json;

    fn settings() -> Value {
        json!({"apiKey": "k-123", "endpoint": "https://partner.test/v1/"})
    }

    #[test]
    fn track_is_mapped_and_authenticated() {
        testing::mock_fetch(|_| Ok(Response::new(202)));
        let event = json!({
            "type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m1",
            "timestamp": "2024-01-01T00:00:00Z", "properties": {"plan": "pro"}
        });
        let result = testing::handle::<Forwarder>(event, settings());
        assert_eq!(result.kind, OutcomeKind::Success, "{result:?}");
        let sent = testing::requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, "POST");
        assert_eq!(sent[0].url, "https://partner.test/v1/track");
        assert_eq!(sent[0].header_value("authorization"), Some("Bearer k-123"));
        let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(
            body,
            json!({"user": {"id": "u1"}, "name": "Signed Up", "attributes": {"plan": "pro"},
                   "occurred_at": "2024-01-01T00:00:00Z", "idempotency_key": "m1"})
        );
    }

    #[test]
    fn identify_lifts_email() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let event = json!({"type": "identify", "anonymousId": "a1", "traits": {"email": "x@y.z", "age": 3}});
        let result = testing::handle::<Forwarder>(event, settings());
        assert_eq!(result.kind, OutcomeKind::Success, "{result:?}");
        let body: Value = serde_json::from_slice(&testing::requests()[0].body).unwrap();
        assert_eq!(body["email"], json!("x@y.z"));
        assert_eq!(body["user"], json!({"anonymous_id": "a1"}));
    }

    #[test]
    fn partner_statuses_become_outcomes() {
        for (status, kind) in [
            (429, OutcomeKind::Retry),
            (503, OutcomeKind::Retry),
            (400, OutcomeKind::MessageRejected),
            (401, OutcomeKind::MessageRejected),
        ] {
            testing::mock_fetch(move |_| Ok(Response::new(status)));
            let result = testing::handle::<Forwarder>(
                json!({"type": "track", "event": "E", "userId": "u"}),
                settings(),
            );
            assert_eq!(result.kind, kind, "status {status}: {result:?}");
        }
    }

    #[test]
    fn rejects_anonymous_less_events_and_unsupported_types() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let result =
            testing::handle::<Forwarder>(json!({"type": "track", "event": "E"}), settings());
        assert_eq!(result.class(), Some("ValidationError"));
        let result =
            testing::handle::<Forwarder>(json!({"type": "track", "userId": "u"}), settings());
        assert_eq!(result.class(), Some("InvalidEventPayload"));
        let result =
            testing::handle::<Forwarder>(json!({"type": "page", "userId": "u"}), settings());
        assert_eq!(result.kind, OutcomeKind::UnsupportedEventType);
        assert!(testing::requests().is_empty());
    }

    #[test]
    fn a_batch_sends_each_event_and_keeps_outcomes_in_order() {
        // The partner takes the first request and throttles the second.
        let mut calls = 0;
        testing::mock_fetch(move |_| {
            calls += 1;
            Ok(Response::new(if calls == 1 { 200 } else { 429 }))
        });
        let events = vec![
            json!({"type": "track", "event": "A", "userId": "u1"}),
            json!({"type": "page", "userId": "u1"}),
            json!({"type": "identify", "userId": "u2", "traits": {"email": "e@x.y"}}),
            json!({"type": "track", "userId": "u3"}),
        ];
        let result = testing::handle_batch::<Forwarder>(events, settings());
        let kinds: Vec<OutcomeKind> = result.unwrap().iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                OutcomeKind::Success,
                OutcomeKind::UnsupportedEventType,
                OutcomeKind::Retry,
                OutcomeKind::MessageRejected
            ]
        );
        let sent: Vec<String> = testing::requests().iter().map(|r| r.url.clone()).collect();
        assert_eq!(
            sent,
            [
                "https://partner.test/v1/track",
                "https://partner.test/v1/users"
            ]
        );
    }

    #[test]
    fn missing_api_key_is_invalid_settings() {
        let result = testing::handle::<Forwarder>(
            json!({"type": "track", "event": "E", "userId": "u"}),
            json!({}),
        );
        assert_eq!(result.kind, OutcomeKind::InvalidSettings);
        assert!(result.message().unwrap().contains("apiKey"));
    }
}
