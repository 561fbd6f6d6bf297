//! The platform layer: host imports on wasm, test stand-ins on native targets.

use crate::abi::LogLevel;
use crate::fetch::{FetchError, Request, Response};

#[cfg(target_family = "wasm")]
mod imp {
    use super::*;
    use crate::abi::{self, FetchErrorKind, FetchResponseHead};

    pub(crate) fn fetch(request: Request) -> Result<Response, FetchError> {
        let frame = abi::encode_frame(&request.head(), &request.body);
        // SAFETY: the host reads `frame` during the call and returns the location of a
        // response frame it wrote into memory it obtained from `segfn_alloc`, which
        // hands ownership of that memory to us.
        let (ptr, len) = abi::unpack(unsafe { abi::sys::fetch(frame.as_ptr(), frame.len()) });
        let response =
            unsafe { Vec::from_raw_parts(ptr as usize as *mut u8, len as usize, len as usize) };
        match abi::decode_frame::<FetchResponseHead>(&response) {
            Ok((FetchResponseHead::Ok { status, headers }, body)) => Ok(Response {
                status,
                headers,
                body: body.to_vec(),
            }),
            Ok((FetchResponseHead::Err { kind, message }, _)) => Err(FetchError { kind, message }),
            Err(e) => Err(FetchError {
                kind: FetchErrorKind::Invalid,
                message: format!("the host's response frame is malformed: {e}"),
            }),
        }
    }

    pub(crate) fn log(level: LogLevel, message: &str) {
        // SAFETY: the host only reads the given range during the call.
        unsafe { abi::sys::log(level as i32, message.as_ptr(), message.len()) }
    }

    pub(crate) fn now_ms() -> i64 {
        // SAFETY: no arguments; the host returns a number.
        unsafe { abi::sys::now_ms() }
    }

    pub(crate) fn random_fill(buf: &mut [u8]) {
        // The host fills at most 64 KiB per call.
        for chunk in buf.chunks_mut(64 << 10) {
            // SAFETY: the host writes exactly the given range during the call.
            unsafe { abi::sys::random_fill(chunk.as_mut_ptr(), chunk.len()) }
        }
    }

    pub(crate) fn report_panic(message: &str) {
        // SAFETY: the host reads the range and ends the invocation.
        unsafe { abi::sys::panic(message.as_ptr(), message.len()) }
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    use super::*;

    pub(crate) fn fetch(request: Request) -> Result<Response, FetchError> {
        crate::testing::native_fetch(request)
    }

    pub(crate) fn log(level: LogLevel, message: &str) {
        crate::testing::native_log(level, message);
    }

    pub(crate) fn now_ms() -> i64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    pub(crate) fn random_fill(buf: &mut [u8]) {
        // The OS source failing is not something a test can recover from.
        getrandom::fill(buf).expect("the operating system's random source failed");
    }
}

pub(crate) use imp::*;
