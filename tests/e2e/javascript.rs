//! JavaScript functions: scripts pre-initialised by `segfn build handler.js` into
//! modules for the same ABI. The JavaScript ports of the examples against the Rust
//! crates, request for request; Segment's own example functions under their harness's
//! rules; build-time errors with the script's location; limits.

use crate::support::*;
use segfn_engine::{Limits, OutcomeKind, Report};
use segfn_sdk::abi::Call;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Where the tests' JavaScript modules go.
pub(crate) fn js_out_dir() -> PathBuf {
    let dir = scratch_target_dir().join("js");
    std::fs::create_dir_all(&dir).expect("creating the JavaScript output directory");
    dir
}

/// Runs `segfn build SCRIPT -o OUT` (the runtime guest built in the guests' target
/// directory); the output of the command.
pub(crate) fn build_script(script: &Path, out: &Path) -> std::process::Output {
    segfn()
        .arg("build")
        .arg(script)
        .arg("-o")
        .arg(out)
        .arg("--target-dir")
        .arg(guest_target_dir())
        .output()
        .expect("running segfn build")
}

/// Builds a script once per test process; `key` names its module.
pub(crate) fn js_wasm(key: &str, script: &Path) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Serialised: the first build also builds the runtime guest.
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(key) {
        return path.clone();
    }
    let out = js_out_dir().join(format!("{key}.wasm"));
    let result = build_script(script, &out);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "segfn build {key} failed:\n{stderr}"
    );
    assert!(stderr.contains("pre-initialised into"), "{stderr}");
    built.insert(key.to_owned(), out.clone());
    out
}

pub(crate) async fn load_js(key: &str, script: PathBuf) -> segfn_engine::LoadedFunction {
    let key = key.to_owned();
    let wasm = tokio::task::spawn_blocking(move || js_wasm(&key, &script))
        .await
        .expect("build task");
    runtime()
        .load_file(&wasm)
        .await
        .expect("the snapshot loads")
}

/// What a partner saw of one request: method, path, headers in order, body.
type Seen = (String, String, Vec<(String, String)>, Vec<u8>);

fn seen(partner: &Partner) -> Vec<Seen> {
    partner
        .received()
        .into_iter()
        .map(|r| {
            let headers = r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            (r.method, r.path, headers, r.body)
        })
        .collect()
}

/// Outcomes of a report: the call's, and each event's for a batch.
fn outcomes(report: &Report) -> Value {
    json!({"outcome": report.outcome, "output": report.output})
}

#[tokio::test]
async fn js_examples_send_what_the_rust_examples_send() {
    for (rust, js, path) in [
        ("forwarder", "forwarder-js", "/v1"),
        ("ecommerce", "ecommerce-js", "/v2"),
    ] {
        let dir = root().join("functions").join(js);
        let rust_fn = load_example(rust).await;
        let js_fn = load_js(js, dir.join("handler.js")).await;
        let mut samples: Vec<PathBuf> = std::fs::read_dir(dir.join("events"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        samples.sort();
        // The JavaScript port has the Rust crate's sample events, every one of them.
        let rust_samples = std::fs::read_dir(root().join("functions").join(rust).join("events"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count();
        assert_eq!(samples.len(), rust_samples, "{js} has {rust}'s samples");
        for (answer, status) in [("success", 200), ("retry", 503), ("rejected", 422)] {
            for sample in &samples {
                let call = segfn_engine::input::parse_delivery(&std::fs::read(sample).unwrap())
                    .expect("a sample delivery");
                // One partner for both, so that even the Host header is comparable.
                let partner = Partner::start().await;
                partner.answer(Answer::status(status));
                let mut settings: Value =
                    serde_json::from_slice(&std::fs::read(dir.join("settings.json")).unwrap())
                        .unwrap();
                settings["endpoint"] = json!(partner.url(path));
                let opts = options(&partner.allow(), &settings, Limits::default());
                let mut runs = Vec::new();
                for f in [&rust_fn, &js_fn] {
                    let before = partner.received().len();
                    let report = f.invoke(&opts, call.clone(), settings.clone()).await;
                    let mut requests = seen(&partner).split_off(before);
                    // A batch's requests go out concurrently: their order is not the function's.
                    requests.sort();
                    runs.push((outcomes(&report), requests));
                }
                let what = format!("{js} on {} (partner {answer})", sample.display());
                assert_eq!(runs[0].0, runs[1].0, "outcomes differ: {what}");
                assert_eq!(runs[0].1, runs[1].1, "requests differ: {what}");
                if answer == "success" {
                    // Not vacuous: the successful samples did send something.
                    if matches!(call, Call::Batch { .. }) {
                        assert!(!runs[0].1.is_empty(), "the batch sent nothing: {what}");
                    } else {
                        let kind = runs[0].0["outcome"]["kind"].as_str().unwrap().to_owned();
                        assert_eq!(kind == "success", !runs[0].1.is_empty(), "{what}");
                    }
                }
            }
        }
    }
}

/// One corpus run as Segment's harness checks it: what the run must come to, and the
/// requests (method, URL as the trace shows it) the function must have made.
struct CorpusCase {
    function: &'static str,
    event: &'static str,
    kind: &'static str,
    requests: &'static [(&'static str, &'static str)],
}

/// Every corpus function on both harness events. The outcomes and requests are those of
/// the same handlers under Node 20 with Segment's harness rules (checked by hand with a
/// `vm` context and a fetch answering 200 `{}`): qualtrics' identify handler reads
/// `user.traits` of the `{}` answer and throws a TypeError there too, which the
/// harness counts as a failure; every other run passes.
const CORPUS: &[CorpusCase] = &[
    CorpusCase {
        function: "adobe-target",
        event: "track",
        kind: "unsupported_event_type",
        requests: &[],
    },
    CorpusCase {
        function: "adobe-target",
        event: "identify",
        kind: "message_rejected",
        requests: &[],
    },
    CorpusCase {
        function: "airtable",
        event: "track",
        kind: "success",
        requests: &[(
            "POST",
            "https://api.airtable.com/v0/undefined/General%20User%20Survey",
        )],
    },
    CorpusCase {
        function: "airtable",
        event: "identify",
        kind: "unsupported_event_type",
        requests: &[],
    },
    CorpusCase {
        function: "datadog",
        event: "track",
        kind: "success",
        requests: &[(
            "POST",
            "https://api.datadoghq.com/api/v1/series?api_key=[redacted]",
        )],
    },
    CorpusCase {
        function: "datadog",
        event: "identify",
        kind: "success",
        requests: &[(
            "POST",
            "https://api.datadoghq.com/api/v1/series?api_key=[redacted]",
        )],
    },
    CorpusCase {
        function: "follow-along",
        event: "track",
        kind: "success",
        requests: &[],
    },
    CorpusCase {
        function: "follow-along",
        event: "identify",
        kind: "unsupported_event_type",
        requests: &[],
    },
    CorpusCase {
        function: "ipstack",
        event: "track",
        kind: "unsupported_event_type",
        requests: &[],
    },
    CorpusCase {
        function: "ipstack",
        event: "identify",
        kind: "message_rejected",
        requests: &[],
    },
    CorpusCase {
        function: "qualtrics",
        event: "track",
        kind: "unsupported_event_type",
        requests: &[],
    },
    CorpusCase {
        function: "qualtrics",
        event: "identify",
        kind: "bad_request",
        requests: &[(
            "GET",
            "https://profiles.segment.com/v1/spaces/undefined/collections/users/profiles/user_id:undefined/traits?limit=200",
        )],
    },
    CorpusCase {
        function: "requestbin",
        event: "track",
        kind: "success",
        requests: &[(
            "POST",
            "https://redacted.x.pipedream.net/?ts=2019-04-08T01%3A19%3A38.931Z",
        )],
    },
    CorpusCase {
        function: "requestbin",
        event: "identify",
        kind: "success",
        requests: &[
            ("GET", "https://reqres.in/api/users/2"),
            ("POST", "https://redacted.x.pipedream.net/"),
        ],
    },
    CorpusCase {
        function: "salesloft",
        event: "track",
        kind: "unsupported_event_type",
        requests: &[],
    },
    CorpusCase {
        function: "salesloft",
        event: "identify",
        kind: "success",
        requests: &[("POST", "https://api.salesloft.com/v2/people.json")],
    },
    CorpusCase {
        function: "slack",
        event: "track",
        kind: "success",
        requests: &[("POST", "https://hooks.slack.com/services/REDACTED")],
    },
    CorpusCase {
        function: "slack",
        event: "identify",
        kind: "unsupported_event_type",
        requests: &[],
    },
];

#[tokio::test]
async fn segments_example_functions_pass_their_harness() {
    let corpus = root().join("tests/fixtures/js-functions");
    let mut functions: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    functions.sort();
    let mut listed: Vec<&str> = CORPUS.iter().map(|c| c.function).collect();
    listed.dedup();
    assert_eq!(functions, listed, "every corpus function has its cases");

    // Segment's harness: two events, settings {"apiKey": "abcd1234"}, every request of
    // any host answered 200 `{}`.
    let partner = Partner::start().await;
    partner.answer(Answer::status(200));
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, value: Value| {
        let path = files.path().join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path
    };
    let track = write(
        "track.json",
        json!({"type": "track", "event": "Registered", "userId": "test-user-23js8",
               "timestamp": "2019-04-08T01:19:38.931Z", "email": "test@example.com",
               "properties": {"plan": "Pro Annual", "accountType": "Facebook"}}),
    );
    let identify = write(
        "identify.json",
        json!({"type": "identify", "traits": {"name": "Peter Gibbons", "email": "peter@initech.com",
               "plan": "premium", "logins": 5}}),
    );
    let settings = write("settings.json", json!({"apiKey": "abcd1234"}));
    let map = format!("*=http://{}", partner.addr);

    for case in CORPUS {
        let script = corpus.join(case.function).join("handler.js");
        let wasm = tokio::task::spawn_blocking({
            let key = format!("corpus-{}", case.function);
            move || js_wasm(&key, &script)
        })
        .await
        .unwrap();
        let event = if case.event == "track" {
            &track
        } else {
            &identify
        };
        let before = partner.received().len();
        // Off the runtime's thread: the partner answers on it.
        let mut command = segfn();
        command
            .arg("run")
            .arg(&wasm)
            .arg("--event")
            .arg(event)
            .arg("--settings")
            .arg(&settings)
            .args(["--map-host", &map, "--json"]);
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("running segfn run");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{} {}: {e}: {}",
                case.function,
                case.event,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let what = format!("{} on {}: {report}", case.function, case.event);
        assert_eq!(report["outcome"]["kind"], case.kind, "{what}");
        let trace: Vec<(String, String)> = report["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["status"], 200, "{what}");
                (
                    r["method"].as_str().unwrap().to_owned(),
                    r["url"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = case
            .requests
            .iter()
            .map(|(m, u)| (m.to_string(), u.to_string()))
            .collect();
        assert_eq!(trace, expected, "{what}");
        assert_eq!(partner.received().len() - before, expected.len(), "{what}");
    }
    // The mapped requests kept their hosts: the partner saw them in the Host header.
    let hosts: Vec<String> = partner
        .received()
        .iter()
        .map(|r| r.headers["host"].to_str().unwrap().to_owned())
        .collect();
    assert!(hosts.contains(&"api.salesloft.com".to_owned()), "{hosts:?}");
}

#[test]
fn build_errors_name_the_scripts_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    for (name, source, location, message) in [
        (
            "syntax.js",
            "async function onTrack(event) {\n  const x = ;\n}\n",
            "syntax.js:2:",
            "SyntaxError",
        ),
        (
            "throws.js",
            "const a = 1;\n\nnull.boom;\n",
            "throws.js:3:",
            "TypeError",
        ),
    ] {
        let script = dir.path().join(name);
        std::fs::write(&script, source).unwrap();
        let out = build_script(&script, &dir.path().join("out.wasm"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains(location),
            "{name}: expected {location} in {stderr}"
        );
        assert!(stderr.contains(message), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    // A top level that allocates without end is stopped at the invocation's default
    // memory limit, not at the building process's memory.
    let script = dir.path().join("hog.js");
    std::fs::write(
        &script,
        "const a = [];\nfor (;;) a.push(new Uint8Array(16 << 20));\n",
    )
    .unwrap();
    let out = build_script(&script, &dir.path().join("hog.wasm"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("hog.js: its top level needs more than the 128 MiB of memory"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn runtime_errors_show_the_users_lines_and_limits_hold() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("limits.js");
    std::fs::write(
        &script,
        "async function onTrack(event) {\n\
           if (event.event === 'loop') { while (true) {} }\n\
           if (event.event === 'huge') { const a = []; for (;;) a.push(new Uint8Array(16 << 20)); }\n\
           if (event.event === 'deep') { const f = (n) => f(n + 1) + 1; f(0); }\n\
           if (event.event === 'recurse') { const d = (n) => n === 0 ? 0 : 1 + d(n - 1); console.log(`depth ${d(5000)}`); return; }\n\
           return event.nope.deeper;\n\
         }\n",
    )
    .unwrap();
    let f = load_js("limits", script).await;
    let settings = json!({});
    let short = Limits {
        deadline: Duration::from_millis(500),
        ..Limits::default()
    };
    let (opts, opts_short) = (
        options(&[], &settings, Limits::default()),
        options(&[], &settings, short),
    );
    let run = |name: &'static str| {
        let event = json!({"type": "track", "event": name});
        let opts = if name == "loop" { &opts_short } else { &opts };
        invoke_event(&f, opts, event, settings.clone())
    };

    let report = run("other").await;
    assert_eq!(report.outcome.kind, OutcomeKind::BadRequest, "{report:#?}");
    let message = report.outcome.message.clone().unwrap_or_default();
    assert!(message.starts_with("TypeError:"), "{message}");
    assert!(
        message.contains("limits.js:6:"),
        "the user's line: {message}"
    );

    // Each limit ends the invocation with its outcome, and the message says which.
    for (name, kind, says) in [
        ("loop", OutcomeKind::Retry, "deadline"),
        ("huge", OutcomeKind::BadRequest, "memory"),
        // Runaway recursion is a RangeError the handler could catch, not a trap.
        ("deep", OutcomeKind::BadRequest, "RangeError"),
    ] {
        let report = run(name).await;
        assert_eq!(report.outcome.kind, kind, "{name}: {report:#?}");
        let message = report.outcome.message.as_deref().unwrap_or("");
        assert!(message.contains(says), "{name}: {report:#?}");
    }
    // Recursion within half of Node's default depth (about 10,800 calls) runs.
    let report = run("recurse").await;
    assert_eq!(report.outcome.kind, OutcomeKind::Success, "{report:#?}");
    assert_eq!(report.logs[0].message, "depth 5000");
}

#[test]
fn demo_runs_a_javascript_example() {
    let stdout = demo("forwarder-js");
    assert!(stdout.contains("/v1/track"), "{stdout}");
    assert!(stdout.contains("page is not supported"), "{stdout}");
}

#[tokio::test]
async fn serve_takes_a_script() {
    let partner = Partner::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.json");
    std::fs::write(
        &settings,
        json!({"apiKey": "sk_js_serve", "endpoint": partner.url("/v1")}).to_string(),
    )
    .unwrap();
    let mut serve = segfn();
    serve
        .arg("serve")
        .arg(root().join("functions/forwarder-js/handler.js"))
        .arg("--target-dir")
        .arg(guest_target_dir())
        .args(["--api-key", "key-js"])
        .arg("--settings")
        .arg(&settings)
        .args(["--allow-host", &partner.addr.to_string()])
        .arg("--store")
        .arg(dir.path().join("store.redb"));
    let (status, stderr) = serve_one_track(serve, "key-js", "u-js").await;
    assert_eq!(status, 200, "{stderr}");
    let received = partner.received();
    assert_eq!(received.len(), 1, "{stderr}");
    assert_eq!(received[0].path, "/v1/track");
    assert_eq!(received[0].json()["user"]["id"], "u-js");
    assert_eq!(received[0].headers["authorization"], "Bearer sk_js_serve");
}

/// Every invocation starts from the same snapshot; what must differ between events
/// still does: Math.random, lodash's randomness (which took its own reference to the
/// engine's generator), crypto's, and the clock. A result JSON cannot hold is the
/// function's error, said as such.
#[tokio::test]
async fn randomness_and_time_are_not_frozen_in_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("random.js");
    std::fs::write(
        &script,
        "async function onTrack(event) {\n\
           if (event.event === 'bigint') return { n: 10n };\n\
           return { lodash: _.random(0, 1e15), shuffled: _.shuffle(_.range(20)).join(), \
                    math: Math.random(), uuid: crypto.randomUUID(), now: Date.now() };\n\
         }\n",
    )
    .unwrap();
    let f = load_js("random", script).await;
    let settings = json!({});
    let opts = options(&[], &settings, Limits::default());
    let run = |name: &str| {
        invoke_event(
            &f,
            &opts,
            json!({"type": "track", "event": name}),
            settings.clone(),
        )
    };
    let a = run("a").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = run("b").await;
    assert_eq!(a.outcome.kind, OutcomeKind::Success, "{a:#?}");
    let value = |output: segfn_engine::Output| match output {
        segfn_engine::Output::Event(v) => v,
        other => panic!("not one event's output: {other:?}"),
    };
    let (a, b) = (value(a.output), value(b.output));
    for key in ["lodash", "shuffled", "math", "uuid"] {
        assert_ne!(a[key], b[key], "{key} is the same in two events: {a} {b}");
    }
    assert!(b["now"].as_f64() > a["now"].as_f64(), "{a} {b}");

    let big = run("bigint").await;
    assert_eq!(big.outcome.kind, OutcomeKind::BadRequest, "{big:#?}");
    let message = big.outcome.message.unwrap_or_default();
    assert!(message.contains("not JSON"), "{message}");
}

/// A snapshot's pooled slot is made fresh between events (its memory copied back,
/// runtime.rs `MemoryReset`): what a handler leaves behind (a module-level variable, a
/// builtin it changed, a large string that grew the memory) is gone in the next event,
/// over many events through the same slot. (adversarial.rs litters both kinds of slot.)
#[tokio::test]
async fn no_state_survives_a_reused_pooled_slot() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("state.js");
    std::fs::write(
        &script,
        "let count = 0;\n\
         const seen = [];\n\
         async function onTrack(event) {\n\
           count += 1;\n\
           seen.push(event.event);\n\
           const before = JSON.mark;\n\
           JSON.mark = event.event;\n\
           globalThis.big = (globalThis.big || '') + 'x'.repeat(4 << 20);\n\
           return { count, seen: seen.join(), before: before === undefined ? null : before, big: big.length };\n\
         }\n",
    )
    .unwrap();
    let wasm = tokio::task::spawn_blocking(move || js_wasm("state", &script))
        .await
        .unwrap();
    let pooled = segfn_engine::Runtime::new(&segfn_engine::RuntimeOptions {
        max_instances: 2,
        ..segfn_engine::RuntimeOptions::default()
    })
    .expect("a pooled runtime");
    let f = pooled.load_file(&wasm).await.expect("the snapshot loads");
    assert_eq!(f.allocation(), segfn_engine::Allocation::Pooled);
    assert_eq!(f.memory_reset(), Some(segfn_engine::MemoryReset::CopyImage));
    let settings = json!({});
    let opts = options(&[], &settings, Limits::default());
    for i in 0..20 {
        let name = format!("e{i}");
        let report = invoke_event(
            &f,
            &opts,
            json!({"type": "track", "event": name}),
            settings.clone(),
        )
        .await;
        let segfn_engine::Output::Event(output) = report.output else {
            panic!("event {i}: {report:#?}");
        };
        assert_eq!(
            output,
            json!({"count": 1, "seen": name, "before": null, "big": 4 << 20}),
            "event {i}"
        );
    }

    let forwarder = tokio::task::spawn_blocking(|| example_wasm("forwarder"))
        .await
        .unwrap();
    let compiled = pooled.load_file(&forwarder).await.expect("forwarder loads");
    assert_eq!(
        compiled.memory_reset(),
        Some(segfn_engine::MemoryReset::DirtyPages)
    );
    // Without a pool, instances get new memory and snapshots share the one engine.
    let unpooled = runtime().load_file(&wasm).await.expect("loads unpooled");
    assert_eq!(unpooled.memory_reset(), None);
}

/// Without a cache directory a script is not snapshotted into a shared place: segfn
/// says what to set, or to build the module first.
#[tokio::test]
async fn a_script_without_a_cache_directory_is_refused_with_the_way_out() {
    let out = segfn()
        .args(["run", "functions/forwarder-js/handler.js", "--event"])
        .arg("functions/forwarder-js/events/track-signed-up.json")
        .arg("--target-dir")
        .arg(guest_target_dir())
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .current_dir(root())
        .output()
        .expect("running segfn run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("neither XDG_CACHE_HOME nor HOME is set")
            && stderr.contains("segfn build functions/forwarder-js/handler.js -o handler.wasm"),
        "{stderr}"
    );
}

/// The runtime guest is built into segfn (host/cli/build.rs): a first `segfn build` of a
/// script compiles nothing, so it takes seconds on a fresh install, and its target
/// directory stays empty.
#[test]
fn a_first_script_build_compiles_nothing() {
    assert!(
        segfn::javascript::runtime_embedded(),
        "this segfn was built without the JavaScript runtime: see the build warning (scripts/bootstrap installs the wasm32 target and clang)"
    );
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("fresh-target");
    let out = segfn()
        .arg("build")
        .arg(root().join("functions/forwarder-js/handler.js"))
        .arg("-o")
        .arg(dir.path().join("handler.wasm"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("running segfn build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("pre-initialised"), "{stderr}");
    assert!(
        !target.exists(),
        "cargo ran for the runtime: {:?}",
        std::fs::read_dir(&target).map(|d| d.count())
    );
    assert!(dir.path().join("handler.wasm").metadata().unwrap().len() > 0);
}

/// `Promise.all` over `fetch` sends the requests at once, as Node does (the requests a
/// turn of the event loop made go through the host's `fetch_all`); an awaited fetch
/// alone still goes one after another. A partner on 127.0.0.1 that holds each request
/// 200 ms counts how many it held at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_all_over_fetch_sends_the_requests_at_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    #[derive(Clone, Default)]
    struct Held {
        now: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        paths: Arc<std::sync::Mutex<Vec<String>>>,
    }
    async fn hold(
        axum::extract::State(held): axum::extract::State<Held>,
        uri: axum::http::Uri,
    ) -> String {
        let now = held.now.fetch_add(1, Ordering::SeqCst) + 1;
        held.most.fetch_max(now, Ordering::SeqCst);
        held.paths.lock().unwrap().push(uri.path().to_owned());
        tokio::time::sleep(Duration::from_millis(200)).await;
        held.now.fetch_sub(1, Ordering::SeqCst);
        format!("{{\"path\": {:?}}}", uri.path())
    }
    let held = Held::default();
    let app = axum::Router::new().fallback(hold).with_state(held.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("all.js");
    std::fs::write(
        &script,
        "async function onTrack(event, settings) {\n\
           const base = settings.base;\n\
           if (event.event === 'all') {\n\
             const answers = await Promise.all(['a', 'b', 'c'].map((p) => fetch(`${base}/${p}`)));\n\
             return { paths: (await Promise.all(answers.map((r) => r.json()))).map((j) => j.path) };\n\
           }\n\
           const paths = [];\n\
           for (const p of ['x', 'y']) paths.push((await (await fetch(`${base}/${p}`)).json()).path);\n\
           return { paths };\n\
         }\n",
    )
    .unwrap();
    let f = load_js("promise-all", script).await;
    let settings = json!({"base": format!("http://{addr}")});
    let opts = options(&[addr.to_string()], &settings, Limits::default());
    let run = |name: &str| {
        invoke_event(
            &f,
            &opts,
            json!({"type": "track", "event": name}),
            settings.clone(),
        )
    };

    let report = run("all").await;
    assert_eq!(report.outcome.kind, OutcomeKind::Success, "{report:#?}");
    let output = match report.output {
        segfn_engine::Output::Event(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        output["paths"],
        json!(["/a", "/b", "/c"]),
        "answers in the order asked"
    );
    assert_eq!(report.requests.len(), 3);
    assert_eq!(
        held.most.load(Ordering::SeqCst),
        3,
        "the three were held at once"
    );

    held.most.store(0, Ordering::SeqCst);
    let report = run("one-by-one").await;
    assert_eq!(report.outcome.kind, OutcomeKind::Success, "{report:#?}");
    assert_eq!(
        held.most.load(Ordering::SeqCst),
        1,
        "awaited one by one: never two at once"
    );
}

/// Segment's preloaded libraries through `segfn build` and the engine: a script that
/// names `moment`, `jsonwebtoken` and `AWS` gets them in its snapshot (and S3 calls go
/// through the host's fetch and its allow-list, to an S3 stand-in on 127.0.0.1); a
/// script that names none gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_preloaded_libraries_are_in_the_snapshot_of_a_script_that_names_them() {
    type Objects = std::sync::Arc<std::sync::Mutex<HashMap<String, (Vec<u8>, String)>>>;
    async fn s3(
        axum::extract::State(objects): axum::extract::State<Objects>,
        method: axum::http::Method,
        uri: axum::http::Uri,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut objects = objects.lock().unwrap();
        match method.as_str() {
            "PUT" => {
                objects.insert(uri.path().to_owned(), (body.to_vec(), auth));
                ([("etag", "\"e1\"")], "").into_response()
            }
            _ => match objects.get(uri.path()) {
                Some((body, _)) => body.clone().into_response(),
                None => (
                    axum::http::StatusCode::NOT_FOUND,
                    "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
                )
                    .into_response(),
            },
        }
    }
    let objects = Objects::default();
    let app = axum::Router::new().fallback(s3).with_state(objects.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("libraries.js");
    std::fs::write(
        &script,
        "async function onTrack(event, settings) {\n\
           const s3 = new AWS.S3({ accessKeyId: 'AKID', secretAccessKey: settings.secret, endpoint: settings.s3, s3ForcePathStyle: true });\n\
           const day = moment.utc(event.timestamp).tz('America/New_York').format('YYYY-MM-DD');\n\
           const token = jsonwebtoken.sign({ sub: event.userId, iat: 1700000000 }, settings.secret);\n\
           await s3.putObject({ Bucket: 'exports', Key: `${day}/${event.messageId}.json`, Body: JSON.stringify({ token }) }).promise();\n\
           const back = await s3.getObject({ Bucket: 'exports', Key: `${day}/${event.messageId}.json` }).promise();\n\
           let missing;\n\
           try { await s3.getObject({ Bucket: 'exports', Key: 'nope' }).promise(); } catch (e) { missing = e.code; }\n\
           return { day, sub: jsonwebtoken.verify(JSON.parse(back.Body.toString()).token, settings.secret).sub, missing };\n\
         }\n",
    )
    .unwrap();
    let f = load_js("libraries", script).await;
    let settings = json!({"s3": format!("http://{addr}"), "secret": "s3cret"});
    let opts = options(&[addr.to_string()], &settings, Limits::default());
    let event = json!({"type": "track", "event": "E", "userId": "u1", "messageId": "m1",
                       "timestamp": "2024-03-10T03:30:00Z"});
    let report = invoke_event(&f, &opts, event, settings.clone()).await;
    assert_eq!(report.outcome.kind, OutcomeKind::Success, "{report:#?}");
    let output = match report.output {
        segfn_engine::Output::Event(v) => v,
        other => panic!("{other:?}"),
    };
    // 03:30 UTC on the day New York moved its clocks is still the 9th there.
    assert_eq!(
        output,
        json!({"day": "2024-03-09", "sub": "u1", "missing": "NoSuchKey"})
    );
    {
        let objects = objects.lock().unwrap();
        let (body, auth) = objects
            .get("/exports/2024-03-09/m1.json")
            .expect("the object reached the S3 stand-in");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/")
                && auth.contains("/s3/aws4_request"),
            "{auth}"
        );
        assert!(String::from_utf8_lossy(body).contains("token"));
    }

    // A script that names none of them has none of them.
    let plain = dir.path().join("plain.js");
    std::fs::write(
        &plain,
        "async function onTrack() {\n\
           return { types: ['mom' + 'ent', 'json' + 'webtoken', 'A' + 'WS'].map((g) => typeof globalThis[g]) };\n\
         }\n",
    )
    .unwrap();
    let f = load_js("no-libraries", plain).await;
    let report = invoke_event(&f, &opts, json!({"type": "track", "event": "E"}), settings).await;
    match report.output {
        segfn_engine::Output::Event(v) => {
            assert_eq!(v, json!({"types": ["undefined", "undefined", "undefined"]}))
        }
        other => panic!("{other:?}"),
    }
}
