//! Benchmark: what one invocation costs. Prints figures for the sandbox alone (a WAT
//! guest that returns at once), for the forwarder example end to end against a partner
//! API on 127.0.0.1 (sequential latency and concurrent throughput), and the machine
//! they came from.
//!
//! Run: `cargo run --release -p segfn --example bench [-- SECONDS]`

use segfn::toolchain::{self, BuildOptions};
use segfn_engine::{
    FetchClient, FetchPolicy, InvokeOptions, Limits, LoadedFunction, Redactor, Runtime,
    RuntimeOptions,
};
use segfn_sdk::abi::Call;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOOP: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "{\"abi\":1,\"kind\":\"success\"}")
  (func (export "segfn_abi_version") (result i32) (i32.const 1))
  (func (export "segfn_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "segfn_handle") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 26))))"#;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{name:<44} n={:<6} mean {:>8.1} µs  p50 {:>8.1} µs  p99 {:>8.1} µs",
        samples.len(),
        mean.as_secs_f64() * 1e6,
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
    );
}

async fn sequential(
    f: &LoadedFunction,
    options: &InvokeOptions,
    event: &Value,
    settings: &Value,
    n: usize,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let report = f
            .invoke(
                options,
                Call::Event {
                    event: event.clone(),
                },
                settings.clone(),
            )
            .await;
        assert_eq!(
            report.outcome.kind,
            segfn_engine::OutcomeKind::Success,
            "{report:?}"
        );
        samples.push(started.elapsed());
    }
    samples
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
                    >> 20
            })
        })
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, {mem} GiB")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args().nth(1).map_or(Ok(3), |s| s.parse())?;
    let profile = if cfg!(debug_assertions) {
        "dev (dependencies opt-level 2)"
    } else {
        "release"
    };
    println!("segfn bench: {} | {profile} build", machine());

    let runtime = Runtime::new(&RuntimeOptions::default()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let noop = runtime.load(&wat::parse_str(NOOP)?).await?;
    let empty = InvokeOptions {
        limits: Limits::default(),
        client: FetchClient::new(FetchPolicy::default())?,
        redactor: Arc::default(),
        capture_bodies: false,
    };
    let event = json!({"type": "track", "event": "Signed Up", "userId": "u1", "properties": {"plan": "pro"}});
    summary(
        "sandbox only: instantiate + call (noop WAT)",
        sequential(&noop, &empty, &event, &json!({}), 5000).await,
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap_or(Path::new("."));
    let method = toolchain::detect()?;
    let wasm = toolchain::build(
        &root.join("functions/forwarder"),
        &method,
        &BuildOptions {
            target_dir: Some(root.join("target/guests")),
        },
    )?;
    let started = Instant::now();
    let forwarder = runtime.load_file(&wasm).await?;
    println!(
        "{:<44} {:.1} ms ({} KiB module)",
        "load forwarder (compile or cache, validate)",
        started.elapsed().as_secs_f64() * 1e3,
        std::fs::metadata(&wasm)?.len() >> 10
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().fallback(|| async { "{\"ok\":true}" }),
        )
        .await
    });
    let settings = json!({"apiKey": "bench-key-123", "endpoint": format!("http://{addr}/v1")});
    let options = InvokeOptions {
        limits: Limits::default(),
        client: FetchClient::new(FetchPolicy::parse(&[addr.to_string()])?)?,
        redactor: Arc::new(Redactor::from_settings(&settings, &[]).expect("bench settings")),
        capture_bodies: false,
    };
    let first = forwarder
        .invoke(
            &options,
            Call::Event {
                event: event.clone(),
            },
            settings.clone(),
        )
        .await;
    println!(
        "{:<44} {} instructions, peak memory {} KiB",
        "forwarder, one track event",
        first.stats.instructions,
        first.stats.memory_bytes >> 10
    );
    summary(
        "forwarder end to end (with one fetch)",
        sequential(&forwarder, &options, &event, &settings, 2000).await,
    );

    for concurrency in [1usize, 16, 64] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (f, o, e, s) = (
                    forwarder.clone(),
                    options.clone(),
                    event.clone(),
                    settings.clone(),
                );
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let r = f
                            .invoke(&o, Call::Event { event: e.clone() }, s.clone())
                            .await;
                        assert_eq!(r.outcome.kind, segfn_engine::OutcomeKind::Success);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await?;
        }
        println!(
            "{:<44} {:>8.0} invocations/s over {seconds} s",
            format!("forwarder throughput, {concurrency} concurrent"),
            total as f64 / seconds as f64
        );
    }
    Ok(())
}
