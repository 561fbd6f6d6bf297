//! Segment's GitHub source function (functions-library `sources/github`, MIT), ported
//! from JavaScript line for line: a webhook becomes a track named after its
//! `X-GitHub-Event` header and `action`, for the sender. `tests/fixtures/js-sources/github`
//! holds the original; the tests check both emit the same calls on its examples.

use segfn_sdk::facade::js_string;
use segfn_sdk::source::{Segment, WebhookRequest, track};
use segfn_sdk::{Error, Function, NoSettings};
use serde_json::Value;

/// The function.
#[derive(Debug)]
pub struct GitHub;

impl Function for GitHub {
    type Settings = NoSettings;

    fn on_request(
        request: WebhookRequest,
        _: &NoSettings,
        segment: &mut Segment,
    ) -> Result<(), Error> {
        let body: Value = request.json()?;
        // `headers.get` is null for a missing header, which JavaScript writes "null".
        let mut event = request
            .header("X-Github-Event")
            .unwrap_or("null")
            .to_owned();
        if let Some(action) = body.get("action").filter(|a| segfn_sdk::facade::truthy(a)) {
            event = format!("{event} {}", js_string(action));
        }
        segment.send(track(event).user_id(js_string(&body["sender"]["id"])))?;
        Ok(())
    }
}

segfn_sdk::export!(GitHub);
