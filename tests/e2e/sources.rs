//! Source functions (`onRequest`): Segment's own 17 example source functions
//! (tests/fixtures/js-sources, MIT) run on each of their webhook examples and give
//! exactly what Segment's harness gives (recorded with Node in `expected/`: the same
//! events and objects, keys in the same order; or the same error class and message),
//! and `segfn run --request` prints them.

use crate::javascript::{build_script, js_out_dir, js_wasm};
use crate::support::*;
use segfn_engine::{Limits, OutcomeKind, Output, Report};
use segfn_sdk::abi::Call;
use serde_json::{Value, json};
use std::path::PathBuf;

pub(crate) fn sources_dir() -> PathBuf {
    root().join("tests/fixtures/js-sources")
}

/// Each source with examples: its name and its examples' files.
fn sources() -> Vec<(String, Vec<PathBuf>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(sources_dir()).unwrap() {
        let dir = entry.unwrap().path();
        let examples = dir.join("webhook-examples");
        if !examples.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&examples)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        found.push((name, files));
    }
    found.sort();
    found
}

/// Whether `report` is what the harness recorded.
fn matches(report: &Report, expected: &Value) -> Result<(), String> {
    if let Some(error) = expected.get("error") {
        let (name, message) = (
            error["name"].as_str().unwrap(),
            error["message"].as_str().unwrap(),
        );
        let kind = match name {
            "ValidationError" | "InvalidEventPayload" => OutcomeKind::MessageRejected,
            "EventNotSupported" => OutcomeKind::UnsupportedEventType,
            "RetryError" => OutcomeKind::Retry,
            _ => OutcomeKind::BadRequest,
        };
        let got = report.outcome.message.as_deref().unwrap_or("");
        // Errors other than Segment's classes are reported with their name first.
        let same = if kind == OutcomeKind::BadRequest {
            got.starts_with(&format!("{name}: {message}"))
        } else {
            got == message
        };
        if report.outcome.kind != kind || !same {
            return Err(format!(
                "expected {name}: {message}, got {:?}",
                report.outcome
            ));
        }
        return Ok(());
    }
    let Output::Emitted(emitted) = &report.output else {
        return Err(format!("no calls: {:?}", report.outcome));
    };
    // Compared as text: the same values with their keys in the same order.
    let got = serde_json::to_string(emitted).unwrap();
    let want = serde_json::to_string(expected).unwrap();
    if report.outcome.kind != OutcomeKind::Success || got != want {
        return Err(format!(
            "{:?}\n  got:  {got}\n  want: {want}",
            report.outcome
        ));
    }
    Ok(())
}

#[tokio::test]
async fn segments_source_examples_give_what_their_harness_gives() {
    let sources = sources();
    assert_eq!(
        sources.len(),
        16,
        "the 17 sources less Yotpo, which has no examples"
    );
    let mut checked = 0;
    let mut failures = Vec::new();
    for (name, examples) in sources {
        let expected = |file: &str| -> Value {
            let path = sources_dir().join("expected").join(&name).join(file);
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        };
        // A script whose top level throws fails `segfn build`, with its place; Segment's
        // harness meets the same error at each request (leanplum's `exports`).
        let script = sources_dir().join(&name).join("handler.js");
        let wasm = js_out_dir().join(format!("source-{name}.wasm"));
        let out = wasm.clone();
        let built = tokio::task::spawn_blocking(move || build_script(&script, &out))
            .await
            .unwrap();
        if !built.status.success() {
            let stderr = String::from_utf8_lossy(&built.stderr);
            for example in &examples {
                let file = example.file_name().unwrap().to_string_lossy().into_owned();
                let error = &expected(&file)["error"];
                let said = format!(
                    "{}: {}",
                    error["name"].as_str().unwrap_or("?"),
                    error["message"].as_str().unwrap_or("?")
                );
                if !stderr.contains(&said) {
                    failures.push(format!("{name}/{file}: the build failed: {stderr}"));
                }
                checked += 1;
            }
            continue;
        }
        let function = runtime()
            .load_file(&wasm)
            .await
            .expect("the snapshot loads");
        for example in examples {
            let file = example.file_name().unwrap().to_string_lossy().into_owned();
            let read = segfn_sdk::source::read_harness(&std::fs::read(&example).unwrap()).unwrap();
            let settings = read.settings.unwrap_or_else(|| json!({}));
            let opts = options(&[], &settings, Limits::default());
            let report = function
                .invoke(
                    &opts,
                    Call::Request {
                        request: read.request.to_value(),
                    },
                    settings,
                )
                .await;
            if let Err(problem) = matches(&report, &expected(&file)) {
                failures.push(format!("{name}/{file}: {problem}"));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 56, "every example was run");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `segfn run --request` runs a source function on one webhook: `--json`'s `output` is
/// exactly the calls; the report names them; a file that is not a request says why;
/// `--body` with `--header` and `--url` sends a raw body.
#[tokio::test]
async fn segfn_run_takes_a_webhook_request() {
    let script = sources_dir().join("github/handler.js");
    let wasm = tokio::task::spawn_blocking(move || js_wasm("source-github", &script))
        .await
        .unwrap();
    let example = sources_dir().join("github/webhook-examples/issue-opened.json");
    let out = segfn()
        .args(["run"])
        .arg(&wasm)
        .arg("--request")
        .arg(&example)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: Value = serde_json::from_slice(
        &std::fs::read(sources_dir().join("expected/github/issue-opened.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["output"], expected, "{report}");
    assert_eq!(report["outcome"]["kind"], "success");

    let out = segfn()
        .args(["run"])
        .arg(&wasm)
        .arg("--request")
        .arg(&example)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("SUCCESS") && text.contains("\"events\""),
        "{text}"
    );

    // An event file given as a request: refused, naming what a request file is.
    let event = root().join("functions/forwarder/events/track-signed-up.json");
    let out = segfn()
        .args(["run"])
        .arg(&wasm)
        .arg("--request")
        .arg(&event)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no \"payload\" object"), "{stderr}");
    // Neither --event nor --request: a usage error.
    let out = segfn().args(["run"]).arg(&wasm).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    // A raw body as the sender posts it, with its headers and URL.
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, r#"{"action": "created", "sender": {"id": 99}}"#).unwrap();
    let out = segfn()
        .args(["run"])
        .arg(&wasm)
        .arg("--body")
        .arg(&body)
        .args([
            "-H",
            "X-GitHub-Event: star",
            "--header",
            "Content-Type: application/json",
        ])
        .args(["--url", "https://hooks.example/in?x=1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["output"]["events"],
        json!([{"type": "track", "event": "star created", "userId": "99"}]),
        "{report}"
    );
    // A header that is not `Name: value`, or --header without --body: usage errors.
    for args in [
        vec!["--body", "-", "--header", "no colon"],
        vec!["--request", "x.json", "--header", "A: b"],
    ] {
        let out = segfn()
            .args(["run"])
            .arg(&wasm)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// Segment's GitHub and Stripe source functions ported to Rust (functions/github-source,
/// functions/stripe-source), built to Wasm: on every webhook example they make exactly
/// the calls the JavaScript originals make under Segment's harness.
#[tokio::test]
async fn the_rust_ports_emit_what_the_javascript_originals_emit() {
    let mut checked = 0;
    for (crate_name, source) in [
        ("github-source", "github"),
        ("stripe-source", "stripe-events"),
    ] {
        let wasm = tokio::task::spawn_blocking(move || example_wasm(crate_name))
            .await
            .unwrap();
        let function = runtime().load_file(&wasm).await.expect("the port loads");
        let examples = sources()
            .into_iter()
            .find(|(name, _)| name == source)
            .expect("the original's examples")
            .1;
        for example in examples {
            let file = example.file_name().unwrap().to_string_lossy().into_owned();
            let read = segfn_sdk::source::read_harness(&std::fs::read(&example).unwrap()).unwrap();
            let opts = options(&[], &json!({}), Limits::default());
            let call = Call::Request {
                request: read.request.to_value(),
            };
            let report = function.invoke(&opts, call, json!({})).await;
            let expected: Value = serde_json::from_slice(
                &std::fs::read(sources_dir().join("expected").join(source).join(&file)).unwrap(),
            )
            .unwrap();
            matches(&report, &expected).unwrap_or_else(|p| panic!("{crate_name} on {file}: {p}"));
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}

/// `segfn demo` on a source function runs its sample webhook requests and prints what
/// the function emitted.
#[test]
fn demo_runs_a_source_example() {
    let stdout = demo("github-source");
    assert!(stdout.contains("requests/issue-opened.json"), "{stdout}");
    assert!(stdout.contains("\"event\": \"issues opened\""), "{stdout}");
    assert!(stdout.contains("\"userId\": \"147410\""), "{stdout}");
}
