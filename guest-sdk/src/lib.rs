//! `segfn-sdk`: write Segment translation functions in Rust, compile them to
//! WebAssembly, and run them with `segfn`.
//!
//! A function implements [`Function`] (one handler per Segment event type, as
//! `onTrack(event, settings)` in Segment Functions), calls partner APIs with [`fetch`],
//! signals outcomes with [`Error`]'s Segment-named variants, logs with [`info!`] and
//! friends, and exports itself with [`export!`]:
//!
//! ```
//! use segfn_sdk::{Error, Function, HandlerResult, Identify, NoSettings};
//!
//! struct Greeter;
//!
//! impl Function for Greeter {
//!     type Settings = NoSettings;
//!     fn on_identify(event: Identify, _: &NoSettings) -> HandlerResult {
//!         let email = event.trait_value("email").ok_or_else(|| Error::validation("no email"))?;
//!         segfn_sdk::info!("hello {email}");
//!         Ok(None)
//!     }
//! }
//!
//! segfn_sdk::export!(Greeter);
//! ```
//!
//! # Concepts
//!
//! - **Events** ([`Event`], [`Track`], [`Identify`], ...) are typed but tolerant: unknown
//!   fields and misfit values are kept in `extra` and written back unchanged. An event
//!   passed through comes back with the same values, numbers as written, and the same
//!   key order ([`json`] says what keeping numbers exactly means for your own types).
//!   Every field has an accessor (`track.properties()`, `track.user_id()`); [`spec`] has
//!   typed views of Segment's semantic events (Ecommerce and others); [`Timestamp`]
//!   reads Segment's timestamps.
//! - **Outcomes** ([`OutcomeKind`]): returning `Ok` is `success`; each [`Error`] variant
//!   maps to one outcome ([`OrError`] names it for an `Option` or `Result`); a handler
//!   left out is `unsupported_event_type`; a panic is `bad_request`.
//! - **Source functions**: [`Function::on_request`] reads a third party's webhook
//!   ([`source::WebhookRequest`]) and makes Segment calls ([`source::Segment`]).
//! - **Partners**: [`fetch`] and [`fetch_all`] send requests;
//!   [`Response::error_for_status`] reads the usual answer; [`batch`] keeps a batch's
//!   results in order; [`encoding`] has base64, URI and form encodings; [`facade`] is
//!   Segment's old JavaScript message reader, for ports.
//! - **Secrets**: a setting of type [`Secret`] is redacted by the host wherever it
//!   would show.
//! - **The host** runs each invocation in a fresh sandbox with a deadline and limits;
//!   `fetch` only reaches hosts the operator allowed.
//! - **Native tests**: the SDK compiles natively too; [`testing`] stubs `fetch` and runs
//!   events through the same dispatch as the Wasm build.
//! - **The ABI** lives in [`abi`] (version [`abi::VERSION`]).

pub mod abi;
pub mod batch;
pub mod encoding;
mod env;
mod error;
pub mod event;
pub mod facade;
mod fetch;
#[doc(hidden)]
pub mod guest;
mod handler;
pub mod json;
pub mod log;
mod part;
#[cfg(feature = "schema")]
pub mod schema;
mod secret;
pub mod source;
pub mod spec;
mod sys;
#[cfg(not(target_family = "wasm"))]
pub mod testing;
pub mod time;

pub use crate::time::Timestamp;
pub use abi::FetchErrorKind;
pub use abi::OutcomeKind;
pub use env::{now, now_millis, random_bytes, random_u64};
pub use error::{Error, OrError};
pub use event::{
    Alias, Context, Delete, Event, EventType, Group, Identify, Js, Object, Page, Part, Screen,
    Track,
};
pub use fetch::{BodyError, FetchError, Request, Response, fetch, fetch_all};
pub use handler::{Function, HandlerResult};
#[doc(hidden)]
pub use handler::{handle_envelope, handle_envelope_json};
#[cfg(feature = "schema")]
pub use schemars::{self, JsonSchema};
pub use secret::Secret;

/// Settings type for functions without settings: accepts any settings object (serde's
/// `IgnoredAny`, a unit struct: `&NoSettings` is a value of it).
pub use serde::de::IgnoredAny as NoSettings;

/// Exports a [`Function`] as the module's handler. Call it once, in the function's crate
/// (a `cdylib` built for `wasm32-unknown-unknown`). On native targets it expands to
/// nothing, so the same crate unit-tests with `cargo test`.
///
/// `export!(F, schema)` also exports the settings' JSON Schema, for `segfn schema` and
/// `segfn docs` (feature `schema`; `F::Settings` derives `JsonSchema`, see the `schema`
/// module).
#[macro_export]
macro_rules! export {
    ($function:ty, schema) => {
        $crate::export!($function);
        $crate::__export_describe!($function);
    };
    ($function:ty) => {
        #[cfg(target_family = "wasm")]
        #[unsafe(no_mangle)]
        fn __segfn_handle_envelope(input: &[u8]) -> ::std::vec::Vec<u8> {
            $crate::handle_envelope_json::<$function>(input)
        }
    };
}
