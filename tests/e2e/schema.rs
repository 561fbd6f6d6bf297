//! `segfn schema` and `segfn docs`: the examples' settings in Segment's format and their
//! documentation pages, from the modules built from source; the describe export as a
//! guest in another language writes it (WAT); and the refusal, with the fix, of a module
//! that does not describe itself.

use crate::support::*;
use segfn::schema::{SettingType, segment_settings};
use segfn_engine::DescribeError;
use segfn_sdk::EventType;
use serde_json::{Value, json};
use std::process::Output;

/// Runs `segfn ARGS` on a blocking thread (it may build), the guest target directory
/// shared with `example_wasm`.
async fn segfn_with(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        segfn()
            .args(&args)
            .arg("--target-dir")
            .arg(guest_target_dir())
            .output()
            .expect("segfn runs")
    })
    .await
    .unwrap()
}

/// `segfn COMMAND functions/NAME ARGS`, after building the example once.
async fn on_example(command: &str, name: &str, args: &[&str]) -> Output {
    let owned = name.to_owned();
    tokio::task::spawn_blocking(move || example_wasm(&owned))
        .await
        .unwrap();
    let dir = root().join("functions").join(name);
    let mut all = vec![command.to_owned(), dir.display().to_string()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    segfn_with(all).await
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

fn setting<'a>(settings: &'a Value, name: &str) -> &'a Value {
    settings
        .as_array()
        .expect("an array of settings")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no setting {name} in {settings:#}"))
}

#[tokio::test]
async fn schema_lists_the_forwarders_settings_in_segments_format() {
    let out = on_example("schema", "forwarder", &[]).await;
    let settings: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(settings.as_array().map(Vec::len), Some(2), "{settings:#}");
    assert_eq!(
        setting(&settings, "apiKey"),
        &json!({
            "name": "apiKey",
            "label": "API Key",
            "description": "Your API key for the partner API, from the partner dashboard's API keys page.",
            "type": "STRING",
            "required": true,
            "sensitive": true
        })
    );
    assert_eq!(
        setting(&settings, "endpoint"),
        &json!({
            "name": "endpoint",
            "label": "Endpoint",
            "description": "Base URL of the partner API; change it only to use a regional or test endpoint.",
            "type": "STRING",
            "required": false,
            "sensitive": false,
            "default": "https://api.partner.example/v1"
        })
    );
    // Nothing to warn about: every setting fits Segment's types.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");

    // For the Public API, without the default it does not take.
    let out = on_example("schema", "forwarder", &["--public-api"]).await;
    let settings: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(setting(&settings, "endpoint").get("default").is_none());

    // The schema itself, as the module exports it.
    let out = on_example("schema", "forwarder", &["--json-schema"]).await;
    let schema: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(schema["required"], json!(["apiKey"]));
    assert_eq!(schema["properties"]["apiKey"]["writeOnly"], true);
    assert_eq!(schema["properties"]["apiKey"]["x-segfn-secret"], true);
}

#[tokio::test]
async fn docs_describe_the_forwarder_after_segments_template() {
    let out = on_example(
        "docs",
        "forwarder",
        &[
            "--maintainer",
            "Acme",
            "--support-email",
            "help@acme.example",
        ],
    )
    .await;
    let md = stdout(&out);
    let at = |s: &str| {
        md.find(s)
            .unwrap_or_else(|| panic!("{s:?} is not in\n{md}"))
    };
    assert!(
        md.starts_with("---\ntitle: Forwarder Destination\n---\n"),
        "{md}"
    );
    // The crate's description introduces it.
    at("Example segfn function: forwards track and identify events to a partner REST API");
    at(
        "This destination is maintained by Acme. For any issues with the destination, [contact the Acme Support team](mailto:help@acme.example).",
    );
    // Getting started names the required setting, and only it.
    let started = &md[at("## Getting Started")..at("## Supported methods")];
    assert!(
        started.contains("   - **API Key** (secret): Your API key for the partner API"),
        "{started}"
    );
    assert!(!started.contains("Endpoint"), "{started}");
    // One section per call the function handles, in the template's order.
    let methods = &md[at("## Supported methods")..at("## Settings")];
    assert!(at("### Identify") < at("### Track"));
    assert!(
        methods.contains("Forwarder receives every Track call from the sources connected to it.")
    );
    assert!(
        !methods.contains("on_track"),
        "no code names for customers: {methods}"
    );
    for missing in [
        "### Page",
        "### Screen",
        "### Group",
        "### Alias",
        "### Delete",
    ] {
        assert!(!methods.contains(missing), "{missing} in\n{methods}");
    }
    assert!(methods.contains(
        "Forwarder does not support Page, Screen, Group, Alias or Delete calls: Segment shows them as Unsupported Event Type"
    ));
    // The settings table, a row per setting.
    assert!(md.contains(
        "| API Key | `apiKey` | String | Yes | Yes |  | Your API key for the partner API, from the partner dashboard's API keys page. |\n"
    ));
    assert!(md.contains(
        "| Endpoint | `endpoint` | String | No | No | `https://api.partner.example/v1` | Base URL of the partner API; change it only to use a regional or test endpoint. |\n"
    ));
    // How errors map to Segment's outcomes.
    let errors = &md[at("## Errors and retries")..];
    assert!(errors.contains(
        "| ends with `InvalidEventPayload` or `ValidationError` | Message Rejected | discards it (no retry) |"
    ));
    assert!(errors.contains("| Retry | retries it with backoff, for up to four hours |"));
    assert!(
        !errors.contains("DropEvent"),
        "an insert function's outcome: {errors}"
    );
}

/// The ecommerce example answers the sample track event (not an "Order Completed")
/// with `EventNotSupported` in words of its own: its handler ran, so Track is listed.
/// Given as a `.wasm` file rather than a crate directory.
#[tokio::test]
async fn docs_list_a_handler_that_refuses_the_sample_with_its_own_message() {
    let wasm = tokio::task::spawn_blocking(|| example_wasm("ecommerce"))
        .await
        .unwrap();
    let out = segfn_with(vec!["docs".into(), wasm.display().to_string()]).await;
    let md = stdout(&out);
    assert!(md.contains("### Track\n"), "{md}");
    assert!(!md.contains("### Identify"), "{md}");
    assert!(md.contains(
        "| Default Currency | `defaultCurrency` | String | No | No | `USD` | Currency assumed for orders whose event has none (ISO 4217, e.g. `EUR`). Segment's Ecommerce spec assumes USD. |"
    ), "{md}");
    assert!(md.contains("<!-- This destination is maintained by YOUR COMPANY."));
}

#[tokio::test]
async fn a_module_that_does_not_describe_itself_is_refused_with_the_fix() {
    // The filter example has not opted in.
    for command in ["schema", "docs"] {
        let out = on_example(command, "filter", &[]).await;
        assert_eq!(out.status.code(), Some(1), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for part in [
            "does not export segfn_describe",
            r#"features = ["schema"]"#,
            "#[derive(Deserialize, JsonSchema)]",
            "segfn_sdk::export!(YourFunction, schema)",
        ] {
            assert!(
                stderr.contains(part),
                "{command}: {part:?} missing from\n{stderr}"
            );
        }
        assert!(out.stdout.is_empty());
    }
    let filter = load_example("filter").await;
    assert!(matches!(
        filter.describe().await,
        Err(DescribeError::NotExported)
    ));
}

/// A describe export written by hand, as a guest in another language would (docs/ABI.md),
/// and a guest whose `segfn_handle` answers "page is not supported" to everything: only
/// the answer a missing handler gives *for its own type* means "not handled".
#[tokio::test]
async fn a_hand_written_describe_export_and_the_handler_probe() {
    let description = json!({
        "abi": 1, "name": "hand-written", "version": "0.1.0", "description": "",
        "settings": {
            "type": "object",
            "properties": {
                "token": {"type": "string", "writeOnly": true, "x-segfn-secret": true},
                "events": {"type": "object", "additionalProperties": {"type": "string"}},
                "batchSize": {"type": "integer", "default": 10}
            },
            "required": ["token"]
        }
    })
    .to_string();
    let extra = format!(
        r#"(func (export "segfn_describe") (result i64)
             (i64.or (i64.shl (i64.const 8192) (i64.const 32)) (i64.const {})))"#,
        description.len()
    );
    let guest = WatGuest {
        result: r#"{"abi":1,"kind":"unsupported_event_type","message":"page is not supported"}"#,
        data: vec![(8192, description.clone().into_bytes())],
        extra: &extra,
        ..WatGuest::default()
    };
    let function = guest.load().await.expect("loads");
    let described = function.describe().await.expect("describes");
    assert_eq!(described.name, "hand-written");
    let settings = segment_settings(&described.settings).unwrap();
    let kinds: Vec<(&str, SettingType, bool, bool)> = settings
        .settings
        .iter()
        .map(|s| (s.name.as_str(), s.kind, s.required, s.sensitive))
        .collect();
    assert_eq!(
        kinds,
        [
            ("token", SettingType::String, true, true),
            ("events", SettingType::TextMap, false, false),
            ("batchSize", SettingType::String, false, false),
        ]
    );
    // Segment has no number settings: said, not hidden.
    assert!(
        settings
            .warnings
            .iter()
            .any(|w| w.contains("batchSize") && w.contains("no number type")),
        "{:?}",
        settings.warnings
    );
    let handled = function
        .handled_event_types(&json!({"token": "t"}))
        .await
        .unwrap();
    assert!(!handled.contains(&EventType::Page), "{handled:?}");
    assert!(handled.contains(&EventType::Track), "{handled:?}");
}

#[tokio::test]
async fn broken_describe_exports_are_named() {
    let wrong_type = WatGuest {
        extra: r#"(func (export "segfn_describe") (result i32) (i32.const 0))"#,
        ..WatGuest::default()
    };
    let f = wrong_type.load().await.unwrap();
    assert!(matches!(f.describe().await, Err(DescribeError::Signature)));

    let traps = WatGuest {
        extra: r#"(func (export "segfn_describe") (result i64) unreachable)"#,
        ..WatGuest::default()
    };
    let f = traps.load().await.unwrap();
    let error = f.describe().await.unwrap_err();
    assert!(matches!(error, DescribeError::Call(_)), "{error}");

    let not_json = WatGuest {
        data: vec![(8192, b"nope".to_vec())],
        extra: r#"(func (export "segfn_describe") (result i64)
                    (i64.or (i64.shl (i64.const 8192) (i64.const 32)) (i64.const 4)))"#,
        ..WatGuest::default()
    };
    let f = not_json.load().await.unwrap();
    let error = f.describe().await.unwrap_err();
    assert!(matches!(error, DescribeError::Invalid(_)), "{error}");

    // Host calls are refused while it runs: describing has no invocation to log to.
    let logs = WatGuest {
        extra: r#"(func (export "segfn_describe") (result i64)
                    (call $log (i32.const 1) (i32.const 1024) (i32.const 4))
                    (i64.const 0))"#,
        ..WatGuest::default()
    };
    let f = logs.load().await.unwrap();
    let error = f.describe().await.unwrap_err();
    assert!(matches!(error, DescribeError::Call(_)), "{error}");
}

/// The settings a function is probed with must fit it; when they do not, the error says
/// how to give settings that do.
#[tokio::test]
async fn probing_with_settings_that_do_not_fit_says_so() {
    let forwarder = load_example("forwarder").await;
    let error = forwarder
        .handled_event_types(&json!({"apiKey": 42}))
        .await
        .unwrap_err();
    assert!(matches!(error, DescribeError::ProbeSettings(_)), "{error}");
    assert!(error.to_string().contains("--settings FILE"), "{error}");
}
