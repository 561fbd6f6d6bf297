//! Argument parsing and dispatch to the subcommands; errors end here as a message and
//! an exit status.

mod build;
mod demo;
mod dev;
mod docs;
mod healthz;
mod new;
mod ops;
mod replay;
mod run;
mod schema;
mod serve;
mod telemetry;

use clap::{Parser, Subcommand};
use segfn_engine::outcome::{EXIT_FAILURE, EXIT_USAGE};
use std::io::Write as _;
use std::process::ExitCode;

/// Write, build and run Segment translation functions in Rust and WebAssembly.
#[derive(Debug, Parser)]
#[command(name = "segfn", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a function crate from a template, ready to test, build and run.
    New(new::NewArgs),
    /// Build a function crate to WebAssembly (prints the .wasm path last).
    Build(build::BuildArgs),
    /// Run a function on one event or batch and show what it did.
    Run(run::RunArgs),
    /// Serve a function as the HTTP(S) endpoint Segment delivers to.
    Serve(serve::ServeArgs),
    /// Run an example function end to end against a built-in partner API on 127.0.0.1.
    Demo(demo::DemoArgs),
    /// Watch a function crate, rebuild on save, and test it on a local web page.
    Dev(dev::DevArgs),
    /// Print a function's settings in Segment's settings format (JSON).
    Schema(schema::SchemaArgs),
    /// Print a function's documentation page (Markdown, Segment's partner template).
    Docs(docs::DocsArgs),
    /// Send archived events (NDJSON or JSON arrays, gzipped or not) through a function,
    /// resumably, with a summary by outcome and a file of the failures.
    Replay(replay::ReplayArgs),
    /// The durable queue per tenant: pending, retrying, oldest, dead letters.
    Status(ops::StatusArgs),
    /// The durable mode's dead letters: list, show, retry, purge.
    Dlq(ops::DlqArgs),
    /// Whether a running `segfn serve` answers /healthz (exit status 0), for a
    /// container's HEALTHCHECK.
    Healthz(healthz::HealthzArgs),
}

pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::New(args) => new::run(args),
        Command::Build(args) => build::run(args),
        Command::Run(args) => with_runtime(run::run(args)),
        Command::Serve(args) => with_runtime(serve::run(args)),
        Command::Demo(args) => with_runtime(demo::run(args)),
        Command::Dev(args) => with_runtime(dev::run(args)),
        Command::Schema(args) => with_runtime(schema::run(args)),
        Command::Docs(args) => with_runtime(docs::run(args)),
        Command::Replay(args) => with_runtime(replay::run(args)),
        Command::Status(args) => with_runtime(ops::status(args)),
        Command::Dlq(args) => with_runtime(ops::dlq(args)),
        Command::Healthz(args) => with_runtime(healthz::run(args)),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`segfn build | head -0`): like a Unix tool, stop quietly.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.chain().any(|c| c.is::<UsageError>()) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// A command line that parsed but cannot be used (the same `--map-host` HOST twice):
/// exit status 2, as for the errors clap finds.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// Writes to stdout, returning the error `print!` would panic on: `EPIPE` when the
/// reader closed the pipe early (`segfn run ... | head`).
pub(crate) fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub(crate) fn with_runtime<F: Future<Output = anyhow::Result<ExitCode>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(f)
}
