//! segfn-engine inside an axum app of one's own: `POST /events` runs a Segment event
//! through a function in a fresh sandbox and answers with its outcome, as the
//! outcome table maps it to HTTP (a retry is a 500, a bad request a 400). What
//! `segfn serve` adds (tenants, keys, signatures, deduplication, durable delivery) is
//! left out: this is the engine alone. `tests/embed.rs` serves it on 127.0.0.1.
//!
//! Run: `cargo run -p segfn-engine --example embed -- FUNCTION.wasm SETTINGS.json [ALLOWED_HOST...]`
//! then `curl -d '{"type":"track","event":"E","userId":"u"}' 127.0.0.1:3000/events`.

use axum::extract::{Json, State};
use axum::http::StatusCode;
use axum::routing::post;
use segfn_engine::outcome::row;
use segfn_engine::{
    FetchClient, FetchPolicy, InvokeOptions, Limits, LoadedFunction, Redactor, Runtime,
    RuntimeOptions,
};
use segfn_sdk::abi::Call;
use serde_json::{Value, json};
use std::sync::Arc;

/// What the handler needs: the loaded function, how to run it and its settings.
#[derive(Debug)]
pub struct Embedded {
    pub function: LoadedFunction,
    pub options: InvokeOptions,
    pub settings: Value,
}

/// The app: one route, the function behind it.
pub fn app(embedded: Embedded) -> axum::Router {
    axum::Router::new()
        .route("/events", post(deliver))
        .with_state(Arc::new(embedded))
}

/// One event in, its outcome and (redacted) logs out.
async fn deliver(
    State(app): State<Arc<Embedded>>,
    Json(event): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let report = app
        .function
        .invoke(&app.options, Call::Event { event }, app.settings.clone())
        .await;
    let status = StatusCode::from_u16(row(report.outcome.kind).http_status)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let logs: Vec<&str> = report.logs.iter().map(|l| l.message.as_str()).collect();
    (
        status,
        Json(json!({ "outcome": report.outcome, "logs": logs, "output": report.output })),
    )
}

/// Invoke options for `settings`, with `fetch` allowed to `allow` only.
pub fn options(
    settings: &Value,
    allow: &[String],
) -> Result<InvokeOptions, Box<dyn std::error::Error>> {
    Ok(InvokeOptions {
        limits: Limits::default(),
        client: FetchClient::new(FetchPolicy::parse(allow)?)?,
        // Settings named like credentials (`apiKey`, ...) never reach the logs.
        redactor: Arc::new(Redactor::from_settings(settings, &[])?),
        capture_bodies: false,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: embed FUNCTION.wasm SETTINGS.json [ALLOWED_HOST...]";
    let wasm = args.next().ok_or(usage)?;
    let settings: Value = serde_json::from_slice(&std::fs::read(args.next().ok_or(usage)?)?)?;
    let allow: Vec<String> = args.collect();
    // One runtime per process: it compiles modules and runs the epoch ticker.
    let runtime = Runtime::new(&RuntimeOptions::default())?;
    let function = runtime.load_file(wasm.as_ref()).await?;
    let options = options(&settings, &allow)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("POST events to http://{}/events", listener.local_addr()?);
    let embedded = Embedded {
        function,
        options,
        settings,
    };
    axum::serve(listener, app(embedded)).await?;
    Ok(())
}
