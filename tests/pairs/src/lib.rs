//! The test harness of the ported integrations (`functions/amplitude`, `intercom`,
//! `google-analytics`): loads their recorded pairs of a Segment message and what
//! Segment's old integration sent for it, with the settings the original test used, and
//! checks every pair, naming each that differs and where.
//!
//! A pair is a folder of `input.json`, `output.json`, `meta.json` (whose `test_settings`
//! are the original test file's `beforeEach` settings), an optional
//! `fixture-settings.json` merged over them, and an optional `case.json` saying what the
//! original test itself changed: `settings` merged last, `input_patch` and
//! `output_patch` (top-level keys or JSON pointers such as `/items/0/data/user_id`,
//! `null` removing one). A `case.json` must cite its `source` and say `why`.

use serde_json::{Map, Value};
use std::fs;
use std::path::Path;

/// One recorded pair, ready to run.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The folder's name.
    pub name: String,
    /// The Segment message, with the case's input patch applied.
    pub input: Value,
    /// The settings the original test ran it with.
    pub settings: Value,
    /// What the integration sent, with the case's output patch applied.
    pub expected: Value,
    /// The pair's `case.json` (an empty object when there is none).
    pub case: Value,
}

/// Every pair under `root`, in name order.
///
/// # Panics
///
/// When a file is unreadable or not JSON, or a `case.json` lacks `source` or `why`:
/// the harness is for tests.
pub fn load(root: &Path) -> Vec<Pair> {
    let mut dirs: Vec<_> = fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let file = |f: &str| read(&dir.join(f));
            let case = file("case.json").unwrap_or(Value::Object(Map::new()));
            if case.as_object().is_some_and(|c| !c.is_empty()) {
                assert!(
                    case["source"].is_string() && case["why"].is_string(),
                    "{name}: case.json must cite its source and say why"
                );
            }
            let mut settings = file("meta.json").expect("meta.json")["test_settings"].clone();
            patch(
                &mut settings,
                &file("fixture-settings.json").unwrap_or_default(),
            );
            patch(&mut settings, &case["settings"]);
            let mut input = file("input.json").expect("input.json");
            patch(&mut input, &case["input_patch"]);
            let mut expected = file("output.json").expect("output.json");
            patch(&mut expected, &case["output_patch"]);
            Pair {
                name,
                input,
                settings,
                expected,
                case,
            }
        })
        .collect()
}

/// Runs `check` on every pair and fails, listing every pair that differs, unless there
/// are exactly `count` pairs (so none can go missing) and all pass.
pub fn check_all(
    integration: &str,
    pairs: &[Pair],
    count: usize,
    mut check: impl FnMut(&Pair) -> Result<(), String>,
) {
    let failures: Vec<String> = pairs
        .iter()
        .filter_map(|pair| check(pair).err().map(|e| format!("{}: {e}", pair.name)))
        .collect();
    let with_case = pairs
        .iter()
        .filter(|p| p.case.as_object().is_some_and(|c| !c.is_empty()))
        .count();
    println!(
        "{} pairs, {with_case} with case.json, {} failed",
        pairs.len(),
        failures.len()
    );
    assert_eq!(
        pairs.len(),
        count,
        "expected the {count} {integration} pairs, found {}",
        pairs.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} pairs differ:\n{}",
        failures.len(),
        pairs.len(),
        failures.join("\n")
    );
}

fn read(path: &Path) -> Option<Value> {
    let text = fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Applies `{"key" | "/json/pointer": value}` to `target`; `null` removes.
pub fn patch(target: &mut Value, patch: &Value) {
    for (key, value) in patch.as_object().into_iter().flatten() {
        let pointer = if key.starts_with('/') {
            key.clone()
        } else {
            format!("/{key}")
        };
        let (parent, last) = pointer.rsplit_once('/').expect("a pointer has a slash");
        let parent = target
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("patch: no object at {parent:?}"));
        match value {
            Value::Null => parent.shift_remove(last),
            v => parent.insert(last.to_owned(), v.clone()),
        };
    }
}

/// The first difference between `expected` and `actual`, as `path: ...`; numbers
/// compare by value (`1.0` equals `1`), as JavaScript's `deepEqual` does.
pub fn difference(expected: &Value, actual: &Value) -> Option<String> {
    diff_at(expected, actual, "")
}

fn diff_at(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => None,
        (Value::Object(e), Value::Object(a)) => e
            .keys()
            .chain(a.keys().filter(|k| !e.contains_key(*k)))
            .find_map(|k| match (e.get(k), a.get(k)) {
                (None, Some(a)) => Some(format!("{path}.{k}: unexpected {a}")),
                (Some(e), None) => Some(format!("{path}.{k}: missing, expected {e}")),
                (Some(e), Some(a)) => diff_at(e, a, &format!("{path}.{k}")),
                (None, None) => None,
            }),
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (e, a))| diff_at(e, a, &format!("{path}[{i}]"))),
        (e, a) if e == a => None,
        (e, a) => Some(format!("{path}: expected {e}, got {a}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patches_take_keys_and_pointers_and_null_removes() {
        let mut v = json!({"a": 1, "items": [{"data": {"user_id": "x"}}]});
        patch(
            &mut v,
            &json!({"a": null, "b": 2, "/items/0/data/user_id": "u1"}),
        );
        assert_eq!(v, json!({"b": 2, "items": [{"data": {"user_id": "u1"}}]}));
    }

    #[test]
    fn differences_name_the_path_and_numbers_compare_by_value() {
        assert_eq!(difference(&json!({"n": 1}), &json!({"n": 1.0})), None);
        assert_eq!(
            difference(
                &json!({"a": [1, {"b": "x"}]}),
                &json!({"a": [1, {"b": "y"}]})
            ),
            Some(r#".a[1].b: expected "x", got "y""#.into())
        );
        assert_eq!(
            difference(&json!({"a": 1}), &json!({})),
            Some(".a: missing, expected 1".into())
        );
    }
}
