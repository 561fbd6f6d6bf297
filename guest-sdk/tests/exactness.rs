//! Data comes back exactly as it went in (docs/ARCHITECTURE.md, decision 10): an event a function
//! passes through unchanged is written back with the same numbers, spelled the same way,
//! and its keys in the same order. "The same" is serde_json's compact form of the input
//! (`to_string(from_str::<Value>(input))`, with `preserve_order` and
//! `arbitrary_precision`): for an input already in that form, the very same bytes.
//!
//! That form differs from other inputs only in whitespace, string escapes (`\u00e9` is
//! written `é`) and exponent spelling (`1E2` is written `1e+2`); see
//! `fixtures/exactness/normalised/`.
//!
//! A free-form part the function did not touch (`properties`, `traits`, `context`,
//! `integrations`, read lazily as [`segfn_sdk::Part`]s) is written back as the very
//! text it came as, whatever its spelling: `through_event` keeps it, and its compact form
//! is the input's. What the guest hands the host (`through_guest`) is the compact form.

use segfn_sdk::abi::GuestResult;
use segfn_sdk::{
    Alias, Delete, Event, Function, Group, HandlerResult, Identify, NoSettings, Page, Screen,
    Track, handle_envelope_json,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An insert function that forwards every message unchanged.
struct PassThrough;

impl Function for PassThrough {
    type Settings = NoSettings;
    fn on_track(e: Track, _: &NoSettings) -> HandlerResult {
        Ok(Some(e.into()))
    }
    fn on_identify(e: Identify, _: &NoSettings) -> HandlerResult {
        Ok(Some(e.into()))
    }
    fn on_page(e: Page, _: &NoSettings) -> HandlerResult {
        Ok(Some(e.into()))
    }
    fn on_screen(e: Screen, _: &NoSettings) -> HandlerResult {
        Ok(Some(e.into()))
    }
    fn on_group(e: Group, _: &NoSettings) -> HandlerResult {
        Ok(Some(e.into()))
    }
    fn on_alias(e: Alias, _: &NoSettings) -> HandlerResult {
        Ok(Some(e.into()))
    }
    fn on_delete(e: Delete, _: &NoSettings) -> HandlerResult {
        Ok(Some(e.into()))
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// The exactness cases: one compact message per line.
fn compact_cases() -> Vec<String> {
    read(&fixtures().join("exactness/compact.jsonl"))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// serde_json's compact form of a JSON text, numbers and key order kept.
fn canonical(text: &str) -> String {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    serde_json::to_string(&value).unwrap()
}

/// Parsed into the typed model and written back, as a pass-through function does.
fn through_event(text: &str) -> String {
    let event: Event = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    serde_json::to_string(&event).unwrap()
}

/// The whole trip of an insert function: the host's envelope into `handle_envelope`, the
/// handler, the result JSON, and the host reading the output out of it. `None` for a
/// message no handler takes (an unknown type).
fn through_guest(text: &str) -> Option<String> {
    let envelope = format!(r#"{{"abi":1,"call":"event","event":{text},"settings":{{}}}}"#);
    let bytes = handle_envelope_json::<PassThrough>(envelope.as_bytes());
    let result: GuestResult = serde_json::from_slice(&bytes).unwrap();
    result
        .result
        .output
        .map(|output| serde_json::to_string(&output).unwrap())
}

/// The same, as one member of a batch.
fn through_guest_batch(texts: &[String]) -> Vec<Option<String>> {
    let envelope = format!(
        r#"{{"abi":1,"call":"batch","events":[{}],"settings":{{}}}}"#,
        texts.join(",")
    );
    let bytes = handle_envelope_json::<PassThrough>(envelope.as_bytes());
    let result: GuestResult = serde_json::from_slice(&bytes).unwrap();
    let Some(results) = result.results else {
        panic!("the batch failed: {:?}", result.result)
    };
    assert_eq!(results.len(), texts.len());
    results
        .into_iter()
        .map(|r| r.output.map(|o| serde_json::to_string(&o).unwrap()))
        .collect()
}

/// Asserts that two texts are the same bytes, showing where they first differ.
fn assert_same(actual: &str, expected: &str, origin: &str) {
    if actual == expected {
        return;
    }
    let at = actual
        .bytes()
        .zip(expected.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(actual.len().min(expected.len()));
    let around = |text: &str| {
        let start = text.floor_char_boundary(at.saturating_sub(60));
        let end = text.ceil_char_boundary((at + 60).min(text.len()));
        text[start..end].to_owned()
    };
    panic!(
        "{origin}: differs at byte {at}\n  got:      ...{}...\n  expected: ...{}...",
        around(actual),
        around(expected)
    );
}

/// Whether a handler takes the message (it has a known type).
fn handled(text: &str) -> bool {
    let value = serde_json::from_str(text).unwrap();
    Event::from_value(value).unwrap().event_type().is_some()
}

/// Asserts that `input` comes back as `expected` through the typed model and through the
/// guest (when a handler takes it).
fn assert_exact(input: &str, expected: &str, origin: &str) {
    assert_same(
        &canonical(&through_event(input)),
        expected,
        &format!("{origin}, through Event"),
    );
    if handled(input) {
        let back = through_guest(input).unwrap_or_else(|| panic!("{origin}: no output"));
        assert_same(&back, expected, &format!("{origin}, through the guest"));
    }
}

#[test]
fn exactness_cases_come_back_byte_for_byte() {
    let cases = compact_cases();
    assert!(cases.len() >= 15, "{} cases", cases.len());
    for (line, case) in cases.iter().enumerate() {
        let origin = format!("compact.jsonl line {}", line + 1);
        // The file holds only compact, canonical text, so equal means the same bytes.
        assert_eq!(&canonical(case), case, "{origin} is not in compact form");
        assert_exact(case, case, &origin);
    }
}

#[test]
fn untouched_parts_come_back_as_the_very_text_they_came_as() {
    let parts = [
        r#"{"n": 1E2, "big": 1e400, "exact": 25.00, "e": "\u00e9", "nested": {"a": [1, 2.50]}}"#,
        "{\n  \"pretty\": true,\n  \"list\": [ ]\n}",
        r#"{}"#,
    ];
    for part in parts {
        let input = format!(
            r#"{{"type":"track","event":"E","properties":{part},"context":{part},"integrations":{part}}}"#
        );
        let back = through_event(&input);
        assert_same(&back, &input, "untouched parts");
        // Read, not changed: still the text.
        let Event::Track(track) = Event::from_json(&input).unwrap() else {
            panic!("a track")
        };
        let _ = track.properties().len();
        let _ = track.context().ip();
        assert_same(
            &serde_json::to_string(&track).unwrap(),
            &input,
            "parts read",
        );
        // Changed: that part alone is written from its tree, in compact form.
        let mut track = track;
        track
            .properties
            .as_mut()
            .unwrap()
            .insert("added".into(), true.into());
        let changed: Value = serde_json::from_str(&serde_json::to_string(&track).unwrap()).unwrap();
        let mut expected: Value = serde_json::from_str(&input).unwrap();
        expected["properties"]["added"] = true.into();
        assert!(values_equal(&changed, &expected), "{changed} != {expected}");
    }
}

#[test]
fn exactness_cases_come_back_byte_for_byte_from_a_batch() {
    let cases = compact_cases();
    for (line, (case, back)) in cases.iter().zip(through_guest_batch(&cases)).enumerate() {
        if handled(case) {
            let back = back.unwrap_or_else(|| panic!("line {}: no output", line + 1));
            assert_same(&back, case, &format!("compact.jsonl line {}", line + 1));
        }
    }
}

#[test]
fn other_spellings_come_back_in_compact_form_with_equal_values() {
    let files = json_files(&fixtures().join("exactness/normalised"));
    assert!(!files.is_empty());
    for path in files {
        let input = read(&path);
        let expected = canonical(&input);
        assert_ne!(
            input.trim_end(),
            expected,
            "{}: already compact",
            path.display()
        );
        assert_exact(&input, &expected, &path.display().to_string());
        let back: Value = serde_json::from_str(&through_event(&input)).unwrap();
        let input: Value = serde_json::from_str(&input).unwrap();
        assert!(values_equal(&back, &input), "{}", path.display());
    }
}

/// Equality of JSON values with numbers compared by value (`1e+2` equals `1E2`), which
/// `==` on arbitrary-precision numbers, comparing their text, does not do.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || x.to_string().parse::<f64>().ok() == y.to_string().parse::<f64>().ok()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && values_equal(va, vb))
        }
        _ => a == b,
    }
}

/// The messages of a fixture file, as text: the file itself, or each member of a
/// `{"batch": [...]}` file in compact form.
fn fixture_messages(text: &str) -> Vec<String> {
    match serde_json::from_str::<Value>(text).unwrap() {
        Value::Object(map) if !map.contains_key("type") && map.contains_key("batch") => {
            match &map["batch"] {
                Value::Array(items) => items
                    .iter()
                    .map(|m| serde_json::to_string(m).unwrap())
                    .collect(),
                other => panic!("batch is not an array: {other}"),
            }
        }
        _ => vec![text.to_owned()],
    }
}

#[test]
fn every_fixture_message_comes_back_in_its_compact_form() {
    let mut checked = 0;
    let mut compact = 0;
    for dir in ["segment-events", "segment-events-odd"] {
        for path in json_files(&fixtures().join(dir)) {
            let text = read(&path);
            for message in fixture_messages(&text) {
                let expected = canonical(&message);
                assert_exact(&message, &expected, &path.display().to_string());
                // Already compact (a batch member, or a one-line file): the same bytes.
                if message.trim_end() == expected {
                    assert_eq!(through_event(&message), message.trim_end());
                    compact += 1;
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 126, "{checked} messages");
    assert!(compact > 0, "no compact input among the fixtures");
}

/// A small deterministic generator (xorshift64*), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_doubles_keep_every_bit() {
    let mut rng = Rng(0x5e9f_0001);
    let mut doubles = Vec::new();
    while doubles.len() < 6000 {
        // Any bit pattern (all magnitudes, subnormals included), and plain [0, 1000).
        let any = f64::from_bits(rng.next());
        if any.is_finite() {
            doubles.push(any);
        }
        doubles.push((rng.next() >> 11) as f64 / (1u64 << 53) as f64 * 1000.0);
    }
    for chunk in doubles.chunks(200) {
        // Shortest form, with exponent, and 17 significant digits (not always shortest).
        let spelled: Vec<String> = chunk
            .iter()
            .flat_map(|d| [format!("{d:?}"), format!("{d:e}"), format!("{d:.16e}")])
            .collect();
        let input = format!(
            r#"{{"type":"track","event":"Doubles","properties":{{"x":[{}]}}}}"#,
            spelled.join(",")
        );
        let back: Value = serde_json::from_str(&through_event(&input)).unwrap();
        let numbers = back["properties"]["x"].as_array().unwrap();
        for (number, text) in numbers.iter().zip(&spelled) {
            let original: f64 = text.parse().unwrap();
            let back: f64 = number.to_string().parse().unwrap();
            assert_eq!(
                back.to_bits(),
                original.to_bits(),
                "{text} came back as {number}"
            );
        }
        assert_exact(&input, &canonical(&input), "random doubles");
    }
}

/// 410 more real messages (the inputs of Segment's old integration tests, copied into
/// `tests/fixtures/integration-inputs/` as they were written) come back in compact form.
#[test]
fn integration_inputs_come_back_in_compact_form() {
    let files = json_files(&fixtures().join("integration-inputs"));
    assert_eq!(files.len(), 410, "the whole set");
    for path in &files {
        let text = read(path);
        assert_exact(&text, &canonical(&text), &path.display().to_string());
    }
}

/// Times parsing and writing messages, to measure what exact numbers cost. Run with
/// `cargo test -p segfn-sdk --release --test exactness -- --ignored --nocapture`, once
/// as is and once with serde_json's `arbitrary_precision` switched off in the workspace
/// `Cargo.toml` (the exactness tests then fail; this one still runs).
#[test]
#[ignore = "timing; run explicitly with --release"]
fn timing_parse_and_write() {
    eprintln!("arbitrary_precision: {}", arbitrary_precision());
    let mut corpus = Vec::new();
    for dir in ["segment-events", "segment-events-odd"] {
        for path in json_files(&fixtures().join(dir)) {
            corpus.extend(fixture_messages(&read(&path)));
        }
    }
    time_corpus("fixture corpus", &corpus);

    // Number-heavy: 100 track messages of 100 random doubles each.
    let mut rng = Rng(0x7173_0002);
    let numeric: Vec<String> = (0..100)
        .map(|_| {
            let numbers: Vec<String> = (0..100)
                .map(|_| {
                    let d = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * 1000.0;
                    format!("{d:?}")
                })
                .collect();
            format!(
                r#"{{"type":"track","event":"Numbers","properties":{{"x":[{}]}}}}"#,
                numbers.join(",")
            )
        })
        .collect();
    time_corpus("100 doubles a message", &numeric);
}

fn time_corpus(name: &str, messages: &[String]) {
    let bytes: usize = messages.iter().map(String::len).sum();
    eprintln!("{name}: {} messages, {bytes} bytes", messages.len());
    let envelopes: Vec<String> = messages
        .iter()
        .map(|m| format!(r#"{{"abi":1,"call":"event","event":{m},"settings":{{}}}}"#))
        .collect();
    // About 10 MB of input a measurement; the best of 5 is the least disturbed by
    // whatever else the machine runs.
    let rounds = (10_000_000 / bytes).max(1);
    let time = |label: &str, work: &mut dyn FnMut()| {
        work(); // warm up
        let best = (0..5)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..rounds {
                    work();
                }
                start.elapsed()
            })
            .min()
            .unwrap();
        report(label, best, rounds * messages.len(), rounds * bytes);
    };
    time("parse to Value", &mut || {
        for m in messages {
            std::hint::black_box(serde_json::from_str::<Value>(m).unwrap());
        }
    });
    time("Event parse + write", &mut || {
        for m in messages {
            let event: Event = serde_json::from_str(m).unwrap();
            std::hint::black_box(serde_json::to_vec(&event).unwrap());
        }
    });
    time("guest pass-through", &mut || {
        for e in &envelopes {
            std::hint::black_box(handle_envelope_json::<PassThrough>(e.as_bytes()));
        }
    });
}

fn report(label: &str, elapsed: Duration, messages: usize, bytes: usize) {
    eprintln!(
        "  {label:>20}: {:7.2} µs/message, {:6.1} MB/s",
        elapsed.as_secs_f64() * 1e6 / messages as f64,
        bytes as f64 / elapsed.as_secs_f64() / 1e6
    );
}

/// Whether serde_json keeps numbers as written (its `arbitrary_precision` feature).
fn arbitrary_precision() -> bool {
    serde_json::from_str::<Value>("1e400").is_ok()
}
