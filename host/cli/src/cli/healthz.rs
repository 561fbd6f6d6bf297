//! `segfn healthz [URL]`: whether a `segfn serve` answers its `/healthz`, as an exit
//! status, for a container's `HEALTHCHECK` or a probe that runs a command (the image
//! has no shell and no curl).

use anyhow::Context as _;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct HealthzArgs {
    /// The server's health URL.
    #[arg(default_value = "http://127.0.0.1:8080/healthz")]
    url: String,
    /// How long to wait for the answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
}

/// Exit status 0 when the server answers 200 in time, 1 otherwise (saying why).
pub(crate) async fn run(args: HealthzArgs) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(args.timeout_ms))
        .build()
        .context("the HTTP client")?;
    let status = client
        .get(&args.url)
        .send()
        .await
        .with_context(|| format!("{} did not answer", args.url))?
        .status();
    if status.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        anyhow::bail!("{} answered {status}", args.url)
    }
}
