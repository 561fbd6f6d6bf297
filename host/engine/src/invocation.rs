//! The state of one invocation, held in its wasmtime `Store`: the limits it runs under,
//! what it has recorded so far, and which phase it is in (host calls are allowed only
//! while `segfn_handle` runs, and never from inside another host call).

use crate::fetch::{FetchClient, TraceEntry};
use crate::limits::{Limits, MemoryLimiter};
use crate::redact::Redactor;
use crate::report::LogLine;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::{Engine, Store, UpdateDeadline};

/// How to run invocations of a function: limits, where `fetch` may go, what is secret.
#[derive(Debug, Clone)]
pub struct InvokeOptions {
    /// The limits.
    pub limits: Limits,
    /// The client `fetch` uses, bound to the allow-list.
    pub client: FetchClient,
    /// Secrets to keep out of the report.
    pub redactor: Arc<Redactor>,
    /// Record request and response bodies in the trace (test mode).
    pub capture_bodies: bool,
}

/// Instructions between two write-backs of the fuel count (see [`new_store`]): about a
/// millisecond of guest code, under a JavaScript event's 1.4 million.
const FUEL_SLICE: u64 = 1_000_000;

/// Most log lines kept, whatever their size (an empty line still costs bookkeeping).
pub(crate) const MAX_LOG_LINES: usize = 1000;

/// Where an invocation is: what the guest may do depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Instantiating (start function), probing the ABI version, or the host calling
    /// `segfn_alloc` to place the input: no host calls.
    Setup,
    /// `segfn_handle` is running: host calls are allowed.
    Handling,
    /// A host call is running (e.g. `fetch` placing its response through
    /// `segfn_alloc`): a second, re-entrant host call is refused.
    InHostCall,
}

/// The store data of one invocation.
#[derive(Debug)]
pub struct InvocationState {
    /// Limits, fetch client, redactor and capture mode the invocation runs with.
    pub(crate) options: InvokeOptions,
    /// Enforces the memory cap; remembers the peak and whether the cap was hit.
    pub(crate) limiter: MemoryLimiter,
    /// When the invocation must end, `fetch` included.
    pub(crate) deadline: Instant,
    /// See [`Phase`].
    pub(crate) phase: Phase,
    /// Log lines kept so far (redacted, cut to the log limit).
    pub(crate) logs: Vec<LogLine>,
    /// Bytes of `logs`, counted against `limits.log_bytes`.
    pub(crate) log_bytes: usize,
    /// Lines dropped once the log limit was reached.
    pub(crate) logs_dropped: usize,
    /// Every `fetch`, in order (up to the first refusal past the fetch limit).
    pub(crate) trace: Vec<TraceEntry>,
    /// `fetch` calls made, refused ones included.
    pub(crate) fetches: u32,
    /// The fetch limit for this call: the configured limit, sized up for batches.
    pub(crate) max_fetches: u32,
    /// Secret values the guest declared (`segfn::secret`): how many, and their bytes.
    pub(crate) declared_secrets: (usize, usize),
    /// Bytes of patterns the `secret` calls rebuilt the redactor over, all together.
    pub(crate) secret_build_bytes: usize,
}

impl InvocationState {
    fn new(options: InvokeOptions, deadline: Instant, max_fetches: u32) -> Self {
        InvocationState {
            limiter: MemoryLimiter::new(options.limits.memory_bytes),
            options,
            deadline,
            phase: Phase::Setup,
            logs: Vec::new(),
            log_bytes: 0,
            logs_dropped: 0,
            trace: Vec::new(),
            fetches: 0,
            max_fetches,
            declared_secrets: (0, 0),
            secret_build_bytes: 0,
        }
    }
}

/// A store for one invocation: memory limiter, fuel (the cap, or counting only) and
/// the epoch deadline, which interrupts the guest at `deadline` and otherwise yields
/// to other tasks every tick.
pub(crate) fn new_store(
    engine: &Engine,
    options: InvokeOptions,
    deadline: Instant,
    max_fetches: u32,
) -> Store<InvocationState> {
    let fuel = options.limits.instructions.unwrap_or(u64::MAX);
    let mut store = Store::new(engine, InvocationState::new(options, deadline, max_fetches));
    store.limiter(|s| &mut s.limiter);
    // Fuel is enabled on the engine, so setting it cannot fail.
    let _ = store.set_fuel(fuel);
    // Compiled code keeps the fuel it burns in a register and writes it back only when
    // it calls out or runs out of what was handed to it: an instance stopped at its
    // deadline inside a loop lost all of it (a 300 ms loop reported 14 instructions).
    // Handing fuel over in slices writes it back every slice: the count stopped at a
    // deadline is short by less than one slice, for one yield per slice.
    let _ = store.fuel_async_yield_interval(Some(FUEL_SLICE));
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            // Long-running guests give the async workers back every tick.
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        }
    });
    store
}
