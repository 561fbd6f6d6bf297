//! The platform layer, the only code that differs between targets: the host's imports on
//! wasm, in-process stand-ins on native targets (which `testing` steers). It works in
//! bytes and ABI types only, so that it depends on nothing but `abi`:
//! `fetch` exchanges the same frames on both targets, and `crate::fetch` builds and reads
//! them.

use crate::abi::LogLevel;

#[cfg(target_family = "wasm")]
mod imp {
    use super::LogLevel;
    use crate::abi;

    /// The raw host imports, declared from the one list in `abi`.
    mod host {
        macro_rules! extern_block {
            (module $module:literal; $( $(#[$doc:meta])* $konst:ident = $name:literal => fn $rust:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?; )*) => {
                #[link(wasm_import_module = $module)]
                unsafe extern "C" {
                    $( #[link_name = $name] pub(super) fn $rust($($arg: $ty),*) $(-> $ret)?; )*
                }
            };
        }
        crate::abi::imports!(extern_block);
    }

    pub(crate) fn fetch(frame: &[u8]) -> Vec<u8> {
        // SAFETY: the host reads `frame` during the call and returns the location of a
        // response frame it wrote into memory it obtained from `segfn_alloc` with that
        // length and alignment 1, which hands ownership of that memory to us.
        let (ptr, len) = abi::unpack(unsafe { host::fetch(frame.as_ptr(), frame.len()) });
        unsafe { Vec::from_raw_parts(ptr as usize as *mut u8, len as usize, len as usize) }
    }

    pub(crate) fn fetch_all(list: &[u8]) -> Vec<u8> {
        // SAFETY: as for `fetch`: the host returns memory it obtained from `segfn_alloc`.
        let (ptr, len) = abi::unpack(unsafe { host::fetch_all(list.as_ptr(), list.len()) });
        unsafe { Vec::from_raw_parts(ptr as usize as *mut u8, len as usize, len as usize) }
    }

    pub(crate) fn log(level: LogLevel, message: &str) {
        // SAFETY: the host only reads the given range during the call.
        unsafe { host::log(level as i32, message.as_ptr(), message.len()) }
    }

    pub(crate) fn now_ms() -> i64 {
        // SAFETY: no arguments; the host returns a number.
        unsafe { host::now_ms() }
    }

    pub(crate) fn random_fill(buf: &mut [u8]) {
        // The host fills at most 64 KiB per call.
        for chunk in buf.chunks_mut(64 << 10) {
            // SAFETY: the host writes exactly the given range during the call.
            unsafe { host::random_fill(chunk.as_mut_ptr(), chunk.len()) }
        }
    }

    pub(crate) fn report_panic(message: &str) {
        // SAFETY: the host reads the range and ends the invocation.
        unsafe { host::panic(message.as_ptr(), message.len()) }
    }

    pub(crate) fn declare_secret(value: &str) {
        // SAFETY: the host only reads the given range during the call.
        unsafe { host::secret(value.as_ptr(), value.len()) }
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    use super::LogLevel;
    use crate::abi::{FetchErrorKind, FetchResponseHead, encode_frame};
    use std::cell::RefCell;

    /// Answers one request frame with a response frame, as the host does.
    pub(crate) type FetchStub = Box<dyn FnMut(&[u8]) -> Vec<u8>>;

    // Per thread, so that tests running in parallel do not see each other's stubs.
    thread_local! {
        static FETCH: RefCell<Option<FetchStub>> = const { RefCell::new(None) };
        static LOGS: RefCell<Vec<(LogLevel, String)>> = const { RefCell::new(Vec::new()) };
        static SECRETS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    /// Remembers a secret value, as the host would for its redaction.
    pub(crate) fn declare_secret(value: &str) {
        SECRETS.with(|s| s.borrow_mut().push(value.to_owned()));
    }

    /// The secret values declared on this thread so far, and forgets them.
    pub(crate) fn take_secrets() -> Vec<String> {
        SECRETS.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }

    /// The secret values declared on this thread so far.
    pub(crate) fn secrets() -> Vec<String> {
        SECRETS.with(|s| s.borrow().clone())
    }

    /// Makes `stub` answer this thread's `fetch` calls.
    pub(crate) fn set_fetch_stub(stub: FetchStub) {
        FETCH.with(|f| *f.borrow_mut() = Some(stub));
    }

    /// This thread's log lines so far.
    pub(crate) fn logs() -> Vec<(LogLevel, String)> {
        LOGS.with(|l| l.borrow().clone())
    }

    /// Forgets this thread's log lines.
    pub(crate) fn clear_logs() {
        LOGS.with(|l| l.borrow_mut().clear());
    }

    pub(crate) fn fetch(frame: &[u8]) -> Vec<u8> {
        let answer = FETCH.with(|f| f.borrow_mut().as_mut().map(|stub| stub(frame)));
        answer.unwrap_or_else(|| {
            let refused = FetchResponseHead::Err {
                kind: FetchErrorKind::Denied,
                message: "no fetch stub on this thread: call segfn_sdk::testing::mock_fetch first"
                    .into(),
            };
            encode_frame(&refused, &[])
        })
    }

    /// Answers each request of the list in turn with the stub, as `fetch` would.
    pub(crate) fn fetch_all(list: &[u8]) -> Vec<u8> {
        match crate::abi::decode_frames(list) {
            Ok(frames) => {
                let answers: Vec<Vec<u8>> = frames.into_iter().map(fetch).collect();
                crate::abi::encode_frames(&answers)
            }
            // The SDK built the list: it is well formed.
            Err(_) => crate::abi::encode_frames::<Vec<u8>>(&[]),
        }
    }

    pub(crate) fn log(level: LogLevel, message: &str) {
        LOGS.with(|l| l.borrow_mut().push((level, message.to_owned())));
        eprintln!("[{}] {message}", level.as_str());
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
