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

use crate::abi::{Call, Envelope, EventResult, FetchErrorKind, GuestResult, LogLevel, VERSION};
use crate::fetch::{FetchError, Request, Response, encode_response};
use crate::handler::Function;
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

/// The log lines written on this thread since [`mock_fetch`].
pub fn logs() -> Vec<(LogLevel, String)> {
    sys::logs()
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
