//! Native unit testing of functions: stub `fetch` responses, read back the requests
//! and log lines, and run events through the same dispatch the Wasm export uses.
//!
//! State is per thread, so tests running in parallel do not see each other's stubs.
//!
//! ```
//! use segfn_sdk::testing;
//! use segfn_sdk::{Request, Response, fetch};
//!
//! testing::mock_fetch(|req| Ok(Response::new(if req.url.ends_with("/ok") { 200 } else { 404 })));
//! assert_eq!(fetch(Request::get("https://api.example.com/ok")).unwrap().status, 200);
//! assert_eq!(testing::requests()[0].url, "https://api.example.com/ok");
//! ```

use crate::abi::{Call, Envelope, FetchErrorKind, LogLevel, OutcomeKind, VERSION};
use crate::error::Error;
use crate::fetch::{FetchError, Request, Response, encode_response};
use crate::handler::{Function, HandlerResult};
use crate::sys;
use serde_json::Value;
use std::cell::RefCell;

thread_local! {
    static REQUESTS: RefCell<Vec<Request>> = const { RefCell::new(Vec::new()) };
}

/// Answers this thread's `fetch` calls with `responder`, and forgets earlier requests and
/// logs. Requests and responses pass through the same frames as on wasm.
pub fn mock_fetch(mut responder: impl FnMut(&Request) -> Result<Response, FetchError> + 'static) {
    REQUESTS.with(|r| r.borrow_mut().clear());
    sys::clear_logs();
    sys::take_secrets();
    sys::set_fetch_stub(Box::new(move |frame| {
        let answer = match Request::from_frame(frame) {
            Ok(request) => {
                REQUESTS.with(|r| r.borrow_mut().push(request.clone()));
                responder(&request)
            }
            Err(message) => Err(FetchError {
                kind: FetchErrorKind::Invalid,
                message,
            }),
        };
        encode_response(&answer)
    }));
}

/// The requests `fetch` received on this thread since [`mock_fetch`].
pub fn requests() -> Vec<Request> {
    REQUESTS.with(|r| r.borrow().clone())
}

/// The values of [`crate::Secret`] settings read on this thread since [`mock_fetch`]:
/// what the host would redact from logs and the trace.
pub fn secrets() -> Vec<String> {
    sys::secrets()
}

/// The log lines written on this thread since [`mock_fetch`].
pub fn logs() -> Vec<(LogLevel, String)> {
    sys::logs()
}

/// What a handler came to, as a test sees it: the outcome, and the [`Error`] itself
/// (so a test can tell `InvalidEventPayload` from `ValidationError`, which share an
/// outcome).
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The outcome, as the host reports it.
    pub kind: OutcomeKind,
    /// The error, when it did not succeed.
    pub error: Option<Error>,
    /// The event an insert function returned.
    pub output: Option<Value>,
}

impl Handled {
    /// The error's message, when it did not succeed.
    pub fn message(&self) -> Option<&str> {
        self.error.as_ref().map(Error::message)
    }

    /// Segment's error class (`"ValidationError"`, ...), when it did not succeed.
    pub fn class(&self) -> Option<&'static str> {
        self.error.as_ref().map(Error::class)
    }

    fn from_result(result: HandlerResult) -> Handled {
        match result {
            Ok(output) => Handled {
                kind: OutcomeKind::Success,
                error: None,
                output: output.map(|e| e.to_value()),
            },
            Err(error) => Handled {
                kind: error.kind(),
                error: Some(error),
                output: None,
            },
        }
    }
}

/// Runs one message through `F` exactly as the Wasm export would (settings parsing,
/// dispatch by type, missing handlers), returning its result.
///
/// ```
/// use segfn_sdk::{Function, HandlerResult, NoSettings, OrError, Track, testing};
///
/// struct Named;
/// impl Function for Named {
///     type Settings = NoSettings;
///     fn on_track(event: Track, _: &NoSettings) -> HandlerResult {
///         event.event().or_invalid_payload("no name")?;
///         Ok(None)
///     }
/// }
///
/// let handled = testing::handle::<Named>(serde_json::json!({"type": "track"}), serde_json::json!({}));
/// assert_eq!(handled.class(), Some("InvalidEventPayload"));
/// ```
pub fn handle<F: Function>(event: Value, settings: Value) -> Handled {
    match run::<F>(Call::Event { event }, settings) {
        crate::handler::Handled::Event(result) => Handled::from_result(*result),
        other => whole(other),
    }
}

/// Runs a batch through `F` exactly as the Wasm export would: one result per event in
/// input order, or the failure of the batch as a whole (settings that do not fit, or an
/// error returned by `on_batch`).
///
/// ```
/// use segfn_sdk::{Function, HandlerResult, NoSettings, OutcomeKind, Track, testing};
///
/// struct TracksOnly;
/// impl Function for TracksOnly {
///     type Settings = NoSettings;
///     fn on_track(_: Track, _: &NoSettings) -> HandlerResult { Ok(None) }
/// }
/// let events = vec![serde_json::json!({"type": "track"}), serde_json::json!({"type": "page"})];
/// let results = testing::handle_batch::<TracksOnly>(events, serde_json::json!({})).unwrap();
/// let kinds: Vec<_> = results.iter().map(|r| r.kind).collect();
/// assert_eq!(kinds, [OutcomeKind::Success, OutcomeKind::UnsupportedEventType]);
/// ```
pub fn handle_batch<F: Function>(
    events: Vec<Value>,
    settings: Value,
) -> Result<Vec<Handled>, Handled> {
    match run::<F>(Call::Batch { events }, settings) {
        crate::handler::Handled::Batch(results) => {
            Ok(results.into_iter().map(Handled::from_result).collect())
        }
        other => Err(whole(other)),
    }
}

/// A whole-call failure (or, for a batch, its success as a whole) as one result.
fn whole(handled: crate::handler::Handled) -> Handled {
    match handled {
        crate::handler::Handled::Failed(kind, error) => Handled {
            kind,
            error: Some(error),
            output: None,
        },
        crate::handler::Handled::Event(result) => Handled::from_result(*result),
        crate::handler::Handled::Batch(_) | crate::handler::Handled::Request(Ok(_)) => {
            Handled::from_result(Ok(None))
        }
        crate::handler::Handled::Request(Err(error)) => Handled::from_result(Err(error)),
    }
}

/// Runs one webhook request through `F`'s `on_request` exactly as the Wasm export
/// would: the calls it made, or what the request came to when it failed.
///
/// ```
/// use segfn_sdk::source::{Segment, WebhookRequest, track};
/// use segfn_sdk::{Error, Function, NoSettings, testing};
///
/// struct Hook;
/// impl Function for Hook {
///     type Settings = NoSettings;
///     fn on_request(r: WebhookRequest, _: &NoSettings, s: &mut Segment) -> Result<(), Error> {
///         s.send(track("Pinged").user_id(r.query("user").unwrap_or_default()))?;
///         Ok(())
///     }
/// }
/// let request = WebhookRequest::from_text("").with_url("https://fn.segmentapis.com/?user=u1");
/// let emitted = testing::handle_request::<Hook>(request, serde_json::json!({})).unwrap();
/// assert_eq!(emitted.events[0]["userId"], "u1");
/// let failed = testing::handle_request::<Hook>(WebhookRequest::from_text(""), serde_json::json!({}));
/// assert_eq!(failed.unwrap_err().class(), Some("ValidationError"));
/// ```
pub fn handle_request<F: Function>(
    request: crate::source::WebhookRequest,
    settings: Value,
) -> Result<crate::source::Emitted, Handled> {
    match run::<F>(
        Call::Request {
            request: request.to_value(),
        },
        settings,
    ) {
        crate::handler::Handled::Request(Ok(emitted)) => Ok(emitted),
        other => Err(whole(other)),
    }
}

fn run<F: Function>(call: Call, settings: Value) -> crate::handler::Handled {
    let envelope = Envelope {
        abi: VERSION,
        call,
        settings,
    };
    let bytes = serde_json::to_vec(&envelope).expect("an envelope serialises");
    crate::handler::run_envelope::<F>(&bytes)
}
