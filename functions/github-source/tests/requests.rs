//! The port natively, on one of the original's webhook examples (the e2e tests run
//! every example through the Wasm build, against what the JavaScript original makes).

use github_source::GitHub;
use segfn_sdk::source::WebhookRequest;
use segfn_sdk::testing;
use serde_json::json;

#[test]
fn an_issue_opened_webhook_is_a_track_for_its_sender() {
    let request = WebhookRequest::from_json(json!({"action": "opened", "sender": {"id": 147410}}))
        .with_header("X-GitHub-Event", "issues");
    let emitted = testing::handle_request::<GitHub>(request, json!({})).unwrap();
    assert_eq!(
        emitted.events,
        [json!({"type": "track", "event": "issues opened", "userId": "147410"})]
    );
    // A body that is not JSON fails the request, naming what it found.
    let failed = testing::handle_request::<GitHub>(WebhookRequest::from_text("<html>"), json!({}));
    let failed = failed.unwrap_err();
    assert!(
        failed.message().unwrap().contains("not the JSON expected"),
        "{failed:?}"
    );
}
