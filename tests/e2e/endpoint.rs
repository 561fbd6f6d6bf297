//! The endpoint under attack and at its edges, served in-process on 127.0.0.1: slow and
//! half-open connections, huge headers, cleartext HTTP/2, bodies refused before they
//! are read, one tenant starving others, hostile settings, signatures that cover less
//! than they seem, compressed bodies, and what a delivery's answer and log carry.
//! Each attack is bounded in count and time; the endpoint must keep answering
//! `/healthz` and valid deliveries within 1 s throughout.

use crate::support::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use segfn_serve::auth;
use serde_json::{Value, json};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// `segfn serve` running in this process until dropped.
struct Endpoint {
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Endpoint {
    /// Serves `function` with `[server]` lines and tenants (a store in a temp dir).
    async fn start(function: &Path, server: &str, rest: &str) -> Endpoint {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segfn.toml");
        let store = dir.path().join("store.redb");
        std::fs::write(
            &path,
            format!("[server]\nstore = {store:?}\n{server}\n{rest}"),
        )
        .unwrap();
        let (addr, stop) = serve_in_process(&path, function).await;
        Endpoint {
            addr,
            stop,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` as Segment does, with extra headers; returns status and JSON.
    async fn post(&self, key: &str, body: Vec<u8>, headers: &[(&str, String)]) -> (u16, Value) {
        let mut req = segment_post(&self.url(""), key, body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.expect("the endpoint answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn deliver(&self, key: &str, body: &Value) -> (u16, Value) {
        self.post(key, serde_json::to_vec(body).unwrap(), &[]).await
    }

    async fn metrics(&self) -> String {
        client()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `/healthz` answers 200 within 1 s.
    async fn assert_healthy(&self) {
        let started = Instant::now();
        let status = tokio::time::timeout(
            Duration::from_secs(1),
            client().get(self.url("/healthz")).send(),
        )
        .await
        .expect("/healthz within 1 s")
        .expect("/healthz answers")
        .status();
        assert_eq!(status, 200, "after {:?}", started.elapsed());
    }

    /// A raw connection with `head` written (and nothing more).
    async fn raw(&self, head: &[u8]) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(head).await.unwrap();
        stream
    }
}

/// Reads what the server sends until it closes or `within` passes; returns the text
/// and whether it closed.
pub(crate) async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

/// A WAT guest compiled into `dir`.
fn wasm_file(dir: &Path, name: &str, guest: &WatGuest<'_>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, wat::parse_str(guest.wat()).unwrap()).unwrap();
    path
}

/// A guest that logs the envelope it was given and succeeds.
fn logs_its_input() -> WatGuest<'static> {
    WatGuest {
        handle_body: "(call $log (i32.const 1) (local.get $ptr) (local.get $len))",
        ..WatGuest::default()
    }
}

async fn forwarder() -> PathBuf {
    tokio::task::spawn_blocking(|| example_wasm("forwarder"))
        .await
        .unwrap()
}

fn forwarder_tenant(name: &str, key: &str, partner: &Partner, extra: &str) -> String {
    format!(
        "[[tenant]]\nname = {name:?}\napi_key = {key:?}\nallow_hosts = [{:?}]\nsettings = {{ apiKey = \"sk_{name}_secret\", endpoint = {:?} }}\n{extra}\n",
        partner.addr.to_string(),
        partner.url(&format!("/{name}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_half_open_connections_cannot_lock_anyone_out() {
    slow_and_half_open_connections("").await;
}

/// The same with connections on the shared multi-thread runtime (`connection_threads =
/// 0`) instead of threads of their own (the default, above): the cap, the eviction and
/// the header timeout hold either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_half_open_connections_cannot_lock_anyone_out_of_the_shared_runtime() {
    slow_and_half_open_connections("\nconnection_threads = 0").await;
}

async fn slow_and_half_open_connections(server_extra: &str) {
    let partner = Partner::start().await;
    let f = forwarder().await;
    let ep = Endpoint::start(
        &f,
        &format!("max_connections = 16\nheader_timeout_ms = 1500{server_extra}"),
        &forwarder_tenant("b", "key-b", &partner, ""),
    )
    .await;
    // 200 connections that send half a request line or half the headers and stall.
    let mut held = Vec::new();
    for i in 0..200 {
        let head: &[u8] = if i % 2 == 0 {
            b"POST / HT"
        } else {
            b"POST / HTTP/1.1\r\nHost: a\r\nX-Slow: "
        };
        held.push(ep.raw(head).await);
    }
    for i in 0..5 {
        ep.assert_healthy().await;
        let started = Instant::now();
        let (status, body) = ep.deliver("key-b", &track("E", &format!("u{i}"))).await;
        assert_eq!(status, 200, "{body}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let metrics = ep.metrics().await;
    let open: i64 = metric_value(&metrics, "segfn_connections ").unwrap() as i64;
    assert!(open <= 16, "{open} connections open with a cap of 16");
    assert!(
        metric_value(&metrics, "segfn_connections_evicted_total").unwrap() >= 180.0,
        "{metrics}"
    );

    // A connection that stalls in its headers is closed after the header timeout,
    // and so is a keep-alive connection that stays idle.
    let mut stalled = ep.raw(b"POST / HTTP/1.1\r\nHost: a\r\n").await;
    let mut idle = ep.raw(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stalled, Duration::from_secs(4)).await;
    assert!(closed, "a stalled request head was not closed");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    let (text, closed) = read_until_closed(&mut idle, Duration::from_secs(4)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle keep-alive connection was not closed");
    drop(held);
}

fn metric_value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn huge_headers_get_431_and_cleartext_http2_is_not_spoken() {
    let dir = tempfile::tempdir().unwrap();
    let f = wasm_file(dir.path(), "ok.wasm", &WatGuest::default());
    let ep = Endpoint::start(&f, "", "[[tenant]]\nname = \"a\"\napi_key = \"key-a\"\n").await;
    let junk = "x".repeat(200 << 10);
    let mut s = ep
        .raw(format!("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Junk: {junk}\r\n\r\n").as_bytes())
        .await;
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(2)).await;
    assert!(
        text.starts_with("HTTP/1.1 431"),
        "{}",
        &text[..text.len().min(100)]
    );

    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert!(
        h2.get(ep.url("/healthz")).send().await.is_err(),
        "h2c prior knowledge must fail: the endpoint speaks HTTP/1.1 only"
    );
    ep.assert_healthy().await;
}

#[tokio::test]
async fn what_needs_no_body_is_refused_before_the_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let f = wasm_file(dir.path(), "ok.wasm", &WatGuest::default());
    let ep = Endpoint::start(
        &f,
        "max_body_bytes = 1048576",
        "[[tenant]]\nname = \"a\"\napi_key = \"key-a\"\n[[tenant]]\nname = \"s\"\napi_key = \"key-s\"\nshared_secret = \"sh\"\n",
    )
    .await;
    let head = |key: &str, length: &str| {
        format!(
            "POST / HTTP/1.1\r\nHost: a\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
            basic(key)
        )
    };
    let max = u64::MAX;
    for (request, expected) in [
        (head("key-a", &(100u64 << 20).to_string()), "HTTP/1.1 413"),
        (head("key-a", &(max - 2).to_string()), "HTTP/1.1 413"),
        // Lengths the HTTP parser (hyper) cannot represent are refused by it, before
        // segfn's code runs: 431 for the two it keeps as markers, 400 past u64.
        (head("key-a", &max.to_string()), "HTTP/1.1 431"),
        (head("key-a", "18446744073709551616"), "HTTP/1.1 400"),
        (head("key-a", "-1"), "HTTP/1.1 400"),
        (head("key-s", "1000"), "HTTP/1.1 401"),
        (head("wrong", "1000"), "HTTP/1.1 401"),
    ] {
        let started = Instant::now();
        let mut s = ep.raw(request.as_bytes()).await;
        let (text, _) = read_until_closed(&mut s, Duration::from_millis(800)).await;
        assert!(text.starts_with(expected), "{expected}: {text}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    ep.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_slow_bodies_and_spinning_guests_leave_others_alone() {
    let partner = Partner::start().await;
    let dir = tempfile::tempdir().unwrap();
    let spin = wasm_file(
        dir.path(),
        "spin.wasm",
        &WatGuest {
            handle_body: "(loop $l (br $l))",
            ..WatGuest::default()
        },
    );
    let f = forwarder().await;
    let ep = Endpoint::start(
        &f,
        "max_in_flight = 8\nbody_timeout_ms = 3000\n[limits]\ndeadline_ms = 2000",
        &format!(
            "[[tenant]]\nname = \"noisy\"\napi_key = \"key-n\"\nfunction = {spin:?}\n{}",
            forwarder_tenant("b", "key-b", &partner, "")
        ),
    )
    .await;
    // The noisy tenant's share is half of 8: 4 invocations, 8 bodies being read.
    let spinning: Vec<_> = (0..10)
        .map(|i| {
            let body = serde_json::to_vec(&track("Spin", &format!("n{i}"))).unwrap();
            let pending = segment_post(&ep.url(""), "key-n", body).send();
            tokio::spawn(async move {
                let resp = pending.await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.text().await.unwrap())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut slow = Vec::new();
    for _ in 0..12 {
        let head = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{{\"type\":",
            basic("key-n")
        );
        slow.push(ep.raw(head.as_bytes()).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        ep.assert_healthy().await;
        let started = Instant::now();
        let (status, body) = ep.deliver("key-b", &track("E", &format!("b{i}"))).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    let mut throttled = 0;
    for s in spinning {
        let (status, text) = s.await.unwrap();
        if status == 429 {
            assert!(text.contains("this tenant"), "{text}");
            throttled += 1;
        }
    }
    assert!(
        throttled >= 6,
        "only {throttled} of the noisy tenant's 10 were throttled"
    );
    drop(slow);
}

#[tokio::test]
async fn hostile_settings_headers_are_bounded() {
    let partner = Partner::start().await;
    let f = forwarder().await;
    let ep = Endpoint::start(&f, "", &forwarder_tenant("b", "key-b", &partner, "")).await;
    // 5,000 strings under a secret-named setting: refused at once.
    let many: Vec<String> = (0..5_000).map(|i| format!("k{i:04}")).collect();
    let header = STANDARD.encode(serde_json::to_vec(&json!({ "apiKeys": many })).unwrap());
    assert!(header.len() < 60 << 10, "{}", header.len());
    let started = Instant::now();
    let (status, body) = ep
        .post(
            "key-b",
            serde_json::to_vec(&track("E", "u1")).unwrap(),
            &[("x-segment-settings", header)],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("more than 256 secret values"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // 20,000 of them (the 8 s attack) no longer fit the head limit: 431 before any
    // work.
    let many: Vec<String> = (0..20_000).map(|i| format!("k{i:05}")).collect();
    let huge = STANDARD.encode(serde_json::to_vec(&json!({ "apiKeys": many })).unwrap());
    let resp = client()
        .post(ep.url("/"))
        .header("authorization", basic("key-b"))
        .header("content-type", "application/json")
        .header("x-segment-settings", huge)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    ep.assert_healthy().await;
}

/// The attack that stalled a core for a minute: long, repetitive, overlapping values
/// under secret-named settings in `X-Segment-Settings` (a 43 KB header; 32,000
/// characters took 55 s to build a redactor for, on the async workers). Four such
/// headers at once, each new (so none is cached): every one is answered within 2 s,
/// and meanwhile another tenant's deliveries and `/healthz` within 1 s. A value past the
/// cap on one secret is refused at once, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_secret_settings_cost_linear_time_and_stall_no_one() {
    let partner = Partner::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = wasm_file(dir.path(), "log.wasm", &logs_its_input());
    let f = forwarder().await;
    let ep = Endpoint::start(
        &f,
        "",
        &format!(
            "[[tenant]]\nname = \"noisy\"\napi_key = \"key-n\"\nfunction = {log:?}\ndebug_responses = true\n{}",
            forwarder_tenant("b", "key-b", &partner, "")
        ),
    )
    .await;
    // Five values of 8 KiB (the cap on one): repetitive, overlapping, distinct per request.
    let header = |n: usize| {
        let values: Vec<String> = (0..5)
            .map(|i| "ab".repeat(4096 - i - n) + &"a".repeat(2 * (i + n)))
            .collect();
        STANDARD.encode(serde_json::to_vec(&json!({ "apiTokens": values })).unwrap())
    };
    assert!(header(0).len() > 50_000, "{}", header(0).len());
    let started = Instant::now();
    let noisy: Vec<_> = (0..4)
        .map(|n| {
            let body = serde_json::to_vec(&track("E", &format!("n{n}"))).unwrap();
            let pending = segment_post(&ep.url(""), "key-n", body)
                .header("x-segment-settings", header(n))
                .send();
            tokio::spawn(async move {
                let resp = pending.await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.text().await.unwrap(), started.elapsed())
            })
        })
        .collect();
    for i in 0..3 {
        ep.assert_healthy().await;
        let asked = Instant::now();
        let (status, body) = ep.deliver("key-b", &track("E", &format!("b{i}"))).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
    }
    for request in noisy {
        let (status, text, took) = request.await.unwrap();
        assert_eq!(status, 200, "{text}");
        assert!(took < Duration::from_secs(2), "answered after {took:?}");
        // The guest logged the settings it was given: every value redacted.
        assert!(
            text.contains("[redacted]") && !text.contains("abababab"),
            "{text}"
        );
    }
    // One value past 8 KiB: 400 at once.
    let long = STANDARD.encode(
        serde_json::to_vec(&json!({ "nested": { "apiToken": "ab".repeat(5000) } })).unwrap(),
    );
    let asked = Instant::now();
    let (status, body) = ep
        .post(
            "key-n",
            serde_json::to_vec(&track("E", "n9")).unwrap(),
            &[("x-segment-settings", long)],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("\"apiToken\" holds a value longer than 8 KiB"),
        "{message}"
    );
    assert!(asked.elapsed() < Duration::from_secs(1));
    ep.assert_healthy().await;
}

#[tokio::test]
async fn secrets_nested_at_any_depth_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let f = wasm_file(dir.path(), "log.wasm", &logs_its_input());
    let ep = Endpoint::start(
        &f,
        "",
        "[[tenant]]\nname = \"a\"\napi_key = \"key-a\"\ndebug_responses = true\nsettings = { nested = { token = \"tok-NESTED-1234\" }, list = [{ password = \"pw-IN-A-LIST\" }] }\n",
    )
    .await;
    let (status, body) = ep.deliver("key-a", &track("E", "u1")).await;
    assert_eq!(status, 200, "{body}");
    let report = body["report"].to_string();
    assert!(report.contains("[redacted]"), "{report}");
    assert!(
        !report.contains("tok-NESTED-1234") && !report.contains("pw-IN-A-LIST"),
        "{report}"
    );
}

#[tokio::test]
async fn message_ids_are_bounded_and_each_tenants_store_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let f = wasm_file(dir.path(), "ok.wasm", &WatGuest::default());
    let ep = Endpoint::start(
        &f,
        "max_dedupe_entries = 2",
        "[[tenant]]\nname = \"a\"\napi_key = \"key-a\"\n",
    )
    .await;
    let long = json!({"type": "track", "event": "E", "messageId": "m".repeat(300)});
    let (status, body) = ep.deliver("key-a", &long).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("longer than 256 bytes")
    );
    for id in ["m1", "m2", "m3"] {
        let (status, _) = ep
            .deliver("key-a", &json!({"type": "track", "messageId": id}))
            .await;
        assert_eq!(status, 200);
    }
    let metrics = ep.metrics().await;
    assert!(
        metrics.contains("segfn_dedupe_entries{tenant=\"a\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("segfn_dedupe_evicted_total{tenant=\"a\"} 1"),
        "{metrics}"
    );
    // m1 was forgotten early, so it runs again; m3 is remembered.
    let (_, body) = ep
        .deliver("key-a", &json!({"type": "track", "messageId": "m1"}))
        .await;
    assert_eq!(body["message"], "ok", "{body}");
    let (_, body) = ep
        .deliver("key-a", &json!({"type": "track", "messageId": "m3"}))
        .await;
    assert!(
        body["message"].as_str().unwrap().starts_with("duplicate"),
        "{body}"
    );
}

#[tokio::test]
async fn batch_signatures_and_pinned_settings() {
    let partner = Partner::start().await;
    let f = forwarder().await;
    let tenants = format!(
        "{}{}",
        forwarder_tenant(
            "strict",
            "key-strict",
            &partner,
            "shared_secret = \"sh\"\nbatch_signature = \"whole_body\"\noverridable_settings = [\"region\"]"
        ),
        forwarder_tenant("lenient", "key-lenient", &partner, "shared_secret = \"sh\"")
    );
    let ep = Endpoint::start(&f, "", &tenants).await;
    let signed = track("Signed", "u1");
    let signature = auth::sign("sh", &serde_json::to_vec(&signed).unwrap());
    let forged = serde_json::to_vec(&json!([signed, track("Forged", "u2")])).unwrap();
    let sig = |s: &str| vec![("x-signature", s.to_owned())];

    let (status, body) = ep
        .post("key-strict", forged.clone(), &sig(&signature))
        .await;
    assert_eq!(
        status, 401,
        "whole_body refuses a batch signed over its first event: {body}"
    );
    let whole = auth::sign("sh", &forged);
    let (status, body) = ep.post("key-strict", forged.clone(), &sig(&whole)).await;
    assert_eq!(status, 200, "{body}");
    // Segment's own scheme (first_event) cannot tell: documented in the README.
    let (status, _) = ep.post("key-lenient", forged, &sig(&signature)).await;
    assert_eq!(status, 200);
    // The batch's sentAt is added to its events only after the signature is checked.
    let first = track("First", "u9");
    let batch =
        serde_json::to_vec(&json!({"batch": [first], "sentAt": "2026-11-27T00:00:00.000Z"}))
            .unwrap();
    let signed_first = auth::sign("sh", &serde_json::to_vec(&first).unwrap());
    let (status, body) = ep.post("key-lenient", batch, &sig(&signed_first)).await;
    assert_eq!(status, 200, "{body}");

    // A header that tries to move the endpoint of a tenant with pinned settings.
    let partner_seen = partner.received().len();
    let header = STANDARD.encode(
        serde_json::to_vec(&json!({"endpoint": partner.url("/attacker"), "region": "eu"})).unwrap(),
    );
    let event = track("Pinned", "u3");
    let body = serde_json::to_vec(&event).unwrap();
    let mut headers = sig(&auth::sign("sh", &body));
    headers.push(("x-segment-settings", header));
    let (status, answer) = ep.post("key-strict", body, &headers).await;
    assert_eq!(status, 200, "{answer}");
    let received = partner.received();
    let last = &received[partner_seen..];
    assert_eq!(last.len(), 1);
    assert!(last[0].path.starts_with("/strict"), "{}", last[0].path);
}

pub(crate) fn compress(data: &[u8], gzip: bool) -> Vec<u8> {
    if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    } else {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }
}

#[tokio::test]
async fn compressed_batches_from_client_libraries() {
    let dir = tempfile::tempdir().unwrap();
    let guest = WatGuest {
        result: r#"{"abi":1,"kind":"success","results":[{"kind":"success"}]}"#,
        ..logs_its_input()
    };
    let f = wasm_file(dir.path(), "log.wasm", &guest);
    let ep = Endpoint::start(
        &f,
        "max_body_bytes = 1048576",
        "[[tenant]]\nname = \"a\"\napi_key = \"key-a\"\ndebug_responses = true\n",
    )
    .await;
    // As analytics-python sends with gzip = True: {"batch", "sentAt"} without receivedAt.
    let batch = json!({"batch": [{"type": "track", "event": "E", "messageId": "g1"}], "sentAt": "2026-11-27T10:00:00.000Z", "writeKey": "wk"});
    for (gzip, encoding, id) in [(true, "gzip", "g1"), (false, "deflate", "d1")] {
        let mut batch = batch.clone();
        batch["batch"][0]["messageId"] = id.into();
        let body = compress(&serde_json::to_vec(&batch).unwrap(), gzip);
        let (status, answer) = ep
            .post("key-a", body, &[("content-encoding", encoding.into())])
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["results"][0]["kind"], "success");
        let logged = answer["report"]["logs"][0]["message"].as_str().unwrap();
        assert!(
            logged.contains(r#""sentAt":"2026-11-27T10:00:00.000Z""#),
            "{logged}"
        );
        assert!(logged.contains(r#""writeKey":"wk""#), "{logged}");
        assert!(logged.contains(r#""receivedAt":"20"#), "{logged}");
    }
    // A small body that unpacks into more messages than a delivery may hold.
    let many = format!("[{}{{}}]", "{},".repeat(segfn_engine::input::MAX_MESSAGES));
    let (status, answer) = ep
        .post(
            "key-a",
            compress(many.as_bytes(), true),
            &[("content-encoding", "gzip".into())],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("more than 10000 messages"),
        "{answer}"
    );
    // A gzip bomb stops at the cap.
    let bomb = compress(&vec![b' '; 64 << 20], true);
    let (status, answer) = ep
        .post("key-a", bomb, &[("content-encoding", "gzip".into())])
        .await;
    assert_eq!(status, 413, "{answer}");
    let (status, _) = ep
        .post(
            "key-a",
            b"{}".to_vec(),
            &[("content-encoding", "br".into())],
        )
        .await;
    assert_eq!(status, 415);
}

#[tokio::test]
async fn an_insert_functions_event_is_in_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let f = wasm_file(
        dir.path(),
        "insert.wasm",
        &WatGuest {
            result: r#"{"abi":1,"kind":"success","output":{"type":"track","event":"Enriched","n":12345678901234567890123}}"#,
            ..WatGuest::default()
        },
    );
    // A setting whose name looks like a credential holds the word the output carries:
    // the output is data and passes unredacted.
    let ep = Endpoint::start(
        &f,
        "",
        "[[tenant]]\nname = \"a\"\napi_key = \"key-a\"\nsettings = { mapping = { eventKey = \"Enriched\" } }\n",
    )
    .await;
    let (status, body) = ep.deliver("key-a", &track("E", "u1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["event"], "Enriched", "{body}");
    let body = serde_json::to_vec(&track("E", "u2")).unwrap();
    let resp = segment_post(&ep.url(""), "key-a", body)
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(
        text.contains(r#""n":12345678901234567890123"#),
        "numbers pass exactly: {text}"
    );
}

#[tokio::test]
async fn a_batch_too_big_as_a_whole_is_retried_never_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // Grows its memory by 16 bytes per input byte and traps when refused.
    let f = wasm_file(
        dir.path(),
        "hungry.wasm",
        &WatGuest {
            handle_body: "(if (i32.eq (memory.grow (i32.shr_u (local.get $len) (i32.const 12))) (i32.const -1)) (then unreachable))",
            ..WatGuest::default()
        },
    );
    let ep = Endpoint::start(
        &f,
        "",
        "[limits]\nmemory_mib = 16\n[[tenant]]\nname = \"a\"\napi_key = \"key-a\"\n",
    )
    .await;
    let big = |id: &str| json!({"type": "track", "messageId": id, "properties": {"pad": "p".repeat(600 << 10)}});
    let batch = json!([big("b1"), big("b2"), big("b3")]);
    for _ in 0..2 {
        let (status, body) = ep.deliver("key-a", &batch).await;
        assert_eq!(status, 500, "{body}");
        for r in body["results"].as_array().unwrap() {
            assert_eq!(r["kind"], "retry", "{body}");
            assert!(
                r["message"].as_str().unwrap().contains("smaller batches"),
                "{body}"
            );
        }
    }
    // Each event on its own fits.
    let (status, body) = ep.deliver("key-a", &big("b1")).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn one_log_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let guest = WatGuest {
        result: r#"{"abi":1,"kind":"success","results":[{"kind":"success"},{"kind":"success"},{"kind":"message_rejected","message":"no email"}]}"#,
        ..WatGuest::default()
    };
    let f = wasm_file(dir.path(), "ok.wasm", &guest);
    let config = dir.path().join("segfn.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nstore = {:?}\n[[tenant]]\nname = \"a\"\napi_key = \"key-a\"\n",
            dir.path().join("store.redb")
        ),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let mut child = segfn()
        .args([
            "serve",
            f.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .args(["--listen", "127.0.0.1:0"])
        .env("SEGFN_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    let batch = json!([
        {"type": "track", "messageId": "l1"},
        {"type": "page", "messageId": "l2"},
        {"type": "identify", "messageId": "l3\nforged line"}
    ]);
    let body = serde_json::to_vec(&batch).unwrap();
    let resp = segment_post(&base, "key-a", body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" event ")).collect();
    assert_eq!(lines.len(), 3, "{text}");
    // Quoted: a messageId with spaces cannot pass for other fields. Each event of the
    // batch shows the invocation that ran it, shared by the three, and the delivery.
    for (line, id) in lines.iter().zip(["l1", "l2", "l3forged line"]) {
        assert!(line.contains(&format!("message_id=\"{id}\" ")), "{line}");
        assert!(line.contains("tenant=a"), "{line}");
        assert!(
            line.contains("batch_size=3")
                && line.contains("invocation_ms=")
                && line.contains("delivery_ms="),
            "{line}"
        );
    }
    // The reason is there for what did not succeed, and only there.
    assert!(
        lines[0].contains("success") && !lines[0].contains("reason="),
        "{}",
        lines[0]
    );
    assert!(
        lines[2].contains("message_rejected") && lines[2].contains("reason=\"no email\""),
        "{}",
        lines[2]
    );
    assert!(!text.contains("\nforged line"), "{text}");
}

/// An insert function that forwards events unchanged (`functions/filter`), served:
/// every message of the exactness corpus and of the real-payload corpus comes back in
/// the answer with the same values and key order, byte for byte in compact form
/// (`receivedAt` added at the end where the message had none).
#[tokio::test]
async fn an_unchanged_event_comes_back_exactly() {
    let f = tokio::task::spawn_blocking(|| example_wasm("filter"))
        .await
        .unwrap();
    let ep = Endpoint::start(
        &f,
        "dedupe_window_secs = 0",
        "[[tenant]]\nname = \"a\"\napi_key = \"key-a\"\n",
    )
    .await;
    let fixtures = root().join("guest-sdk/tests/fixtures");
    let mut messages: Vec<String> =
        std::fs::read_to_string(fixtures.join("exactness/compact.jsonl"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
    for dir in ["segment-events", "segment-events-odd"] {
        let mut files: Vec<_> = std::fs::read_dir(fixtures.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let value: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            match value.get("batch").and_then(Value::as_array) {
                Some(batch) if value.get("type").is_none() => {
                    messages.extend(batch.iter().map(|m| m.to_string()))
                }
                _ => messages.push(value.to_string()),
            }
        }
    }
    let mut forwarded = 0;
    for message in &messages {
        let (_, answer) = ep.post("key-a", message.as_bytes().to_vec(), &[]).await;
        let Some(output) = answer.get("output") else {
            continue;
        };
        let mut expected: Value = serde_json::from_str(message).unwrap();
        if expected.get("receivedAt").is_none() {
            expected["receivedAt"] = output["receivedAt"].clone();
        }
        assert_eq!(
            output.to_string(),
            expected.to_string(),
            "not passed through exactly"
        );
        forwarded += 1;
    }
    assert!(
        forwarded >= messages.len() * 3 / 4,
        "only {forwarded} of {} forwarded",
        messages.len()
    );
}

/// At the cap, a kept-alive connection that just answered is not the one closed: the
/// connection idle the longest is, even if it opened later.
#[tokio::test]
async fn eviction_spares_a_connection_that_was_just_used() {
    let dir = tempfile::tempdir().unwrap();
    let f = wasm_file(dir.path(), "ok.wasm", &WatGuest::default());
    let ep = Endpoint::start(
        &f,
        "max_connections = 4",
        "[[tenant]]\nname = \"a\"\napi_key = \"key-a\"\n",
    )
    .await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut kept = ep.raw(b"").await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(ep.raw(b"POST / HT").await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The first connection answers a request: it is now the most recently active.
    kept.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // A fifth connection evicts the stalled one idle the longest, not `kept`.
    let _fifth = ep.raw(b"POST / HT").await;
    let (_, closed) = read_until_closed(&mut stalled[0], Duration::from_millis(500)).await;
    assert!(closed, "the longest-idle connection was closed");
    kept.write_all(request).await.unwrap();
    let n = kept.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// Refusals are counted by reason (and tenant, once a key named one): the table in
/// `Refusal::row` gives each its label and status.
#[tokio::test]
async fn refusals_are_counted_by_reason() {
    let partner = Partner::start().await;
    let f = forwarder().await;
    let ep = Endpoint::start(&f, "", &forwarder_tenant("b", "key-b", &partner, "")).await;
    let body = serde_json::to_vec(&track("E", "u1")).unwrap();
    for _ in 0..2 {
        let (status, _) = ep.post("no-such-key", body.clone(), &[]).await;
        assert_eq!(status, 401);
    }
    let resp = client()
        .post(ep.url("/"))
        .header("authorization", basic("key-b"))
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let (status, _) = ep.post("key-b", b"{not json".to_vec(), &[]).await;
    assert_eq!(status, 400);
    let metrics = ep.metrics().await;
    for line in [
        "segfn_refused_total{tenant=\"-\",reason=\"unauthorized\"} 2",
        "segfn_refused_total{tenant=\"b\",reason=\"media_type\"} 1",
        "segfn_refused_total{tenant=\"b\",reason=\"bad_request\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}
