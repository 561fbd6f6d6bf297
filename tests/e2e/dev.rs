//! `segfn dev`: the binary started on a copy of the forwarder example in a temporary
//! directory, driven through its HTTP API: runs against a partner API on 127.0.0.1,
//! the run history, clear JSON errors for bad requests, rebuilds on save, build errors
//! with file and line while the last good module keeps running, and settings reloads.
//! (tests/browser/ drives the same page in a real browser.)

use crate::support::*;
use serde_json::{Value, json};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a first build on a machine where nothing is compiled yet.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Copies `functions/forwarder` into `dest` as a crate of its own (its own workspace,
/// the SDK by absolute path, the workspace's lock file so nothing is resolved anew).
fn copy_forwarder(dest: &Path) {
    let source = root().join("functions/forwarder");
    for dir in ["src", "events"] {
        std::fs::create_dir_all(dest.join(dir)).unwrap();
        for entry in std::fs::read_dir(source.join(dir)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dest.join(dir).join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(source.join("settings.json"), dest.join("settings.json")).unwrap();
    std::fs::copy(root().join("Cargo.lock"), dest.join("Cargo.lock")).unwrap();
    let manifest = format!(
        r#"[workspace]

[package]
name = "forwarder"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
segfn-sdk = {{ path = {sdk:?}, features = ["schema"] }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = {{ version = "1", features = ["preserve_order", "arbitrary_precision", "float_roundtrip"] }}

[profile.release]
lto = "thin"
"#,
        sdk = root().join("guest-sdk").display().to_string()
    );
    std::fs::write(dest.join("Cargo.toml"), manifest).unwrap();
}

/// A running `segfn dev`, ended when dropped.
pub(crate) struct Dev {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    /// Starts `segfn dev` on a fresh copy of the forwarder, fetches allowed to `partner`.
    async fn start(partner: &Partner) -> Dev {
        let dir = tempfile::tempdir().unwrap();
        copy_forwarder(dir.path());
        let allow = partner.addr.to_string();
        Dev::start_in(dir, ".", &["--allow-host", &allow], &scratch_target_dir()).await
    }

    /// Starts `segfn dev` on the crate at `crate_dir` (relative to `dir`, which the
    /// `Dev` owns) with `args`, building into `target_dir`.
    pub(crate) async fn start_in(
        dir: tempfile::TempDir,
        crate_dir: &str,
        args: &[&str],
        target_dir: &Path,
    ) -> Dev {
        let log = dir.path().join("dev.log");
        let mut child = segfn()
            .arg("dev")
            .arg(dir.path().join(crate_dir))
            .args(["--port", "0"])
            .args(args)
            .arg("--target-dir")
            .arg(target_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("segfn dev starts");
        let stdout = child.stdout.take().unwrap();
        let url = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .unwrap();
            line
        })
        .await
        .unwrap();
        let base = url.trim().trim_end_matches('/').to_owned();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "the first line is the URL on 127.0.0.1, got {url:?}"
        );
        Dev {
            child,
            base,
            dir,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn status(&self) -> Value {
        client()
            .get(self.url("/api/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls the status until `done` holds.
    async fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + BUILD_TIMEOUT;
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status: {status:#}\nsegfn dev's log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until a build later than build `after` has finished in `state`. (Not a
    /// fixed number: an editor's save may reach the watcher as more than one change.)
    pub(crate) async fn wait_for_build(&self, after: u64, state: &str) -> Value {
        self.wait_for(&format!("a build after {after} to end {state}"), |s| {
            s["build"]["number"].as_u64() > Some(after) && s["build"]["state"] == state
        })
        .await
    }

    /// Posts a run; returns the status, the run id header and the body.
    pub(crate) async fn run(&self, body: Value) -> (u16, Option<String>, Value) {
        let response = client()
            .post(self.url("/api/run"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let id = response
            .headers()
            .get("x-segfn-run-id")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, id, response.json().await.unwrap())
    }
}

fn settings(partner: &Partner) -> Value {
    json!({"apiKey": "sk_dev_secret_7731", "endpoint": partner.url("/v1")})
}

#[tokio::test]
async fn dev_runs_events_keeps_runs_and_answers_json_errors() {
    let partner = Partner::start().await;
    let dev = Dev::start(&partner).await;
    // The page is served while the first build runs.
    let page = client().get(dev.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("data-testid=\"run-button\"")
    );

    let status = dev.wait_for_build(0, "ok").await;
    assert_eq!(status["function"]["name"], "forwarder");
    assert_eq!(status["module_build"], 1);
    assert!(
        status["settings"]["text"]
            .as_str()
            .unwrap()
            .contains("apiKey")
    );

    // Samples: the crate's events/ first, then Segment's spec events of every type.
    let samples: Vec<Value> = client()
        .get(dev.url("/api/samples"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(samples[0]["id"].as_str().unwrap().starts_with("events/"));
    for kind in [
        "track", "identify", "page", "screen", "group", "alias", "delete", "batch",
    ] {
        assert!(
            samples
                .iter()
                .any(|s| s["kind"] == kind && s["group"] == "Segment spec events"),
            "no spec sample of type {kind}"
        );
    }

    // A run answers the report exactly as `segfn run --json` shapes it.
    let event = json!({"type": "track", "event": "Signed Up", "userId": "u-1",
        "properties": {"plan": "pro", "big": 18446744073709551617u128}});
    let (code, id, report) = dev
        .run(json!({"event": event, "settings": settings(&partner), "label": "first"}))
        .await;
    assert_eq!(code, 200, "{report:#}");
    assert_eq!(id.as_deref(), Some("1"));
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["outcome", "logs", "requests", "output", "stats"]);
    assert_eq!(report["outcome"]["kind"], "success", "{report:#}");
    assert_eq!(report["logs"][0]["message"], "forwarded \"Signed Up\"");
    let request = &report["requests"][0];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["status"], 200);
    assert_eq!(request["url"], partner.url("/v1/track"));
    assert!(
        request["request_body"]
            .as_str()
            .unwrap()
            .contains("18446744073709551617")
    );
    assert_eq!(request["response_body"], "{\"ok\":true}");
    assert!(report["stats"]["instructions"].as_u64().unwrap() > 0);
    // The secret reached the partner and nowhere in the report.
    assert_eq!(partner.received().len(), 1);
    assert!(!report.to_string().contains("sk_dev_secret_7731"));

    // A second run, a batch without settings: the history keeps both, newest first.
    let (code, _, report) = dev
        .run(json!({"event": {"batch": [{"type": "page", "name": "Home", "userId": "u"}]}}))
        .await;
    assert_eq!(code, 200);
    assert_eq!(report["outcome"]["kind"], "invalid_settings", "{report:#}");
    let runs: Vec<Value> = client()
        .get(dev.url("/api/runs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["id"], 2);
    assert_eq!(runs[0]["label"], "Custom event");
    assert_eq!(runs[1]["label"], "first");
    assert_eq!(runs[1]["kind"], "success");
    let record: Value = client()
        .get(dev.url("/api/runs/1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["event"], event);
    assert_eq!(record["report"]["outcome"]["kind"], "success");
    assert!(
        !record.to_string().contains("sk_dev_secret_7731"),
        "settings are not kept"
    );

    // Errors are JSON with a message that says what to do.
    let error = |response: reqwest::Response| async move {
        let code = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON error");
        (
            code,
            body["error"].as_str().expect("an error message").to_owned(),
        )
    };
    let post = |body: &'static str, content_type: &'static str| {
        client()
            .post(dev.url("/api/run"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (code, message) = error(
        post("{\"event\": {\"type\": ", "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400);
    assert!(message.contains("not a run"), "{message}");
    let (code, message) = error(post("{\"event\": {}}", "text/plain").await.unwrap()).await;
    assert_eq!(code, 415);
    assert!(message.contains("application/json"), "{message}");
    let (code, message) = error(post("{\"event\": 42}", "application/json").await.unwrap()).await;
    assert_eq!(code, 400);
    assert!(message.contains("the event is not usable"), "{message}");
    let (code, message) = error(
        post(
            "{\"event\": {\"type\": \"track\"}, \"settings\": [1]}",
            "application/json",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(code, 400);
    assert!(message.contains("JSON object"), "{message}");
    let huge = format!(
        "{{\"event\": {{\"type\": \"track\", \"pad\": \"{}\"}}}}",
        "x".repeat(6 << 20)
    );
    let response = client()
        .post(dev.url("/api/run"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let (code, message) = error(response).await;
    assert_eq!(code, 413);
    assert!(message.contains("larger than 5 MiB"), "{message}");
    let (code, message) = error(client().get(dev.url("/api/runs/99")).send().await.unwrap()).await;
    assert_eq!(code, 404);
    assert!(message.contains("no run"), "{message}");
    let (code, _) = error(client().get(dev.url("/api/run")).send().await.unwrap()).await;
    assert_eq!(code, 405);

    // Only this server's loopback name is served, and only its own page may post.
    let (code, message) = error(
        client()
            .get(dev.url("/api/status"))
            .header("host", "attacker.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 403);
    assert!(message.contains("answers only"), "{message}");
    let (code, _) = error(
        client()
            .post(dev.url("/api/run"))
            .header("origin", "http://attacker.example")
            .json(&json!({"event": {"type": "track"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(partner.received().len(), 1, "refused requests ran nothing");

    // The event stream opens with the status.
    let mut events = client().get(dev.url("/api/events")).send().await.unwrap();
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut seen = String::new();
    while !seen.contains("\"function\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.starts_with("event: status\n"), "{seen}");
}

#[tokio::test]
async fn dev_rebuilds_on_save_and_shows_build_errors_with_file_and_line() {
    let partner = Partner::start().await;
    let dev = Dev::start(&partner).await;
    let first = dev.wait_for_build(0, "ok").await["build"]["number"]
        .as_u64()
        .unwrap();
    let track = json!({"event": {"type": "track", "event": "Saved", "userId": "u"},
        "settings": settings(&partner)});

    // A saved change is rebuilt and the new module runs.
    let lib = dev.path("src/lib.rs");
    let original = std::fs::read_to_string(&lib).unwrap();
    let changed = original.replacen("info!(\"forwarded {:?}\"", "info!(\"forwarded v2 {:?}\"", 1);
    assert_ne!(changed, original, "the forwarder logs `forwarded {{:?}}`");
    std::fs::write(&lib, &changed).unwrap();
    let status = dev.wait_for_build(first, "ok").await;
    assert_eq!(status["build"]["reason"], "src/lib.rs changed");
    let good = status["build"]["number"].as_u64().unwrap();
    assert_eq!(status["module_build"], good);
    let (_, _, report) = dev.run(track.clone()).await;
    assert_eq!(report["logs"][0]["message"], "forwarded v2 \"Saved\"");

    // A broken save: the error names file, line and column; the last good module runs.
    let line_index = changed
        .lines()
        .position(|l| l.contains("info!(\"forwarded v2"))
        .unwrap();
    let mut lines: Vec<&str> = changed.lines().collect();
    lines.insert(line_index, "        let broken: u32 = \"oops\";");
    std::fs::write(&lib, lines.join("\n") + "\n").unwrap();
    let line = line_index + 1;
    let status = dev.wait_for_build(good, "failed").await;
    let broken = status["build"]["number"].as_u64().unwrap();
    let build = &status["build"];
    let first = &build["diagnostics"][0];
    assert_eq!(first["level"], "error", "{build:#}");
    assert_eq!(first["file"], "src/lib.rs");
    assert_eq!(first["line"], line);
    assert_eq!(first["column"], 27);
    assert_eq!(first["code"], "E0308");
    assert!(
        first["rendered"]
            .as_str()
            .unwrap()
            .contains("expected `u32`, found `&str`")
    );
    let summary = build["error"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("src/lib.rs:{line}:27: mismatched types")),
        "{summary}"
    );
    assert_eq!(status["module_build"], good);
    let (code, _, report) = dev.run(track.clone()).await;
    assert_eq!(code, 200);
    assert_eq!(report["logs"][0]["message"], "forwarded v2 \"Saved\"");
    let runs: Vec<Value> = client()
        .get(dev.url("/api/runs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs[0]["build"], good, "the run used the last good module");

    // Fixed again: built, errors gone, the original code runs.
    std::fs::write(&lib, &original).unwrap();
    let status = dev.wait_for_build(broken, "ok").await;
    let fixed = status["build"]["number"].as_u64().unwrap();
    assert_eq!(status["build"]["diagnostics"], json!([]));
    assert!(status["build"].get("error").is_none());
    let (_, _, report) = dev.run(track).await;
    assert_eq!(report["logs"][0]["message"], "forwarded \"Saved\"");

    // The settings file is watched: the page is offered the new text.
    let version = status["settings"]["version"].as_u64().unwrap();
    std::fs::write(
        dev.path("settings.json"),
        "{\"apiKey\": \"changed-on-disk\"}",
    )
    .unwrap();
    let status = dev
        .wait_for("the settings reload", |s| {
            s["settings"]["version"].as_u64() > Some(version)
        })
        .await;
    assert_eq!(
        status["settings"]["text"],
        "{\"apiKey\": \"changed-on-disk\"}"
    );
    assert_eq!(status["build"]["number"], fixed, "settings do not rebuild");

    // A manual rebuild.
    let response = client().post(dev.url("/api/rebuild")).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let status = dev.wait_for_build(fixed, "ok").await;
    assert_eq!(status["build"]["reason"], "requested");
}
