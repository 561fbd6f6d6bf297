//! One invocation: a fresh store and instance under the limits, the envelope in, the
//! result out, and every way it can end turned into an [`Outcome`] and a [`Report`].

use crate::error::{GuestFault, LoadError};
use crate::fetch::{FetchClient, TraceEntry};
use crate::imports::MAX_LOG_LINES;
use crate::limits::{Limits, MemoryLimiter, bytes};
use crate::outcome::{Outcome, OutcomeKind, most_severe};
use crate::redact::Redactor;
use crate::report::{LogLine, Report, Stats};
use crate::runtime::LoadedFunction;
use segfn_sdk::abi::{self, Call, Envelope, GuestResult, LogLevel};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Store, Trap, UpdateDeadline};

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

/// The store data of one invocation: its limits and everything it recorded.
#[derive(Debug)]
pub struct InvocationState {
    pub(crate) options: InvokeOptions,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) deadline: Instant,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) log_bytes: usize,
    pub(crate) logs_dropped: usize,
    pub(crate) trace: Vec<TraceEntry>,
    pub(crate) fetches: u32,
}

impl InvocationState {
    fn new(options: InvokeOptions, deadline: Instant) -> Self {
        InvocationState {
            limiter: MemoryLimiter::new(options.limits.memory_bytes),
            options,
            deadline,
            logs: Vec::new(),
            log_bytes: 0,
            logs_dropped: 0,
            trace: Vec::new(),
            fetches: 0,
        }
    }
}

/// How the guest part of an invocation ended before it is turned into a report.
enum Ended {
    Returned(GuestResult),
    Failed(Outcome),
}

impl LoadedFunction {
    /// Runs one message or batch with `settings` in a fresh instance.
    pub async fn invoke(&self, options: &InvokeOptions, call: Call, settings: Value) -> Report {
        let started = Instant::now();
        let deadline = started + options.limits.deadline;
        let batch_len = match &call {
            Call::Batch { events } => Some(events.len()),
            Call::Event { .. } => None,
        };
        let mut store = self.new_store(options.clone(), deadline);
        let input = serde_json::to_vec(&Envelope {
            abi: abi::VERSION,
            call,
            settings,
        })
        .unwrap_or_default();

        // The timeout covers what epochs cannot interrupt: time inside `fetch`.
        let ended =
            match tokio::time::timeout(options.limits.deadline, self.run(&mut store, &input)).await
            {
                Ok(Ok(result)) => Ended::Returned(result),
                Ok(Err(error)) => Ended::Failed(classify(&error, store.data(), &options.limits)),
                Err(_) => Ended::Failed(deadline_outcome(&options.limits)),
            };

        let instructions =
            options.limits.instructions.unwrap_or(u64::MAX) - store.get_fuel().unwrap_or(0);
        let state = store.into_data();
        let (outcome, output) = match ended {
            Ended::Failed(outcome) => (outcome, Value::Null),
            Ended::Returned(result) => summarize(result, batch_len),
        };
        let mut logs = state.logs;
        if state.logs_dropped > 0 || state.log_bytes >= options.limits.log_bytes {
            logs.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "[segfn] log limit of {} or {MAX_LOG_LINES} lines reached; {} later line(s) dropped",
                    bytes(options.limits.log_bytes),
                    state.logs_dropped
                ),
            });
        }
        if state.fetches > options.limits.fetches {
            logs.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "[segfn] fetch limit of {} reached; {} later fetch(es) refused",
                    options.limits.fetches,
                    state.fetches - options.limits.fetches
                ),
            });
        }
        let mut report = Report {
            outcome,
            logs,
            requests: state.trace,
            output,
            stats: Stats {
                instructions,
                memory_bytes: state.limiter.peak,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            },
        };
        report.redact(&options.redactor);
        report
    }

    fn new_store(&self, options: InvokeOptions, deadline: Instant) -> Store<InvocationState> {
        let fuel = options.limits.instructions.unwrap_or(u64::MAX);
        let mut store = Store::new(
            self.runtime.engine(),
            InvocationState::new(options, deadline),
        );
        store.limiter(|s| &mut s.limiter);
        // Fuel is enabled on the engine, so setting it cannot fail.
        let _ = store.set_fuel(fuel);
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

    async fn run(
        &self,
        store: &mut Store<InvocationState>,
        input: &[u8],
    ) -> wasmtime::Result<GuestResult> {
        let instance = self.pre.instantiate_async(&mut *store).await?;
        let memory = instance
            .get_memory(&mut *store, abi::EXPORT_MEMORY)
            .ok_or_else(|| abi_fault("no memory export"))?;
        let alloc = instance.get_typed_func::<u32, u32>(&mut *store, abi::EXPORT_ALLOC)?;
        let handle = instance.get_typed_func::<(u32, u32), u64>(&mut *store, abi::EXPORT_HANDLE)?;

        let len = u32::try_from(input.len()).map_err(|_| abi_fault("input too large"))?;
        let ptr = alloc.call_async(&mut *store, len).await?;
        if ptr == 0 && len > 0 {
            return Err(abi_fault(&format!(
                "{} returned 0 (out of memory) for the input",
                abi::EXPORT_ALLOC
            )));
        }
        memory
            .data_mut(&mut *store)
            .get_mut(ptr as usize..ptr as usize + input.len())
            .ok_or_else(|| {
                abi_fault(&format!(
                    "{} returned {ptr} for {len} bytes, outside its memory",
                    abi::EXPORT_ALLOC
                ))
            })?
            .copy_from_slice(input);

        let (out_ptr, out_len) = abi::unpack(handle.call_async(&mut *store, (ptr, len)).await?);
        let cap = store.data().options.limits.output_bytes;
        if out_len as usize > cap {
            return Err(abi_fault_kind(GuestFault::Abi(format!(
                "its result of {} exceeds the output limit of {}",
                bytes(out_len as usize),
                bytes(cap)
            ))));
        }
        let output = memory
            .data(&*store)
            .get(out_ptr as usize..out_ptr as usize + out_len as usize)
            .ok_or_else(|| {
                abi_fault(&format!(
                    "its result at {out_ptr}+{out_len} is outside its memory"
                ))
            })?;
        serde_json::from_slice::<GuestResult>(output).map_err(|e| {
            let preview = String::from_utf8_lossy(&output[..output.len().min(80)]).into_owned();
            abi_fault(&format!(
                "its result is not a valid result object ({e}); it begins {preview:?}"
            ))
        })
    }

    /// Calls `segfn_abi_version` in a throwaway instance with tight limits.
    pub(crate) async fn probe_abi_version(&self) -> Result<u32, LoadError> {
        let options = InvokeOptions {
            limits: Limits {
                deadline: Duration::from_secs(2),
                ..Limits::default()
            },
            client: FetchClient::new(Default::default())
                .map_err(|e| LoadError::Instantiate(e.to_string()))?,
            redactor: Arc::default(),
            capture_bodies: false,
        };
        let deadline = Instant::now() + options.limits.deadline;
        let mut store = self.new_store(options, deadline);
        let probe = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            let version =
                instance.get_typed_func::<(), u32>(&mut store, abi::EXPORT_ABI_VERSION)?;
            version.call_async(&mut store, ()).await
        };
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(LoadError::Instantiate(format!("{e:#}"))),
            Err(_) => Err(LoadError::Instantiate(
                "instantiation did not finish within 2 s".into(),
            )),
        }
    }
}

fn abi_fault(message: &str) -> wasmtime::Error {
    abi_fault_kind(GuestFault::Abi(message.to_owned()))
}

fn abi_fault_kind(fault: GuestFault) -> wasmtime::Error {
    wasmtime::Error::new(fault)
}

fn deadline_outcome(limits: &Limits) -> Outcome {
    Outcome::new(
        OutcomeKind::Retry,
        format!(
            "the function exceeded its deadline of {} ms (time in fetch included)",
            limits.deadline.as_millis()
        ),
    )
}

/// Names the limit or fault that ended an invocation.
fn classify(error: &wasmtime::Error, state: &InvocationState, limits: &Limits) -> Outcome {
    let trap = error.downcast_ref::<Trap>();
    match trap {
        Some(Trap::Interrupt) => return deadline_outcome(limits),
        Some(Trap::OutOfFuel) => {
            return Outcome::new(
                OutcomeKind::BadRequest,
                format!(
                    "the function exceeded its instruction limit of {}",
                    limits.instructions.unwrap_or(u64::MAX)
                ),
            );
        }
        _ => {}
    }
    // A refused allocation surfaces as an abort trap, a fault or a failed instantiation.
    if state.limiter.exceeded {
        return Outcome::new(
            OutcomeKind::BadRequest,
            format!(
                "the function exceeded its memory limit of {}",
                bytes(limits.memory_bytes)
            ),
        );
    }
    if let Some(fault) = error.downcast_ref::<GuestFault>() {
        return Outcome::new(OutcomeKind::BadRequest, fault.to_string());
    }
    match trap {
        Some(Trap::StackOverflow) => {
            Outcome::new(OutcomeKind::BadRequest, "the function overflowed its stack")
        }
        Some(trap) => Outcome::new(
            OutcomeKind::BadRequest,
            format!("the function trapped: {trap}"),
        ),
        // Not the guest's doing (e.g. no free instance slot): worth a retry.
        None => Outcome::new(OutcomeKind::Retry, format!("host fault: {error:#}")),
    }
}

/// Turns the guest's result into the report's outcome and output. `batch` is the
/// number of events sent, for a batch call.
fn summarize(result: GuestResult, batch: Option<usize>) -> (Outcome, Value) {
    let top = Outcome {
        kind: result.result.kind,
        message: result.result.message,
    };
    match (result.results, batch) {
        (None, None) => (top, result.result.output.unwrap_or(Value::Null)),
        // A batch failed as a whole.
        (None, Some(_)) if top.kind != OutcomeKind::Success => (top, Value::Null),
        (Some(results), Some(expected)) if results.len() == expected => {
            let kind = most_severe(results.iter().map(|r| r.kind));
            let failed = results
                .iter()
                .filter(|r| r.kind != OutcomeKind::Success)
                .count();
            let outcome = match kind {
                OutcomeKind::Success => top,
                kind => Outcome::new(
                    kind,
                    format!(
                        "{failed} of {} events did not succeed (see output)",
                        results.len()
                    ),
                ),
            };
            (
                outcome,
                serde_json::to_value(results).unwrap_or(Value::Null),
            )
        }
        (results, batch) => {
            let got = results.map_or_else(|| "no".to_owned(), |r| r.len().to_string());
            let message = match batch {
                Some(n) => format!(
                    "the function broke the segfn ABI: it returned {got} results for a batch of {n} events"
                ),
                None => {
                    "the function broke the segfn ABI: it returned batch results for a single event"
                        .to_owned()
                }
            };
            (Outcome::new(OutcomeKind::BadRequest, message), Value::Null)
        }
    }
}
