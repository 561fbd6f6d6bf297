//! Source functions (`onRequest`): Segment's own 17 example source functions
//! (tests/fixtures/js-sources, MIT) run on each of their webhook examples and give
//! exactly what Segment's harness gives (recorded with Node in `expected/`: the same
//! events and objects, keys in the same order; or the same error class and message),
//! and `segfn run --request` prints them.

use crate::javascript::{build_script, js_out_dir, js_wasm};
use crate::support::*;
use base64::Engine as _;
use segfn_engine::{Limits, OutcomeKind, Output, Report};
use segfn_sdk::abi::Call;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn sources_dir() -> PathBuf {
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
/// exactly the calls; the report names them; a file that is not a request says why.
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

/// Segment's Tracking and Objects APIs, faked on 127.0.0.1: they check what Segment
/// checks (the write key as Basic auth, JSON of the right shape, 32 KB a message and
/// 500 KB a batch, a user on every event) and record what they accepted; `fail` makes
/// the next answers a given status.
#[derive(Clone, Default)]
struct FakeSegment {
    batches: Arc<Mutex<Vec<Value>>>,
    sets: Arc<Mutex<Vec<Value>>>,
    attempts: Arc<Mutex<usize>>,
    fail: Arc<Mutex<Vec<u16>>>,
}

const WRITE_KEY: &str = "wk_test_7d1e";

impl FakeSegment {
    async fn start() -> (FakeSegment, String) {
        let fake = FakeSegment::default();
        let state = fake.clone();
        let app = axum::Router::new()
            .route("/v1/batch", axum::routing::post(fake_batch))
            .route("/v1/set", axum::routing::post(fake_set))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, url)
    }

    fn batches(&self) -> Vec<Value> {
        self.batches.lock().unwrap().clone()
    }
}

/// The status a request gets before its body is looked at: forced, or 401.
fn gate(fake: &FakeSegment, headers: &axum::http::HeaderMap) -> Option<u16> {
    *fake.attempts.lock().unwrap() += 1;
    let mut fail = fake.fail.lock().unwrap();
    if !fail.is_empty() {
        return Some(fail.remove(0));
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{WRITE_KEY}:"))
    );
    (headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()))
        .then_some(401)
}

async fn fake_batch(
    axum::extract::State(fake): axum::extract::State<FakeSegment>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    if let Some(status) = gate(&fake, &headers) {
        return StatusCode::from_u16(status).unwrap();
    }
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let Some(messages) = parsed["batch"].as_array() else {
        return StatusCode::BAD_REQUEST;
    };
    let well_formed = body.len() <= 500 << 10
        && messages.iter().all(|m| {
            m.to_string().len() <= 32 << 10
                && m["type"].is_string()
                && m["messageId"].is_string()
                && (m["userId"].is_string() || m["anonymousId"].is_string())
        });
    if !well_formed {
        return StatusCode::BAD_REQUEST;
    }
    fake.batches.lock().unwrap().push(parsed);
    StatusCode::OK
}

async fn fake_set(
    axum::extract::State(fake): axum::extract::State<FakeSegment>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    if let Some(status) = gate(&fake, &headers) {
        return axum::http::StatusCode::from_u16(status).unwrap();
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(set)
            if set["collection"].is_string()
                && set["objects"].as_array().is_some_and(|o| o.len() <= 10) =>
        {
            fake.sets.lock().unwrap().push(set);
            axum::http::StatusCode::OK
        }
        _ => axum::http::StatusCode::BAD_REQUEST,
    }
}

/// `segfn serve` with one source (Segment's own GitHub function, in JavaScript) at
/// `/webhooks/TOKEN`, sending to the fake.
async fn serve_source(
    tracking: &str,
) -> (
    std::net::SocketAddr,
    tokio::sync::watch::Sender<bool>,
    tempfile::TempDir,
) {
    let script = sources_dir().join("github/handler.js");
    let wasm = tokio::task::spawn_blocking(move || js_wasm("source-github", &script))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("segfn.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nstore = {:?}\n[[source]]\nname = \"github\"\ntoken = \"{TOKEN}\"\nwrite_key = \"{WRITE_KEY}\"\ntracking_api = \"{tracking}\"\nobjects_api = \"{tracking}\"\n",
            dir.path().join("store.redb")
        ),
    )
    .unwrap();
    let (addr, stop) = serve_in_process(&config, &wasm).await;
    (addr, stop, dir)
}

const TOKEN: &str = "gh-hook-5b2c9e0a7f13d4c6e8b1";

async fn post_webhook(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let resp = client()
        .post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("x-github-event", "issues")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A webhook to `segfn serve` reaches Segment: the source's function runs, its track
/// goes to the Tracking API with the write key and a messageId that is the same when
/// the sender retries; a busy Tracking API is retried; a refusal by Segment, a failing
/// function and bad requests are answered for what they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_to_segfn_serve_reaches_segments_tracking_api() {
    let (fake, tracking) = FakeSegment::start().await;
    let (addr, _stop, _dir) = serve_source(&tracking).await;
    let example =
        std::fs::read(sources_dir().join("github/webhook-examples/issue-opened.json")).unwrap();
    let body =
        serde_json::to_vec(&serde_json::from_slice::<Value>(&example).unwrap()["payload"]["body"])
            .unwrap();
    let path = format!("/webhooks/{TOKEN}");

    let (status, answer) = post_webhook(addr, &path, "application/json", body.clone()).await;
    assert_eq!((status, &answer["events"]), (200, &json!(1)), "{answer}");
    let batches = fake.batches();
    assert_eq!(batches.len(), 1);
    let event = &batches[0]["batch"][0];
    assert_eq!(event["type"], "track");
    assert_eq!(event["event"], "issues opened");
    let id = event["messageId"].as_str().unwrap().to_owned();

    // The sender retries: the same messageId, for Segment to drop.
    let (status, _) = post_webhook(addr, &path, "application/json", body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(fake.batches()[1]["batch"][0]["messageId"], id.as_str());

    // Another query, the same body: another webhook, other ids.
    let (status, _) = post_webhook(
        addr,
        &format!("{path}?delivery=2"),
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let last = fake.batches().len() - 1;
    assert_ne!(fake.batches()[last]["batch"][0]["messageId"], id.as_str());

    // Segment busy twice: retried, then accepted; the sender gets its 200.
    fake.fail.lock().unwrap().extend([503, 429]);
    let before = *fake.attempts.lock().unwrap();
    let (status, answer) = post_webhook(addr, &path, "application/json", body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(*fake.attempts.lock().unwrap() - before, 3);

    // Segment refuses (a 400 is not retried): 502, saying what Segment said.
    fake.fail.lock().unwrap().push(400);
    let (status, answer) = post_webhook(addr, &path, "application/json", body.clone()).await;
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("Segment answered 400"),
        "{answer}"
    );

    // The function fails (no sender in the body): its outcome, nothing sent.
    let sent = fake.batches().len();
    let (status, answer) = post_webhook(addr, &path, "application/json", b"{}".to_vec()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["kind"], "bad_request", "{answer}");
    assert_eq!(fake.batches().len(), sent);

    // What is refused before anything runs.
    let (status, _) = post_webhook(
        addr,
        "/webhooks/not-the-token-000000000000",
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post_webhook(addr, &path, "text/plain", body.clone()).await;
    assert_eq!(status, 415);
    let (status, _) = post_webhook(addr, &path, "application/json", vec![b' '; 600 << 10]).await;
    assert_eq!(status, 413);
    let metrics = client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("segfn_source_requests_total{source=\"github\",outcome=\"success\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("segfn_source_events_sent_total{tenant=\"github\"} 4"),
        "{metrics}"
    );
}
