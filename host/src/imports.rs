//! The host functions a guest imports (`segfn::log`, `fetch`, `now_ms`, `random_fill`,
//! `panic`), each reading and writing guest memory with bounds checks.

use crate::error::GuestFault;
use crate::fetch::{FetchFailure, TraceEntry};
use crate::invoke::InvocationState;
use crate::report::LogLine;
use segfn_sdk::abi::{self, FetchErrorKind, FetchRequestHead, FetchResponseHead, LogLevel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime::{Caller, Extern, Linker};

/// Most random bytes one `random_fill` call may ask for.
const MAX_RANDOM_FILL: usize = 64 << 10;

fn fault(f: GuestFault) -> wasmtime::Error {
    wasmtime::Error::new(f)
}

/// Copies `len` bytes at `ptr` out of the guest's memory.
fn read_guest(
    caller: &mut Caller<'_, InvocationState>,
    ptr: u32,
    len: u32,
    what: &str,
) -> wasmtime::Result<Vec<u8>> {
    let Some(Extern::Memory(memory)) = caller.get_export(abi::EXPORT_MEMORY) else {
        return Err(fault(GuestFault::Abi(format!(
            "{what}: the module exports no memory"
        ))));
    };
    let start = ptr as usize;
    memory
        .data(&caller)
        .get(start..start.saturating_add(len as usize))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            fault(GuestFault::Abi(format!(
                "{what}: range {ptr}+{len} is outside the function's memory"
            )))
        })
}

/// Copies `bytes` into guest memory obtained from the guest's allocator; returns the
/// address.
pub(crate) async fn write_guest(
    caller: &mut Caller<'_, InvocationState>,
    bytes: &[u8],
    what: &str,
) -> wasmtime::Result<u32> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| fault(GuestFault::Abi(format!("{what}: too large"))))?;
    let alloc = caller
        .get_export(abi::EXPORT_ALLOC)
        .and_then(Extern::into_func)
        .ok_or_else(|| {
            fault(GuestFault::Abi(format!(
                "{what}: no {} export",
                abi::EXPORT_ALLOC
            )))
        })?
        .typed::<u32, u32>(&caller)?;
    let ptr = alloc.call_async(&mut *caller, len).await?;
    let Some(Extern::Memory(memory)) = caller.get_export(abi::EXPORT_MEMORY) else {
        return Err(fault(GuestFault::Abi(format!(
            "{what}: the module exports no memory"
        ))));
    };
    let target = memory
        .data_mut(&mut *caller)
        .get_mut(ptr as usize..(ptr as usize).saturating_add(bytes.len()))
        .ok_or_else(|| {
            fault(GuestFault::Abi(format!(
                "{what}: {} returned {ptr} for {len} bytes, outside the function's memory",
                abi::EXPORT_ALLOC
            )))
        })?;
    target.copy_from_slice(bytes);
    Ok(ptr)
}

/// Adds every host function to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    linker.func_wrap(abi::IMPORT_MODULE, abi::IMPORT_LOG, log)?;
    linker.func_wrap(abi::IMPORT_MODULE, abi::IMPORT_NOW_MS, now_ms)?;
    linker.func_wrap(abi::IMPORT_MODULE, abi::IMPORT_RANDOM_FILL, random_fill)?;
    linker.func_wrap(abi::IMPORT_MODULE, abi::IMPORT_PANIC, panic)?;
    linker.func_wrap_async(
        abi::IMPORT_MODULE,
        abi::IMPORT_FETCH,
        |mut caller, (ptr, len): (u32, u32)| {
            Box::new(async move { fetch(&mut caller, ptr, len).await })
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
    let state = caller.data();
    let cap = state.options.limits.log_bytes;
    if state.log_bytes >= cap {
        // Over the cap the line is not even read: a log loop costs nothing but fuel.
        caller.data_mut().logs_dropped += 1;
        return Ok(());
    }
    let bytes = read_guest(&mut caller, ptr, len, "log")?;
    let state = caller.data_mut();
    let room = cap - state.log_bytes;
    let mut message = String::from_utf8_lossy(&bytes).into_owned();
    if message.len() > room {
        let mut cut = room;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
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

fn now_ms(_: Caller<'_, InvocationState>) -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn random_fill(
    mut caller: Caller<'_, InvocationState>,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<()> {
    if len as usize > MAX_RANDOM_FILL {
        return Err(fault(GuestFault::Abi(format!(
            "random_fill: {len} bytes asked, at most {MAX_RANDOM_FILL} per call"
        ))));
    }
    let Some(Extern::Memory(memory)) = caller.get_export(abi::EXPORT_MEMORY) else {
        return Err(fault(GuestFault::Abi(
            "random_fill: the module exports no memory".into(),
        )));
    };
    let target = memory
        .data_mut(&mut caller)
        .get_mut(ptr as usize..(ptr as usize).saturating_add(len as usize))
        .ok_or_else(|| {
            fault(GuestFault::Abi(format!(
                "random_fill: range {ptr}+{len} is outside the function's memory"
            )))
        })?;
    getrandom::fill(target)
        .map_err(|e| wasmtime::Error::msg(format!("the host's random source failed: {e}")))
}

fn panic(mut caller: Caller<'_, InvocationState>, ptr: u32, len: u32) -> wasmtime::Result<()> {
    // A message too long to read is still a panic.
    let len = len.min(64 << 10);
    let message = read_guest(&mut caller, ptr, len, "panic")
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| "(message unreadable)".into());
    Err(fault(GuestFault::Panic(message)))
}

async fn fetch(
    caller: &mut Caller<'_, InvocationState>,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<u64> {
    let started = Instant::now();
    let limits = caller.data().options.limits.clone();
    let frame_cap = limits.request_body_bytes.saturating_add(64 << 10);
    let result = if len as usize > frame_cap {
        Err(FetchFailure::new(
            FetchErrorKind::Limit,
            format!(
                "the request body exceeds the limit of {}",
                crate::limits::bytes(limits.request_body_bytes)
            ),
        ))
    } else {
        let frame = read_guest(caller, ptr, len, "fetch")?;
        let (head, body) = abi::decode_frame::<FetchRequestHead>(&frame)
            .map_err(|e| fault(GuestFault::Abi(format!("fetch: {e}"))))?;
        let state = caller.data_mut();
        state.fetches += 1;
        if state.fetches > limits.fetches {
            let failure = FetchFailure::new(
                FetchErrorKind::Limit,
                format!(
                    "the limit of {} fetches per invocation is reached",
                    limits.fetches
                ),
            );
            state.trace.push(TraceEntry::record(
                &head,
                body,
                started,
                &Err(failure.clone()),
                false,
            ));
            Err(failure)
        } else if body.len() > limits.request_body_bytes {
            let failure = FetchFailure::new(
                FetchErrorKind::Limit,
                format!(
                    "the request body exceeds the limit of {}",
                    crate::limits::bytes(limits.request_body_bytes)
                ),
            );
            Err(failure)
        } else {
            let remaining = state.deadline.saturating_duration_since(Instant::now());
            let client = state.options.client.clone();
            let capture = state.options.capture_bodies;
            let result = if remaining.is_zero() {
                Err(FetchFailure::new(
                    FetchErrorKind::Timeout,
                    "the invocation's deadline has passed",
                ))
            } else {
                client
                    .send(
                        &head,
                        body.to_vec(),
                        remaining.max(Duration::from_millis(1)),
                        limits.response_body_bytes,
                    )
                    .await
            };
            caller
                .data_mut()
                .trace
                .push(TraceEntry::record(&head, body, started, &result, capture));
            result
        }
    };
    let frame = match result {
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
    };
    let ptr = write_guest(caller, &frame, "fetch response").await?;
    Ok(abi::pack(ptr, frame.len() as u32))
}
