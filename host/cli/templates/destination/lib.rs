//! {{Name}}: a Segment destination function. It sends `track` and `identify` events to
//! the partner's API and turns the partner's answers into Segment's outcomes.

use segfn_sdk::schemars::{self, JsonSchema};
use segfn_sdk::{
    Error, Function, HandlerResult, Identify, Object, OrError, Part, Request, Response, Secret,
    Track, fetch, info,
};
use serde::{Deserialize, Serialize};

/// The settings a customer fills in when they add the destination in Segment. Each
/// field's doc comment is its description in `segfn schema` and `segfn docs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    // A `Secret`: segfn keeps it out of logs, the request trace and reports, and
    // `segfn schema` lists it as sensitive.
    /// Your API key for the partner, from the partner dashboard.
    pub api_key: Secret,
    /// The partner's API; change it only to use a regional or test endpoint.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
}

fn default_endpoint() -> String {
    "https://api.partner.example/v1".into()
}

/// What the partner's `/events` endpoint takes. An event's `properties` (and traits,
/// below) are a `Part`: the JSON text they arrived as, copied into the body without
/// being parsed, exact numbers and key order included.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerEvent<'a> {
    pub event: &'a str,
    pub user_id: &'a str,
    pub properties: &'a Part<Object>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<&'a str>,
}

/// What the partner's `/users` endpoint takes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerUser<'a> {
    pub user_id: &'a str,
    pub traits: &'a Part<Object>,
}

/// The function. Each handler left out answers `EventNotSupported`, as in Segment.
#[derive(Debug)]
pub struct {{Name}};

impl Function for {{Name}} {
    type Settings = Settings;

    fn on_track(event: Track, settings: &Settings) -> HandlerResult {
        let body = PartnerEvent {
            event: event.event().or_invalid_payload("track event has no name")?,
            user_id: user(event.user_id(), event.anonymous_id())?,
            properties: event.properties(),
            timestamp: event.timestamp(),
            message_id: event.message_id(),
        };
        send(settings, "events", &body)?;
        info!("sent {:?}", body.event);
        Ok(None)
    }

    fn on_identify(event: Identify, settings: &Settings) -> HandlerResult {
        let body = PartnerUser {
            user_id: user(event.user_id(), event.anonymous_id())?,
            traits: event.traits(),
        };
        send(settings, "users", &body)?;
        Ok(None)
    }
}

/// The user the partner files the event under.
fn user<'a>(user_id: Option<&'a str>, anonymous_id: Option<&'a str>) -> Result<&'a str, Error> {
    user_id
        .or(anonymous_id)
        .or_invalid_payload("userId or anonymousId is required")
}

/// POSTs `body` to the partner's `path`; 2xx is success, 408, 423, 429 and 5xx other
/// than 501 are retried by Segment, any other answer rejects the event. (That is what
/// `response.error_for_status()` does; the `match` is written out to be changed for
/// your partner's API.)
fn send(settings: &Settings, path: &str, body: &impl Serialize) -> Result<Response, Error> {
    let url = format!("{}/{path}", settings.endpoint.trim_end_matches('/'));
    let request = Request::post(url)
        .bearer_auth(settings.api_key.expose())
        .json(body)?;
    let response = fetch(request)?; // a timeout or network failure is a RetryError
    match response.status {
        200..=299 => Ok(response),
        408 | 423 | 429 | 500 | 502..=599 => Err(Error::retry(format!(
            "partner answered {}",
            response.status
        ))),
        status => Err(Error::validation(format!(
            "partner rejected the event ({status}): {}",
            response.text()
        ))),
    }
}

// `schema`: the module also describes its settings, for `segfn schema` and `segfn docs`.
segfn_sdk::export!({{Name}}, schema);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::{OutcomeKind, testing};
    use serde_json::json;

    fn settings() -> serde_json::Value {
        json!({"apiKey": "test-key", "endpoint": "https://partner.test/v1"})
    }

    fn sample(file: &str) -> serde_json::Value {
        let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn track_is_sent_with_the_api_key() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let handled = testing::handle::<{{Name}}>(sample("track.json"), settings());
        assert_eq!(handled.kind, OutcomeKind::Success, "{handled:?}");
        let sent = testing::requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].url, "https://partner.test/v1/events");
        assert_eq!(
            sent[0].header_value("authorization"),
            Some("Bearer test-key")
        );
        let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(body["event"], "Signed Up");
        assert_eq!(testing::secrets(), ["test-key"]);
    }

    #[test]
    fn identify_sends_the_traits() {
        testing::mock_fetch(|_| Ok(Response::new(201)));
        let handled = testing::handle::<{{Name}}>(sample("identify.json"), settings());
        assert_eq!(handled.kind, OutcomeKind::Success, "{handled:?}");
        let body: serde_json::Value = serde_json::from_slice(&testing::requests()[0].body).unwrap();
        assert!(body["traits"].is_object(), "{body}");
    }

    #[test]
    fn partner_answers_become_outcomes() {
        for (status, class) in [
            (429, "RetryError"),
            (503, "RetryError"),
            (400, "ValidationError"),
        ] {
            testing::mock_fetch(move |_| Ok(Response::new(status)));
            let handled = testing::handle::<{{Name}}>(sample("track.json"), settings());
            assert_eq!(handled.class(), Some(class), "status {status}: {handled:?}");
        }
    }

    #[test]
    fn events_without_a_name_or_user_are_rejected() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let handled =
            testing::handle::<{{Name}}>(json!({"type": "track", "userId": "u1"}), settings());
        assert_eq!(handled.class(), Some("InvalidEventPayload"));
        let handled = testing::handle::<{{Name}}>(json!({"type": "identify"}), settings());
        assert_eq!(handled.class(), Some("InvalidEventPayload"));
        assert!(testing::requests().is_empty());
    }

    #[test]
    fn other_types_are_not_supported() {
        let handled =
            testing::handle::<{{Name}}>(json!({"type": "page", "userId": "u1"}), settings());
        assert_eq!(handled.kind, OutcomeKind::UnsupportedEventType);
    }
}
