//! `segfn replay FUNCTION --input FILE...`: archived events through a function, with
//! a progress display on stderr, Ctrl-C handling and the summary on stdout.

use super::UsageError;
use super::build::TargetDirArg;
use super::run::{LimitArgs, TenantArgs, read_settings, wasm_path};
use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use segfn::replay::progress::{FunctionId, default_dir};
use segfn::replay::summary::{EXIT_EVENTS_FAILED, EXIT_INTERRUPTED, MalformedLine};
use segfn::replay::{
    Live, Observer, ReplayError, ReplayOptions, StartMode, Stop, TimeWindow, filter, replay,
};
use segfn_engine::{FetchClient, InvokeOptions, Redactor, Runtime, RuntimeOptions};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the plain progress line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// How often the snapshot is written while the state changes.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
#[command(after_help = after_help())]
pub(crate) struct ReplayArgs {
    /// A .wasm file, a function crate directory (built first), or a JavaScript function
    /// (`handler.js`, pre-initialised first).
    function: PathBuf,
    /// Events to replay: NDJSON (one message or {"batch": [...]} per line) or a JSON
    /// array, gzipped or not (told by content, not by name); `-` reads stdin. Several
    /// files (`--input a.gz b.gz`, or the flag repeated) are replayed in order.
    #[arg(long, short, value_name = "FILE", required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    /// Only events whose timestamp is at or after TIME: RFC 3339
    /// (2024-05-01T12:00:00Z) or a date (2024-05-01, midnight UTC). Events without a
    /// readable timestamp are then skipped and counted.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events whose timestamp is before TIME (exclusive), as for --since.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// The event field --since and --until read.
    #[arg(long, value_name = "FIELD", default_value = "timestamp")]
    time_field: String,
    /// Most invocations per second, retries included, over all of them (a token
    /// bucket); default: as fast as the function and --concurrency allow.
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Invocations at once.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// Tries after the first for an event whose outcome is `retry` (a RetryError, the
    /// deadline, a host fault); an event still `retry` after them has failed.
    #[arg(long, value_name = "N", default_value_t = 2)]
    retries: u32,
    /// Wait before the first retry of an event, doubled for each next one (30 s at most).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    retry_delay_ms: u64,
    /// Where failed events go, one per line exactly as read, so `--input FILE`
    /// replays them (default: failures.ndjson in the state directory); emptied when a
    /// new replay starts, appended to by --resume.
    #[arg(long, value_name = "FILE")]
    failures: Option<PathBuf>,
    /// The state directory, for --resume (default: .segfn-replay/<first input>-<hash
    /// of the inputs' paths>, in the current directory).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Continue the replay recorded in the state directory, skipping what reached an
    /// outcome (failures included: they are in the failures file).
    #[arg(long, conflicts_with = "restart")]
    resume: bool,
    /// Start over, discarding the recorded replay and emptying its failures file.
    #[arg(long)]
    restart: bool,
    /// With --resume: go on even though the function, the inputs or the time window
    /// differ from the recorded replay's.
    #[arg(long, requires = "resume")]
    force: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    tenant: TenantArgs,
    #[command(flatten)]
    target: TargetDirArg,
    #[command(flatten, next_help_heading = "Limits (per invocation)")]
    limits: LimitArgs,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("expected a positive number of events per second".into()),
    }
}

fn after_help() -> String {
    format!(
        "Each event is one invocation in a fresh instance, as `segfn serve` runs it. \
Malformed lines are reported with their line numbers and skipped. Ctrl-C (or SIGTERM) stops \
taking events and lets those running finish; a second Ctrl-C cancels them. The state \
directory records every event's outcome as it comes, so --resume after Ctrl-C or kill -9 \
sends again only the events that were running (at most --concurrency).\n\n\
Exit status:\n   0  every event sent succeeded, was dropped or had no handler\n  \
{:>2}  could not run, or an input could not be read to its end\n  \
{:>2}  usage error; also an unfinished replay recorded, without --resume or --restart\n  \
{EXIT_EVENTS_FAILED:>2}  some events failed (see the summary); they are in the failures file\n \
{EXIT_INTERRUPTED:>3}  interrupted; --resume goes on",
        segfn_engine::outcome::EXIT_FAILURE,
        segfn_engine::outcome::EXIT_USAGE,
    )
}

pub(crate) async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    // The command line first: nothing is built or read for one that cannot work.
    let policy = args.tenant.policy()?;
    let bound = |flag, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| filter::parse_bound(flag, v))
            .transpose()
            .map_err(|e| UsageError(e.to_string()))
    };
    let window = TimeWindow {
        since: bound("--since", &args.since)?,
        until: bound("--until", &args.until)?,
        field: args.time_field.clone(),
    };
    if let (Some(since), Some(until)) = (window.since, window.until)
        && since >= until
    {
        return Err(UsageError("--since must be before --until".into()).into());
    }
    let settings = read_settings(args.tenant.settings.as_deref())?;
    let limits = args.limits.limits();
    let wasm = wasm_path(&args.function, &args.target).await?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let function_id = FunctionId::new(&std::fs::canonicalize(&wasm)?, &bytes);
    let concurrency = usize::from(args.concurrency);
    let runtime = Runtime::new(&RuntimeOptions {
        pooling: true,
        max_instances: (concurrency as u32).saturating_mul(2).saturating_add(8),
        disk_cache: true,
        load_deadline: limits.deadline,
        max_memory_bytes: limits.memory_bytes,
    })
    .map_err(|e| anyhow::anyhow!("starting the engine: {e:#}"))?;
    let function = runtime
        .load(&bytes)
        .await
        .with_context(|| format!("loading {}", wasm.display()))?;
    let options = ReplayOptions {
        state_dir: args
            .state_dir
            .clone()
            .unwrap_or_else(|| default_dir(&args.input)),
        inputs: args.input.clone(),
        window,
        rate: args.rate,
        concurrency,
        retries: args.retries,
        retry_delay: Duration::from_millis(args.retry_delay_ms),
        invoke: InvokeOptions {
            limits,
            client: FetchClient::new(policy)?,
            redactor: Arc::new(
                Redactor::from_settings(&settings, &args.tenant.secrets).context("the settings")?,
            ),
            capture_bodies: false,
        },
        settings: settings.to_string(),
        failures: args.failures.clone(),
        start: match (args.resume, args.restart) {
            (true, _) => StartMode::Resume,
            (_, true) => StartMode::Restart,
            _ => StartMode::New,
        },
        force: args.force,
        checkpoint_every: CHECKPOINT_EVERY,
    };
    eprintln!(
        "segfn replay: {} input(s) through {}; state in {}",
        options.inputs.len(),
        wasm.display(),
        options.state_dir.display()
    );

    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let live = Arc::new(Live::default());
    let display = Arc::new(Display::new(std::io::stderr().is_terminal()));
    let signals = tokio::spawn(watch_signals(stop_tx, live.clone(), display.clone()));
    let ticker = tokio::spawn(display.clone().tick(live.clone()));
    let result = replay(
        function,
        function_id,
        options,
        stop_rx,
        live,
        display.clone(),
    )
    .await;
    ticker.abort();
    signals.abort();
    display.finish();
    let summary = result.map_err(|e| match e {
        ReplayError::Usage(_)
        | ReplayError::Mismatch(_)
        | ReplayError::Unfinished { .. }
        | ReplayError::Filter(_) => anyhow::Error::new(UsageError(e.to_string())),
        other => anyhow::Error::new(other),
    })?;
    let text = if args.json {
        serde_json::to_string(&summary)? + "\n"
    } else {
        summary.render()
    };
    match super::write_stdout(&text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing the summary");
        }
        _ => {}
    }
    Ok(ExitCode::from(summary.exit_code()))
}

/// First Ctrl-C or SIGTERM: drain; second: abort.
async fn watch_signals(stop: watch::Sender<Stop>, live: Arc<Live>, display: Arc<Display>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        display.say("segfn replay: cannot install signal handlers; Ctrl-C kills at once");
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let _ = stop.send(Stop::Drain);
    display.say(&format!(
        "segfn replay: stopping; waiting for {} invocation(s) to finish (Ctrl-C again to cancel them)",
        live.in_flight.load(Ordering::Relaxed)
    ));
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let _ = stop.send(Stop::Abort);
    display.say(
        "segfn replay: cancelling the running invocations; they will be sent again on --resume",
    );
}

/// Progress on stderr: a bar on a terminal, a line every few seconds otherwise.
#[derive(Debug)]
struct Display {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Display {
    fn new(terminal: bool) -> Display {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{wide_bar}] {percent:>3}% {msg} ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Display {
            bar,
            started: Instant::now(),
        }
    }

    /// A line above the bar (or on its own without one).
    fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Counts, rate and the in-flight number, for the bar and the plain line.
    fn status(&self, live: &Live) -> String {
        let done = live.events_done.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let mut text = format!(
            "{done} events ({:.1}/s), {} failed, {} running",
            done as f64 / secs,
            live.failed.load(Ordering::Relaxed),
            live.in_flight.load(Ordering::Relaxed)
        );
        let skipped = live.done_before.load(Ordering::Relaxed);
        if skipped > 0 {
            text.push_str(&format!(", {skipped} done before"));
        }
        text
    }

    /// Updates the display until aborted. The bar's length is the inputs' size: its
    /// position is the bytes read (of the compressed file, for gzip), so the ETA is
    /// indicatif's estimate from how fast the input is consumed.
    async fn tick(self: Arc<Display>, live: Arc<Live>) {
        match &self.bar {
            Some(bar) => loop {
                let total = live.bytes_total.load(Ordering::Relaxed);
                if total > 0 {
                    bar.set_length(total);
                    bar.set_position(live.bytes_read.load(Ordering::Relaxed).min(total));
                }
                bar.set_message(self.status(&live));
                bar.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            },
            None => loop {
                tokio::time::sleep(PLAIN_EVERY).await;
                let total = live.bytes_total.load(Ordering::Relaxed);
                let read = live.bytes_read.load(Ordering::Relaxed);
                let mut line = format!("segfn replay: {}", self.status(&live));
                if total > 0 {
                    line.push_str(&format!(
                        ", {:.0}% of the input read",
                        read.min(total) as f64 * 100.0 / total as f64
                    ));
                }
                eprintln!("{line}");
            },
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Display {
    fn malformed(&self, line: &MalformedLine) {
        self.say(&format!("segfn replay: malformed, skipped: {line}"));
    }

    fn notice(&self, text: &str) {
        self.say(&format!("segfn replay: {text}"));
    }
}
