//! The replay loop. A reader thread streams the inputs' records (skipping positions
//! an earlier run finished, sorting events by the time window); the loop records
//! what is not sent at once and hands each event to a task; at most `concurrency`
//! tasks run, each taking a token of the rate for every try, invoking the function as
//! `segfn serve` does (a fresh instance, `receivedAt` set when missing, over-deep
//! messages refused) and retrying `retry` outcomes with backoff. The loop alone
//! touches the state: it writes each fate (failures file first, then journal) as it
//! comes back, and checkpoints every `checkpoint_every`.
//!
//! Stopping ([`Stop`]): `Drain` stops reading and starting tries (an event waiting for
//! a token or a retry is left undone for `--resume`) and lets running invocations
//! finish; `Abort` cancels them too.

use super::ReplayError;
use super::done::DoneSet;
use super::files::{FAILURES_FILE, FailuresFile, Store};
use super::filter::{TimeWindow, Verdict};
use super::progress::{Entry, FunctionId, Identity, InputId, State};
use super::rate::RateLimiter;
use super::source::{Body, Counted, Record, Records};
use super::summary::{Ending, FailureMessage, Fate, MalformedLine, Summary};
use segfn_engine::input::RawMessage;
use segfn_engine::outcome::OutcomeKind;
use segfn_engine::{InvokeOptions, LoadedFunction};
use segfn_sdk::abi::RawCall;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Longest wait between two tries of one event.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Distinct failure messages counted (per run); the rest are counted by outcome only.
const MESSAGES_KEPT: usize = 100;
/// Failure messages in the summary.
const MESSAGES_SHOWN: usize = 10;

/// How a replay starts when its state directory already holds a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Start a new replay; refuse if the state records an unfinished one.
    New,
    /// Continue the recorded replay (or start one if there is none).
    Resume,
    /// Start over, discarding the recorded replay and its failures file.
    Restart,
}

/// What the replay should do now: the CLI turns Ctrl-C into these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Go on.
    Run,
    /// Take no new event; let the running invocations finish.
    Drain,
    /// Cancel the running invocations too.
    Abort,
}

/// Counters the replay updates as it goes, for a progress display.
#[derive(Debug, Default)]
pub struct Live {
    /// Bytes of the input files (compressed bytes for gzip, all inputs) read up to the
    /// record the replay took last: the progress through the input.
    pub bytes_read: AtomicU64,
    /// Their total size, or 0 when unknown (stdin).
    pub bytes_total: AtomicU64,
    /// Events that reached an outcome in this run.
    pub events_done: AtomicU64,
    /// Of them, failures.
    pub failed: AtomicU64,
    /// Invocations running now.
    pub in_flight: AtomicU64,
    /// Positions skipped because an earlier run did them.
    pub done_before: AtomicU64,
    /// Positions not sent: malformed, or outside the time window.
    pub not_sent: AtomicU64,
}

/// Told about what happens during a replay (on top of [`Live`]'s counters).
pub trait Observer: Send + Sync {
    /// A malformed line or element, as it is found.
    fn malformed(&self, line: &MalformedLine) {
        let _ = line;
    }
    /// Something worth saying (state loaded, inputs that could not be read).
    fn notice(&self, text: &str) {
        let _ = text;
    }
}

/// An observer that ignores everything.
#[derive(Debug)]
pub struct Quiet;

impl Observer for Quiet {}

/// Everything a replay needs besides the function.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The inputs, in order (`-`: stdin).
    pub inputs: Vec<PathBuf>,
    /// `--since`/`--until`.
    pub window: TimeWindow,
    /// Tries per second over all events; `None`: as fast as the function goes.
    pub rate: Option<f64>,
    /// Invocations at once (at least 1).
    pub concurrency: usize,
    /// Tries after the first for an event whose outcome is `retry`.
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one, at most 30 s.
    pub retry_delay: Duration,
    /// The settings, as JSON text.
    pub settings: String,
    /// Limits, fetch policy and redaction for every invocation.
    pub invoke: InvokeOptions,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The failures file; default `failures.ndjson` in the state directory (for a
    /// resumed replay: where the state says it is).
    pub failures: Option<PathBuf>,
    /// New, resume or restart.
    pub start: StartMode,
    /// Resume even when the function, inputs or window differ from the state's.
    pub force: bool,
    /// How often the snapshot is written while the state changes.
    pub checkpoint_every: Duration,
}

/// What the reader thread sends.
enum Item {
    Record {
        input: usize,
        record: Record,
        verdict: Verdict,
        /// Bytes of the input files read when this record was: the progress made
        /// once the loop takes it (the reader runs a little ahead).
        read: u64,
    },
    End {
        input: usize,
        positions: u64,
        error: Option<String>,
    },
}

/// What one event's task brings back.
struct EventDone {
    input: usize,
    pos: u64,
    line: u64,
    element: Option<u64>,
    /// The event as read, for the failures file.
    json: String,
    /// Its fate, tries beyond the first and the message; `None` when the replay was
    /// stopped before the event reached a final outcome.
    result: Option<(Fate, u32, Option<String>)>,
}

/// Shared by the tasks.
struct Shared {
    function: LoadedFunction,
    invoke: InvokeOptions,
    settings: String,
    limiter: RateLimiter,
    retries: u32,
    retry_delay: Duration,
    live: Arc<Live>,
}

/// Replays `options.inputs` through `function` (whose fingerprint is `function_id`),
/// until done or told to stop through `control`.
pub async fn replay(
    function: LoadedFunction,
    function_id: FunctionId,
    options: ReplayOptions,
    control: watch::Receiver<Stop>,
    live: Arc<Live>,
    observer: Arc<dyn Observer>,
) -> Result<Summary, ReplayError> {
    let started = Instant::now();
    let names: Vec<String> = options
        .inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let (identity, total) = identify(function_id, &options)?;
    if let Some(total) = total {
        live.bytes_total.store(total, Ordering::Relaxed);
    }

    let mut store = Store::new(&options.state_dir);
    let (mut state, keep) = begin(&mut store, &options, identity, names.clone(), &*observer)?;
    check_failures_path(&state.failures_path, &state.identity.inputs)?;
    let failures_path = state.failures_path.clone();
    let failures_error = |source| ReplayError::Failures {
        path: failures_path.clone(),
        source,
    };
    let mut failures = FailuresFile::open(&state.failures_path, keep).map_err(failures_error)?;
    state.failures_bytes = keep;
    state.finished = false;
    store.save(&state)?;

    let concurrency = options.concurrency.max(1);
    let (tx, mut rx) = mpsc::channel(concurrency * 4 + 64);
    {
        let inputs = options.inputs.clone();
        let done: Vec<DoneSet> = state.inputs.iter().map(|i| i.done.clone()).collect();
        let window = options.window.clone();
        let live = live.clone();
        std::thread::Builder::new()
            .name("replay-reader".into())
            .spawn(move || read_inputs(&inputs, &done, &window, &live, &tx))
            .map_err(|source| ReplayError::Open {
                path: "(reader thread)".into(),
                source,
            })?;
    }

    let shared = Arc::new(Shared {
        function,
        invoke: options.invoke.clone(),
        settings: options.settings.clone(),
        limiter: RateLimiter::new(options.rate),
        retries: options.retries,
        retry_delay: options.retry_delay,
        live: live.clone(),
    });
    let mut control = control;
    let mut stop = *control.borrow_and_update();
    let mut control_open = true;
    let mut reading = stop == Stop::Run;
    if !reading {
        rx.close();
    }
    let mut tasks: JoinSet<EventDone> = JoinSet::new();
    let mut tick = tokio::time::interval(options.checkpoint_every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = false;
    let mut read_errors = Vec::new();
    let mut messages: HashMap<(Fate, String), u64> = HashMap::new();
    let mut sent_this_run = 0u64;

    loop {
        if !reading && tasks.is_empty() {
            break;
        }
        // Biased, in this order: a stop first; then the checkpoint, which a steady
        // stream of records or completions must not starve; then completions before
        // new records, so finished events free their slots and reach the journal first.
        tokio::select! {
            biased;
            changed = control.changed(), if control_open && stop != Stop::Abort => {
                if changed.is_err() {
                    control_open = false;
                    continue;
                }
                stop = *control.borrow_and_update();
                if stop != Stop::Run {
                    reading = false;
                    rx.close();
                }
                if stop == Stop::Abort {
                    tasks.abort_all();
                }
            }
            _ = tick.tick() => {
                if dirty {
                    failures.sync().map_err(failures_error)?;
                    store.save(&state)?;
                    dirty = false;
                }
            }
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                let sent = match joined {
                    Ok(sent) => sent,
                    // Cancelled by Abort: not done, sent again on resume.
                    Err(e) if e.is_cancelled() => continue,
                    Err(e) => {
                        observer.notice(&format!("an invocation task failed: {e}"));
                        continue;
                    }
                };
                let Some((fate, retries, message)) = sent.result else {
                    continue;
                };
                let failures_end = if fate.is_failure() {
                    Some(failures.write(&sent.json).map_err(failures_error)?)
                } else {
                    None
                };
                let entry = Entry {
                    input: sent.input,
                    pos: sent.pos,
                    fate,
                    retries,
                    line: sent.line,
                    element: sent.element,
                    error: None,
                    failures_end,
                };
                // The fate is recorded before anything else happens: this write is
                // what keeps a resumed run from sending the event again.
                store.append(&entry, true)?;
                state.apply(&entry);
                dirty = true;
                sent_this_run += 1;
                live.events_done.fetch_add(1, Ordering::Relaxed);
                if fate.is_failure() {
                    live.failed.fetch_add(1, Ordering::Relaxed);
                    let key = (fate, message.unwrap_or_default());
                    if messages.len() < MESSAGES_KEPT || messages.contains_key(&key) {
                        *messages.entry(key).or_default() += 1;
                    }
                }
            }
            item = rx.recv(), if reading && tasks.len() < concurrency => {
                let Some(item) = item else {
                    reading = false;
                    continue;
                };
                match item {
                    Item::End { input, positions, error } => match error {
                        None => state.inputs[input].positions = Some(positions),
                        Some(error) => {
                            let text = format!("{}: {error}", names[input]);
                            observer.notice(&text);
                            read_errors.push(text);
                        }
                    },
                    Item::Record { input, record, verdict, read } => {
                        live.bytes_read.store(read, Ordering::Relaxed);
                        let fate = match (&record.body, verdict) {
                            (Body::Malformed(_), _) => Some(Fate::Malformed),
                            (Body::Event(_), Verdict::Outside) => Some(Fate::OutsideWindow),
                            (Body::Event(_), Verdict::NoTimestamp) => Some(Fate::NoTimestamp),
                            (Body::Event(_), Verdict::Keep) => None,
                        };
                        match (fate, record.body) {
                            (Some(fate), body) => {
                                let error = match body {
                                    Body::Malformed(e) => Some(e),
                                    Body::Event(_) => None,
                                };
                                let entry = Entry {
                                    input,
                                    pos: record.pos,
                                    fate,
                                    retries: 0,
                                    line: record.line,
                                    element: record.element,
                                    error,
                                    failures_end: None,
                                };
                                if fate == Fate::Malformed {
                                    observer.malformed(&MalformedLine {
                                        input: names[input].clone(),
                                        line: record.line,
                                        element: record.element,
                                        error: entry.error.clone().unwrap_or_default(),
                                    });
                                }
                                // Not flushed: nothing was sent, so losing it only means
                                // looking at the line again.
                                store.append(&entry, false)?;
                                state.apply(&entry);
                                live.not_sent.fetch_add(1, Ordering::Relaxed);
                                dirty = true;
                            }
                            (None, Body::Event(message)) => {
                                let shared = shared.clone();
                                let stop = control.clone();
                                let (pos, line, element) = (record.pos, record.line, record.element);
                                tasks.spawn(async move {
                                    let json = message.json.clone();
                                    let result = send(&shared, *message, stop).await;
                                    EventDone { input, pos, line, element, json, result }
                                });
                            }
                            (None, Body::Malformed(_)) => unreachable!("malformed records have a fate"),
                        }
                    }
                }
            }
        }
    }

    let ending = if stop != Stop::Run {
        Ending::Interrupted
    } else if !read_errors.is_empty() {
        Ending::Incomplete
    } else {
        Ending::Finished
    };
    state.finished = ending == Ending::Finished && state.all_complete();
    failures.sync().map_err(failures_error)?;
    store.flush()?;
    store.save(&state)?;

    let mut failure_messages: Vec<FailureMessage> = messages
        .into_iter()
        .map(|((fate, message), count)| FailureMessage {
            fate,
            message,
            count,
        })
        .collect();
    failure_messages.sort_by(|a, b| b.count.cmp(&a.count).then(a.message.cmp(&b.message)));
    failure_messages.truncate(MESSAGES_SHOWN);
    Ok(Summary {
        ending,
        counts: state.counts.clone(),
        sent_this_run,
        done_before: live.done_before.load(Ordering::Relaxed),
        duration: started.elapsed(),
        malformed: state.malformed.clone(),
        failure_messages,
        read_errors,
        failures_file: state.failures_path.clone(),
        state_dir: options.state_dir.clone(),
    })
}

/// Fingerprints the inputs (an input that cannot be opened ends the replay before
/// anything is sent); the identity and the inputs' total size when all are files.
fn identify(
    function: FunctionId,
    options: &ReplayOptions,
) -> Result<(Identity, Option<u64>), ReplayError> {
    if options.inputs.iter().filter(|p| is_stdin(p)).count() > 1 {
        return Err(ReplayError::Usage(
            "stdin (`-`) can be an input only once".into(),
        ));
    }
    let mut inputs = Vec::with_capacity(options.inputs.len());
    for path in &options.inputs {
        let id = InputId::of(path).map_err(|source| ReplayError::Open {
            path: path.clone(),
            source,
        })?;
        inputs.push(id);
    }
    let total = inputs.iter().map(|i| i.size).sum();
    Ok((
        Identity {
            function,
            inputs,
            window: options.window.clone(),
        },
        total,
    ))
}

/// The state to go on from, per the start mode, and how much of the failures file it
/// accounts for (0: start the file empty).
fn begin(
    store: &mut Store,
    options: &ReplayOptions,
    identity: Identity,
    names: Vec<String>,
    observer: &dyn Observer,
) -> Result<(State, u64), ReplayError> {
    // Absolute, so a run from another directory (with --state-dir) finds it.
    let default_failures = || {
        let path = options
            .failures
            .clone()
            .unwrap_or_else(|| options.state_dir.join(FAILURES_FILE));
        std::path::absolute(&path).unwrap_or(path)
    };
    let fresh = |identity| (State::new(identity, names.clone(), default_failures()), 0);
    let existing = store.load()?;
    Ok(match (options.start, existing) {
        (_, None) => fresh(identity),
        (StartMode::Restart, Some(_)) => fresh(identity),
        (StartMode::New, Some(old)) if !old.finished && old.done() > 0 => {
            return Err(ReplayError::Unfinished {
                dir: options.state_dir.clone(),
                done: old.done(),
            });
        }
        (StartMode::New, Some(_)) => fresh(identity),
        (StartMode::Resume, Some(mut old)) => {
            if let Some(mismatch) = old.mismatch(&identity) {
                if !options.force {
                    return Err(ReplayError::Mismatch(mismatch));
                }
                observer.notice(&format!("--force: resuming although {mismatch}"));
                old.adopt(identity, names.clone());
            }
            old.input_names = names.clone();
            let keep = match options.failures.as_deref().map(std::path::absolute) {
                Some(Ok(path)) if path != old.failures_path => {
                    observer.notice(&format!(
                        "failures of the earlier runs are in {}; this run's go to {}",
                        old.failures_path.display(),
                        path.display()
                    ));
                    old.failures_path = path;
                    0
                }
                _ => old.failures_bytes,
            };
            observer.notice(&format!(
                "resuming: {} lines or events already done",
                old.done()
            ));
            (old, keep)
        }
    })
}

/// Refuses a failures file that is one of the inputs: writing it would eat the input.
fn check_failures_path(failures: &Path, inputs: &[InputId]) -> Result<(), ReplayError> {
    let Ok(canonical) = std::fs::canonicalize(failures) else {
        // It does not exist yet, so it is not an input.
        return Ok(());
    };
    let canonical = canonical.display().to_string();
    if inputs.iter().any(|i| i.path == canonical) {
        return Err(ReplayError::Usage(format!(
            "the failures file {} is also an input: give another one with --failures, or another --state-dir",
            failures.display()
        )));
    }
    Ok(())
}

fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

/// The reader thread: every input in turn, its records to `tx`. Positions an earlier
/// run finished are counted, not sent.
fn read_inputs(
    inputs: &[PathBuf],
    done: &[DoneSet],
    window: &TimeWindow,
    live: &Live,
    tx: &mpsc::Sender<Item>,
) {
    let read = Arc::new(AtomicU64::new(0));
    for (input, path) in inputs.iter().enumerate() {
        let raw: Box<dyn std::io::Read + Send> = if is_stdin(path) {
            Box::new(std::io::stdin())
        } else {
            match std::fs::File::open(path) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    let end = Item::End {
                        input,
                        positions: 0,
                        error: Some(e.to_string()),
                    };
                    if tx.blocking_send(end).is_err() {
                        return;
                    }
                    continue;
                }
            }
        };
        let mut error = None;
        let mut positions = 0;
        match Records::new(Counted::new(raw, read.clone())) {
            Err(e) => error = Some(e.to_string()),
            Ok(mut records) => {
                for record in records.by_ref() {
                    let record = match record {
                        Ok(record) => record,
                        Err(e) => {
                            error = Some(format!("cannot read on: {e}"));
                            break;
                        }
                    };
                    if done[input].contains(record.pos) {
                        live.done_before.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let verdict = match &record.body {
                        Body::Event(m) => window.check(&m.json),
                        Body::Malformed(_) => Verdict::Keep,
                    };
                    let item = Item::Record {
                        input,
                        record,
                        verdict,
                        read: read.load(Ordering::Relaxed),
                    };
                    if tx.blocking_send(item).is_err() {
                        // The replay stopped reading.
                        return;
                    }
                }
                positions = records.positions();
            }
        }
        let end = Item::End {
            input,
            positions,
            error,
        };
        if tx.blocking_send(end).is_err() {
            return;
        }
    }
}

/// Counts an invocation as running while it lives.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn start(counter: &'a AtomicU64) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves once the replay is told to stop (never, if the controller is gone).
async fn stopped(stop: &mut watch::Receiver<Stop>) {
    if stop.wait_for(|s| *s != Stop::Run).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The wait before try `attempt` (1 for the first retry).
fn backoff(first: Duration, attempt: u32) -> Duration {
    first
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(MAX_BACKOFF)
}

/// One event: its tries until a final outcome, or `None` when stopped first.
async fn send(
    shared: &Shared,
    mut message: RawMessage,
    mut stop: watch::Receiver<Stop>,
) -> Option<(Fate, u32, Option<String>)> {
    // As the endpoint does: over-deep messages and over-long messageIds are refused
    // before the function sees them, and Segment's receivedAt is set when missing.
    if let Err(problem) = message.check() {
        return Some((Fate::BadRequest, 0, Some(problem.to_string())));
    }
    message.stamp_received_at(SystemTime::now());
    let mut attempt = 0;
    loop {
        if attempt > 0 {
            tokio::select! {
                biased;
                () = stopped(&mut stop) => return None,
                () = tokio::time::sleep(backoff(shared.retry_delay, attempt)) => {}
            }
        }
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return None,
            () = shared.limiter.acquire() => {}
        }
        let report = {
            let _running = InFlight::start(&shared.live.in_flight);
            shared
                .function
                .invoke_json::<&str>(
                    &shared.invoke,
                    RawCall::Event(&message.json),
                    &shared.settings,
                )
                .await
        };
        let kind = report.outcome.kind;
        if kind != OutcomeKind::Retry || attempt >= shared.retries {
            return Some((kind.into(), attempt, report.outcome.message));
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let first = Duration::from_millis(500);
        assert_eq!(backoff(first, 1), Duration::from_millis(500));
        assert_eq!(backoff(first, 2), Duration::from_secs(1));
        assert_eq!(backoff(first, 3), Duration::from_secs(2));
        assert_eq!(backoff(first, 40), MAX_BACKOFF);
    }
}
