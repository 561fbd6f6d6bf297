//! `segfn run FUNCTION --event FILE` (or `--request FILE` for a source function): one
//! invocation with a Segment-tester style report.

use super::build::{TargetDirArg, build_function};
use anyhow::{Context as _, bail};
use segfn_engine::outcome::row;
use segfn_engine::policy::HostMapping;
use segfn_engine::{
    FetchClient, FetchPolicy, HostMap, InvokeOptions, Limits, LoadedFunction, Redactor, Runtime,
    RuntimeOptions,
};
use segfn_sdk::abi::Call;
use segfn_serve::config::LimitsConfig;
use serde_json::Value;
use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
#[command(after_help = exit_help())]
pub(crate) struct RunArgs {
    /// A .wasm file, a function crate directory (built first), or a JavaScript function
    /// (`handler.js`, pre-initialised first).
    function: PathBuf,
    /// The event: one Segment message, an array of them, or {"batch": [...]}; `-` reads stdin.
    #[arg(
        long,
        short,
        value_name = "FILE",
        required_unless_present_any = ["request", "body"],
        conflicts_with_all = ["request", "body"]
    )]
    event: Option<PathBuf>,
    /// For a source function (`onRequest`): one webhook request, as Segment's harness
    /// writes them: {"payload": {"body": ..., "headers": {...}, "url": "..."}, "settings": {...}}
    /// (`url` defaults to Segment's webhook host with `queryParameters`; `settings` is used
    /// when --settings is not given). The report's output is {"events": [...], "objects": [...]}.
    #[arg(long, short, value_name = "FILE", conflicts_with = "body")]
    request: Option<PathBuf>,
    /// For a source function: the webhook's raw body, as the sender posts it (JSON, a
    /// form, any text; `-` reads stdin), with --header and --url.
    #[arg(long, value_name = "FILE")]
    body: Option<PathBuf>,
    /// A header of the --body request, `Name: value` (repeatable), e.g.
    /// --header 'X-GitHub-Event: issues' --header 'Content-Type: application/json'.
    #[arg(long = "header", short = 'H', value_name = "HEADER", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The --body request's URL, with its query (default: Segment's webhook host).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    #[command(flatten)]
    tenant: TenantArgs,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    target: TargetDirArg,
}

/// A function instance's settings, secrets and allow-list (for `serve`: its one tenant
/// when there is no config file).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TenantArgs {
    /// The settings object (JSON); default `{}`.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) settings: Option<PathBuf>,
    /// Allow fetch to a host (repeatable): `api.example.com`, `*.example.com`, `https://host:443`,
    /// `127.0.0.1:8080` (loopback and private addresses must be named like this), or `*`.
    #[arg(long = "allow-host", value_name = "PATTERN")]
    pub(crate) allow_hosts: Vec<String>,
    /// Send fetch requests for HOST to a server on this machine instead, like curl's
    /// --resolve (repeatable), e.g. --map-host 'api.partner.example=http://127.0.0.1:9000'.
    ///
    /// The function keeps its real URLs; a local fake partner receives the requests
    /// (same method, path, query and Host header), and the request trace shows the URL
    /// and where it went. HOST is a pattern as for --allow-host, `*` for every host;
    /// the most specific mapping wins. TARGET is a loopback address with a port
    /// (`127.0.0.1:PORT`, `[::1]:PORT`, `localhost:PORT`); with `http://` before it, https
    /// requests go as plain HTTP, so the fake needs no certificate; without a scheme
    /// they keep TLS, verified for the original host. Mapped hosts count as allowed.
    #[arg(long = "map-host", value_name = "HOST=TARGET")]
    pub(crate) map_hosts: Vec<HostMapping>,
    /// Mark a setting as secret (repeatable); settings named like keys, tokens or
    /// passwords are secret already. Secrets are redacted from reports and logs.
    #[arg(long = "secret", value_name = "NAME")]
    pub(crate) secrets: Vec<String>,
}

impl TenantArgs {
    /// The allow-list and host mappings `fetch` runs under.
    pub(crate) fn policy(&self) -> anyhow::Result<FetchPolicy> {
        Ok(FetchPolicy::parse(&self.allow_hosts)?.with_map(self.host_map()?))
    }

    /// The host mappings; the same HOST twice is a usage error.
    pub(crate) fn host_map(&self) -> anyhow::Result<HostMap> {
        HostMap::new(self.map_hosts.clone()).map_err(|e| super::UsageError(e.to_string()).into())
    }
}

/// The limits. Their defaults are [`Limits::default`]'s in the flags' units (which
/// [`LimitsConfig::default`] converts), so the CLI, the serve configuration and the
/// library cannot disagree.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LimitArgs {
    /// Wall-clock deadline in milliseconds, fetches included.
    #[arg(long, value_name = "MS", default_value_t = LimitsConfig::default().deadline_ms)]
    deadline_ms: u64,
    /// Memory cap in MiB.
    #[arg(long, value_name = "MIB", default_value_t = LimitsConfig::default().memory_mib)]
    memory_mib: usize,
    /// Instruction cap (default: count without a cap).
    #[arg(long, value_name = "N")]
    max_instructions: Option<u64>,
    /// Most fetches per invocation.
    #[arg(long, value_name = "N", default_value_t = LimitsConfig::default().max_fetches)]
    max_fetches: u32,
    /// Largest response body a fetch may receive, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = LimitsConfig::default().max_response_kib)]
    max_response_kib: usize,
}

/// The ids of [`LimitArgs`]' flags, for `serve`, where `--config` replaces them.
pub(crate) const LIMIT_ARG_IDS: [&str; 5] = [
    "deadline_ms",
    "memory_mib",
    "max_instructions",
    "max_fetches",
    "max_response_kib",
];

impl LimitArgs {
    /// The limits as the serve configuration writes them.
    pub(crate) fn config(&self) -> LimitsConfig {
        LimitsConfig {
            deadline_ms: self.deadline_ms,
            memory_mib: self.memory_mib,
            max_instructions: self
                .max_instructions
                .or(LimitsConfig::default().max_instructions),
            max_fetches: self.max_fetches,
            max_response_kib: self.max_response_kib,
        }
    }

    /// The engine's limits.
    pub(crate) fn limits(&self) -> Limits {
        self.config().limits()
    }
}

/// The exit statuses, from the outcome table.
fn exit_help() -> String {
    let mut help = String::from("Exit status:\n");
    for row in &segfn_engine::outcome::OUTCOMES {
        help.push_str(&format!("  {:>2}  {}\n", row.exit_code, row.kind));
    }
    help.push_str(&format!(
        "  {:>2}  could not run (unreadable file, failed build, invalid module)\n  {:>2}  usage error",
        segfn_engine::outcome::EXIT_FAILURE,
        segfn_engine::outcome::EXIT_USAGE
    ));
    help
}

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // First: a command line that cannot be used is reported before any file is read.
    let policy = args.tenant.policy()?;
    if args.body.is_none() && (!args.headers.is_empty() || args.url.is_some()) {
        return Err(super::UsageError(
            "--header and --url describe a --body request: give --body FILE (a --request file has its own headers and url)".into(),
        )
        .into());
    }
    let (call, file_settings) = match &args.body {
        Some(path) => (raw_request(path, &args.headers, args.url.as_deref())?, None),
        None => read_call(args.event.as_deref(), args.request.as_deref())?,
    };
    let settings = match (&args.tenant.settings, file_settings) {
        (None, Some(settings)) => settings,
        (path, _) => read_settings(path.as_deref())?,
    };
    let limits = args.limits.limits();
    let function = load_function(&args.function, &args.target, limits.deadline).await?;
    let options = InvokeOptions {
        limits,
        client: FetchClient::new(policy)?,
        redactor: Arc::new(
            Redactor::from_settings(&settings, &args.tenant.secrets).context("the settings")?,
        ),
        capture_bodies: true,
    };
    let report = function.invoke(&options, call, settings).await;
    placeholder_hint(&report);
    let text = if args.json {
        serde_json::to_string(&report)? + "\n"
    } else {
        report.render(std::io::stdout().is_terminal())
    };
    // The exit status says what the function did, whether or not the reader of the
    // report kept reading (`segfn run ... | head`), so a closed pipe does not change it.
    match super::write_stdout(&text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing the report");
        }
        _ => {}
    }
    Ok(ExitCode::from(row(report.outcome.kind).exit_code))
}

/// The partner host `segfn new`'s templates write, which does not exist.
const PLACEHOLDER_HOST: &str = "api.partner.example";

/// When a request to the templates' placeholder partner failed on the network, says
/// what it is and how to run against a partner that answers.
fn placeholder_hint(report: &segfn_engine::Report) {
    let reached_placeholder = report.requests.iter().any(|r| {
        r.error.is_some()
            && r.sent_to.is_none()
            && r.url
                .split("://")
                .nth(1)
                .is_some_and(|rest| rest.starts_with(PLACEHOLDER_HOST))
            && !r.error.as_deref().is_some_and(|e| e.contains("allow-list"))
    });
    if reached_placeholder {
        eprintln!(
            "segfn: {PLACEHOLDER_HOST} is the template's placeholder partner and does not exist: \
             try `segfn demo .` (a partner built into segfn), or send its requests to a fake of \
             yours with --map-host '{PLACEHOLDER_HOST}=http://127.0.0.1:PORT'"
        );
    }
}

/// `Name: value`, as curl's `-H` takes it.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not `Name: value`"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{name:?} is not a header name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// The webhook `--body FILE` with `--header`s and `--url` makes.
fn raw_request(
    path: &Path,
    headers: &[(String, String)],
    url: Option<&str>,
) -> anyhow::Result<Call> {
    let bytes = read_input(path).context("reading the webhook's body")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the body in {} is not UTF-8 text", path.display()))?;
    let mut request = segfn_sdk::source::WebhookRequest::from_text(text);
    for (name, value) in headers {
        request = request.with_header(name, value);
    }
    if let Some(url) = url {
        reqwest::Url::parse(url).map_err(|e| super::UsageError(format!("--url {url:?}: {e}")))?;
        request = request.with_url(url);
    }
    Ok(Call::Request {
        request: request.to_value(),
    })
}

/// The call `--event` or `--request` names, and the settings a request file carries.
fn read_call(
    event: Option<&Path>,
    request: Option<&Path>,
) -> anyhow::Result<(Call, Option<Value>)> {
    match (event, request) {
        (_, Some(path)) => {
            let bytes = read_input(path).context("reading the request")?;
            let file = segfn_sdk::source::read_harness(&bytes)
                .with_context(|| format!("the request in {} is not usable", path.display()))?;
            let call = Call::Request {
                request: file.request.to_value(),
            };
            Ok((call, file.settings))
        }
        (Some(path), None) => {
            let bytes = read_input(path).context("reading the event")?;
            let call = segfn_engine::input::parse_delivery(&bytes)
                .with_context(|| format!("the event in {} is not usable", path.display()))?;
            Ok((call, None))
        }
        (None, None) => Err(super::UsageError("give --event FILE or --request FILE".into()).into()),
    }
}

/// The `.wasm` to run: the file itself, a crate directory built first, or a JavaScript
/// function pre-initialised first.
pub(crate) async fn wasm_path(path: &Path, target: &TargetDirArg) -> anyhow::Result<PathBuf> {
    if let Some(script) = super::build::script_of(path) {
        super::build::cached_script_module(&script, target).await
    } else if path.is_dir() {
        let (path, target) = (path.to_owned(), target.clone());
        tokio::task::spawn_blocking(move || build_function(&path, &target)).await?
    } else if path.is_file() {
        Ok(path.to_owned())
    } else {
        bail!(
            "{} does not exist: pass a .wasm file, a function crate directory or a .js script",
            path.display()
        );
    }
}

/// Loads a `.wasm`/`.wat` file, or builds a crate directory and loads the result;
/// loading (the start function included) may take up to `deadline`.
pub(crate) async fn load_function(
    path: &Path,
    target: &TargetDirArg,
    deadline: std::time::Duration,
) -> anyhow::Result<LoadedFunction> {
    let wasm = wasm_path(path, target).await?;
    let runtime = Runtime::new(&RuntimeOptions {
        pooling: false,
        disk_cache: true,
        load_deadline: deadline,
        ..RuntimeOptions::default()
    })
    .map_err(|e| anyhow::anyhow!("starting the engine: {e:#}"))?;
    runtime
        .load_file(&wasm)
        .await
        .with_context(|| format!("loading {}", wasm.display()))
}

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading stdin")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// Reads the settings file: a JSON object.
pub(crate) fn read_settings(path: Option<&Path>) -> anyhow::Result<Value> {
    let Some(path) = path else {
        return Ok(Value::Object(Default::default()));
    };
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read settings {}", path.display()))?;
    let value: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("the settings in {} are not valid JSON", path.display()))?;
    if !value.is_object() {
        bail!(
            "the settings in {} must be a JSON object of setting names to values",
            path.display()
        );
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(Debug, clap::Parser)]
    struct WithLimits {
        #[command(flatten)]
        limits: LimitArgs,
    }

    #[derive(Debug, clap::Parser)]
    struct WithTenant {
        #[command(flatten)]
        tenant: TenantArgs,
    }

    #[test]
    fn map_host_flags_make_the_policy() {
        let parsed = WithTenant::try_parse_from([
            "segfn",
            "--map-host",
            "*=127.0.0.1:9001",
            "--map-host",
            "api.partner.example=http://127.0.0.1:9000",
        ])
        .unwrap();
        assert_eq!(
            parsed.tenant.policy().unwrap().map().to_string(),
            "api.partner.example=http://127.0.0.1:9000, *=127.0.0.1:9001"
        );
        // A bad TARGET is refused by the parser, as a usage error.
        let err =
            WithTenant::try_parse_from(["segfn", "--map-host", "api.x=10.0.0.1:80"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("not a loopback address"), "{err}");
        // The same HOST twice is found once all flags are read, also a usage error.
        let twice = WithTenant::try_parse_from([
            "segfn",
            "--map-host",
            "api.x=127.0.0.1:1",
            "--map-host",
            "api.x=127.0.0.1:2",
        ])
        .unwrap();
        let err = twice.tenant.policy().unwrap_err();
        assert!(err.is::<super::super::UsageError>(), "{err:#}");
    }

    #[test]
    fn no_limit_flags_means_the_library_defaults() {
        let parsed = WithLimits::try_parse_from(["segfn"]).unwrap();
        assert_eq!(parsed.limits.limits(), Limits::default());
        let set = WithLimits::try_parse_from([
            "segfn",
            "--deadline-ms",
            "250",
            "--max-instructions",
            "9",
        ])
        .unwrap()
        .limits
        .limits();
        assert_eq!(set.deadline, std::time::Duration::from_millis(250));
        assert_eq!(set.instructions, Some(9));
    }
}
