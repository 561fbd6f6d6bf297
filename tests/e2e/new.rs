//! `segfn new`: each template, created outside any workspace, passes its own tests with
//! `cargo test` and `cargo fmt --check`, and runs with `segfn run` and on `segfn dev`'s
//! page against a partner on 127.0.0.1 (its real URLs mapped there with `--map-host`);
//! inside a workspace the crate becomes a member; bad names and used directories are
//! refused.

use crate::dev::Dev;
use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `command` on a blocking thread (cargo builds take a while).
async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("the command runs"))
        .await
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Cargo for a generated crate: its builds share the scratch target directory (kept
/// under target/, so dependencies compile once), and nothing of this test process's
/// Cargo environment leaks in.
fn cargo(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", scratch_target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    command
}

#[tokio::test]
async fn every_template_tests_builds_and_runs() {
    let partner = Partner::start().await;
    let scratch = tempfile::tempdir().unwrap();
    for (template, event) in [
        ("destination", "events/track.json"),
        ("insert", "events/track.json"),
        ("batch", "events/batch.json"),
    ] {
        let dir = scratch.path().join(format!("acme-{template}"));
        let mut new = segfn();
        new.args(["new", "--template", template]).arg(&dir);
        let out = output(new).await;
        assert!(out.status.success(), "segfn new {template}: {}", text(&out));
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[profile.release]"), "{manifest}");
        let out = output({
            let mut c = cargo(&dir);
            c.args(["fmt", "--check"]);
            c
        })
        .await;
        assert!(
            out.status.success(),
            "cargo fmt --check in {template}: {}",
            text(&out)
        );

        let out = output({
            let mut c = cargo(&dir);
            c.args(["test", "--quiet"]);
            c
        })
        .await;
        assert!(
            out.status.success(),
            "cargo test in {template}: {}",
            text(&out)
        );

        // The function keeps its settings and real URLs; the partner's host is mapped
        // to the local one.
        let map = format!("api.partner.example=http://{}", partner.addr);
        let before = partner.received().len();
        let mut run = segfn();
        run.current_dir(&dir)
            .env("CARGO_TARGET_DIR", scratch_target_dir())
            .args([
                "run",
                ".",
                "--json",
                "--event",
                event,
                "--settings",
                "settings.json",
            ])
            .args(["--map-host", &map]);
        let out = output(run).await;
        assert!(out.status.success(), "segfn run {template}: {}", text(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        check_run(template, &report, &partner.received()[before..]);
        assert!(
            !out.stdout.windows(15).any(|w| w == b"demo-key-4f2a9c"),
            "{report}"
        );

        // What `segfn new` says to run first works as it is: for a function with a
        // partner, `segfn demo .` against the partner built into segfn; and the
        // placeholder partner, tried for real, fails with the way out.
        if template != "insert" {
            let mut demo = segfn();
            demo.current_dir(&dir)
                .env("CARGO_TARGET_DIR", scratch_target_dir())
                .args(["demo", "."]);
            let out = output(demo).await;
            assert!(
                out.status.success(),
                "segfn demo . in {template}: {}",
                text(&out)
            );
            assert!(text(&out).contains("partner received"), "{}", text(&out));
            let mut real = segfn();
            real.current_dir(&dir)
                .env("CARGO_TARGET_DIR", scratch_target_dir())
                .args(["run", ".", "--event", event, "--settings", "settings.json"])
                .args([
                    "--allow-host",
                    "api.partner.example",
                    "--deadline-ms",
                    "3000",
                ]);
            let out = output(real).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("placeholder partner and does not exist: try `segfn demo .`"),
                "{template}: {stderr}"
            );
        }

        // It describes its settings for `segfn schema`, each with a description.
        let mut schema = segfn();
        schema
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", scratch_target_dir())
            .args(["schema", "."]);
        let out = output(schema).await;
        assert!(
            out.status.success(),
            "segfn schema {template}: {}",
            text(&out)
        );
        let settings: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            settings.as_array().is_some_and(|all| !all.is_empty()
                && all
                    .iter()
                    .all(|s| s["description"].as_str().is_some_and(|d| !d.is_empty()))),
            "{settings:#}"
        );

        // The tester page runs the same event on the same module.
        let before = partner.received().len();
        let crate_dir = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let moved = tempfile::tempdir().unwrap();
        std::fs::rename(&dir, moved.path().join(&crate_dir)).unwrap();
        let dev = Dev::start_in(
            moved,
            &crate_dir,
            &["--map-host", &map],
            &scratch_target_dir(),
        )
        .await;
        dev.wait_for_build(0, "ok").await;
        let sample: Value = serde_json::from_str(
            &std::fs::read_to_string(dev.path(&format!("{crate_dir}/{event}"))).unwrap(),
        )
        .unwrap();
        let settings: Value = serde_json::from_str(
            &std::fs::read_to_string(dev.path(&format!("{crate_dir}/settings.json"))).unwrap(),
        )
        .unwrap();
        let (status, _, report) = dev
            .run(json!({"event": sample, "settings": settings}))
            .await;
        assert_eq!(status, 200, "{report}");
        check_run(template, &report, &partner.received()[before..]);
    }
}

/// What running the template's sample event must have done.
fn check_run(template: &str, report: &Value, received: &[Received]) {
    match template {
        "destination" => {
            assert_eq!(report["outcome"]["kind"], "success", "{report}");
            assert_eq!(received.len(), 1);
            assert_eq!(received[0].path, "/v1/events");
            assert_eq!(received[0].json()["event"], "Signed Up");
            let sent_to = report["requests"][0]["sent_to"]
                .as_str()
                .unwrap_or_default();
            assert!(sent_to.starts_with("http://127.0.0.1:"), "{report}");
            assert_eq!(
                report["requests"][0]["url"],
                "https://api.partner.example/v1/events"
            );
        }
        "insert" => {
            assert_eq!(report["outcome"]["kind"], "success", "{report}");
            assert_eq!(
                report["output"]["properties"]["source"], "segfn",
                "{report}"
            );
            assert!(received.is_empty());
        }
        _ => {
            let results = report["output"].as_array().expect("per-event results");
            assert!(results.iter().all(|r| r["kind"] == "success"), "{report}");
            assert_eq!(received.len(), 1, "one bulk request for the batch");
            assert_eq!(received[0].path, "/v1/batch");
            assert_eq!(
                received[0].json()["events"].as_array().unwrap().len(),
                results.len()
            );
        }
    }
}

#[tokio::test]
async fn inside_a_workspace_the_crate_becomes_a_member() {
    let scratch = tempfile::tempdir().unwrap();
    let ws = scratch.path();
    std::fs::write(
        ws.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = []\n",
    )
    .unwrap();
    let mut new = segfn();
    new.current_dir(ws)
        .args(["new", "functions/acme", "--template", "insert"]);
    let out = output(new).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Added it to the workspace members"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[profile.release]"),
        "the profile to add: {stdout}"
    );
    let root_manifest = std::fs::read_to_string(ws.join("Cargo.toml")).unwrap();
    assert!(
        root_manifest.contains("\"functions/acme\""),
        "{root_manifest}"
    );
    let member = std::fs::read_to_string(ws.join("functions/acme/Cargo.toml")).unwrap();
    assert!(!member.contains("[profile.release]"), "{member}");
    // Cargo agrees: the workspace resolves with the new member in it.
    let out = output({
        let mut c = cargo(ws);
        c.args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ]);
        c
    })
    .await;
    assert!(out.status.success(), "cargo metadata: {}", text(&out));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(metadata["packages"][0]["name"], "acme");
}

#[tokio::test]
async fn bad_names_and_used_directories_are_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let mut new = segfn();
    new.arg("new").arg(scratch.path().join("1-bad"));
    let out = output(new).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("must start with a letter"),
        "{}",
        text(&out)
    );

    let used = scratch.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("keep.txt"), "mine").unwrap();
    let mut new = segfn();
    new.arg("new").arg(&used);
    let out = output(new).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("already exists and is not empty"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(used.join("keep.txt")).unwrap(),
        "mine"
    );
}

/// `segfn new --template source`: a source function crate that passes its tests, runs
/// its sample webhook with `segfn run --request` (an identify and a track), refuses a
/// request without its token, and describes itself for `segfn schema` and, as a
/// source, for `segfn docs`.
#[tokio::test]
async fn the_source_template_tests_builds_and_runs() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("acme-forms");
    let mut new = segfn();
    new.args(["new", "--template", "source"]).arg(&dir);
    let out = output(new).await;
    assert!(out.status.success(), "segfn new: {}", text(&out));
    assert!(text(&out).contains("segfn run . --request requests/form-response.json"));
    let out = output({
        let mut c = cargo(&dir);
        c.args(["test", "--quiet"]);
        c
    })
    .await;
    assert!(out.status.success(), "cargo test: {}", text(&out));
    // `segfn ARGS` in the crate, built in the scratch target directory.
    let in_crate = |args: &[&str]| {
        let mut segfn = segfn();
        segfn
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", scratch_target_dir())
            .args(args);
        output(segfn)
    };
    // `segfn run --json` on the sample webhook, with these extra arguments.
    let run = |extra: &[&str]| {
        let args = [
            "run",
            ".",
            "--json",
            "--request",
            "requests/form-response.json",
        ];
        in_crate(&[&args[..], extra].concat())
    };
    let out = run(&[]).await;
    assert!(out.status.success(), "segfn run: {}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = report["output"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{report}");
    assert_eq!(events[1]["event"], "Form Submitted");
    assert!(
        !out.stdout.windows(13).any(|w| w == b"wh-token-7f3a"),
        "{report}"
    );

    // The token is checked: another one rejects the request.
    std::fs::write(dir.join("wrong.json"), r#"{"webhookToken": "nope-0000"}"#).unwrap();
    let out = run(&["--settings", "wrong.json"]).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"]["kind"], "message_rejected", "{report}");

    let out = in_crate(&["schema", "."]).await;
    assert!(out.status.success(), "segfn schema: {}", text(&out));
    let settings: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(settings.to_string().contains("webhookToken"), "{settings}");

    // `segfn docs` knows it is a source: a source's page, not a destination's.
    let out = in_crate(&["docs", "."]).await;
    assert!(out.status.success(), "segfn docs: {}", text(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with("---\ntitle: Acme Forms Source\n"),
        "{page}"
    );
    assert!(page.contains("webhook URL") && page.contains("**Webhook Token** (secret)"));
    assert!(
        !page.contains("Supported methods") && !page.contains("Destination"),
        "{page}"
    );
}
