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

use crate::Function;
use crate::abi::{Call, Envelope, EventResult, GuestResult, LogLevel, VERSION};
use crate::fetch::{FetchError, Request, Response};
use serde_json::Value;
use std::cell::RefCell;

type Responder = Box<dyn FnMut(&Request) -> Result<Response, FetchError>>;

thread_local! {
    static RESPONDER: RefCell<Option<Responder>> = const { RefCell::new(None) };
    static REQUESTS: RefCell<Vec<Request>> = const { RefCell::new(Vec::new()) };
    static LOGS: RefCell<Vec<(LogLevel, String)>> = const { RefCell::new(Vec::new()) };
}

/// Answers this thread's `fetch` calls with `responder`, and forgets earlier requests and
/// logs.
pub fn mock_fetch(responder: impl FnMut(&Request) -> Result<Response, FetchError> + 'static) {
    RESPONDER.with(|r| *r.borrow_mut() = Some(Box::new(responder)));
    REQUESTS.with(|r| r.borrow_mut().clear());
    LOGS.with(|l| l.borrow_mut().clear());
}

/// The requests `fetch` received on this thread since [`mock_fetch`].
pub fn requests() -> Vec<Request> {
    REQUESTS.with(|r| r.borrow().clone())
}

/// The log lines written on this thread since [`mock_fetch`].
pub fn logs() -> Vec<(LogLevel, String)> {
    LOGS.with(|l| l.borrow().clone())
}

/// Runs one message through `F` exactly as the Wasm export would (settings parsing,
/// dispatch by type, missing handlers), returning its result.
pub fn handle<F: Function>(event: Value, settings: Value) -> EventResult {
    run::<F>(Call::Event { event }, settings).result
}

/// Runs a batch through `F` exactly as the Wasm export would.
pub fn handle_batch<F: Function>(events: Vec<Value>, settings: Value) -> GuestResult {
    run::<F>(Call::Batch { events }, settings)
}

fn run<F: Function>(call: Call, settings: Value) -> GuestResult {
    let envelope = Envelope {
        abi: VERSION,
        call,
        settings,
    };
    let bytes = serde_json::to_vec(&envelope).expect("an envelope serialises");
    crate::handler::handle_envelope::<F>(&bytes)
}

pub(crate) fn native_fetch(request: Request) -> Result<Response, FetchError> {
    REQUESTS.with(|r| r.borrow_mut().push(request.clone()));
    let answer = RESPONDER.with(|r| r.borrow_mut().as_mut().map(|respond| respond(&request)));
    answer.unwrap_or_else(|| {
        Err(FetchError {
            kind: crate::abi::FetchErrorKind::Denied,
            message: "no fetch stub on this thread: call segfn_sdk::testing::mock_fetch first"
                .into(),
        })
    })
}

pub(crate) fn native_log(level: LogLevel, message: &str) {
    LOGS.with(|l| l.borrow_mut().push((level, message.to_owned())));
    eprintln!("[{}] {message}", level.as_str());
}
