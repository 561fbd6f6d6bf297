//! `segfn-host`: runs segfn translation functions (Rust compiled to WebAssembly) on
//! Segment events, each invocation in a fresh, limited sandbox, with `fetch` performed
//! by the host under an allow-list.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use segfn_host::{FetchClient, FetchPolicy, InvokeOptions, Limits, Runtime, RuntimeOptions};
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
//! - [`dev`]: `segfn dev`, the watch-rebuild-run loop with its local page.
//! - [`describe`], [`schema`], [`docs`]: what a function says about itself (its
//!   settings schema, the calls it handles), as Segment's settings format and as its
//!   partner documentation page.
//! - [`replay`]: `segfn replay`, archived events through a function with resumable state.

pub mod describe;
pub mod dev;
pub mod docs;
mod error;
pub mod fetch;
mod imports;
pub mod input;
mod invoke;
pub mod javascript;
pub mod limits;
pub mod outcome;
pub mod policy;
pub mod redact;
pub mod replay;
pub mod report;
mod runtime;
pub mod scaffold;
pub mod schema;
pub mod serve;
mod state;
pub mod toolchain;

pub use describe::DescribeError;
pub use error::LoadError;
pub use fetch::FetchClient;

pub use limits::Limits;
pub use outcome::{Outcome, OutcomeKind};
pub use policy::{FetchPolicy, HostMap};
pub use redact::Redactor;
pub use report::{Fault, Output, Report};
pub use runtime::{Allocation, LoadedFunction, MemoryReset, Runtime, RuntimeOptions};
pub use state::{InvocationState, InvokeOptions};
