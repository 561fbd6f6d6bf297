//! Every recorded pair of Segment's old Intercom integration (`tests/pairs/*/`, see
//! `tests/pairs/SOURCES.md`): each `input.json` runs through the function natively with
//! `segfn_sdk::testing` (Intercom stubbed to answer 200), and the JSON body of the first
//! request the function sent must deep-equal `output.json`.
//!
//! What is compared: `output.json` is the request body the original tests asserted with
//! `.sends(json.output)` (or the mapper's return value, which the integration sends as
//! the body): the user for `POST /users`, a bulk job for `POST /bulk/events` or
//! `/bulk/users` (v2), the event for `POST /events` or the company for `POST /companies`
//! (v1; a v1 group then identifies the member with a second request, checked to go to
//! `/users`). Numbers compare by value (`1.0` equals `1`), as JavaScript's `deepEqual`.
//!
//! Settings: `meta.json`'s `test_settings` (the v2 `beforeEach`), then
//! `fixture-settings.json`, then `case.json`'s `settings` where the original test ran the
//! fixture under other settings (the "Intercom V1" block's `isBulkAPIEnabled: false`, or a
//! setting changed in the test body); `case.json` cites the test line and says why.
//! `case.json` may also patch the input or the expected output the way the original test
//! did (`json.input.userId = userId; json.output.items[0].data.user_id = userId`) or where
//! the original test replaced the output; `input_patch` and `output_patch` keys are
//! top-level keys or JSON pointers (`/items/0/data/user_id`), `null` removing one.
//!
//! Time: every input carries a `timestamp`, which gives `last_request_at`, `created` and
//! `created_at`; nothing else depends on the clock or randomness.

use intercom::Intercom;
use segfn_sdk::{OutcomeKind, Response, testing};
use serde_json::Value;
use std::path::Path;

/// The body of the first request, after checking where the requests went.
fn sent(input: &Value, settings: &Value) -> Value {
    let requests = testing::requests();
    let paths: Vec<&str> = requests
        .iter()
        .map(|r| {
            r.url
                .strip_prefix("https://api-segment.intercom.io")
                .unwrap()
        })
        .collect();
    let bulk = settings["isBulkAPIEnabled"] == true;
    let expected: &[&str] = match (input["type"].as_str().unwrap(), bulk) {
        ("identify", _) => &["/users"],
        ("track", true) => &["/bulk/events"],
        ("track", false) => &["/events"],
        ("group", true) => &["/bulk/users"],
        ("group", false) => &["/companies", "/users"],
        (other, _) => panic!("unexpected type {other}"),
    };
    assert_eq!(paths, expected);
    assert_eq!(
        requests[0].header_value("content-type"),
        Some("application/json")
    );
    serde_json::from_slice(&requests[0].body).unwrap()
}

#[test]
fn every_pair() {
    let pairs = segfn_pairs::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pairs"));
    segfn_pairs::check_all("Intercom", &pairs, 47, |pair| {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let result = testing::handle::<Intercom>(pair.input.clone(), pair.settings.clone());
        if result.kind != OutcomeKind::Success {
            return Err(format!("{result:?}"));
        }
        match segfn_pairs::difference(&pair.expected, &sent(&pair.input, &pair.settings)) {
            Some(diff) => Err(diff),
            None => Ok(()),
        }
    });
}
