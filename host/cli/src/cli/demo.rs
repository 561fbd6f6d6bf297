//! `segfn demo`: an example function run end to end, with no internet: a partner API
//! embedded in the CLI listens on 127.0.0.1, the host of the function's `endpoint`
//! setting is mapped to it (as `--map-host` does), the sample events (and, for a source
//! function, its sample webhook requests) go through the sandbox, and the report shows
//! what the partner received and what the function emitted.

use super::build::TargetDirArg;
use super::run::{load_function, read_settings};
use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, Uri};
use segfn_engine::outcome::row;
use segfn_engine::policy::HostMapping;
use segfn_engine::{FetchClient, FetchPolicy, HostMap, InvokeOptions, Limits, Redactor};
use serde_json::Value;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// The example function crate; its `events/*.json` (and a source function's
    /// `requests/*.json`, webhook requests) are run with its `settings.json`, whose
    /// `endpoint` host is mapped to the built-in partner API.
    #[arg(default_value = "functions/forwarder")]
    function: PathBuf,
    /// Also send requests for HOST to a server of yours on this machine (repeatable),
    /// as `segfn run --map-host` does, e.g. --map-host 'api.other.example=http://127.0.0.1:9000'.
    /// A mapping for the endpoint's host replaces the built-in partner.
    #[arg(long = "map-host", value_name = "HOST=TARGET")]
    map_hosts: Vec<HostMapping>,
    #[command(flatten)]
    target: TargetDirArg,
}

type Received = Arc<Mutex<Vec<String>>>;

async fn partner(
    State(received): State<Received>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> &'static str {
    let body = String::from_utf8_lossy(&body).into_owned();
    received
        .lock()
        .expect("not poisoned")
        .push(format!("{method} {uri} {body}"));
    "{\"ok\":true}"
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let samples = |sub: &str| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(args.function.join(sub))
            .map(|dir| {
                dir.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    };
    let (events, requests) = (samples("events"), samples("requests"));
    if events.is_empty() && requests.is_empty() {
        anyhow::bail!(
            "{} has no sample events (events/*.json) or webhook requests (requests/*.json): run from the segfn repository root, or pass an example's directory",
            args.function.display()
        );
    }

    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().fallback(partner).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    eprintln!("segfn demo: partner API listening on http://{addr}");

    let function = load_function(&args.function, &args.target, Limits::default().deadline).await?;
    let settings_file = args.function.join("settings.json");
    let mut settings = if settings_file.exists() {
        read_settings(Some(&settings_file))?
    } else {
        Value::Object(Default::default())
    };
    let mut mappings = args.map_hosts.clone();
    // The endpoint keeps its real URL and its host goes to the partner API, so the
    // report shows both; an endpoint that is not an http(s) URL is replaced instead.
    let endpoint_host = settings["endpoint"]
        .as_str()
        .and_then(|e| reqwest::Url::parse(e).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .and_then(|u| u.host_str().map(str::to_owned));
    match endpoint_host {
        Some(host) => {
            let builtin = HostMapping::parse_pair(&host, &format!("http://{addr}"))?;
            // Added last: a mapping of the user's for the same host wins.
            if !mappings.iter().any(|m| m.pattern() == builtin.pattern()) {
                eprintln!("segfn demo: requests to {host} go there (--map-host '{builtin}')");
                mappings.push(builtin);
            }
        }
        None => settings["endpoint"] = Value::String(format!("http://{addr}/v1")),
    }
    let map = HostMap::new(mappings).map_err(|e| super::UsageError(e.to_string()))?;
    let options = InvokeOptions {
        limits: Limits::default(),
        client: FetchClient::new(FetchPolicy::parse(&[addr.to_string()])?.with_map(map))?,
        redactor: Arc::new(Redactor::from_settings(&settings, &[]).context("the settings")?),
        capture_bodies: true,
    };
    let color = std::io::stdout().is_terminal();
    let calls = events
        .iter()
        .map(|p| (p, false))
        .chain(requests.iter().map(|p| (p, true)));
    for (path, request) in calls {
        let bytes = std::fs::read(path)?;
        let call = if request {
            let file = segfn_sdk::source::read_harness(&bytes)
                .with_context(|| format!("reading {}", path.display()))?;
            segfn_sdk::abi::Call::Request {
                request: file.request.to_value(),
            }
        } else {
            segfn_engine::input::parse_delivery(&bytes)
                .with_context(|| format!("reading {}", path.display()))?
        };
        received.lock().expect("not poisoned").clear();
        let report = function.invoke(&options, call, settings.clone()).await;
        let mut text = format!(
            "━━ {} ━━ exit status would be {}\n{}",
            path.display(),
            row(report.outcome.kind).exit_code,
            report.render(color)
        );
        for line in received.lock().expect("not poisoned").iter() {
            text.push_str(&format!(
                "  partner received: {}\n",
                options.redactor.redact(line)
            ));
        }
        text.push('\n');
        super::write_stdout(&text)?;
    }
    if requests.is_empty() && args.function == std::path::Path::new("functions/forwarder") {
        eprintln!(
            "segfn demo: a source function (a webhook into Segment calls): segfn demo functions/github-source"
        );
    }
    Ok(ExitCode::SUCCESS)
}
