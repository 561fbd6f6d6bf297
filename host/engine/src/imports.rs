//! The host functions a guest imports (`segfn::log`, `fetch`, `fetch_all`, `now_ms`,
//! `random_fill`, `panic`, `secret`), each reading and writing guest memory with bounds
//! checks, each bounded in the host memory a guest can make it use, and each refused
//! outside `segfn_handle` or from inside another host call (a re-entrant `fetch` from
//! `segfn_alloc` would nest fibers and escape the deadline).

use crate::error::GuestFault;
use crate::fetch::{FetchFailure, FetchResponse, TraceEntry, traced_method, traced_url};
use crate::invocation::{InvocationState, MAX_LOG_LINES, Phase};
use crate::redact::{MAX_SECRET_BYTES, MAX_SECRET_VALUE_BYTES, MAX_SECRET_VALUES};
use crate::report::LogLine;
use futures_util::{FutureExt as _, StreamExt as _};
use segfn_sdk::abi::{self, FetchErrorKind, FetchRequestHead, FetchResponseHead, LogLevel};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasmtime::{Caller, Extern, Linker, Memory, Trap};

/// Most random bytes one `random_fill` call may ask for.
const MAX_RANDOM_FILL: usize = 64 << 10;

/// Room for a request's method, URL and headers beyond its body.
const MAX_REQUEST_HEAD: usize = 64 << 10;

/// Most requests of one `fetch_all` in flight at once: enough to hide a partner's
/// latency, few enough not to flood it.
pub const FETCH_CONCURRENCY: usize = 16;

/// Longest panic message read.
const MAX_PANIC_MESSAGE: u32 = 64 << 10;

fn fault(f: GuestFault) -> wasmtime::Error {
    wasmtime::Error::new(f)
}

fn abi_fault(message: String) -> wasmtime::Error {
    fault(GuestFault::Abi(message))
}

/// Faults unless the guest is inside `segfn_handle` and not inside another host call.
fn allowed(caller: &Caller<'_, InvocationState>, what: &str) -> wasmtime::Result<()> {
    match caller.data().phase {
        Phase::Handling => Ok(()),
        Phase::Setup => Err(abi_fault(format!(
            "{what} was called outside {}: host functions may be called only while handling an event (not from a start function, {} or {})",
            abi::EXPORT_HANDLE,
            abi::EXPORT_ALLOC,
            abi::EXPORT_ABI_VERSION
        ))),
        Phase::InHostCall => Err(abi_fault(format!(
            "{what} was called from inside another host call (from {} while the host placed a result): host calls cannot nest",
            abi::EXPORT_ALLOC
        ))),
    }
}

fn memory(caller: &mut Caller<'_, InvocationState>, what: &str) -> wasmtime::Result<Memory> {
    match caller.get_export(abi::EXPORT_MEMORY) {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(abi_fault(format!("{what}: the module exports no memory"))),
    }
}

/// Faults unless `ptr..ptr+len` lies inside the guest's memory.
fn check_range(
    caller: &mut Caller<'_, InvocationState>,
    ptr: u32,
    len: u32,
    what: &str,
) -> wasmtime::Result<()> {
    let size = memory(caller, what)?.data_size(&*caller);
    if (ptr as usize).saturating_add(len as usize) > size {
        return Err(abi_fault(format!(
            "{what}: range {ptr}+{len} is outside the function's memory"
        )));
    }
    Ok(())
}

/// Copies `len` bytes at `ptr` out of the guest's memory.
fn read_guest(
    caller: &mut Caller<'_, InvocationState>,
    ptr: u32,
    len: u32,
    what: &str,
) -> wasmtime::Result<Vec<u8>> {
    check_range(caller, ptr, len, what)?;
    let start = ptr as usize;
    Ok(memory(caller, what)?.data(&*caller)[start..start + len as usize].to_vec())
}

/// Copies `bytes` into guest memory obtained from the guest's allocator; returns the
/// address.
async fn write_guest(
    caller: &mut Caller<'_, InvocationState>,
    bytes: &[u8],
    what: &str,
) -> wasmtime::Result<u32> {
    let len = u32::try_from(bytes.len()).map_err(|_| abi_fault(format!("{what}: too large")))?;
    let alloc = caller
        .get_export(abi::EXPORT_ALLOC)
        .and_then(Extern::into_func)
        .ok_or_else(|| abi_fault(format!("{what}: no {} export", abi::EXPORT_ALLOC)))?
        .typed::<u32, u32>(&*caller)?;
    let ptr = alloc.call_async(&mut *caller, len).await?;
    if ptr == 0 && len > 0 {
        return Err(abi_fault(format!(
            "{what}: {} returned 0 (out of memory) for {len} bytes",
            abi::EXPORT_ALLOC
        )));
    }
    check_range(caller, ptr, len, what).map_err(|_| {
        abi_fault(format!(
            "{what}: {} returned {ptr} for {len} bytes, outside the function's memory",
            abi::EXPORT_ALLOC
        ))
    })?;
    let start = ptr as usize;
    memory(caller, what)?.data_mut(&mut *caller)[start..start + bytes.len()].copy_from_slice(bytes);
    Ok(ptr)
}

/// Adds every host function to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    linker.func_wrap(abi::IMPORT_MODULE, abi::IMPORT_LOG, log)?;
    linker.func_wrap(abi::IMPORT_MODULE, abi::IMPORT_NOW_MS, now_ms)?;
    linker.func_wrap(abi::IMPORT_MODULE, abi::IMPORT_RANDOM_FILL, random_fill)?;
    linker.func_wrap(abi::IMPORT_MODULE, abi::IMPORT_PANIC, panic)?;
    linker.func_wrap(abi::IMPORT_MODULE, abi::IMPORT_SECRET, secret)?;
    linker.func_wrap_async(
        abi::IMPORT_MODULE,
        abi::IMPORT_FETCH,
        |mut caller, (ptr, len): (u32, u32)| {
            Box::new(async move { fetch(&mut caller, ptr, len).await })
        },
    )?;
    linker.func_wrap_async(
        abi::IMPORT_MODULE,
        abi::IMPORT_FETCH_ALL,
        |mut caller, (ptr, len): (u32, u32)| {
            Box::new(async move { fetch_all(&mut caller, ptr, len).await })
        },
    )?;
    Ok(())
}

fn log(
    mut caller: Caller<'_, InvocationState>,
    level: i32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<()> {
    allowed(&caller, "log")?;
    check_range(&mut caller, ptr, len, "log")?;
    let state = caller.data();
    let cap = state.options.limits.log_bytes;
    if state.log_bytes >= cap || state.logs.len() >= MAX_LOG_LINES {
        // Over the cap the line is not even read: a log loop costs nothing but fuel.
        caller.data_mut().logs_dropped += 1;
        return Ok(());
    }
    let room = cap - state.log_bytes;
    // Read no more than can be kept, plus a partial UTF-8 character, plus the longest
    // secret: a secret that starts in what is kept is then read whole and redacted.
    let extra = 3 + state.options.redactor.longest();
    let read = len.min(u32::try_from(room.saturating_add(extra)).unwrap_or(u32::MAX));
    let bytes = read_guest(&mut caller, ptr, read, "log")?;
    let state = caller.data_mut();
    let text = String::from_utf8_lossy(&bytes);
    // Redacted as cut: a secret that starts in what is kept is replaced whole.
    let mut message = state
        .options
        .redactor
        .redact_prefix(&text, room)
        .into_owned();
    let mut cut = read < len || text.len() > room;
    if message.len() > room {
        // A marker can be longer than the secret it replaced: the room still holds.
        let mut end = room;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        cut = true;
    }
    if cut {
        message.push('…');
        state.log_bytes = cap;
    } else {
        state.log_bytes += message.len();
    }
    state.logs.push(LogLine {
        level: LogLevel::from_i32(level),
        message,
    });
    Ok(())
}

fn now_ms(caller: Caller<'_, InvocationState>) -> wasmtime::Result<i64> {
    allowed(&caller, "now_ms")?;
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64))
}

fn random_fill(
    mut caller: Caller<'_, InvocationState>,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<()> {
    allowed(&caller, "random_fill")?;
    if len as usize > MAX_RANDOM_FILL {
        return Err(abi_fault(format!(
            "random_fill: {len} bytes asked, at most {MAX_RANDOM_FILL} per call"
        )));
    }
    check_range(&mut caller, ptr, len, "random_fill")?;
    let start = ptr as usize;
    let target =
        &mut memory(&mut caller, "random_fill")?.data_mut(&mut caller)[start..start + len as usize];
    getrandom::fill(target)
        .map_err(|e| wasmtime::Error::msg(format!("the host's random source failed: {e}")))
}

/// Patterns all of an invocation's `secret` calls may rebuild together: a few tens of
/// milliseconds of building, against the hundreds a guest could otherwise cause.
const MAX_SECRET_BUILD_BYTES: usize = 4 << 20;

/// A secret the guest read (a `Secret` setting): redacted from now on. Bounded as a
/// settings object's secrets are, since each value rebuilds the redactor.
fn secret(mut caller: Caller<'_, InvocationState>, ptr: u32, len: u32) -> wasmtime::Result<()> {
    allowed(&caller, "secret")?;
    if len as usize > MAX_SECRET_VALUE_BYTES {
        return Err(abi_fault(format!(
            "secret: a value of {len} bytes declared; at most {} each",
            crate::limits::bytes(MAX_SECRET_VALUE_BYTES)
        )));
    }
    let value = read_guest(&mut caller, ptr, len, "secret")?;
    let value = String::from_utf8_lossy(&value);
    let state = caller.data_mut();
    // Usually the value is known already (an `apiKey` the settings' names gave away):
    // then nothing is counted or rebuilt.
    if state.options.redactor.knows(&value) {
        return Ok(());
    }
    let values = state.declared_secrets.0 + 1;
    let bytes = state.declared_secrets.1.saturating_add(value.len());
    if values > MAX_SECRET_VALUES || bytes > MAX_SECRET_BYTES {
        return Err(too_many_secrets());
    }
    state.declared_secrets = (values, bytes);
    let redactor = state.options.redactor.extended(&value);
    // Each value rebuilds the redactor over every secret so far, on the async worker:
    // the work of all rebuilds together is bounded, not only each value's size.
    state.secret_build_bytes = state
        .secret_build_bytes
        .saturating_add(redactor.pattern_bytes());
    if state.secret_build_bytes > MAX_SECRET_BUILD_BYTES {
        return Err(abi_fault(format!(
            "secret: declaring values one by one rebuilt more than {} of patterns; declare fewer",
            crate::limits::bytes(MAX_SECRET_BUILD_BYTES)
        )));
    }
    state.options.redactor = std::sync::Arc::new(redactor);
    // Building takes time the epoch deadline cannot interrupt (linear, a few ms at the
    // caps, but a guest may declare 256 values): it is the invocation's time.
    if Instant::now() >= state.deadline {
        return Err(Trap::Interrupt.into());
    }
    Ok(())
}

fn too_many_secrets() -> wasmtime::Error {
    abi_fault(format!(
        "secret: more than {MAX_SECRET_VALUES} secret values or {} declared; the host could not keep them out of the report",
        crate::limits::bytes(MAX_SECRET_BYTES)
    ))
}

fn panic(mut caller: Caller<'_, InvocationState>, ptr: u32, len: u32) -> wasmtime::Result<()> {
    let message = read_guest(&mut caller, ptr, len.min(MAX_PANIC_MESSAGE), "panic")
        .map(|b| {
            let text = String::from_utf8_lossy(&b);
            caller.data().options.redactor.redact(&text).into_owned()
        })
        .unwrap_or_else(|_| "(message unreadable)".into());
    Err(fault(GuestFault::Panic(message)))
}

async fn fetch(
    caller: &mut Caller<'_, InvocationState>,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<u64> {
    allowed(caller, "fetch")?;
    caller.data_mut().phase = Phase::InHostCall;
    let result = fetch_one(caller, ptr, len).await;
    caller.data_mut().phase = Phase::Handling;
    result
}

async fn fetch_one(
    caller: &mut Caller<'_, InvocationState>,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<u64> {
    let limits = caller.data().options.limits.clone();
    let response = if len as usize > limits.request_body_bytes.saturating_add(MAX_REQUEST_HEAD) {
        // Not even read: it could not be sent.
        check_range(caller, ptr, len, "fetch")?;
        response_frame(Err(FetchFailure::new(
            FetchErrorKind::Limit,
            body_too_large(&limits),
        )))
    } else {
        let frame = read_guest(caller, ptr, len, "fetch")?;
        perform(caller, &[frame], "fetch")
            .await?
            .pop()
            .unwrap_or_default()
    };
    let ptr = write_guest(caller, &response, "fetch response").await?;
    Ok(abi::pack(ptr, response.len() as u32))
}

async fn fetch_all(
    caller: &mut Caller<'_, InvocationState>,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<u64> {
    allowed(caller, "fetch_all")?;
    caller.data_mut().phase = Phase::InHostCall;
    let result = async {
        // Refuse a list longer than the fetches left before decoding it: the host's
        // memory for it is then bounded by the fetch limit, not by the guest's memory.
        let head = read_guest(caller, ptr, len.min(4), "fetch_all")?;
        let count = head
            .first_chunk::<4>()
            .map_or(0, |c| u32::from_le_bytes(*c) as usize);
        let state = caller.data();
        let left = state.max_fetches.saturating_sub(state.fetches) as usize;
        if count > left.max(1) {
            return Err(abi_fault(format!(
                "fetch_all: {count} requests, more than the {left} fetches left of the limit of {}",
                state.max_fetches
            )));
        }
        let list = read_guest(caller, ptr, len, "fetch_all")?;
        let frames = abi::decode_frames(&list).map_err(|e| abi_fault(format!("fetch_all: {e}")))?;
        let responses = perform(caller, &frames, "fetch_all").await?;
        let list = abi::encode_frames(&responses);
        let ptr = write_guest(caller, &list, "fetch_all response").await?;
        Ok(abi::pack(ptr, list.len() as u32))
    }
    .await;
    caller.data_mut().phase = Phase::Handling;
    result
}

fn body_too_large(limits: &crate::limits::Limits) -> String {
    format!(
        "the request body exceeds the limit of {}",
        crate::limits::bytes(limits.request_body_bytes)
    )
}

/// One request of a `fetch` or `fetch_all`, checked against the limits.
struct Planned<'a> {
    head: FetchRequestHead,
    body: &'a [u8],
    /// Why it is not sent, if it is not.
    refusal: Option<FetchFailure>,
    /// Whether it goes in the trace: past the fetch limit only the first refusal does,
    /// so a fetch loop cannot grow the trace without end.
    traced: bool,
}

/// Sends the framed requests, up to [`FETCH_CONCURRENCY`] at a time, each counted
/// against the fetch limit and bounded by what is left of the deadline; records each
/// in the trace; returns their response frames in order.
async fn perform<F: AsRef<[u8]>>(
    caller: &mut Caller<'_, InvocationState>,
    frames: &[F],
    what: &str,
) -> wasmtime::Result<Vec<Vec<u8>>> {
    let limits = caller.data().options.limits.clone();
    let mut planned = Vec::with_capacity(frames.len());
    for frame in frames {
        let (head, body) = abi::decode_frame::<FetchRequestHead>(frame.as_ref())
            .map_err(|e| abi_fault(format!("{what}: {e}")))?;
        let state = caller.data_mut();
        state.fetches += 1;
        let max = state.max_fetches;
        let refusal = if state.fetches > max {
            Some(FetchFailure::new(
                FetchErrorKind::Limit,
                format!("the limit of {max} fetches per invocation is reached"),
            ))
        } else if body.len() > limits.request_body_bytes {
            Some(FetchFailure::new(
                FetchErrorKind::Limit,
                body_too_large(&limits),
            ))
        } else {
            None
        };
        planned.push(Planned {
            head,
            body,
            refusal,
            traced: state.fetches <= max.saturating_add(1),
        });
    }
    let (client, deadline, redactor) = {
        let state = caller.data();
        (
            state.options.client.clone(),
            state.deadline,
            state.options.redactor.clone(),
        )
    };
    // Owned jobs: the futures must be `Send` for any lifetime of the caller's borrow.
    let jobs: Vec<_> = planned
        .iter()
        .map(|p| (p.head.clone(), p.body.to_vec(), p.refusal.clone(), p.traced))
        .collect();
    let max_body = limits.response_body_bytes;
    let outcomes: Vec<FetchDone> =
        futures_util::stream::iter(jobs.into_iter().map(|(head, body, refusal, traced)| {
            // Spans as the report's trace: past the fetch limit, a fetch loop adds none.
            let span = if traced {
                fetch_span(&head, &redactor)
            } else {
                tracing::Span::none()
            };
            send_one(client.clone(), head, body, refusal, deadline, max_body)
                .map(move |done| record_fetch(span, done))
        }))
        .buffered(FETCH_CONCURRENCY)
        .map(within(limits.memory_bytes))
        .collect()
        .await;
    let state = caller.data_mut();
    let mut responses = Vec::with_capacity(planned.len());
    for (
        p,
        FetchDone {
            started,
            sent_to,
            result,
        },
    ) in planned.iter().zip(outcomes)
    {
        if p.traced {
            let entry = TraceEntry::record(
                &p.head,
                sent_to.as_deref(),
                p.body,
                started,
                &result,
                &state.options.redactor,
                state.options.capture_bodies,
            );
            state.trace.push(entry);
        }
        responses.push(response_frame(result));
    }
    Ok(responses)
}

/// One request as it went: when it started, where a host mapping sent it, how it ended.
struct FetchDone {
    started: Instant,
    sent_to: Option<String>,
    result: Result<FetchResponse, FetchFailure>,
}

/// Turns responses that would take the bodies received so far past `room` bytes into
/// `limit` failures as they arrive: they go into the guest's memory, so more than its
/// limit cannot fit, and the host does not hold more either.
fn within(mut room: usize) -> impl FnMut(FetchDone) -> FetchDone {
    move |sent| match sent.result {
        Ok(response) if response.body.len() > room => FetchDone {
            result: Err(FetchFailure::new(
                FetchErrorKind::Limit,
                "the responses together exceed the function's memory limit",
            )),
            ..sent
        },
        Ok(response) => {
            room -= response.body.len();
            FetchDone {
                result: Ok(response),
                ..sent
            }
        }
        Err(_) => sent,
    }
}

/// A span for one request (`[server.traces]`), its method and URL as the report's
/// request trace shows them (redacted, cut); nothing is built when no subscriber
/// takes it.
fn fetch_span(head: &FetchRequestHead, redactor: &crate::redact::Redactor) -> tracing::Span {
    let span = tracing::info_span!(
        "fetch",
        otel.kind = "client",
        http.request.method = tracing::field::Empty,
        url.full = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if !span.is_disabled() {
        span.record("http.request.method", traced_method(&head.method).as_str());
        span.record("url.full", traced_url(&head.url, redactor).as_str());
    }
    span
}

/// Ends a request's span with how the request ended. The span is never entered (the
/// requests of a `fetch_all` run together in one task): it lasts from its creation, as
/// the request is started, to here.
fn record_fetch(span: tracing::Span, done: FetchDone) -> FetchDone {
    if !span.is_disabled() {
        match &done.result {
            Ok(response) => {
                span.record("http.response.status_code", i64::from(response.status));
                if response.status >= 400 {
                    span.record("error.type", i64::from(response.status));
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(failure) => {
                span.record("error.type", failure.kind.as_str());
                span.record("otel.status_code", "ERROR");
            }
        }
    }
    done
}

/// Sends one request unless it was refused; returns when it started, where it was
/// sent if mapped, and how it ended.
async fn send_one(
    client: crate::fetch::FetchClient,
    head: FetchRequestHead,
    body: Vec<u8>,
    refusal: Option<FetchFailure>,
    deadline: Instant,
    max_body: usize,
) -> FetchDone {
    let started = Instant::now();
    let remaining = deadline.saturating_duration_since(started);
    let mut sent_to = None;
    let result = match refusal {
        Some(refusal) => Err(refusal),
        None if remaining.is_zero() => Err(FetchFailure::new(
            FetchErrorKind::Timeout,
            "the invocation's deadline has passed",
        )),
        None => {
            sent_to = client.sent_to(&head.url);
            client.send(&head, body, remaining, max_body).await
        }
    };
    FetchDone {
        started,
        sent_to,
        result,
    }
}

/// The frame a guest reads for one request's outcome.
fn response_frame(result: Result<FetchResponse, FetchFailure>) -> Vec<u8> {
    match result {
        Ok(response) => abi::encode_frame(
            &FetchResponseHead::Ok {
                status: response.status,
                headers: response.headers,
            },
            &response.body,
        ),
        Err(failure) => abi::encode_frame(
            &FetchResponseHead::Err {
                kind: failure.kind,
                message: failure.message,
            },
            &[],
        ),
    }
}
