//! `segfn serve` end to end: Segment-shaped deliveries, a real partner API, tenants,
//! signatures, deduplication across restarts, hot reload, graceful shutdown, TLS, and
//! bad input that must get a clear 4xx. Served in-process on 127.0.0.1, or as the real
//! binary where a test needs a process (signals, `kill -9`, reload, TLS).

use crate::support::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running `segfn serve` (a process, or in this process), stopped on drop.
struct Served {
    child: Option<Child>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    base: String,
}

impl Served {
    /// Starts `segfn serve` with `args` (plus `--listen 127.0.0.1:0`) and waits for it
    /// to say where it listens.
    fn start(args: &[String]) -> Served {
        let mut child = segfn()
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("SEGFN_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning segfn serve");
        let base = listening_url(&mut child);
        Served {
            child: Some(child),
            stop: None,
            base,
        }
    }

    /// Serves the same `FUNCTION --config FILE` arguments in this process.
    async fn in_process(args: &[String]) -> Served {
        let (addr, stop) = serve_in_process(Path::new(&args[2]), Path::new(&args[0])).await;
        Served {
            child: None,
            stop: Some(stop),
            base: format!("http://{addr}"),
        }
    }

    fn process(&mut self) -> &mut Child {
        self.child.as_mut().expect("a segfn serve process")
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([
                &format!("-{signal}"),
                &self.child.as_ref().expect("a process").id().to_string(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(stop) = &self.stop {
            let _ = stop.send(true);
        }
    }
}

/// The answer says the message was already processed (and so was not run again).
#[track_caller]
fn assert_duplicate(body: &Value) {
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("duplicate"),
        "not answered as a duplicate: {body}"
    );
}

/// A delivery of `event` as Segment sends it, ready to send.
fn segment_request(served: &Served, key: &str, event: &Value) -> reqwest::RequestBuilder {
    segment_post(&served.base, key, serde_json::to_vec(event).unwrap())
}

/// Sends a delivery in the background; resolves to its status.
fn deliver_in_background(
    served: &Served,
    key: &str,
    event: &Value,
) -> tokio::task::JoinHandle<u16> {
    let pending = segment_request(served, key, event).send();
    tokio::spawn(async move { pending.await.unwrap().status().as_u16() })
}

/// POSTs `body` as Segment does.
async fn deliver(served: &Served, key: &str, body: &Value) -> (u16, Value) {
    post(
        served,
        Some(key),
        "application/json",
        serde_json::to_vec(body).unwrap(),
        &[],
    )
    .await
}

async fn post(
    served: &Served,
    key: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut req = client()
        .post(served.url("/"))
        .header("content-type", content_type)
        .body(body);
    if let Some(key) = key {
        req = req.header("authorization", basic(key));
    }
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

struct Setup {
    dir: tempfile::TempDir,
    wasm: PathBuf,
}

impl Setup {
    async fn new() -> Setup {
        let wasm = tokio::task::spawn_blocking(|| example_wasm("forwarder"))
            .await
            .unwrap();
        Setup {
            dir: tempfile::tempdir().unwrap(),
            wasm,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a config with the given tenants and returns the serve arguments.
    fn config(&self, server: &str, tenants: &str) -> Vec<String> {
        let store = self.path("store.redb");
        let text = format!(
            "[server]\nstore = {:?}\n{server}\n{tenants}",
            store.display().to_string()
        );
        std::fs::write(self.path("segfn.toml"), text).unwrap();
        vec![
            self.wasm.display().to_string(),
            "--config".into(),
            self.path("segfn.toml").display().to_string(),
        ]
    }
}

fn tenant(name: &str, key: &str, partner: &Partner, extra: &str) -> String {
    format!(
        "[[tenant]]\nname = {name:?}\napi_key = {key:?}\nallow_hosts = [{:?}]\nsettings = {{ apiKey = \"sk_{name}_secret\", endpoint = {:?} }}\n{extra}\n",
        partner.addr.to_string(),
        partner.url(&format!("/{name}"))
    )
}

#[tokio::test]
async fn single_array_and_batch_bodies() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let served =
        Served::in_process(&setup.config("", &tenant("acme", "key-acme", &partner, ""))).await;

    let (status, body) = deliver(&served, "key-acme", &track("Signed Up", "u1")).await;
    assert_eq!((status, &body["kind"]), (200, &json!("success")), "{body}");
    let got = partner.received();
    assert_eq!(got[0].path, "/acme/track");
    assert_eq!(got[0].headers["authorization"], "Bearer sk_acme_secret");
    assert_eq!(got[0].json()["name"], "Signed Up");

    let events = json!([track("A", "u2"), {"type": "page", "userId": "u3", "messageId": "p3"}]);
    let (status, body) = deliver(&served, "key-acme", &events).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["kind"], "success");
    assert_eq!(body["results"][1]["kind"], "unsupported_event_type");
    assert_eq!(body["results"][1]["status"], 501);

    let (status, body) = deliver(
        &served,
        "key-acme",
        &json!({"batch": [track("B", "u4"), track("C", "u5")]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
    let mut names: Vec<Value> = partner
        .received()
        .iter()
        .map(|r| r.json()["name"].clone())
        .collect();
    // The forwarder sends a batch's requests concurrently: B and C in either order.
    names[2..].sort_by_key(|name| name.to_string());
    assert_eq!(
        names,
        [json!("Signed Up"), json!("A"), json!("B"), json!("C")]
    );
}

#[tokio::test]
async fn a_batch_of_one_is_still_a_batch_and_repeats_within_it_run_once() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let served =
        Served::in_process(&setup.config("", &tenant("acme", "key-acme", &partner, ""))).await;
    let (status, body) = deliver(
        &served,
        "key-acme",
        &json!([{"type": "page", "userId": "u", "messageId": "p1"}]),
    )
    .await;
    assert_eq!(
        status, 200,
        "a rejected event in a batch is a result, not the batch's status: {body}"
    );
    assert_eq!(body["results"][0]["kind"], "unsupported_event_type");

    let event = track("Twice", "u2");
    let (status, body) = deliver(
        &served,
        "key-acme",
        &json!({"batch": [event.clone(), event]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["kind"], "success");
    assert_eq!(body["results"][1]["kind"], "success");
    assert_eq!(body["results"][1]["message"], "duplicate within this batch");
    assert_eq!(partner.received().len(), 1);
}

#[tokio::test]
async fn every_status_segment_expects() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let served = Served::in_process(&setup.config(
        "max_body_bytes = 2048",
        &tenant("acme", "key-acme", &partner, ""),
    ))
    .await;
    let event = track("E", "u");

    assert_eq!(deliver(&served, "key-acme", &event).await.0, 200);
    assert_eq!(
        deliver(&served, "key-acme", &json!({"type": "track", "event": "E"}))
            .await
            .0,
        400,
        "message rejected"
    );
    assert_eq!(
        deliver(
            &served,
            "key-acme",
            &json!({"type": "screen", "userId": "u"})
        )
        .await
        .0,
        501
    );
    partner.answer(Answer::status(503));
    let (status, body) = deliver(&served, "key-acme", &track("E", "retry-me")).await;
    assert_eq!(status, 500, "retry: {body}");
    partner.answer(Answer::status(200));
    assert_eq!(deliver(&served, "wrong-key", &event).await.0, 401);
    assert_eq!(
        post(&served, None, "application/json", b"{}".to_vec(), &[])
            .await
            .0,
        401
    );
    assert_eq!(
        post(&served, Some("key-acme"), "text/plain", b"{}".to_vec(), &[])
            .await
            .0,
        415
    );
    let big = json!({"type": "track", "event": "E", "userId": "u", "properties": {"x": "y".repeat(4000)}});
    let (status, body) = deliver(&served, "key-acme", &big).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("2 KiB"),
        "{body}"
    );
    let r = client().get(served.url("/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

#[tokio::test]
async fn malformed_input_is_a_clear_4xx_never_a_5xx() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let served =
        Served::in_process(&setup.config("", &tenant("acme", "key-acme", &partner, ""))).await;
    let ok = serde_json::to_vec(&track("E", "u")).unwrap();
    /// Key, content type, body, extra headers, expected status.
    type Case<'a> = (
        Option<&'a str>,
        &'a str,
        Vec<u8>,
        Vec<(&'a str, String)>,
        u16,
    );
    let cases: Vec<Case> = vec![
        (
            Some("key-acme"),
            "application/json",
            b"{\"type\": \"track\",".to_vec(),
            vec![],
            400,
        ),
        (
            Some("key-acme"),
            "application/json",
            b"\xff\xfe".to_vec(),
            vec![],
            400,
        ),
        (
            Some("key-acme"),
            "application/json",
            b"42".to_vec(),
            vec![],
            400,
        ),
        (
            Some("key-acme"),
            "application/json",
            b"[]".to_vec(),
            vec![],
            400,
        ),
        (
            Some("key-acme"),
            "application/json",
            b"".to_vec(),
            vec![],
            400,
        ),
        (
            Some("key-acme"),
            "application/json",
            ok.clone(),
            vec![("x-segment-settings", "%%not base64%%".into())],
            400,
        ),
        (
            Some("key-acme"),
            "application/json",
            ok.clone(),
            vec![("x-segment-settings", STANDARD.encode("{bad json"))],
            400,
        ),
        (
            Some("key-acme"),
            "application/json",
            ok.clone(),
            vec![("x-segment-settings", STANDARD.encode("[1,2]"))],
            400,
        ),
        (Some("key-acme"), "application/xml", ok.clone(), vec![], 415),
        (Some("key-acme"), "", ok.clone(), vec![], 415),
        (
            None,
            "application/json",
            ok.clone(),
            vec![("authorization", "Basic !!!".into())],
            401,
        ),
        (
            None,
            "application/json",
            ok.clone(),
            vec![("authorization", "Bearer key-acme".into())],
            401,
        ),
    ];
    for (key, ct, body, headers, expected) in cases {
        let (status, answer) = post(&served, key, ct, body.clone(), &headers).await;
        assert_eq!(
            status,
            expected,
            "{:?} {headers:?}: {answer}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            answer["message"].is_string(),
            "an error body names the problem: {answer}"
        );
    }
    // The server is still healthy.
    assert_eq!(
        client()
            .get(served.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn tenants_are_isolated_and_settings_header_merges() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let tenants = format!(
        "{}{}",
        tenant("acme", "key-acme", &partner, ""),
        tenant("globex", "key-globex", &partner, "")
    );
    let served = Served::in_process(&setup.config("", &tenants)).await;
    assert_eq!(deliver(&served, "key-acme", &track("A", "u1")).await.0, 200);
    assert_eq!(
        deliver(&served, "key-globex", &track("G", "u2")).await.0,
        200
    );
    let got = partner.received();
    assert_eq!(got[0].path, "/acme/track");
    assert_eq!(got[0].headers["authorization"], "Bearer sk_acme_secret");
    assert_eq!(got[1].path, "/globex/track");
    assert_eq!(got[1].headers["authorization"], "Bearer sk_globex_secret");

    // X-Segment-Settings overrides this delivery's settings only.
    let header = STANDARD.encode(json!({"endpoint": partner.url("/override")}).to_string());
    let (status, _) = post(
        &served,
        Some("key-acme"),
        "application/json",
        serde_json::to_vec(&track("O", "u3")).unwrap(),
        &[("x-segment-settings", header)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(partner.received()[2].path, "/override/track");
    assert_eq!(
        deliver(&served, "key-acme", &track("A2", "u4")).await.0,
        200
    );
    assert_eq!(partner.received()[3].path, "/acme/track");
}

#[tokio::test]
async fn signatures_are_verified() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let served = Served::in_process(&setup.config(
        "",
        &tenant(
            "acme",
            "key-acme",
            &partner,
            "shared_secret = \"whsec_123\"",
        ),
    ))
    .await;
    let body = serde_json::to_vec(&track("E", "u")).unwrap();
    let good = segfn_serve::auth::sign("whsec_123", &body);
    let bad = segfn_serve::auth::sign("other", &body);
    assert_eq!(
        post(
            &served,
            Some("key-acme"),
            "application/json",
            body.clone(),
            &[("x-signature", good)]
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post(
            &served,
            Some("key-acme"),
            "application/json",
            body.clone(),
            &[("x-signature", bad)]
        )
        .await
        .0,
        401
    );
    assert_eq!(
        post(
            &served,
            Some("key-acme"),
            "application/json",
            body.clone(),
            &[]
        )
        .await
        .0,
        401
    );
    // Batches: Segment signs the first event.
    let first = track("F", "u9");
    let batch = serde_json::to_vec(&json!([first.clone(), track("S", "u10")])).unwrap();
    let sig = segfn_serve::auth::sign("whsec_123", &serde_json::to_vec(&first).unwrap());
    assert_eq!(
        post(
            &served,
            Some("key-acme"),
            "application/json",
            batch,
            &[("x-signature", sig)]
        )
        .await
        .0,
        200
    );
    assert_eq!(partner.received().len(), 3);
}

#[tokio::test]
async fn duplicates_are_not_run_again_even_after_a_crash() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let args = setup.config("", &tenant("acme", "key-acme", &partner, ""));
    let event = track("Once", "dup-user");
    {
        let mut served = Served::start(&args);
        assert_eq!(deliver(&served, "key-acme", &event).await.0, 200);
        let (status, body) = deliver(&served, "key-acme", &event).await;
        assert_eq!(status, 200);
        assert_duplicate(&body);
        assert_eq!(partner.received().len(), 1);
        // A retried event is not remembered: it runs again when Segment retries.
        partner.answer(Answer::status(503));
        assert_eq!(
            deliver(&served, "key-acme", &track("Flaky", "u")).await.0,
            500
        );
        partner.answer(Answer::status(200));
        assert_eq!(
            deliver(&served, "key-acme", &track("Flaky", "u")).await.0,
            200
        );
        assert_eq!(partner.received().len(), 3);
        // A refused event is remembered with its outcome: a repeat is refused again, as
        // the first delivery was, not answered as a success (and not sent again).
        partner.answer(Answer::status(400));
        let (status, first) = deliver(&served, "key-acme", &track("Refused", "u2")).await;
        assert_eq!(status, 400, "{first}");
        partner.answer(Answer::status(200));
        let (status, body) = deliver(&served, "key-acme", &track("Refused", "u2")).await;
        assert_eq!(status, 400, "{body}");
        assert_duplicate(&body);
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains(first["kind"].as_str().unwrap_or("?")),
            "{body} names the first outcome ({first})"
        );
        assert_eq!(partner.received().len(), 4);
        // kill -9.
        served.process().kill().unwrap();
        served.process().wait().unwrap();
    }
    let served = Served::start(&args);
    let (status, body) = deliver(&served, "key-acme", &event).await;
    assert_eq!(status, 200);
    assert_duplicate(&body);
    let (status, body) = deliver(&served, "key-acme", &track("Refused", "u2")).await;
    assert_eq!(status, 400, "remembered across the restart: {body}");
    assert_duplicate(&body);
    assert_eq!(
        partner.received().len(),
        4,
        "not sent again after the restart"
    );
    let metrics = client()
        .get(served.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("segfn_dedupe_hits_total{tenant=\"acme\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_same_message_delivered_twice_at_once_runs_once() {
    let partner = Partner::start().await;
    partner.answer(Answer::delayed(1000));
    let setup = Setup::new().await;
    let served =
        Served::in_process(&setup.config("", &tenant("acme", "key-acme", &partner, ""))).await;
    let event = track("Twice", "u1");
    let first = deliver_in_background(&served, "key-acme", &event);
    wait_for_metric(&served, "segfn_in_flight 1").await;
    let (status, body) = deliver(&served, "key-acme", &event).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(first.await.unwrap(), 200);
    let (status, body) = deliver(&served, "key-acme", &event).await;
    assert_eq!(status, 200);
    assert_duplicate(&body);
    assert_eq!(partner.received().len(), 1);
}

#[tokio::test]
async fn a_delivery_segment_gave_up_on_still_finishes_and_is_remembered() {
    let partner = Partner::start().await;
    partner.answer(Answer::delayed(1000));
    let setup = Setup::new().await;
    let served =
        Served::in_process(&setup.config("", &tenant("acme", "key-acme", &partner, ""))).await;
    let event = track("Abandoned", "u1");
    let abandoned = segment_request(&served, "key-acme", &event)
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(abandoned.unwrap_err().is_timeout());
    wait_for_metric(
        &served,
        "segfn_events_total{tenant=\"acme\",type=\"track\",outcome=\"success\"} 1",
    )
    .await;
    let (status, body) = deliver(&served, "key-acme", &event).await;
    assert_eq!(status, 200);
    assert_duplicate(&body);
    assert_eq!(partner.received().len(), 1);
    wait_for_metric(&served, "segfn_in_flight 0").await;
}

#[tokio::test]
async fn shutdown_waits_for_deliveries_whose_caller_hung_up() {
    let partner = Partner::start().await;
    partner.answer(Answer::delayed(1000));
    let setup = Setup::new().await;
    let args = setup.config("", &tenant("acme", "key-acme", &partner, ""));
    let event = track("Abandoned", "u1");
    let mut served = Served::start(&args);
    let abandoned = segment_request(&served, "key-acme", &event)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(abandoned.unwrap_err().is_timeout());
    served.signal("TERM");
    let status = tokio::task::spawn_blocking(move || {
        let status = served.process().wait().unwrap();
        drop(served);
        status
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");

    partner.answer(Answer::status(200));
    let served = Served::start(&args);
    let (status, body) = deliver(&served, "key-acme", &event).await;
    assert_eq!(status, 200);
    assert_duplicate(&body);
    assert_eq!(partner.received().len(), 1);
}

#[tokio::test]
async fn saturation_answers_429_with_retry_after() {
    let partner = Partner::start().await;
    partner.answer(Answer::delayed(1500));
    let setup = Setup::new().await;
    let served = Served::in_process(&setup.config(
        "max_in_flight = 1",
        &tenant("acme", "key-acme", &partner, ""),
    ))
    .await;
    let slow = deliver_in_background(&served, "key-acme", &track("Slow", "u1"));
    wait_for_metric(&served, "segfn_in_flight 1").await;
    let resp = segment_request(&served, "key-acme", &track("Busy", "u2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(slow.await.unwrap(), 200);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_work() {
    let partner = Partner::start().await;
    partner.answer(Answer::delayed(1000));
    let setup = Setup::new().await;
    let mut served = Served::start(&setup.config("", &tenant("acme", "key-acme", &partner, "")));
    let in_flight = deliver_in_background(&served, "key-acme", &track("Slow", "u1"));
    wait_for_metric(&served, "segfn_in_flight 1").await;
    served.signal("TERM");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // New work is refused (503 on a connection, or no connection at all).
    let refused = segment_request(&served, "key-acme", &track("Late", "u2"))
        .send()
        .await;
    match refused {
        Ok(r) => assert_eq!(r.status().as_u16(), 503),
        Err(e) => assert!(e.is_connect() || e.is_request(), "{e}"),
    }
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the in-flight delivery completes"
    );
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || served.process().wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(partner.received().len(), 1);
}

/// `connection_threads = 0`: connections on the shared multi-thread runtime instead of
/// threads of their own (the default, which every other test here runs on) serve
/// deliveries on many connections at once, and a SIGTERM still finishes the one in
/// flight before the process exits.
#[tokio::test]
async fn the_shared_runtime_serves_and_stops() {
    let partner = Partner::start().await;
    partner.answer(Answer::delayed(200));
    let setup = Setup::new().await;
    let mut served = Served::start(&setup.config(
        "connection_threads = 0",
        &tenant("acme", "key-acme", &partner, ""),
    ));
    // Each on a connection of its own (a client per delivery), all in flight at once.
    let deliveries: Vec<_> = (0..12)
        .map(|i| {
            let event = track("Threaded", &format!("u{i}"));
            deliver_in_background(&served, "key-acme", &event)
        })
        .collect();
    for delivery in deliveries {
        assert_eq!(delivery.await.unwrap(), 200);
    }
    assert_eq!(partner.received().len(), 12);
    partner.answer(Answer::delayed(1000));
    let in_flight = deliver_in_background(&served, "key-acme", &track("Slow", "u-last"));
    wait_for_metric(&served, "segfn_in_flight 1").await;
    served.signal("TERM");
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the delivery in flight completes"
    );
    let status = tokio::task::spawn_blocking(move || served.process().wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(partner.received().len(), 13);
}

#[tokio::test]
async fn hot_reload_swaps_functions_without_failing_requests() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let forwarder = setup.wasm.clone();
    let ecommerce = tokio::task::spawn_blocking(|| example_wasm("ecommerce"))
        .await
        .unwrap();
    let live = setup.path("function.wasm");
    std::fs::copy(&forwarder, &live).unwrap();
    let mut args = setup.config("", &tenant("acme", "key-acme", &partner, ""));
    args[0] = live.display().to_string();
    let served = Served::start(&args);

    // Traffic throughout: every request must be answered 200 or 501 (the two
    // functions disagree on "Signed Up"), never a failure.
    let traffic = {
        let (url, auth) = (served.url("/"), basic("key-acme"));
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..100 {
                let body = serde_json::to_vec(&track("Signed Up", &format!("u{i}"))).unwrap();
                let r = client()
                    .post(&url)
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                statuses.push(r.map(|r| r.status().as_u16()).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    replace(&ecommerce, &live);
    let statuses = traffic.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 501),
        "{statuses:?}"
    );
    assert_eq!(statuses[0], 200, "the forwarder served first");
    assert_eq!(
        *statuses.last().unwrap(),
        501,
        "the ecommerce function serves now"
    );

    // A broken module keeps the old one serving.
    std::fs::write(setup.path("broken.wasm"), b"\0asm garbage").unwrap();
    replace(&setup.path("broken.wasm"), &live);
    wait_for_metric(&served, "segfn_reloads_total{result=\"failed\"} 1").await;
    let metrics = client()
        .get(served.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("segfn_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        deliver(&served, "key-acme", &track("Signed Up", "after"))
            .await
            .0,
        501
    );
}

#[tokio::test]
async fn sighup_reloads_even_when_the_file_time_did_not_change() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let ecommerce = tokio::task::spawn_blocking(|| example_wasm("ecommerce"))
        .await
        .unwrap();
    let live = setup.path("function.wasm");
    std::fs::copy(&setup.wasm, &live).unwrap();
    let mut args = setup.config("", &tenant("acme", "key-acme", &partner, ""));
    args[0] = live.display().to_string();
    let served = Served::start(&args);
    assert_eq!(
        deliver(&served, "key-acme", &track("Signed Up", "u1"))
            .await
            .0,
        200
    );

    // New content, old modification time: polling cannot see it, SIGHUP can.
    let before = std::fs::metadata(&live).unwrap().modified().unwrap();
    std::fs::copy(&ecommerce, &live).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&live)
        .unwrap()
        .set_modified(before)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        deliver(&served, "key-acme", &track("Signed Up", "u2"))
            .await
            .0,
        200,
        "not reloaded yet"
    );
    served.signal("HUP");
    let started = Instant::now();
    loop {
        let status = deliver(
            &served,
            "key-acme",
            &track("Signed Up", &format!("u-{}", started.elapsed().as_millis())),
        )
        .await
        .0;
        if status == 501 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGHUP did not reload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (at most 10 s) until `/metrics` shows `line`.
async fn wait_for_metric(served: &Served, line: &str) {
    let started = Instant::now();
    loop {
        let metrics = client()
            .get(served.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(line) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {line} in\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Replaces `target` atomically (as a deploy would) and bumps its mtime.
fn replace(source: &Path, target: &Path) {
    let tmp = target.with_extension("tmp");
    std::fs::copy(source, &tmp).unwrap();
    std::fs::rename(&tmp, target).unwrap();
}

#[tokio::test]
async fn debug_responses_carry_the_report_with_secrets_redacted() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let served = Served::in_process(&setup.config(
        "",
        &tenant("acme", "key-acme", &partner, "debug_responses = true"),
    ))
    .await;
    let (status, body) = deliver(&served, "key-acme", &track("Signed Up", "u1")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["report"]["logs"][0]["message"],
        "forwarded \"Signed Up\""
    );
    assert_eq!(body["report"]["requests"][0]["status"], 200);
    assert!(!body.to_string().contains("sk_acme_secret"), "{body}");
}

#[tokio::test]
async fn operations_endpoints() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let served =
        Served::in_process(&setup.config("", &tenant("acme", "key-acme", &partner, ""))).await;
    deliver(&served, "key-acme", &track("E", "u")).await;
    let get = |path: &'static str| {
        let url = served.url(path);
        async move {
            let r = client().get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "segfn_deliveries_total{tenant=\"acme\",status=\"200\"} 1",
        "segfn_events_total{tenant=\"acme\",type=\"track\",outcome=\"success\"} 1",
        "segfn_invocation_seconds_count{tenant=\"acme\"} 1",
        "segfn_fetches_total{tenant=\"acme\",host=\"127.0.0.1\",status=\"200\"} 1",
        "segfn_instructions_total{tenant=\"acme\"}",
        "segfn_in_flight 0",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
}

#[tokio::test]
async fn serves_https_with_a_given_certificate() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    std::fs::write(setup.path("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(setup.path("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let mut args = setup.config("", &tenant("acme", "key-acme", &partner, ""));
    args.extend([
        "--tls-cert".into(),
        setup.path("cert.pem").display().to_string(),
        "--tls-key".into(),
        setup.path("key.pem").display().to_string(),
    ]);
    let served = Served::start(&args);
    assert!(
        served.base.starts_with("https://127.0.0.1:"),
        "{}",
        served.base
    );
    let tls_client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = tls_client
        .post(served.url("/"))
        .header("authorization", basic("key-acme"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&track("E", "u")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(partner.received().len(), 1);
}

#[tokio::test]
async fn startup_errors_are_clear() {
    let setup = Setup::new().await;
    std::fs::write(setup.path("bad.toml"), "[server]\nlisten_on = 1\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![setup.wasm.display().to_string()], "--api-key"),
        (
            vec![
                setup.wasm.display().to_string(),
                "--config".into(),
                setup.path("bad.toml").display().to_string(),
            ],
            "unknown field `listen_on`",
        ),
        (
            vec![
                setup.wasm.display().to_string(),
                "--config".into(),
                "/nonexistent.toml".into(),
            ],
            "cannot read /nonexistent.toml",
        ),
        (
            vec!["/nonexistent.wasm".into(), "--api-key".into(), "k".into()],
            "does not exist",
        ),
    ];
    for (args, needle) in cases {
        let out = segfn()
            .arg("serve")
            .args(&args)
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in {stderr}"
        );
    }
}

/// Under `ulimit -v` the pool cannot reserve 4 GiB per memory slot: it shrinks its
/// slots to the memory limit, says so, and serves.
#[tokio::test]
async fn a_small_address_space_shrinks_the_pool_and_says_so() {
    let partner = Partner::start().await;
    let setup = Setup::new().await;
    let args = setup.config(
        "max_in_flight = 4",
        &tenant("acme", "key-acme", &partner, ""),
    );
    let log = setup.path("serve.log");
    let segfn_path = env!("CARGO_BIN_EXE_segfn");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 6000000; exec \"$0\" \"$@\"")
        .arg(segfn_path)
        .arg("serve")
        .args(&args)
        .args(["--listen", "127.0.0.1:0"])
        .env("SEGFN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let served = Served {
        base: line.trim().rsplit(' ').next().unwrap().to_owned(),
        child: Some(child),
        stop: None,
    };
    let (status, body) = deliver(&served, "key-acme", &track("Small", "u1")).await;
    assert_eq!(status, 200, "{body}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("with bounds checks in code"), "{text}");
    drop(served);
}

/// Without `--store` the store goes to the user's data directory (not the directory the
/// server was started from), private to the user, and the log says where; without a
/// data directory the server asks for `--store`; a second server on the same file is
/// refused with the way out instead of sharing it.
#[tokio::test]
async fn the_default_store_is_the_users_and_one_file_serves_one_server() {
    use std::os::unix::fs::PermissionsExt as _;
    let setup = Setup::new().await;
    let home = setup.path("home");
    let cwd = setup.path("cwd");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    let log = setup.path("first.log");
    let wasm = setup.wasm.display().to_string();
    let mut first = segfn()
        .args(["serve", &wasm, "--api-key", "k1", "--listen", "127.0.0.1:0"])
        .current_dir(&cwd)
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .env("SEGFN_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = listening_url(&mut first);
    let served = Served {
        child: Some(first),
        stop: None,
        base,
    };
    let store = home.join(".local/share/segfn/store.redb");
    assert!(store.exists(), "no store at {}", store.display());
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "nothing written where the server was started"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store), 0o600);
    assert_eq!(mode(store.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&store.display().to_string()), "{text}");

    // A second server on the same file: refused at once, naming the file and the fix.
    let out = segfn()
        .args(["serve", &wasm, "--api-key", "k2", "--listen", "127.0.0.1:0"])
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is in use by another segfn serve") && stderr.contains("--store"),
        "{stderr}"
    );
    drop(served);

    // No data directory: the server asks for --store.
    let out = segfn()
        .args(["serve", &wasm, "--api-key", "k3", "--listen", "127.0.0.1:0"])
        .current_dir(&cwd)
        .env_remove("HOME")
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("give --store PATH"), "{stderr}");
}
