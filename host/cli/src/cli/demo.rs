//! `segfn demo`: an example function run end to end, with no internet: a partner API
//! embedded in the CLI listens on 127.0.0.1, the host of the function's `endpoint`
//! setting is mapped to it (as `--map-host` does), the sample events go through the
//! sandbox, and the report shows what the partner received.

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
    /// The example function crate; its `events/*.json` are run with its `settings.json`,
    /// whose `endpoint` host is mapped to the built-in partner API.
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
    let events_dir = args.function.join("events");
    let mut events: Vec<PathBuf> = std::fs::read_dir(&events_dir)
        .with_context(|| format!("{} has no events/ directory of sample events (run from the segfn repository root, or pass an example's directory)", args.function.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    events.sort();

    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().fallback(partner).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    eprintln!("segfn demo: partner API listening on http://{addr}");

    let function = load_function(&args.function, &args.target, Limits::default().deadline).await?;
    let mut settings = read_settings(Some(&args.function.join("settings.json")))?;
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
    for path in &events {
        let bytes = std::fs::read(path)?;
        let call = segfn_engine::input::parse_delivery(&bytes)
            .with_context(|| format!("reading {}", path.display()))?;
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
    Ok(ExitCode::SUCCESS)
}
