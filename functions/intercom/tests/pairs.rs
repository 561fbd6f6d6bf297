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
use serde_json::{Map, Value};
use std::fs;
use std::path::Path;

fn read(path: &Path) -> Option<Value> {
    let text = fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn merge(into: &mut Value, from: &Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from.clone());
    }
}

/// Applies `{"key" | "/json/pointer": value}`; `null` removes.
fn patch(target: &mut Value, patch: &Value) {
    for (key, value) in patch.as_object().into_iter().flatten() {
        let pointer = if key.starts_with('/') {
            key.clone()
        } else {
            format!("/{key}")
        };
        let (parent, last) = pointer.rsplit_once('/').unwrap();
        let parent = target
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"));
        let parent = parent.as_object_mut().unwrap();
        match value {
            Value::Null => parent.shift_remove(last),
            v => parent.insert(last.to_owned(), v.clone()),
        };
    }
}

/// The first difference between `expected` and `actual`, as `path: expected ≠ actual`.
fn difference(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => None,
        (Value::Object(e), Value::Object(a)) => {
            let keys = e.keys().chain(a.keys().filter(|k| !e.contains_key(*k)));
            keys.map(|k| match (e.get(k), a.get(k)) {
                (None, Some(a)) => Some(format!("{path}.{k}: unexpected {a}")),
                (Some(e), None) => Some(format!("{path}.{k}: missing, expected {e}")),
                (Some(e), Some(a)) => difference(e, a, &format!("{path}.{k}")),
                (None, None) => None,
            })
            .find_map(|d| d)
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (e, a))| difference(e, a, &format!("{path}[{i}]"))),
        (e, a) if e == a => None,
        (e, a) => Some(format!("{path}: expected {e}, got {a}")),
    }
}

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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pairs");
    let mut names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    let (mut failures, mut with_case) = (Vec::new(), 0);
    for dir in &names {
        let name = dir.file_name().unwrap().to_string_lossy();
        let meta = read(&dir.join("meta.json")).unwrap();
        let mut settings = meta["test_settings"].clone();
        merge(
            &mut settings,
            &read(&dir.join("fixture-settings.json")).unwrap_or_default(),
        );
        let case = read(&dir.join("case.json")).unwrap_or(Value::Object(Map::new()));
        if !case.as_object().unwrap().is_empty() {
            assert!(
                case["source"].is_string() && case["why"].is_string(),
                "{name}: case.json must cite its source and say why"
            );
            with_case += 1;
        }
        merge(&mut settings, &case["settings"]);
        let mut input = read(&dir.join("input.json")).unwrap();
        patch(&mut input, &case["input_patch"]);
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let result = testing::handle::<Intercom>(input.clone(), settings.clone());
        if result.kind != OutcomeKind::Success {
            failures.push(format!("{name}: {result:?}"));
            continue;
        }
        let mut expected = read(&dir.join("output.json")).unwrap();
        patch(&mut expected, &case["output_patch"]);
        if let Some(diff) = difference(&expected, &sent(&input, &settings), "") {
            failures.push(format!("{name}: {diff}"));
        }
    }
    println!(
        "{} pairs, {} with case.json, {} failed",
        names.len(),
        with_case,
        failures.len()
    );
    assert!(
        names.len() == 47,
        "expected the 47 Intercom pairs, found {}",
        names.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} pairs differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
