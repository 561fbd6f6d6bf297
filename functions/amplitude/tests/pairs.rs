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

/// The first difference between `expected` and `actual`, as `path: expected ≠ actual`.
fn difference(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => None,
        (Value::Object(e), Value::Object(a)) => {
            let keys = e.keys().chain(a.keys().filter(|k| !e.contains_key(*k)));
            keys.map(|k| {
                let (e, a) = (
                    e.get(k).unwrap_or(&Value::Null),
                    a.get(k).unwrap_or(&Value::Null),
                );
                match (e.is_null() && !a.is_null(), a.is_null() && !e.is_null()) {
                    (true, _) => Some(format!("{path}.{k}: unexpected {a}")),
                    (_, true) => Some(format!("{path}.{k}: missing, expected {e}")),
                    _ => difference(e, a, &format!("{path}.{k}")),
                }
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
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let result =
            testing::handle::<Amplitude>(read(&dir.join("input.json")).unwrap(), settings.clone());
        if result.kind != OutcomeKind::Success {
            failures.push(format!("{name}: {result:?}"));
            continue;
        }
        let mut expected = read(&dir.join("output.json")).unwrap();
        if let (Value::Object(out), Value::Object(patch)) = (&mut expected, &case["output_patch"]) {
            for (key, value) in patch {
                match value {
                    Value::Null => out.shift_remove(key),
                    v => out.insert(key.clone(), v.clone()),
                };
            }
        }
        if case["sends_nothing"] == true {
            expected = Value::Null;
        }
        if let Some(diff) = difference(&expected, &sent(&settings), "") {
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
        names.len() == 34,
        "expected the 34 Amplitude pairs, found {}",
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
