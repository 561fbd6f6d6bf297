//! {{Name}}: a Segment source function. A form tool's webhook becomes Segment calls: a
//! submitted form (`form_response`) is an identify of the respondent with their answers
//! as traits, and a track of the submission. Other webhooks are not supported.

use segfn_sdk::schemars::{self, JsonSchema};
use segfn_sdk::source::{Segment, WebhookRequest, identify, track};
use segfn_sdk::{Error, Function, Secret};
use serde::Deserialize;
use serde_json::{Value, json};

/// The settings a customer fills in when they add the source in Segment. Each field's
/// doc comment is its description in `segfn schema` and `segfn docs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    // A `Secret`: segfn keeps it out of logs, the request trace and reports.
    /// The token the form tool sends in its `X-Webhook-Token` header; requests without
    /// it are refused.
    pub webhook_token: Secret,
    /// The name of the track event a submission becomes.
    #[serde(default = "default_event_name")]
    pub event_name: String,
}

fn default_event_name() -> String {
    "Form Submitted".into()
}

/// The function. Its calls (`segment.send`) are what Segment receives, in order; an
/// error fails the request (a `ValidationError` rejects it, a `RetryError` asks the
/// sender to send it again).
#[derive(Debug)]
pub struct {{Name}};

impl Function for {{Name}} {
    type Settings = Settings;

    fn on_request(
        request: WebhookRequest,
        settings: &Settings,
        segment: &mut Segment,
    ) -> Result<(), Error> {
        if request.header("X-Webhook-Token") != Some(settings.webhook_token.expose().as_str()) {
            return Err(Error::validation("the webhook token is missing or wrong"));
        }
        let body: Value = request.json()?;
        if body["event"] != "form_response" {
            return Err(Error::not_supported(format!(
                "{} webhooks are not supported",
                body["event"]
            )));
        }
        let respondent = &body["respondent"];
        let user_id = respondent["id"]
            .as_str()
            .ok_or_else(|| Error::validation("the response has no respondent id"))?;
        segment.send(
            identify()
                .user_id(user_id)
                .traits(json!({ "email": respondent["email"], "answers": body["answers"] })),
        )?;
        segment.send(
            track(settings.event_name.as_str())
                .user_id(user_id)
                .properties(json!({ "formId": body["form_id"] }))
                .timestamp(body["submitted_at"].as_str().unwrap_or_default())
                .context(json!({ "source": "forms" })),
        )?;
        Ok(())
    }
}

// `schema`: the module also describes its settings, for `segfn schema` and `segfn docs`.
segfn_sdk::export!({{Name}}, schema);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::{OutcomeKind, testing};

    /// The sample webhook in `requests/` (Segment's harness shape).
    fn sample() -> WebhookRequest {
        let path = format!("{}/requests/form-response.json", env!("CARGO_MANIFEST_DIR"));
        segfn_sdk::source::read_harness(&std::fs::read(path).unwrap())
            .unwrap()
            .request
    }

    fn settings() -> Value {
        json!({"webhookToken": "wh-token-7f3a"})
    }

    #[test]
    fn a_form_response_is_an_identify_and_a_track() {
        let emitted = testing::handle_request::<{{Name}}>(sample(), settings()).unwrap();
        assert_eq!(emitted.events.len(), 2);
        assert_eq!(emitted.events[0]["type"], "identify");
        assert_eq!(emitted.events[0]["traits"]["email"], "jane@example.com");
        assert_eq!(emitted.events[1]["event"], "Form Submitted");
        assert_eq!(emitted.events[1]["userId"], "r-123");
    }

    #[test]
    fn a_request_without_the_token_is_refused() {
        let request = WebhookRequest::from_json(json!({"event": "form_response"}));
        let handled = testing::handle_request::<{{Name}}>(request, settings()).unwrap_err();
        assert_eq!(handled.kind, OutcomeKind::MessageRejected);
    }
}
