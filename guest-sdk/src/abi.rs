//! The guest–host contract, ABI version 1: every import and export name, the JSON
//! shapes that cross the boundary, and the byte framing of `fetch`. The host and the
//! guest side of the SDK both use this module; no name is spelled anywhere else.
//!
//! `docs/ABI.md` describes the same contract for authors of guests in other languages.
//!
//! # Overview
//!
//! A function is a core WebAssembly module that exports `memory`, [`EXPORT_ABI_VERSION`],
//! [`EXPORT_ALLOC`] and [`EXPORT_HANDLE`], and may import the functions of module
//! [`IMPORT_MODULE`]. For one invocation the host:
//!
//! 1. (once, when loading the module) checks that `segfn_abi_version()` returns
//!    [`VERSION`],
//! 2. instantiates the module afresh,
//! 3. calls `segfn_alloc(len)` and writes the [`Envelope`] JSON there,
//! 4. calls `segfn_handle(ptr, len)`, which returns a [`packed`](pack) pointer and length
//!    of the [`GuestResult`] JSON in guest memory.
//!
//! Pointers and lengths are `i32` on the wire and read as unsigned.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The ABI version this SDK speaks. Bumped on any incompatible change.
pub const VERSION: u32 = 1;

/// The deepest a message may nest objects and arrays, counting the message object itself
/// as level 1 (`{"a":{"b":[1]}}` is 3 deep). The host refuses a deeper message (or batch
/// member) before invoking the guest.
///
/// Why a limit at all: serde_json, which the guest side of the SDK parses with, refuses
/// input nested deeper than 128 levels, and a guest never parses a bare message. It
/// parses the [`Envelope`], one level more (two for a batch: the envelope object and the
/// `events` array), and the host parses the [`GuestResult`], which puts a returned event
/// three levels down (`results`, its entry, `output`). A message the host accepted could
/// therefore fail inside the guest with a parse error about the envelope. Checking up
/// front at 100 gives a clear refusal instead, and leaves 25 levels to spare for the
/// framing around the message, including framing a later ABI version may add.
pub const MAX_NESTING: usize = 100;

/// Lists the host's imports, once: hands the list to the macro named `$declare`, which
/// declares something from each entry. Here that is the name constants the host links
/// with; in `sys` it is the guest's raw `extern` block. The list lives in this module so
/// that no import name is spelled anywhere else, and the macro takes the declaring macro
/// as an argument so that this module depends on nothing else in the crate.
macro_rules! imports {
    ($declare:ident) => {
        $declare! {
            module "segfn";
            /// `log(level: i32, ptr: i32, len: i32)`: one UTF-8 log line at a [`LogLevel`].
            IMPORT_LOG = "log" => fn log(level: i32, ptr: *const u8, len: usize);
            /// `fetch(ptr: i32, len: i32) -> i64`: performs the request framed at `ptr` (see
            /// [`encode_frame`]); returns the [`pack`]ed location of the response frame, which
            /// the host wrote into memory it obtained from `segfn_alloc`.
            IMPORT_FETCH = "fetch" => fn fetch(ptr: *const u8, len: usize) -> u64;
            /// `fetch_all(ptr: i32, len: i32) -> i64`: performs the requests of the
            /// [`encode_frames`] list at `ptr` concurrently (a few at a time, each counted as
            /// one fetch); returns the [`pack`]ed location of the list of their response
            /// frames, in the same order.
            IMPORT_FETCH_ALL = "fetch_all" => fn fetch_all(ptr: *const u8, len: usize) -> u64;
            /// `now_ms() -> i64`: wall-clock time, milliseconds since the Unix epoch.
            IMPORT_NOW_MS = "now_ms" => fn now_ms() -> i64;
            /// `random_fill(ptr: i32, len: i32)`: fills the range with random bytes.
            IMPORT_RANDOM_FILL = "random_fill" => fn random_fill(ptr: *mut u8, len: usize);
            /// `panic(ptr: i32, len: i32)`: reports a panic message; the host ends the
            /// invocation with outcome `bad_request` and does not return.
            IMPORT_PANIC = "panic" => fn panic(ptr: *const u8, len: usize);
            /// `secret(ptr: i32, len: i32)`: declares a UTF-8 secret value (a setting read
            /// through `Secret`); from then on the host redacts it from the invocation's
            /// logs, trace and report, as it does secret settings. At most as many values
            /// and bytes as a settings object may hold secrets; more ends the invocation.
            IMPORT_SECRET = "secret" => fn secret(ptr: *const u8, len: usize);
        }
    };
}
// Only the wasm build declares the guest's side of the list elsewhere.
#[cfg(target_family = "wasm")]
pub(crate) use imports;

macro_rules! import_names {
    (module $module:literal; $( $(#[$doc:meta])* $konst:ident = $name:literal => fn $rust:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?; )*) => {
        /// The module name of every host import.
        pub const IMPORT_MODULE: &str = $module;
        $( $(#[$doc])* pub const $konst: &str = $name; )*

        /// Every import name, for the host's module validation.
        pub const IMPORTS: &[&str] = &[$($name),*];
    };
}
imports!(import_names);

/// Lists the guest's exports, once, the same way as `imports!`: here they declare the
/// name constants the host looks up; in `guest` the exported functions themselves.
macro_rules! exports {
    ($declare:ident) => {
        $declare! {
            /// `segfn_abi_version() -> i32`: the ABI version the guest speaks.
            EXPORT_ABI_VERSION = "segfn_abi_version" => fn abi_version() -> u32;
            /// `segfn_alloc(len: i32) -> i32`: returns a writable range of `len` bytes that the
            /// guest owns from then on (0 only when out of memory).
            EXPORT_ALLOC = "segfn_alloc" => fn alloc(len: u32) -> u32;
            /// `segfn_handle(ptr: i32, len: i32) -> i64`: handles the [`Envelope`] at `ptr`;
            /// returns the [`pack`]ed location of the [`GuestResult`] JSON.
            EXPORT_HANDLE = "segfn_handle" => fn handle(ptr: u32, len: u32) -> u64;
        }
    };
}
#[cfg(target_family = "wasm")]
pub(crate) use exports;

macro_rules! export_names {
    ($( $(#[$doc:meta])* $konst:ident = $name:literal => fn $rust:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {
        $( $(#[$doc])* pub const $konst: &str = $name; )*
    };
}
exports!(export_names);

/// The name of the exported linear memory.
pub const EXPORT_MEMORY: &str = "memory";

/// Spells the optional describe export's name, once: `export!(F, schema)` needs it as
/// a literal inside `#[export_name = ...]`, where a constant cannot go.
#[doc(hidden)]
#[macro_export]
macro_rules! __describe_export_name {
    () => {
        "segfn_describe"
    };
}

/// `segfn_describe() -> i64` (optional): returns the [`pack`]ed location of the
/// [`Description`] JSON. A module exports it when its author opted in with
/// `segfn_sdk::export!(F, schema)`; `segfn schema` and `segfn docs` read it. It is
/// called in an instance of its own, without input, and may not call the host.
pub const EXPORT_DESCRIBE: &str = __describe_export_name!();

/// The JSON Schema keyword (a `true` flag, next to `"writeOnly": true`) that marks a
/// setting secret: `segfn_sdk::Secret<T>` puts it on `T`'s schema, and the host lists
/// such settings as sensitive.
pub const SCHEMA_SECRET_KEYWORD: &str = "x-segfn-secret";

/// What `segfn_describe` returns: the function's package, and its settings type as a
/// JSON Schema (draft 2020-12) that follows how the settings are deserialized.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Description {
    /// Always [`VERSION`].
    pub abi: u32,
    /// The function crate's name.
    pub name: String,
    /// The function crate's version.
    #[serde(default)]
    pub version: String,
    /// The function crate's description (empty when it has none).
    #[serde(default)]
    pub description: String,
    /// The JSON Schema of the settings object: doc comments are `description`s,
    /// `#[serde(default)]` values `default`s, settings with neither a default nor an
    /// `Option` type are `required`, and secret ones carry [`SCHEMA_SECRET_KEYWORD`].
    pub settings: Value,
}

/// The `unsupported_event_type` message of a function that has no handler for
/// `event_type` (`"track"`, `"identify"`, ...). The SDK's default handlers answer it
/// exactly, and `segfn docs` reads it as "no handler", telling it apart from a handler
/// that refuses some events of its type with a message of its own.
pub fn no_handler_message(event_type: &str) -> String {
    format!("{event_type} is not supported")
}

/// The `unsupported_event_type` message of a function without a request handler
/// (`onRequest`), in the words of Segment's harness; `segfn docs` reads it, as
/// [`no_handler_message`], as "not a source function".
pub const NO_REQUEST_HANDLER: &str = "request not supported";

/// Packs a guest pointer and length into the `i64` that `fetch` and `segfn_handle`
/// return: pointer in the high 32 bits, length in the low 32.
pub const fn pack(ptr: u32, len: u32) -> u64 {
    ((ptr as u64) << 32) | len as u64
}

/// The inverse of [`pack`].
pub const fn unpack(packed: u64) -> (u32, u32) {
    ((packed >> 32) as u32, packed as u32)
}

/// What the host hands to `segfn_handle`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "EnvelopeWire<Value>")]
pub struct Envelope {
    /// Always [`VERSION`].
    pub abi: u32,
    /// The message or batch to handle.
    #[serde(flatten)]
    pub call: Call,
    /// The settings object of this function instance, as configured.
    pub settings: Value,
}

/// One invocation handles either one message or a batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// `{"call": "event", "event": {...}}`
    Event {
        /// The Segment message.
        event: Value,
    },
    /// `{"call": "batch", "events": [...]}`
    Batch {
        /// The Segment messages, in delivery order.
        events: Vec<Value>,
    },
    /// `{"call": "request", "request": {"body", "headers", "url"}}`: a webhook for a
    /// source function (`onRequest`), which answers with the Segment calls it made.
    Request {
        /// The request: `body` (a string as received, or JSON a test gave already
        /// parsed), `headers` (name to value) and `url` (absolute, with its query).
        request: Value,
    },
}

/// A call whose messages are already JSON text, for [`envelope_json`].
#[derive(Debug, Clone, Copy)]
pub enum RawCall<'a, S: AsRef<str>> {
    /// One message.
    Event(&'a str),
    /// A batch of messages.
    Batch(&'a [S]),
    /// A source function's request (see [`Call::Request`]), as JSON text.
    Request(&'a str),
}

/// The [`Envelope`] for messages and settings that are already JSON text, without
/// parsing them: the host hands each message's own bytes through, and the guest parses
/// them once. Reads back as the `Envelope` of the same values (see the tests).
pub fn envelope_json<S: AsRef<str>>(call: RawCall<'_, S>, settings: &str) -> Vec<u8> {
    let (kind, parts): (&str, Vec<&str>) = match call {
        RawCall::Event(event) => ("\"event\",\"event\":", vec![event]),
        RawCall::Batch(events) => (
            "\"batch\",\"events\":",
            events.iter().map(AsRef::as_ref).collect(),
        ),
        RawCall::Request(request) => ("\"request\",\"request\":", vec![request]),
    };
    let size: usize = parts.iter().map(|p| p.len() + 1).sum::<usize>() + settings.len() + 64;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(format!("{{\"abi\":{VERSION},\"call\":").as_bytes());
    out.extend_from_slice(kind.as_bytes());
    if matches!(call, RawCall::Batch(_)) {
        out.push(b'[');
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(part.as_bytes());
        }
        out.push(b']');
    } else {
        out.extend_from_slice(parts[0].as_bytes());
    }
    out.extend_from_slice(b",\"settings\":");
    out.extend_from_slice(settings.as_bytes());
    out.push(b'}');
    out
}

// `Envelope` and `GuestResult` are read through the flat structs below rather than with
// `#[serde(flatten)]`, which would buffer the whole message before reading it: a second
// pass over every message, and several times slower with exact numbers. Their field names
// follow the written ones above; `wire_forms_read_back` checks that they agree.

/// An [`Envelope`] as it is read: every field at the top level. Its messages are `M`:
/// [`Value`]s for an [`Envelope`], or in a guest `&RawValue`s, the envelope's own text,
/// each read by [`crate::Event::from_json`] with no tree in between.
#[derive(Deserialize)]
pub(crate) struct EnvelopeWire<M> {
    pub(crate) abi: u32,
    call: CallKind,
    #[serde(default = "none")]
    event: Option<M>,
    #[serde(default = "none")]
    events: Option<Vec<M>>,
    #[serde(default)]
    request: Option<Value>,
    pub(crate) settings: Value,
}

/// `None`, for `#[serde(default)]` on fields of a generic type without `Default`.
fn none<T>() -> Option<T> {
    None
}

/// The call of an [`EnvelopeWire`], with its messages as they were read.
pub(crate) enum CallOf<M> {
    Event(M),
    Batch(Vec<M>),
    Request(Value),
}

impl<M> EnvelopeWire<M> {
    /// The call, or what is missing for it.
    pub(crate) fn take_call(&mut self) -> Result<CallOf<M>, String> {
        Ok(match self.call {
            CallKind::Event => {
                CallOf::Event(self.event.take().ok_or("an event call without its event")?)
            }
            CallKind::Batch => CallOf::Batch(
                self.events
                    .take()
                    .ok_or("a batch call without its events")?,
            ),
            CallKind::Request => CallOf::Request(
                self.request
                    .take()
                    .ok_or("a request call without its request")?,
            ),
        })
    }
}

/// The tag of a [`Call`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum CallKind {
    Event,
    Batch,
    Request,
}

impl TryFrom<EnvelopeWire<Value>> for Envelope {
    type Error = String;
    fn try_from(mut wire: EnvelopeWire<Value>) -> Result<Envelope, String> {
        let call = match wire.take_call()? {
            CallOf::Event(event) => Call::Event { event },
            CallOf::Batch(events) => Call::Batch { events },
            CallOf::Request(request) => Call::Request { request },
        };
        Ok(Envelope {
            abi: wire.abi,
            call,
            settings: wire.settings,
        })
    }
}

/// How an invocation, or one event of a batch, ended. The names are Segment's
/// delivery codes (docs/ARCHITECTURE.md, decision 6); the host maps each to an HTTP
/// status and an exit code in one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The handler finished without error.
    Success,
    /// Transient failure: `RetryError`, a timeout or a host fault. Delivered again later.
    Retry,
    /// `EventNotSupported`, or no handler for the message's type.
    UnsupportedEventType,
    /// `InvalidEventPayload` or `ValidationError`: the function refused the message.
    MessageRejected,
    /// Any other error, a panic, a trap or a malformed message.
    BadRequest,
    /// The settings did not fit the function's settings type.
    InvalidSettings,
    /// `DropEvent`: the function chose not to forward the message (insert functions).
    Dropped,
}

impl OutcomeKind {
    /// Every kind, in order of severity (most severe first).
    pub const ALL: [OutcomeKind; 7] = [
        OutcomeKind::Retry,
        OutcomeKind::BadRequest,
        OutcomeKind::InvalidSettings,
        OutcomeKind::MessageRejected,
        OutcomeKind::UnsupportedEventType,
        OutcomeKind::Dropped,
        OutcomeKind::Success,
    ];

    /// The wire name, e.g. `unsupported_event_type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Success => "success",
            OutcomeKind::Retry => "retry",
            OutcomeKind::UnsupportedEventType => "unsupported_event_type",
            OutcomeKind::MessageRejected => "message_rejected",
            OutcomeKind::BadRequest => "bad_request",
            OutcomeKind::InvalidSettings => "invalid_settings",
            OutcomeKind::Dropped => "dropped",
        }
    }

    /// Position in [`OutcomeKind::ALL`]; lower is more severe.
    pub fn severity_rank(self) -> usize {
        Self::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(Self::ALL.len())
    }
}

impl std::fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one message: its outcome, and the event the handler returned (insert
/// functions forward it), if any.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventResult {
    /// How it ended.
    pub kind: OutcomeKind,
    /// The error message, when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The returned event, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// A source function's result for a request (a [`Call::Request`]'s `output`): the
/// Segment calls it made, in order, for the host to send on to Segment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Emitted {
    /// Events (`identify`, `track`, `page`, `screen`, `group`, `alias`), each with its
    /// `type`.
    pub events: Vec<Value>,
    /// Objects (`set`): `{collection, id, properties}`.
    pub objects: Vec<Value>,
}

/// What `segfn_handle` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(from = "GuestResultWire")]
pub struct GuestResult {
    /// Always [`VERSION`].
    pub abi: u32,
    /// The outcome of the call: for a batch, the outcome of the batch as a whole
    /// (`success` when the batch handler returned per-event results).
    #[serde(flatten)]
    pub result: EventResult,
    /// For a batch that was handled: one result per input event, in input order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<EventResult>>,
}

/// A [`GuestResult`] as it is read: every field at the top level.
#[derive(Deserialize)]
struct GuestResultWire {
    abi: u32,
    kind: OutcomeKind,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default)]
    results: Option<Vec<EventResult>>,
}

impl From<GuestResultWire> for GuestResult {
    fn from(wire: GuestResultWire) -> GuestResult {
        GuestResult {
            abi: wire.abi,
            result: EventResult {
                kind: wire.kind,
                message: wire.message,
                output: wire.output,
            },
            results: wire.results,
        }
    }
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(i32)]
pub enum LogLevel {
    /// Detail for the author.
    Debug = 0,
    /// `console.log`.
    Info = 1,
    /// Something looks wrong.
    Warn = 2,
    /// Something failed.
    Error = 3,
}

impl LogLevel {
    /// The level for an `i32` from the `log` import; unknown numbers are `Info`.
    pub fn from_i32(level: i32) -> LogLevel {
        match level {
            0 => LogLevel::Debug,
            2 => LogLevel::Warn,
            3 => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }

    /// Lower-case name, as printed in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// The JSON head of a `fetch` request frame; the body follows it raw.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FetchRequestHead {
    /// HTTP method, upper case.
    pub method: String,
    /// Absolute `http` or `https` URL.
    pub url: String,
    /// Header names and values, in order; names may repeat.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

/// The JSON head of a `fetch` response frame; on success the body follows it raw.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum FetchResponseHead {
    /// The partner answered (any status).
    Ok {
        /// HTTP status code.
        status: u16,
        /// Header names (lower case) and values, in order.
        headers: Vec<(String, String)>,
    },
    /// No answer: the request was refused, timed out or failed.
    Err {
        /// Why.
        kind: FetchErrorKind,
        /// A message that names the problem.
        message: String,
    },
}

/// Why a `fetch` produced no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchErrorKind {
    /// The host is not on the allow-list, or resolves to a refused address.
    Denied,
    /// No response within the time left.
    Timeout,
    /// Connection, DNS or protocol failure.
    Network,
    /// A limit was reached: number of fetches, request or response size.
    Limit,
    /// The request itself is malformed (bad URL, method or header).
    Invalid,
}

impl FetchErrorKind {
    /// Lower-case name, as printed in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            FetchErrorKind::Denied => "denied",
            FetchErrorKind::Timeout => "timeout",
            FetchErrorKind::Network => "network",
            FetchErrorKind::Limit => "limit",
            FetchErrorKind::Invalid => "invalid",
        }
    }
}

/// Frames a JSON head and a raw body: `u32` little-endian head length, head, body.
pub fn encode_frame<H: Serialize>(head: &H, body: &[u8]) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    let head = serde_json::to_vec(head).unwrap_or_default();
    let mut frame = Vec::with_capacity(4 + head.len() + body.len());
    frame.extend_from_slice(&(head.len() as u32).to_le_bytes());
    frame.extend_from_slice(&head);
    frame.extend_from_slice(body);
    frame
}

/// Frames a list of frames (for `fetch_all`): `u32` little-endian count, then each frame
/// as a `u32` little-endian length and its bytes.
pub fn encode_frames<F: AsRef<[u8]>>(frames: &[F]) -> Vec<u8> {
    let total: usize = frames.iter().map(|f| 4 + f.as_ref().len()).sum();
    let mut out = Vec::with_capacity(4 + total);
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    for frame in frames {
        let frame = frame.as_ref();
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
    out
}

/// Splits a list made by [`encode_frames`] into its frames.
pub fn decode_frames(list: &[u8]) -> Result<Vec<&[u8]>, String> {
    let (count, mut rest) = list
        .split_first_chunk::<4>()
        .ok_or("frame list shorter than its 4-byte count")?;
    let count = u32::from_le_bytes(*count) as usize;
    // Each frame takes at least its 4-byte length: a count beyond that is a lie.
    if count > rest.len() / 4 {
        return Err(format!(
            "frame list claims {count} frames in {} bytes",
            rest.len()
        ));
    }
    let mut frames = Vec::with_capacity(count);
    for i in 0..count {
        let (len, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| format!("frame {i} of the list has no length"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > after.len() {
            return Err(format!(
                "frame {i} of the list claims {len} bytes but only {} follow",
                after.len()
            ));
        }
        let (frame, next) = after.split_at(len);
        frames.push(frame);
        rest = next;
    }
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes follow the last frame of the list",
            rest.len()
        ));
    }
    Ok(frames)
}

/// Splits a frame made by [`encode_frame`] into its parsed head and its body.
pub fn decode_frame<H: serde::de::DeserializeOwned>(frame: &[u8]) -> Result<(H, &[u8]), String> {
    let (len, rest) = frame.split_first_chunk::<4>().ok_or_else(|| {
        format!(
            "frame of {} bytes is shorter than its 4-byte header",
            frame.len()
        )
    })?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err(format!(
            "frame head claims {len} bytes but only {} follow",
            rest.len()
        ));
    }
    let (head, body) = rest.split_at(len);
    let head =
        serde_json::from_slice(head).map_err(|e| format!("frame head is not valid JSON: {e}"))?;
    Ok((head, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_full_range() {
        for (p, l) in [(0, 0), (1, 2), (u32::MAX, u32::MAX), (0x8000_0000, 7)] {
            assert_eq!(unpack(pack(p, l)), (p, l));
        }
    }

    #[test]
    fn frame_round_trips_and_rejects_truncation() {
        let head = FetchRequestHead {
            method: "POST".into(),
            url: "https://api.example.com/x".into(),
            headers: vec![("a".into(), "b".into())],
        };
        let frame = encode_frame(&head, b"\x00body\xff");
        let (back, body): (FetchRequestHead, _) = decode_frame(&frame).unwrap();
        assert_eq!(back, head);
        assert_eq!(body, b"\x00body\xff");
        assert!(decode_frame::<FetchRequestHead>(&frame[..10]).is_err());
        assert!(decode_frame::<FetchRequestHead>(&frame[..3]).is_err());
    }

    #[test]
    fn envelope_wire_shape_is_stable() {
        let env = Envelope {
            abi: VERSION,
            call: Call::Event {
                event: serde_json::json!({"type": "track"}),
            },
            settings: serde_json::json!({"apiKey": "k"}),
        };
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"abi": 1, "call": "event", "event": {"type": "track"}, "settings": {"apiKey": "k"}})
        );
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn raw_envelopes_read_back_as_envelopes() {
        let event = r#"{"type":"track","n":1.50,"big":18446744073709551617}"#;
        let settings = r#"{"apiKey":"k"}"#;
        let single: Envelope =
            serde_json::from_slice(&envelope_json::<&str>(RawCall::Event(event), settings))
                .unwrap();
        assert_eq!(
            single,
            Envelope {
                abi: VERSION,
                call: Call::Event {
                    event: serde_json::from_str(event).unwrap()
                },
                settings: serde_json::from_str(settings).unwrap(),
            }
        );
        let events = [event, r#"{"type":"page"}"#];
        let batch: Envelope =
            serde_json::from_slice(&envelope_json(RawCall::Batch(&events), "{}")).unwrap();
        let Call::Batch { events: read } = batch.call else {
            panic!("a batch")
        };
        assert_eq!(read.len(), 2);
        assert_eq!(read[0]["big"].to_string(), "18446744073709551617");
    }

    #[test]
    fn wire_forms_read_back() {
        let envelopes = [
            Envelope {
                abi: VERSION,
                call: Call::Event {
                    event: serde_json::json!({"type": "track", "n": 1.50}),
                },
                settings: serde_json::json!({}),
            },
            Envelope {
                abi: VERSION,
                call: Call::Batch {
                    events: vec![serde_json::json!({"type": "page"}), Value::Null],
                },
                settings: serde_json::json!({"k": [1]}),
            },
            Envelope {
                abi: VERSION,
                call: Call::Request {
                    request: serde_json::json!({"body": "{}", "headers": {}, "url": "https://x/"}),
                },
                settings: serde_json::json!({}),
            },
        ];
        for envelope in envelopes {
            let text = serde_json::to_string(&envelope).unwrap();
            assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), envelope);
        }
        let result = GuestResult {
            abi: VERSION,
            result: EventResult {
                kind: OutcomeKind::Dropped,
                message: Some("m".into()),
                output: Some(serde_json::json!({"a": 1})),
            },
            results: Some(vec![EventResult {
                kind: OutcomeKind::Retry,
                message: None,
                output: None,
            }]),
        };
        let text = serde_json::to_string(&result).unwrap();
        assert_eq!(serde_json::from_str::<GuestResult>(&text).unwrap(), result);
    }

    #[test]
    fn envelope_fields_read_in_any_order_and_a_call_needs_its_messages() {
        let text = r#"{"settings":{},"event":{"type":"track"},"x":0,"call":"event","abi":1}"#;
        let envelope: Envelope = serde_json::from_str(text).unwrap();
        assert!(matches!(envelope.call, Call::Event { .. }));
        let err = serde_json::from_str::<Envelope>(r#"{"abi":1,"call":"batch","settings":{}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("without its events"), "{err}");
        let err =
            serde_json::from_str::<Envelope>(r#"{"abi":1,"call":"x","settings":{}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }

    #[test]
    fn outcome_names_match_serde() {
        for kind in OutcomeKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                Value::String(kind.as_str().into())
            );
        }
    }

    #[test]
    fn frame_lists_round_trip_and_lies_are_caught() {
        let frames = [b"one".to_vec(), Vec::new(), b"three".to_vec()];
        let list = encode_frames(&frames);
        let back = decode_frames(&list).unwrap();
        assert_eq!(back, [&b"one"[..], &b""[..], &b"three"[..]]);
        assert!(decode_frames(&[]).is_err());
        assert!(decode_frames(&u32::MAX.to_le_bytes()).is_err());
        let mut extra = list.clone();
        extra.push(0);
        assert!(decode_frames(&extra).is_err());
        assert!(decode_frames(&list[..list.len() - 1]).is_err());
    }
}
