//! The forwarder's translation alone, per event, for `scripts/bench`: natively (the
//! handler in-process through `segfn_sdk::testing::handle`, `fetch` stubbed) and in a
//! fresh Wasm instance (`LoadedFunction::invoke`). Prints one JSON line per variant.
//!
//! In the Wasm variant the partner is "stubbed" by an empty allow-list: the host refuses
//! the forwarder's request before any I/O and the function sees a `denied` fetch error.
//! Everything up to the request (envelope, parsing, mapping, serialising the body, the
//! host call and the report) is done as in a delivery; the HTTP round trip is not.
//!
//! With a fourth argument, the JavaScript port (`functions/forwarder-js`, built by
//! `segfn build handler.js`) runs the same way, from its snapshot.
//!
//! Run: `cargo run --release -p segfn-engine --example translate -- EVENT.json FORWARDER.wasm [SECONDS [FORWARDER_JS.wasm]]`

use forwarder::Forwarder;
use segfn_engine::{
    FetchClient, FetchPolicy, InvokeOptions, Limits, OutcomeKind, Redactor, Runtime, RuntimeOptions,
};
use segfn_sdk::abi::{Call, Envelope, VERSION};
use segfn_sdk::{Response, testing};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The process's minor page faults so far: a fresh instance that touches pages of its
/// memory image pays one fault per page, which the timings alone do not show.
fn minor_faults() -> i64 {
    // SAFETY: getrusage writes one `rusage` into the zeroed value it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    usage.ru_minflt
}

/// Prints one variant's samples as a JSON line: p50, p99 and mean in µs, and the page
/// faults per call.
fn report(variant: &str, what: &str, (mut samples, faults): (Vec<Duration>, i64)) {
    samples.sort_unstable();
    let at = |p: f64| {
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6
    };
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / samples.len() as f64;
    println!(
        "{}",
        json!({"variant": variant, "what": what, "n": samples.len(),
               "p50_us": at(0.5), "p99_us": at(0.99), "mean_us": mean,
               "faults_per_call": faults as f64 / samples.len() as f64})
    );
}

/// Runs `f` for a warm-up and then for `budget`, timing each call; `f` gets fresh
/// inputs from `prepare`, outside the timing.
fn sample<I>(
    budget: Duration,
    mut prepare: impl FnMut() -> I,
    mut f: impl FnMut(I),
) -> (Vec<Duration>, i64) {
    for _ in 0..1000 {
        f(prepare());
    }
    let mut samples = Vec::new();
    let faults = minor_faults();
    let end = Instant::now() + budget;
    while Instant::now() < end {
        let input = prepare();
        let started = Instant::now();
        f(input);
        samples.push(started.elapsed());
    }
    let faults = minor_faults() - faults;
    (samples, faults)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: translate EVENT.json FORWARDER.wasm [SECONDS [FORWARDER_JS.wasm]]";
    let event: Value = serde_json::from_str(&std::fs::read_to_string(
        args.next().ok_or_else(|| anyhow::anyhow!(usage))?,
    )?)?;
    let wasm = std::path::PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!(usage))?);
    let budget = Duration::from_secs_f64(args.next().map_or(Ok(3.0), |s| s.parse())?);
    let js_wasm = args.next().map(std::path::PathBuf::from);
    let settings = json!({"apiKey": "bench-partner-key", "endpoint": "http://127.0.0.1:9/v1"});

    // Native. The stub answers 200; it records every request, so it is reset now and
    // then (outside the timing) to keep memory flat. The forwarder's `info!` line goes
    // to stderr natively: run with stderr to /dev/null.
    testing::mock_fetch(|_| Ok(Response::new(200)));
    let mut calls = 0u32;
    let native = sample(
        budget,
        || {
            calls += 1;
            if calls.is_multiple_of(1000) {
                testing::mock_fetch(|_| Ok(Response::new(200)));
            }
            (event.clone(), settings.clone())
        },
        |(e, s)| {
            let result = testing::handle::<Forwarder>(e, s);
            assert_eq!(result.kind, OutcomeKind::Success, "{result:?}");
        },
    );
    report(
        "native",
        "testing::handle (Value in: envelope serialised, then parsed)",
        native,
    );

    // Native from the envelope's bytes, as the Wasm export gets them: the same work as
    // the Node loop, which starts from the event's JSON text.
    let bytes = serde_json::to_vec(&Envelope {
        abi: VERSION,
        call: Call::Event {
            event: event.clone(),
        },
        settings: settings.clone(),
    })?;
    testing::mock_fetch(|_| Ok(Response::new(200)));
    let mut calls = 0u32;
    let from_bytes = sample(
        budget,
        || {
            calls += 1;
            if calls.is_multiple_of(1000) {
                testing::mock_fetch(|_| Ok(Response::new(200)));
            }
        },
        |()| {
            // Bytes in, bytes out, as the Wasm export: the result is written too.
            let result = segfn_sdk::handle_envelope_json::<Forwarder>(&bytes);
            assert!(result.starts_with(br#"{"abi":1,"kind":"success""#));
        },
    );
    report(
        "native_bytes",
        "handle_envelope_json (JSON bytes in, result JSON out)",
        from_bytes,
    );

    // Wasm: a fresh instance per event, as segfn serve runs it (pooling allocator,
    // redaction of the settings' secrets in the report).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let runtime = Runtime::new(&RuntimeOptions::default()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let function = rt.block_on(runtime.load_file(&wasm))?;
    let options = InvokeOptions {
        limits: Limits::default(),
        client: FetchClient::new(FetchPolicy::default())?,
        redactor: Arc::new(
            Redactor::from_settings(&settings, &[]).map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        capture_bodies: false,
    };
    let fresh_instances = |function: &segfn_engine::LoadedFunction| {
        sample(
            budget,
            || (event.clone(), settings.clone()),
            |(e, s)| {
                let report = rt.block_on(function.invoke(&options, Call::Event { event: e }, s));
                // The stub: the request was built, then refused by the allow-list (the
                // forwarder's `?`, and the JavaScript port's unhandled rejection, make
                // that its outcome).
                let refused = report.requests.len() == 1
                    && report.requests[0]
                        .error
                        .as_deref()
                        .is_some_and(|e| e.starts_with("denied"));
                assert!(refused, "{report:?}");
            },
        )
    };
    report(
        "wasm",
        "LoadedFunction::invoke, fresh instance, fetch refused by an empty allow-list",
        fresh_instances(&function),
    );
    if let Some(js_wasm) = js_wasm {
        let js = rt.block_on(runtime.load_file(&js_wasm))?;
        report(
            "wasm_js",
            "functions/forwarder-js from its snapshot, fresh instance, fetch refused",
            fresh_instances(&js),
        );
    }
    Ok(())
}
