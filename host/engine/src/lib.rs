//! `segfn-engine`: runs segfn translation functions (Rust or JavaScript compiled to
//! WebAssembly) on Segment events, each invocation in a fresh, limited sandbox, with
//! `fetch` performed by the host under an allow-list. No HTTP server, no storage, no
//! command line: embed it in a service of your own (`examples/embed.rs` serves a
//! function from an axum app in 60 lines).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use segfn_engine::{FetchClient, FetchPolicy, InvokeOptions, Limits, Runtime, RuntimeOptions};
//! use segfn_sdk::abi::Call;
//!
//! let runtime = Runtime::new(&RuntimeOptions::default())?;
//! let function = runtime.load_file("forwarder.wasm".as_ref()).await?;
//! let options = InvokeOptions {
//!     limits: Limits::default(),
//!     client: FetchClient::new(FetchPolicy::parse(&["api.partner.example"])?)?,
//!     redactor: Default::default(),
//!     capture_bodies: true,
//! };
//! let event = serde_json::json!({"type": "track", "event": "Signed Up", "userId": "u1"});
//! let report = function.invoke(&options, Call::Event { event }, serde_json::json!({"apiKey": "k"})).await;
//! println!("{}", report.render(false));
//! # Ok(()) }
//! ```
//!
//! # Concepts
//!
//! - [`Runtime`]: one per process; compiles modules and owns the epoch ticker.
//! - [`LoadedFunction`]: a validated, linked module; [`LoadedFunction::invoke`] runs one
//!   message or batch in a fresh instance and returns a [`Report`].
//! - [`InvokeOptions`]: [`Limits`], the [`FetchClient`] bound to a [`FetchPolicy`] (the
//!   allow-list, and a [`HostMap`] sending mapped hosts to local servers:
//!   `FetchPolicy::parse(&allow)?.with_map(HostMap::parse(&["api.partner.example=http://127.0.0.1:9000"])?)`),
//!   and the [`Redactor`] that keeps secrets out of reports.
//! - [`outcome`]: the one table from outcome kind to exit code and HTTP status.
//! - [`input`]: what Segment delivers (one message, a batch, an envelope), read with
//!   its bounds.
//! - [`describe`]: what a function says about itself (its settings, the calls it
//!   handles).
//!
//! # Tracing
//!
//! Each invocation is a `tracing` span named `invocation` (fields `segfn.call`,
//! `segfn.batch_size`, and once it ends `segfn.outcome`, `segfn.fault`,
//! `segfn.instructions`, `segfn.memory_bytes`, `otel.status_code`), and each request its
//! function makes a child span `fetch` (`http.request.method`, `url.full`,
//! `http.response.status_code`, `error.type`), named and typed for
//! `tracing-opentelemetry`. Their values come from the invocation's redactor as the
//! report's do (URLs redacted and cut, no header or body), and past the fetch limit no
//! more `fetch` spans are made. Open a span of your own around
//! [`LoadedFunction::invoke`] to parent them; with no subscriber interested they cost a
//! disabled callsite check.
//!
//! # Layers
//!
//! Lowest first; a module uses only those above it in this list (`tests/layers.rs`
//! checks it): `limits`, `outcome`, `input`, `snapshot`, `policy`, `redact`, `error`,
//! `fetch`, `report`, `invocation`, `imports`, `runtime`, `invoke`, `describe`.

pub mod describe;
mod error;
pub mod fetch;
mod imports;
pub mod input;
mod invocation;
mod invoke;
pub mod limits;
pub mod outcome;
pub mod policy;
pub mod redact;
pub mod report;
mod runtime;
pub mod snapshot;

pub use describe::DescribeError;
pub use error::LoadError;
pub use fetch::FetchClient;
pub use imports::FETCH_CONCURRENCY;
pub use invocation::{InvocationState, InvokeOptions};
pub use limits::Limits;
pub use outcome::{Outcome, OutcomeKind};
pub use policy::{FetchPolicy, HostMap};
pub use redact::Redactor;
pub use report::{Emitted, Fault, Output, Report};
pub use runtime::{Allocation, LoadedFunction, MemoryReset, Runtime, RuntimeOptions};
