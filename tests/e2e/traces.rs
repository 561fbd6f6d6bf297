//! `[server.traces]`: the spans of `segfn serve` (delivery, queued event, webhook,
//! invocation, fetch) reach an OTLP/HTTP collector on 127.0.0.1, parented and with the
//! tenant and messageId, and carry none of the tenant's secrets; without the setting
//! nothing is sent. And the engine's own spans, as any subscriber sees them, stay
//! bounded by the fetch limit.

use crate::support::{Answer, Partner, example_wasm, listening_url, segfn, segment_post, track};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span, status::StatusCode};
use prost::Message as _;
use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const API_KEY_SECRET: &str = "sk_live_trace_api_key";
const PATH_SECRET: &str = "tok_trace_path_secret";

/// Starts `segfn serve` with the forwarder and one tenant whose settings hold two
/// secrets (the API key by its name, the endpoint, with a token in its path, declared);
/// `server` goes in `[server]`.
fn serve(dir: &Path, partner: &Partner, server: &str, env: &[(&str, String)]) -> (Child, String) {
    let config = dir.join("segfn.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nstore = {store:?}\n{server}\n\
             [[tenant]]\nname = \"acme\"\napi_key = \"key-acme\"\nallow_hosts = [{addr:?}]\n\
             secret_settings = [\"endpoint\"]\n\
             settings = {{ apiKey = {API_KEY_SECRET:?}, endpoint = {endpoint:?} }}\n",
            store = dir.join("store.redb").display().to_string(),
            addr = partner.addr.to_string(),
            endpoint = partner.url(&format!("/acme/{PATH_SECRET}")),
        ),
    )
    .unwrap();
    spawn(&example_wasm("forwarder"), &config, env)
}

/// `segfn serve WASM --config CONFIG` on a free port of 127.0.0.1, with `env` set.
fn spawn(wasm: &Path, config: &Path, env: &[(&str, String)]) -> (Child, String) {
    let mut command = segfn();
    command
        .arg("serve")
        .arg(wasm)
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawning segfn serve");
    let base = listening_url(&mut child);
    (child, base)
}

/// Stops the server as an operator does (SIGTERM) and waits for it to exit, which
/// sends the spans it still holds (to a collector on this test's runtime: the wait
/// must not block it); returns what it logged.
async fn stop(mut child: Child) -> String {
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0, "sending SIGTERM");
    let until = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < until,
            "segfn serve did not exit on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut logged = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut logged)
        .unwrap();
    logged
}

/// Delivers a "Signed Up" track for `user` (with `message_id`, if given) to the server
/// at `base` as tenant acme; the answer's status.
async fn deliver(base: &str, user: &str, message_id: Option<&str>) -> u16 {
    let mut event = track("Signed Up", user);
    if let Some(id) = message_id {
        event["messageId"] = id.into();
    }
    segment_post(base, "key-acme", serde_json::to_vec(&event).unwrap())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn text<'a>(span: &'a Span, key: &str) -> &'a str {
    match attribute(&span.attributes, key) {
        Some(any_value::Value::StringValue(s)) => s,
        other => panic!("span {:?}: {key} is {other:?}", span.name),
    }
}

fn int(span: &Span, key: &str) -> i64 {
    match attribute(&span.attributes, key) {
        Some(any_value::Value::IntValue(i)) => *i,
        other => panic!("span {:?}: {key} is {other:?}", span.name),
    }
}

#[tokio::test]
async fn deliveries_are_traced_to_an_otlp_collector_without_their_secrets() {
    let partner = Partner::start().await;
    let collector = Partner::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve(
        dir.path(),
        &partner,
        &format!(
            "[server.traces]\nendpoint = {:?}\nservice_name = \"segfn-test\"",
            collector.url("")
        ),
        &[],
    );

    assert_eq!(deliver(&base, "u1", Some("m-trace-1")).await, 200);
    // The partner fails the second: a retry, whose reason (the partner's answer and
    // the URL) goes to the collector as the event line in the delivery's span.
    partner.answer(Answer::status(500));
    assert_eq!(deliver(&base, "u2", Some("m-trace-2")).await, 500);
    assert_eq!(partner.received().len(), 2);
    let logged = stop(child).await;
    // Log lines read as without traces: one per event, no span names or fields.
    let lines: Vec<&str> = logged.lines().filter(|l| l.contains(": event ")).collect();
    assert_eq!(lines.len(), 2, "{logged}");
    assert!(lines[0].contains("message_id=\"m-trace-1\""), "{logged}");
    for span in ["delivery{", "invocation{", "fetch{", "segfn.tenant"] {
        assert!(!logged.contains(span), "{span} in the log:\n{logged}");
    }

    let exports: Vec<_> = collector
        .received()
        .into_iter()
        .filter(|r| r.path == "/v1/traces")
        .collect();
    assert!(!exports.is_empty(), "nothing reached the collector");
    for export in &exports {
        assert_eq!(export.method, "POST");
        assert_eq!(export.headers["content-type"], "application/x-protobuf");
        for secret in [API_KEY_SECRET, PATH_SECRET] {
            assert!(
                !export
                    .body
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes()),
                "a secret reached the collector: {secret}"
            );
        }
    }
    let resources = resources_received(&collector);
    for resource_spans in &resources {
        let resource = resource_spans.resource.as_ref().unwrap();
        assert!(matches!(
            attribute(&resource.attributes, "service.name"),
            Some(any_value::Value::StringValue(name)) if name == "segfn-test"
        ));
    }
    let spans = spans_of(resources);
    let named = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    let (deliveries, invocations, fetches) =
        (named("delivery"), named("invocation"), named("fetch"));
    assert_eq!(
        (deliveries.len(), invocations.len(), fetches.len()),
        (2, 2, 2),
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );

    for (id, status, partner_status) in [("m-trace-1", 200, 200), ("m-trace-2", 500, 500)] {
        let delivery = deliveries
            .iter()
            .find(|s| text(s, "segfn.message_id") == id)
            .unwrap_or_else(|| panic!("no delivery span for {id}"));
        assert_eq!(text(delivery, "segfn.tenant"), "acme");
        assert_eq!(int(delivery, "segfn.events"), 1);
        assert_eq!(int(delivery, "http.response.status_code"), status);
        // The per-event log line, as an event of the delivery's span.
        let line = delivery
            .events
            .iter()
            .find(|e| e.name == "event")
            .expect("the event's log line in its delivery's span");
        assert!(matches!(
            attribute(&line.attributes, "message_id"),
            Some(any_value::Value::StringValue(m)) if m == id
        ));

        let invocation = invocations
            .iter()
            .find(|s| s.parent_span_id == delivery.span_id)
            .unwrap_or_else(|| panic!("no invocation under the delivery of {id}"));
        assert_eq!(invocation.trace_id, delivery.trace_id);
        assert_eq!(text(invocation, "segfn.call"), "event");
        assert!(int(invocation, "segfn.instructions") > 0);

        let fetch = fetches
            .iter()
            .find(|s| s.parent_span_id == invocation.span_id)
            .unwrap_or_else(|| panic!("no fetch under the invocation of {id}"));
        assert_eq!(fetch.trace_id, delivery.trace_id);
        assert_eq!(text(fetch, "http.request.method"), "POST");
        assert_eq!(text(fetch, "url.full"), "[redacted]/track");
        assert_eq!(int(fetch, "http.response.status_code"), partner_status);
        let error = fetch.status.as_ref().map(|s| s.code) == Some(StatusCode::Error as i32);
        assert_eq!(error, partner_status >= 400);
        assert!(fetch.start_time_unix_nano >= invocation.start_time_unix_nano);
        assert!(fetch.end_time_unix_nano <= invocation.end_time_unix_nano);
    }
    assert_ne!(deliveries[0].trace_id, deliveries[1].trace_id);
}

/// Every export the collector received, decoded, by resource.
fn resources_received(collector: &Partner) -> Vec<ResourceSpans> {
    collector
        .received()
        .into_iter()
        .filter(|r| r.path == "/v1/traces")
        .flat_map(|export| {
            ExportTraceServiceRequest::decode(export.body.as_slice())
                .unwrap()
                .resource_spans
        })
        .collect()
}

/// The spans of `resources`, whatever their scope.
fn spans_of(resources: Vec<ResourceSpans>) -> Vec<Span> {
    resources
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|scope| scope.spans)
        .collect()
}

/// Every span the collector received.
fn spans_received(collector: &Partner) -> Vec<Span> {
    spans_of(resources_received(collector))
}

#[tokio::test]
async fn a_queued_events_run_has_a_trace_of_its_own() {
    let partner = Partner::start().await;
    let collector = Partner::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve(
        dir.path(),
        &partner,
        &format!(
            "durable = true\n[server.traces]\nendpoint = {:?}",
            collector.url("")
        ),
        &[],
    );
    assert_eq!(deliver(&base, "u1", Some("m-queued-1")).await, 202);
    let until = Instant::now() + Duration::from_secs(20);
    while partner.received().is_empty() {
        assert!(Instant::now() < until, "the queued event never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(child).await;

    let spans = spans_received(&collector);
    let queued: Vec<&Span> = spans.iter().filter(|s| s.name == "queued event").collect();
    assert_eq!(
        queued.len(),
        1,
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let run = queued[0];
    assert_eq!(text(run, "segfn.tenant"), "acme");
    assert_eq!(text(run, "segfn.message_id"), "m-queued-1");
    assert_eq!(int(run, "segfn.attempt"), 1);
    let invocation = spans
        .iter()
        .find(|s| s.name == "invocation" && s.parent_span_id == run.span_id)
        .expect("the run's invocation under its span");
    assert_eq!(text(invocation, "segfn.outcome"), "success");
    assert!(
        spans
            .iter()
            .any(|s| s.name == "fetch" && s.parent_span_id == invocation.span_id)
    );
    // The delivery that queued it is a trace of its own, answered 202.
    let delivery = spans
        .iter()
        .find(|s| s.name == "delivery")
        .expect("the delivery's span");
    assert_eq!(int(delivery, "http.response.status_code"), 202);
    assert_ne!(delivery.trace_id, run.trace_id);
}

#[tokio::test]
async fn a_webhook_has_its_span_without_its_token() {
    const TOKEN: &str = "gh-hook-trace-5b2c9e0a7f13d4c6";
    // The partner stands in for Segment's Tracking API (it answers every POST 200).
    let segment = Partner::start().await;
    let collector = Partner::start().await;
    let dir = tempfile::tempdir().unwrap();
    let script = crate::sources::sources_dir().join("github/handler.js");
    let wasm =
        tokio::task::spawn_blocking(move || crate::javascript::js_wasm("source-github", &script))
            .await
            .unwrap();
    let config = dir.path().join("segfn.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nstore = {store:?}\n[server.traces]\nendpoint = {endpoint:?}\n\
             [[source]]\nname = \"github\"\ntoken = {TOKEN:?}\nwrite_key = \"wk_trace\"\n\
             tracking_api = {tracking:?}\nobjects_api = {tracking:?}\n",
            store = dir.path().join("store.redb").display().to_string(),
            endpoint = collector.url(""),
            tracking = segment.url(""),
        ),
    )
    .unwrap();
    let (child, base) = spawn(&wasm, &config, &[]);
    let example = std::fs::read(
        crate::sources::sources_dir().join("github/webhook-examples/issue-opened.json"),
    )
    .unwrap();
    let body = serde_json::from_slice::<serde_json::Value>(&example).unwrap()["payload"]["body"]
        .to_string();
    let status = crate::support::client()
        .post(format!("{base}/webhooks/{TOKEN}"))
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(
        segment.received().len(),
        1,
        "the track reached the Tracking API"
    );
    stop(child).await;

    for export in collector.received() {
        assert!(
            !export
                .body
                .windows(TOKEN.len())
                .any(|w| w == TOKEN.as_bytes()),
            "the webhook's token reached the collector"
        );
    }
    let spans = spans_received(&collector);
    let webhook = spans
        .iter()
        .find(|s| s.name == "webhook")
        .unwrap_or_else(|| panic!("{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()));
    assert_eq!(text(webhook, "segfn.source"), "github");
    assert_eq!(int(webhook, "http.response.status_code"), 200);
    let invocation = spans
        .iter()
        .find(|s| s.name == "invocation" && s.parent_span_id == webhook.span_id)
        .expect("the webhook's invocation under its span");
    assert_eq!(text(invocation, "segfn.call"), "request");
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_sent_even_when_the_environment_names_a_collector() {
    let partner = Partner::start().await;
    let collector = Partner::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The standard OpenTelemetry variables, set for some other program: segfn's traces
    // are on only through `[server.traces]`, --otlp-endpoint or $SEGFN_OTLP_ENDPOINT.
    let (child, base) = serve(
        dir.path(),
        &partner,
        "",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url("")),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                collector.url("/v1/traces"),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "10".into()),
        ],
    );
    assert_eq!(deliver(&base, "u1", None).await, 200);
    stop(child).await;
    assert_eq!(partner.received().len(), 1);
    assert!(collector.received().is_empty());

    // The same server with the flag: the collector hears of it.
    let (child, base) = serve(
        dir.path(),
        &partner,
        "",
        &[("SEGFN_OTLP_ENDPOINT", collector.url(""))],
    );
    assert_eq!(deliver(&base, "u2", None).await, 200);
    stop(child).await;
    assert!(
        collector.received().iter().any(|r| r.path == "/v1/traces"),
        "$SEGFN_OTLP_ENDPOINT turns traces on"
    );
}

/// The names and recorded `url.full` values of the spans made while it is the
/// thread's subscriber: the engine's spans as any embedder's subscriber sees them.
#[derive(Clone, Default)]
struct Spans(std::sync::Arc<std::sync::Mutex<Vec<SpanSeen>>>);

/// A span's name and the `url.full` recorded in it, if any.
type SpanSeen = (String, Option<String>);

struct UrlOf<'a>(&'a mut Option<String>);

impl tracing::field::Visit for UrlOf<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "url.full" {
            *self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut url = None;
        attrs.record(&mut UrlOf(&mut url));
        let mut spans = self.0.lock().unwrap();
        spans.push((attrs.metadata().name().to_owned(), url));
    }
    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut url = None;
        values.record(&mut UrlOf(&mut url));
        if let Some(url) = url {
            // Only `fetch` spans record a URL, and each right after its creation.
            if let Some(last) = self.0.lock().unwrap().last_mut() {
                last.1 = Some(url);
            }
        }
    }
}

#[tokio::test]
async fn a_fetch_loop_adds_spans_only_up_to_the_fetch_limit_and_urls_are_cut() {
    use crate::support::{WatGuest, fetch_frame, invoke_event, options};
    use segfn_engine::Limits;
    use tracing_subscriber::layer::SubscriberExt as _;

    // 50 fetches of a 5,000-character URL (refused: nothing is allowed) under a limit of 3.
    let url = format!("http://127.0.0.1:9/{}", "a".repeat(5000));
    let frame = fetch_frame("GET", &url);
    let body = format!(
        "(local $i i32)
         (loop $again
           (drop (call $fetch (i32.const 4096) (i32.const {len})))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br_if $again (i32.lt_u (local.get $i) (i32.const 50))))",
        len = frame.len()
    );
    let guest = WatGuest {
        handle_body: &body,
        data: vec![(4096, frame)],
        ..WatGuest::default()
    };
    let function = guest.load().await.expect("the guest loads");
    let limits = Limits {
        fetches: 3,
        ..Limits::default()
    };
    let opts = options(&[], &serde_json::json!({}), limits);

    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let report = invoke_event(
        &function,
        &opts,
        track("Looped", "u1"),
        serde_json::json!({}),
    )
    .await;
    drop(_default);

    let spans = spans.0.lock().unwrap().clone();
    let fetches: Vec<_> = spans.iter().filter(|(name, _)| name == "fetch").collect();
    // As the report's trace: the three allowed and the first refused past the limit.
    assert_eq!(report.requests.len(), 4);
    assert_eq!(
        fetches.len(),
        4,
        "{:?}",
        spans.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    assert_eq!(
        spans
            .iter()
            .filter(|(name, _)| name == "invocation")
            .count(),
        1
    );
    for (_, url) in fetches {
        let url = url.as_deref().expect("url.full recorded");
        assert!(url.len() < 2100, "{} bytes", url.len());
        assert!(url.starts_with("http://127.0.0.1:9/aaaa"), "{url:.40}");
        assert!(url.ends_with("more bytes)"), "{}", &url[url.len() - 40..]);
    }
}
