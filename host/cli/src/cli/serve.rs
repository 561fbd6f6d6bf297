//! `segfn serve FUNCTION`: the endpoint Segment delivers to.

use super::build::TargetDirArg;
use super::run::{LIMIT_ARG_IDS, LimitArgs, TenantArgs, read_settings};
use anyhow::{Context as _, bail};
use segfn_serve::{ResolvedTenant, ServeConfig, ServeOptions, StoreLocation};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Segment sends POST with Content-Type: application/json, \
Authorization: Basic base64(apiKey + \":\"), and optionally X-Signature and X-Segment-Settings. \
Answers: 200 processed (or a duplicate), 202 queued (--durable), 400 rejected, \
401 unknown key or bad signature, 413 too large, \
415 not JSON, 429 busy (Retry-After), 500 retry, 501 unsupported event type, 503 shutting down. \
GET /healthz, /readyz and /metrics (Prometheus) serve operators. SIGHUP reloads the function; \
SIGTERM or SIGINT finish in-flight deliveries and exit."
)]
pub(crate) struct ServeArgs {
    /// A .wasm file, a function crate directory (built first), or a JavaScript function
    /// (`handler.js`, pre-initialised first).
    function: PathBuf,
    /// The configuration file (TOML): [server], [limits] and [[tenant]] tables. Its
    /// limits replace the limit flags, which are refused alongside it.
    #[arg(long, short, value_name = "FILE", conflicts_with_all = LIMIT_ARG_IDS)]
    config: Option<PathBuf>,
    /// Address to listen on (overrides the config file).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Without --config: the one tenant's API key.
    #[arg(
        long,
        env = "SEGFN_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,
    /// Without --config: the one tenant's settings, allow-list, host mappings and secrets.
    #[command(flatten)]
    tenant: TenantArgs,
    /// Without --config: put outcome, logs and request trace in responses.
    #[arg(long)]
    debug_responses: bool,
    /// The store (overrides the config file): a file for the embedded engine, or
    /// postgres://USER:PASSWORD@HOST:PORT/DB for a database shared by several
    /// replicas (better in $SEGFN_STORE than on a command line others can read).
    #[arg(
        long,
        value_name = "FILE|URL",
        env = "SEGFN_STORE",
        hide_env_values = true
    )]
    store: Option<StoreLocation>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log JSON lines instead of human-readable ones.
    #[arg(long)]
    json_logs: bool,
    /// Send OpenTelemetry traces (a span per delivery, invocation and fetch) to this
    /// OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (overrides [server.traces]).
    #[arg(
        long,
        value_name = "URL",
        env = "SEGFN_OTLP_ENDPOINT",
        hide_env_values = true
    )]
    otlp_endpoint: Option<String>,
    /// Durable mode for every tenant: commit each delivery to the store, answer 202,
    /// and run and retry it on this side (see [server.retry]; dead letters: `segfn dlq`).
    #[arg(long)]
    durable: bool,
    #[command(flatten)]
    target: TargetDirArg,
    // Last: the heading applies to every argument after it.
    #[command(flatten, next_help_heading = "Limits (without --config)")]
    limits: LimitArgs,
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => ServeConfig::load(path)?,
        None => {
            let Some(api_key) = args.api_key.clone() else {
                bail!(
                    "give --config FILE with [[tenant]] tables, or --api-key KEY (or $SEGFN_API_KEY) for a single tenant"
                );
            };
            // Checked here, as `run` does: a table would keep one of a HOST given twice.
            let map_hosts = args.tenant.host_map()?;
            let mut config = ServeConfig::default();
            config.limits = args.limits.config();
            config.tenants = vec![segfn_serve::config::TenantConfig {
                name: "default".into(),
                api_key: Some(api_key),
                settings: serde_json::from_value(read_settings(args.tenant.settings.as_deref())?)
                    .context("settings")?,
                secret_settings: args.tenant.secrets.clone(),
                allow_hosts: args.tenant.allow_hosts.clone(),
                map_hosts: map_hosts
                    .mappings()
                    .iter()
                    .map(|m| (m.pattern().to_string(), m.target().to_string()))
                    .collect(),
                debug_responses: args.debug_responses,
                ..Default::default()
            }];
            config
        }
    };
    if let Some(listen) = &args.listen {
        config.server.listen = listen.clone();
    }
    if let Some(store) = &args.store {
        config.server.store = store.clone();
    }
    if args.tls_cert.is_some() {
        config.server.tls_cert = args.tls_cert.clone();
        config.server.tls_key = args.tls_key.clone();
    }
    config.server.json_logs |= args.json_logs;
    config.server.durable |= args.durable;
    if let Some(var) = config.server.admin_token_env.clone() {
        if config.server.admin_token.is_some() {
            bail!("[server]: set admin_token or admin_token_env, not both");
        }
        let token = std::env::var(&var)
            .ok()
            .filter(|t| !t.is_empty())
            .with_context(|| format!("admin_token is to come from ${var}, which is not set"))?;
        config.server.admin_token = Some(token);
    }
    // An empty $SEGFN_OTLP_ENDPOINT leaves traces as the configuration says.
    if let Some(endpoint) = args.otlp_endpoint.as_ref().filter(|e| !e.is_empty()) {
        config.server.traces.endpoint = Some(endpoint.clone());
    }
    let telemetry = super::telemetry::init(config.server.json_logs, &config.server.traces).await?;

    let tenants: Vec<ResolvedTenant> = config.resolve_tenants(|var| std::env::var(var).ok())?;
    let function = super::run::wasm_path(&args.function, &args.target).await?;
    let options = ServeOptions {
        config,
        tenants,
        function,
    };
    let served = segfn_serve::serve(options, |addr, tls| {
        let scheme = if tls { "https" } else { "http" };
        let line = format!("segfn serve: listening on {scheme}://{addr}");
        // A closed stdout must not stop the server; the address then goes to the log.
        if super::write_stdout(&format!("{line}\n")).is_err() {
            tracing::info!("{line}");
        }
    })
    .await;
    // Also after a failure: the spans of what was served until then are sent.
    telemetry.shutdown().await;
    served?;
    Ok(ExitCode::SUCCESS)
}
