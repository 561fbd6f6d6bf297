//! Every recorded pair of Segment's old Amplitude integration (`tests/pairs/*/`, see
//! `tests/pairs/SOURCES.md`): each `input.json` runs through the function natively with
//! `segfn_sdk::testing` (the partner stubbed to answer 200), and the event Amplitude
//! received must deep-equal `output.json`.
//!
//! What is compared: `output.json` is the JSON object the integration sent in the
//! form field `event` (track, page, screen; `POST /httpapi`) or `identification`
//! (identify, group; `POST /identify`), as the original tests asserted with
//! `.sends('api_key=...&event=' + encode(JSON.stringify(output)))`. Here the form body is
//! decoded and that field parsed; `api_key` must be the settings' key. Numbers compare
//! by value (`1.0` equals `1`), as JavaScript's `deepEqual` did.
//!
//! Settings: `meta.json`'s `test_settings` (the test file's `beforeEach`), then
//! `fixture-settings.json`, then `case.json`'s `settings` where the original test
//! changed the settings before sending that fixture (the file cites the test line).
//! `case.json` may also say `"sends_nothing": true` where the only test that used the
//! fixture asserted that nothing was sent (`.requests(0)`), or give an `output_patch`
//! (top-level keys replaced, `null` removing one) where the original test never asserted
//! `output.json` and it is not what the JavaScript produced; its `why` says what differs
//! and cites the upstream code. Every other key is compared as recorded.
//!
//! Time: every input carries a `timestamp`, which gives `time`; nothing else is random.

use amplitude::Amplitude;
use segfn_sdk::{OutcomeKind, Response, encoding, testing};
use serde_json::Value;
use std::path::Path;

/// What Amplitude received: the JSON of the `event` or `identification` field.
fn sent(settings: &Value) -> Value {
    let requests = testing::requests();
    let Some(request) = requests.first() else {
        return Value::Null;
    };
    assert_eq!(requests.len(), 1, "one request per event");
    let form = encoding::form_decode(std::str::from_utf8(&request.body).unwrap());
    assert_eq!(
        form[0],
        (
            "api_key".into(),
            settings["apiKey"].as_str().unwrap().into()
        )
    );
    let (field, json) = &form[1];
    let path = if field == "event" {
        "/httpapi"
    } else {
        "/identify"
    };
    assert_eq!(request.url, format!("https://api.amplitude.com{path}"));
    serde_json::from_str(json).unwrap()
}

#[test]
fn every_pair() {
    let pairs = segfn_pairs::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pairs"));
    segfn_pairs::check_all("Amplitude", &pairs, 34, |pair| {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let result = testing::handle::<Amplitude>(pair.input.clone(), pair.settings.clone());
        if result.kind != OutcomeKind::Success {
            return Err(format!("{result:?}"));
        }
        let expected = if pair.case["sends_nothing"] == true {
            Value::Null
        } else {
            pair.expected.clone()
        };
        match segfn_pairs::difference(&expected, &sent(&pair.settings)) {
            Some(diff) => Err(diff),
            None => Ok(()),
        }
    });
}
