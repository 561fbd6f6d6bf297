//! `segfn dev [DIR]`: watches a function crate, rebuilds it on save, and serves the
//! function tester page on 127.0.0.1 (the library's `dev` module does the work).

use super::build::TargetDirArg;
use super::run::{LimitArgs, TenantArgs};
use anyhow::Context as _;
use segfn::dev::{self, DevOptions};
use segfn::toolchain::BuildOptions;
use segfn_engine::FetchClient;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(
    mut_arg("settings", |a| a.help("The settings the page starts from (JSON); default DIR/settings.json. Watched: edits on disk reach the page")),
    after_help = "The page offers Segment's spec events of every type and the crate's events/*.json, \
        runs the last module that built on the event and settings you choose, and shows the \
        outcome, logs, request trace with bodies, output and resource use, build errors with file \
        and line, and the last runs. Only 127.0.0.1 is bound."
)]
pub(crate) struct DevArgs {
    /// The function crate's directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Port on 127.0.0.1 for the page; 0 picks a free one.
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// How many runs the page keeps.
    #[arg(long, value_name = "N", default_value_t = 20)]
    keep_runs: usize,
    #[command(flatten)]
    tenant: TenantArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    target: TargetDirArg,
}

pub(crate) async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    // The fetch flags (allow-list and host mappings) make the client exactly as
    // `segfn run` does.
    let client = FetchClient::new(args.tenant.policy()?).context("setting up fetch")?;
    let settings_file = args
        .tenant
        .settings
        .clone()
        .unwrap_or_else(|| args.dir.join("settings.json"));
    let options = DevOptions {
        dir: args.dir.clone(),
        port: args.port,
        settings_file,
        client,
        secrets: args.tenant.secrets.clone(),
        limits: args.limits.limits(),
        build: BuildOptions {
            target_dir: args.target.target_dir.clone(),
        },
        keep_runs: args.keep_runs,
    };
    let dir = args.dir.display().to_string();
    dev::serve(options, stop_signal(), |addr| {
        // The URL alone on stdout's first line, for people and for scripts that start
        // `segfn dev --port 0`; the build log goes to stderr.
        let _ = super::write_stdout(&format!("http://{addr}/\n"));
        eprintln!("segfn dev: watching {dir}; the page is at http://{addr}/ (Ctrl-C stops)");
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
