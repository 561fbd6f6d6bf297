//! One invocation: a fresh store and instance under the limits, the envelope in, the
//! result out, and every way it can end turned into an [`Outcome`] and a [`Report`].

use crate::error::GuestFault;
use crate::invocation::{InvocationState, InvokeOptions, MAX_LOG_LINES, Phase, new_store};
use crate::limits::{Limits, bytes};
use crate::outcome::{Outcome, OutcomeKind, most_severe};
use crate::report::{Emitted, Fault, LogLine, Output, Report, Stats};
use crate::runtime::LoadedFunction;
use segfn_sdk::abi::{self, Call, GuestResult, LogLevel, RawCall};
use serde_json::Value;
use std::time::Instant;
use tracing::Instrument as _;
use tracing::field::Empty;
use wasmtime::{Store, Trap};

/// Puts what the (redacted) report says in the invocation's span, if it is traced.
fn record_in(span: &tracing::Span, report: &Report) {
    if span.is_disabled() {
        return;
    }
    // Numbers as `i64`: OpenTelemetry has no unsigned integers, and
    // tracing-opentelemetry would write a `u64` as text.
    span.record("segfn.outcome", report.outcome.kind.as_str());
    span.record("segfn.instructions", report.stats.instructions as i64);
    span.record("segfn.memory_bytes", report.stats.memory_bytes as i64);
    if let Some(fault) = report.fault {
        span.record("segfn.fault", fault.as_str());
        span.record("otel.status_code", "ERROR");
        if let Some(message) = &report.outcome.message {
            span.record("otel.status_description", message.as_str());
        }
    }
}

/// How the guest part of an invocation ended before it is turned into a report.
enum Ended {
    Returned(GuestResult),
    Failed(Outcome, Fault),
}

impl LoadedFunction {
    /// Runs one message or batch with `settings` in a fresh instance.
    pub async fn invoke(&self, options: &InvokeOptions, call: Call, settings: Value) -> Report {
        let settings = settings.to_string();
        match call {
            Call::Event { event } => {
                self.invoke_json::<&str>(options, RawCall::Event(&event.to_string()), &settings)
                    .await
            }
            Call::Batch { events } => {
                let events: Vec<String> = events.iter().map(Value::to_string).collect();
                self.invoke_json(options, RawCall::Batch(&events), &settings)
                    .await
            }
            Call::Request { request } => {
                self.invoke_json::<&str>(options, RawCall::Request(&request.to_string()), &settings)
                    .await
            }
        }
    }

    /// Runs one message or batch given as JSON text, with settings as JSON text, in a
    /// fresh instance. The texts go to the guest as they are: the host builds no tree
    /// of them.
    pub async fn invoke_json<S: AsRef<str>>(
        &self,
        options: &InvokeOptions,
        call: RawCall<'_, S>,
        settings: &str,
    ) -> Report {
        let started = Instant::now();
        let deadline = started + options.limits.deadline;
        let batch_len = match &call {
            RawCall::Batch(events) => Some(events.len()),
            RawCall::Event(_) | RawCall::Request(_) => None,
        };
        let request = matches!(call, RawCall::Request(_));
        // A span for tracing (`[server.traces]`): nothing is built when no subscriber
        // takes it. Its fields are filled from the report once it is redacted.
        let span = tracing::info_span!(
            "invocation",
            segfn.call = match &call {
                RawCall::Event(_) => "event",
                RawCall::Batch(_) => "batch",
                RawCall::Request(_) => "request",
            },
            segfn.batch_size = batch_len.map(|n| n as i64),
            segfn.outcome = Empty,
            segfn.fault = Empty,
            segfn.instructions = Empty,
            segfn.memory_bytes = Empty,
            otel.status_code = Empty,
            otel.status_description = Empty,
        );
        // A batch may make the per-event number of fetches for each of its events.
        let max_fetches = options
            .limits
            .fetches
            .saturating_mul(u32::try_from(batch_len.unwrap_or(1).max(1)).unwrap_or(u32::MAX));
        let mut store = new_store(self.engine(), options.clone(), deadline, max_fetches);
        let input = abi::envelope_json(call, settings);

        // The timeout covers what epochs cannot interrupt: time inside `fetch`.
        let run = tokio::time::timeout(options.limits.deadline, self.run(&mut store, &input));
        let ended = match run.instrument(span.clone()).await {
            Ok(Ok(result)) => Ended::Returned(result),
            Ok(Err(error)) => {
                let (outcome, fault) = failure_outcome(&error, store.data(), &options.limits);
                Ended::Failed(outcome, fault)
            }
            Err(_) => Ended::Failed(deadline_outcome(&options.limits), Fault::Deadline),
        };

        let instructions =
            options.limits.instructions.unwrap_or(u64::MAX) - store.get_fuel().unwrap_or(0);
        let state = store.into_data();
        // The invocation's redactor: the options' one, plus what the guest declared.
        let redactor = state.options.redactor.clone();
        let (outcome, output, fault) = match ended {
            Ended::Failed(outcome, fault) => (outcome, Output::None, Some(fault)),
            Ended::Returned(result) if request => summarize_request(result),
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
        if state.fetches > state.max_fetches {
            logs.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "[segfn] fetch limit of {} reached; {} later fetch(es) refused",
                    state.max_fetches,
                    state.fetches - state.max_fetches
                ),
            });
        }
        let mut report = Report {
            outcome,
            fault,
            logs,
            requests: state.trace,
            output,
            stats: Stats {
                instructions,
                memory_bytes: state.limiter.peak,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            },
        };
        report.redact(&redactor);
        record_in(&span, &report);
        report
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

        store.data_mut().phase = Phase::Handling;
        let (out_ptr, out_len) = abi::unpack(handle.call_async(&mut *store, (ptr, len)).await?);
        store.data_mut().phase = Phase::Setup;
        let cap = store.data().options.limits.output_bytes;
        if out_len as usize > cap {
            return Err(wasmtime::Error::new(GuestFault::Output(format!(
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
}

fn abi_fault(message: &str) -> wasmtime::Error {
    wasmtime::Error::new(GuestFault::Abi(message.to_owned()))
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
fn failure_outcome(
    error: &wasmtime::Error,
    state: &InvocationState,
    limits: &Limits,
) -> (Outcome, Fault) {
    let trap = error.downcast_ref::<Trap>();
    match trap {
        Some(Trap::Interrupt) => return (deadline_outcome(limits), Fault::Deadline),
        Some(Trap::OutOfFuel) => {
            let message = format!(
                "the function exceeded its instruction limit of {}",
                limits.instructions.unwrap_or(u64::MAX)
            );
            return (
                Outcome::new(OutcomeKind::BadRequest, message),
                Fault::Instructions,
            );
        }
        _ => {}
    }
    // A refused allocation surfaces as an abort trap, a fault or a failed instantiation.
    if state.limiter.exceeded {
        let message = format!(
            "the function exceeded its memory limit of {}",
            bytes(limits.memory_bytes)
        );
        return (
            Outcome::new(OutcomeKind::BadRequest, message),
            Fault::Memory,
        );
    }
    if let Some(fault) = error.downcast_ref::<GuestFault>() {
        let kind = match fault {
            GuestFault::Panic(_) => Fault::Panic,
            GuestFault::Abi(_) => Fault::Abi,
            GuestFault::Output(_) => Fault::Output,
        };
        return (
            Outcome::new(OutcomeKind::BadRequest, fault.to_string()),
            kind,
        );
    }
    match trap {
        Some(Trap::StackOverflow) => (
            Outcome::new(OutcomeKind::BadRequest, "the function overflowed its stack"),
            Fault::Trap,
        ),
        Some(trap) => (
            Outcome::new(
                OutcomeKind::BadRequest,
                format!("the function trapped: {trap}"),
            ),
            Fault::Trap,
        ),
        // Not the guest's doing (e.g. no free instance slot): worth a retry.
        None => (
            Outcome::new(OutcomeKind::Retry, format!("host fault: {error:#}")),
            Fault::Host,
        ),
    }
}

/// Turns the guest's result into the report's outcome and output. `batch` is the
/// number of events sent, for a batch call.
/// A source function's result: its outcome, and the calls it made (`{events, objects}`,
/// both arrays; nothing at all when it failed).
fn summarize_request(result: GuestResult) -> (Outcome, Output, Option<Fault>) {
    let outcome = Outcome {
        kind: result.result.kind,
        message: result.result.message,
    };
    let broke = |what: &str| {
        (
            Outcome::new(
                OutcomeKind::BadRequest,
                format!("the function broke the segfn ABI: {what}"),
            ),
            Output::None,
            Some(Fault::Abi),
        )
    };
    if result.results.is_some() {
        return broke("it returned batch results for a request");
    }
    match result.result.output {
        None if outcome.kind == OutcomeKind::Success => {
            (outcome, Output::Emitted(Emitted::default()), None)
        }
        None => (outcome, Output::None, None),
        Some(output) => match serde_json::from_value::<Emitted>(output) {
            Ok(emitted) => (outcome, Output::Emitted(emitted), None),
            Err(_) => broke("a request's output must be {\"events\": [...], \"objects\": [...]}"),
        },
    }
}

fn summarize(result: GuestResult, batch: Option<usize>) -> (Outcome, Output, Option<Fault>) {
    let top = Outcome {
        kind: result.result.kind,
        message: result.result.message,
    };
    match (result.results, batch) {
        (None, None) => (
            top,
            result.result.output.map_or(Output::None, Output::Event),
            None,
        ),
        // A batch failed as a whole.
        (None, Some(_)) if top.kind != OutcomeKind::Success => (top, Output::None, None),
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
            (outcome, Output::Batch(results), None)
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
            (
                Outcome::new(OutcomeKind::BadRequest, message),
                Output::None,
                Some(Fault::Abi),
            )
        }
    }
}
