//! The `segfn` binary: `run` on the examples with a real partner API, its JSON and
//! human reports, exit statuses, and clear errors on bad input.

use crate::support::*;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Output, Stdio};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn write(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec(value).unwrap()).unwrap();
        path
    }
}

async fn segfn_output(args: Vec<String>, stdin: Option<Vec<u8>>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = segfn()
            .args(&args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(&input).unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// `segfn run <built forwarder> --event E --settings S --allow-host partner [extra]`.
async fn run_forwarder(
    partner: &Partner,
    files: &Files,
    event: Value,
    settings: Value,
    extra: &[&str],
) -> Output {
    let wasm = tokio::task::spawn_blocking(|| example_wasm("forwarder"))
        .await
        .unwrap();
    let mut args: Vec<String> = vec![
        "run".into(),
        wasm.display().to_string(),
        "--event".into(),
        files.write("event.json", &event).display().to_string(),
        "--settings".into(),
        files
            .write("settings.json", &settings)
            .display()
            .to_string(),
        "--allow-host".into(),
        partner.addr.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    segfn_output(args, None).await
}

fn settings(partner: &Partner) -> Value {
    json!({"apiKey": "sk_live_cli_secret_9", "endpoint": partner.url("/v1")})
}

#[tokio::test]
async fn run_json_has_the_documented_fields() {
    let partner = Partner::start().await;
    let files = Files::new();
    let out = run_forwarder(
        &partner,
        &files,
        track("Signed Up", "u1"),
        settings(&partner),
        &["--json"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "exactly one JSON object: {stdout}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["outcome"]["kind"], "success");
    assert!(report["outcome"]["message"].is_null());
    assert_eq!(report["logs"][0]["message"], "forwarded \"Signed Up\"");
    assert_eq!(report["logs"][0]["level"], "info");
    let req = &report["requests"][0];
    assert_eq!(req["method"], "POST");
    assert_eq!(req["url"], partner.url("/v1/track"));
    assert_eq!(req["status"], 200);
    assert!(req["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(report["output"].is_null());
    for stat in ["instructions", "memory_bytes", "duration_ms"] {
        assert!(report["stats"][stat].as_f64().unwrap() > 0.0, "{stat}");
    }
    assert!(!stdout.contains("sk_live_cli_secret_9"), "secret leaked");
    assert_eq!(
        partner.received()[0].headers["authorization"],
        "Bearer sk_live_cli_secret_9"
    );
}

#[tokio::test]
async fn run_human_report_shows_outcome_logs_and_trace() {
    let partner = Partner::start().await;
    let files = Files::new();
    partner.answer(Answer {
        body: "{\"error\":\"rate limited\"}".into(),
        ..Answer::status(429)
    });
    let out = run_forwarder(
        &partner,
        &files,
        track("Signed Up", "u1"),
        settings(&partner),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(10), "retry exits 10");
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        " RETRY  Retry",
        "Error message: partner answered 429",
        "Request trace",
        "POST    429",
        &partner.url("/v1/track"),
        "← {\"error\":\"rate limited\"}",
        "instructions ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("sk_live_cli_secret_9"));
}

#[tokio::test]
async fn exit_status_per_outcome() {
    let partner = Partner::start().await;
    let files = Files::new();
    let s = settings(&partner);
    let cases: Vec<(Value, Value, i32)> = vec![
        (track("E", "u"), s.clone(), 0),
        (json!({"type": "page", "userId": "u"}), s.clone(), 11),
        (json!({"type": "track", "event": "E"}), s.clone(), 12),
        (
            json!({"type": "track", "event": "E", "userId": "u"}),
            json!({"apiKey": "k", "endpoint": "http://not-allowed.example/v1"}),
            13,
        ),
        (track("E", "u"), json!({"endpoint": "x"}), 14),
    ];
    for (event, settings, code) in cases {
        let out = run_forwarder(&partner, &files, event.clone(), settings, &["--json"]).await;
        assert_eq!(
            out.status.code(),
            Some(code),
            "{event}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[tokio::test]
async fn run_builds_a_crate_directory_and_reads_stdin() {
    let partner = Partner::start().await;
    let files = Files::new();
    // Build first so this test measures nothing but `run` on a directory.
    tokio::task::spawn_blocking(|| example_wasm("ecommerce"))
        .await
        .unwrap();
    let args = vec![
        "run".into(),
        root().join("functions/ecommerce").display().to_string(),
        "--event".into(),
        "-".into(),
        "--settings".into(),
        files
            .write(
                "s.json",
                &json!({"apiKey": "conv-key-abcdef", "endpoint": partner.url("/v2")}),
            )
            .display()
            .to_string(),
        "--allow-host".into(),
        partner.addr.to_string(),
        "--target-dir".into(),
        guest_target_dir().display().to_string(),
        "--json".into(),
    ];
    let event =
        std::fs::read(root().join("functions/ecommerce/events/order-completed.json")).unwrap();
    let out = segfn_output(args, Some(event)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("segfn: building"),
        "says it builds: {stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"]["kind"], "success");
    assert_eq!(
        partner.received()[0].json()["conversion_id"],
        "50314b8e9bcf000000000000"
    );
}

#[tokio::test]
async fn a_batch_file_runs_every_event() {
    let partner = Partner::start().await;
    let files = Files::new();
    let batch = json!({"batch": [track("A", "u1"), track("B", "u2")]});
    let out = run_forwarder(&partner, &files, batch, settings(&partner), &["--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["output"],
        json!([{"kind": "success"}, {"kind": "success"}])
    );
    assert_eq!(partner.received().len(), 2);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error() {
    let files = Files::new();
    let wasm = tokio::task::spawn_blocking(|| example_wasm("forwarder"))
        .await
        .unwrap()
        .display()
        .to_string();
    let bad_json = files.dir.path().join("bad.json");
    std::fs::write(&bad_json, "{\"type\": \"track\",").unwrap();
    let not_object_settings = files.write("list.json", &json!([1]));
    let event = files.write("e.json", &track("E", "u"));
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "run".into(),
                wasm.clone(),
                "--event".into(),
                bad_json.display().to_string(),
            ],
            1,
            "not usable: not valid JSON",
        ),
        (
            vec![
                "run".into(),
                wasm.clone(),
                "--event".into(),
                "/nonexistent/e.json".into(),
            ],
            1,
            "cannot read /nonexistent/e.json",
        ),
        (
            vec![
                "run".into(),
                wasm.clone(),
                "--event".into(),
                event.display().to_string(),
                "--settings".into(),
                not_object_settings.display().to_string(),
            ],
            1,
            "must be a JSON object",
        ),
        (
            vec![
                "run".into(),
                wasm.clone(),
                "--event".into(),
                event.display().to_string(),
                "--allow-host".into(),
                "ftp://x".into(),
            ],
            1,
            "only http and https",
        ),
        (
            vec![
                "run".into(),
                "/nonexistent.wasm".into(),
                "--event".into(),
                event.display().to_string(),
            ],
            1,
            "does not exist",
        ),
        (
            vec![
                "run".into(),
                event.display().to_string(),
                "--event".into(),
                event.display().to_string(),
            ],
            1,
            "not a valid WebAssembly module",
        ),
        (vec!["run".into(), wasm.clone()], 2, "--event"),
        (vec!["frobnicate".into()], 2, "unrecognized subcommand"),
        (
            vec!["build".into(), files.dir.path().display().to_string()],
            1,
            "has no Cargo.toml",
        ),
    ];
    for (args, code, needle) in cases {
        let out = segfn_output(args.clone(), None).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn help_documents_exit_statuses() {
    let out = segfn_output(vec!["run".into(), "--help".into()], None).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("13  bad_request"), "{text}");
    assert!(text.contains(" 0  dropped"), "{text}");
    assert!(text.contains("--allow-host"), "{text}");
}

#[tokio::test]
async fn run_on_every_example_sample_event() {
    // What each sample event is expected to do, so a new sample needs a line here.
    let expected: &[(&str, &str, &str, i32)] = &[
        ("forwarder", "batch-http-api-mixed.json", "success", 0),
        ("forwarder", "identify-complete.json", "success", 0),
        (
            "forwarder",
            "page-unsupported.json",
            "unsupported_event_type",
            11,
        ),
        ("forwarder", "track-signed-up.json", "success", 0),
        ("ecommerce", "order-completed.json", "success", 0),
        (
            "ecommerce",
            "order-completed-missing-order-id.json",
            "message_rejected",
            12,
        ),
        (
            "ecommerce",
            "product-viewed-unsupported.json",
            "unsupported_event_type",
            11,
        ),
    ];
    for function in ["forwarder", "ecommerce"] {
        let dir = root().join("functions").join(function);
        let mut samples: Vec<String> = std::fs::read_dir(dir.join("events"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        samples.sort();
        let mut listed: Vec<String> = expected
            .iter()
            .filter(|e| e.0 == function)
            .map(|e| e.1.to_owned())
            .collect();
        listed.sort();
        assert_eq!(
            samples, listed,
            "every sample event of {function} has an expectation"
        );

        let partner = Partner::start().await;
        let files = Files::new();
        let mut settings: Value =
            serde_json::from_slice(&std::fs::read(dir.join("settings.json")).unwrap()).unwrap();
        settings["endpoint"] = json!(partner.url("/api"));
        let settings_path = files
            .write("settings.json", &settings)
            .display()
            .to_string();
        let wasm = tokio::task::spawn_blocking(move || example_wasm(function))
            .await
            .unwrap();
        for (_, sample, kind, code) in expected.iter().filter(|e| e.0 == function) {
            let event = dir.join("events").join(sample).display().to_string();
            let base = vec![
                "run".to_string(),
                wasm.display().to_string(),
                "--event".into(),
                event,
                "--settings".into(),
                settings_path.clone(),
                "--allow-host".into(),
                partner.addr.to_string(),
            ];
            let out = segfn_output([base.clone(), vec!["--json".into()]].concat(), None).await;
            assert_eq!(out.status.code(), Some(*code), "{function}/{sample}");
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                report["outcome"]["kind"], *kind,
                "{function}/{sample}: {report}"
            );
            if *kind == "success" {
                assert!(
                    !report["requests"].as_array().unwrap().is_empty(),
                    "{function}/{sample} made requests"
                );
            }
            let human = String::from_utf8(segfn_output(base, None).await.stdout).unwrap();
            for section in ["Logs", "Request trace", "Resources"] {
                assert!(
                    human.contains(section),
                    "{function}/{sample}: no {section} in\n{human}"
                );
            }
        }
    }
}

#[tokio::test]
async fn secrets_echoed_by_the_partner_are_redacted_from_errors() {
    let partner = Partner::start().await;
    let files = Files::new();
    partner.answer(Answer {
        body: "{\"error\":\"invalid key sk_live_cli_secret_9\"}".into(),
        ..Answer::status(401)
    });
    let out = run_forwarder(
        &partner,
        &files,
        track("E", "u"),
        settings(&partner),
        &["--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(12));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("sk_live_cli_secret_9"), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["outcome"]["message"],
        "partner rejected the event (401): {\"error\":\"invalid key [redacted]\"}"
    );
}

#[tokio::test]
async fn build_refuses_a_dependency_on_wasm_bindgen_and_names_it() {
    let dir = root().join("tests/fixtures/wasm-bindgen-dep");
    let args = vec![
        "build".into(),
        dir.display().to_string(),
        "--target-dir".into(),
        guest_target_dir().display().to_string(),
    ];
    let out = segfn_output(args, None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no .wasm path is printed");
    for needle in [
        "imports __wbindgen_placeholder__::",
        "which the segfn host does not provide",
        "a dependency uses wasm-bindgen",
        "it comes in through: wasm-bindgen-dep -> clock -> wasm-bindgen",
        "cargo tree -i wasm-bindgen --target wasm32-unknown-unknown",
        "starting with clock in Cargo.toml",
        "default-features = false",
    ] {
        assert!(stderr.contains(needle), "expected {needle:?} in {stderr}");
    }
}

#[tokio::test]
async fn a_reader_that_closes_early_ends_the_output_quietly() {
    let partner = Partner::start().await;
    let files = Files::new();
    let wasm = tokio::task::spawn_blocking(|| example_wasm("forwarder"))
        .await
        .unwrap()
        .display()
        .to_string();
    let event = files
        .write("e.json", &track("E", "u"))
        .display()
        .to_string();
    let settings = files
        .write("s.json", &settings(&partner))
        .display()
        .to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            &wasm,
            "--event",
            &event,
            "--settings",
            &settings,
            "--allow-host",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.push(partner.addr.to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    // (arguments, partner status, expected exit): `run` keeps the outcome's status.
    let cases = [
        (run(&[]), 200, 0),
        (run(&["--json"]), 200, 0),
        (run(&[]), 429, 10),
        (
            vec![
                "build".into(),
                root().join("functions/forwarder").display().to_string(),
                "--target-dir".into(),
                guest_target_dir().display().to_string(),
            ],
            200,
            0,
        ),
    ];
    for (args, status, code) in cases {
        partner.answer(Answer::status(status));
        let out = tokio::task::spawn_blocking({
            let args = args.clone();
            move || {
                let mut child = segfn()
                    .args(&args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                // The reader is gone before anything is written, as with `| head -0`:
                // every write to stdout fails with EPIPE.
                drop(child.stdout.take());
                child.wait_with_output().unwrap()
            }
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn serve_refuses_limit_flags_next_to_a_config_file() {
    // Neither file exists: were the conflict not caught first, serve would fail with
    // exit 1 on them, and never start a server.
    for (flag, value) in [
        ("--deadline-ms", "100"),
        ("--memory-mib", "64"),
        ("--max-instructions", "5"),
        ("--max-fetches", "3"),
        ("--max-response-kib", "8"),
    ] {
        let args = [
            "serve",
            "/nonexistent.wasm",
            "--config",
            "/nonexistent.toml",
            flag,
            value,
        ]
        .map(String::from)
        .to_vec();
        let out = segfn_output(args, None).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        for needle in ["--config <FILE>", "cannot be used with", flag] {
            assert!(stderr.contains(needle), "{flag}: {needle:?} in {stderr}");
        }
    }
}

#[tokio::test]
async fn serve_refuses_an_admin_token_given_twice() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("segfn.toml");
    std::fs::write(
        &config,
        "[server]\nadmin_token = \"in-the-file\"\nadmin_token_env = \"SEGFN_TEST_TOKEN\"\n\n\
         [[tenant]]\nname = \"a\"\napi_key = \"k\"\n",
    )
    .unwrap();
    let args = ["serve", "/nonexistent.wasm", "--config"]
        .map(String::from)
        .into_iter()
        .chain([config.display().to_string()])
        .collect();
    let out = segfn_output(args, None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("set admin_token or admin_token_env, not both"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("in-the-file"),
        "the token stays out: {stderr}"
    );
}

#[tokio::test]
async fn limit_flags_default_to_the_library_limits() {
    let d = segfn_engine::Limits::default();
    for command in ["run", "serve"] {
        let out = segfn_output(vec![command.into(), "--help".into()], None).await;
        assert_eq!(out.status.code(), Some(0));
        // Help wraps at some width; compare with whitespace runs as single spaces.
        let help = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for (flag, default) in [
            ("--deadline-ms <MS>", d.deadline.as_millis().to_string()),
            ("--memory-mib <MIB>", (d.memory_bytes >> 20).to_string()),
            ("--max-fetches <N>", d.fetches.to_string()),
            (
                "--max-response-kib <KIB>",
                (d.response_body_bytes >> 10).to_string(),
            ),
        ] {
            let after = help
                .split_once(flag)
                .unwrap_or_else(|| panic!("{command}: {flag} in {help}"))
                .1;
            let shown = after
                .split_once("[default: ")
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(value, _)| value);
            assert_eq!(shown, Some(default.as_str()), "{command} {flag}");
        }
    }
}
