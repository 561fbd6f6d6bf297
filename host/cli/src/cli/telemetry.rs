//! What `segfn serve` tells its operator: log lines on stderr and, with
//! `[server.traces]`, the engine's and the endpoint's `tracing` spans sent to an
//! OpenTelemetry collector over OTLP/HTTP.

use anyhow::{Context as _, bail};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use segfn_serve::config::TracesConfig;
use std::io::Read as _;
use std::time::Duration;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

/// How long one export to the collector may take; the batch is dropped after it.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most of a collector's answer read: a small protobuf message.
const MAX_ANSWER_BYTES: u64 = 64 << 10;

/// The exporter, if traces are on: [`Telemetry::shutdown`] sends what is buffered.
pub(crate) struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered (waiting for one export at most) and stops
    /// exporting.
    pub(crate) async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The exporter's blocking client must not be dropped on an async worker; an
        // export under way may take EXPORT_TIMEOUT, and the last one as long after it.
        let shutdown = move || provider.shutdown_with_timeout(EXPORT_TIMEOUT * 2);
        match tokio::task::spawn_blocking(shutdown).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "sending the last traces"),
            Err(e) => tracing::warn!(error = %e, "sending the last traces"),
        }
    }
}

/// Installs the global subscriber: log lines filtered by `$SEGFN_LOG` (default
/// `info`), JSON or text; and, when `traces` names an endpoint, the OpenTelemetry
/// layer that exports segfn's spans. Spans are never printed in log lines, so a line
/// reads the same with traces on or off.
pub(crate) async fn init(json: bool, traces: &TracesConfig) -> anyhow::Result<Telemetry> {
    let provider = match &traces.endpoint {
        Some(endpoint) => Some(provider(endpoint, traces).await?),
        None => None,
    };
    let filter = EnvFilter::try_from_env("SEGFN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Each per-layer filter says its most verbose level, so that with traces off the
    // global level stays the log filter's (spans and `log` records below it cost one
    // comparison), and span callsites are cached as never taken.
    let level = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let lines = filter.and(filter_fn(|meta| !meta.is_span()).with_max_level_hint(level));
    let fmt = fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().with_filter(lines).boxed()
    } else {
        fmt.with_filter(lines).boxed()
    };
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("segfn"))
            .with_threads(false)
            .with_filter(filter_fn(traced).with_max_level_hint(LevelFilter::INFO))
    });
    tracing_subscriber::registry().with(fmt).with(otel).init();
    Ok(Telemetry { provider })
}

/// What goes to the collector: segfn's own spans, and its log lines at `info` or
/// above as events of the span they happen in (a batch's per-event lines carry each
/// event's `messageId` and outcome). Not the libraries': the exporter's own HTTP
/// client would trace itself.
fn traced(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("segfn") && *meta.level() <= Level::INFO
}

/// The tracer provider: spans batched on the SDK's own thread and sent with a
/// blocking HTTP client there, so no export waits on or blocks the async workers.
async fn provider(endpoint: &str, config: &TracesConfig) -> anyhow::Result<SdkTracerProvider> {
    let url = traces_url(endpoint)?;
    let ratio = config.sample_ratio;
    if !(0.0..=1.0).contains(&ratio) {
        bail!("[server.traces] sample_ratio must be from 0.0 to 1.0, not {ratio}");
    }
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    // A blocking client starts its own runtime, which must not be built (or dropped)
    // on an async worker.
    tokio::task::spawn_blocking(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("the HTTP client for [server.traces]")?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(Collector(client))
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .context("the OTLP exporter for [server.traces]")?;
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::TraceIdRatioBased(ratio))
            .with_resource(resource)
            .build())
    })
    .await
    .context("starting the OTLP exporter")?
}

/// The collector's traces URL: `endpoint` with `/v1/traces` added (as OTLP's
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is read: `https://host/otlp` sends to
/// `https://host/otlp/v1/traces`), unless it already ends so.
fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(endpoint).with_context(|| {
        format!("[server.traces] endpoint {endpoint:?} is not a URL (like http://127.0.0.1:4318)")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!(
            "[server.traces] endpoint {endpoint:?}: OTLP/HTTP takes an http:// or https:// URL (like http://127.0.0.1:4318)"
        );
    }
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_owned();
    if !path.ends_with("/v1/traces") {
        url.set_path(&format!("{path}/v1/traces"));
    }
    Ok(url.to_string())
}

/// OTLP over this crate's reqwest (opentelemetry-otlp's own client feature would
/// compile a second reqwest and TLS stack).
#[derive(Debug)]
struct Collector(reqwest::blocking::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Collector {
    // Called on the batch processor's thread, which waits on it: blocking here holds
    // up no one else.
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.to_vec())
            .send()?;
        let status = response.status();
        // The headers too: the exporter reads `Retry-After` of a 429 or 503.
        let headers = response.headers().clone();
        let mut answer = Vec::new();
        response.take(MAX_ANSWER_BYTES).read_to_end(&mut answer)?;
        let mut out = http::Response::new(bytes::Bytes::from(answer));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_without_a_path_gets_the_traces_path() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://collector.example/").unwrap(),
            "https://collector.example/v1/traces"
        );
        assert_eq!(
            traces_url("https://collector.example/otlp/v1/traces").unwrap(),
            "https://collector.example/otlp/v1/traces"
        );
        assert_eq!(
            traces_url("https://otlp.example.net/otlp").unwrap(),
            "https://otlp.example.net/otlp/v1/traces"
        );
        assert_eq!(
            traces_url("https://otlp.example.net/otlp/").unwrap(),
            "https://otlp.example.net/otlp/v1/traces"
        );
    }

    #[test]
    fn an_endpoint_that_is_not_http_is_refused_with_an_example() {
        for bad in ["127.0.0.1:4318", "grpc://127.0.0.1:4317", "not a url"] {
            let error = traces_url(bad).unwrap_err().to_string();
            assert!(error.contains("http://127.0.0.1:4318"), "{bad}: {error}");
        }
    }
}
