//! Source functions served by `segfn serve` as webhook URLs, against a fake of
//! Segment's Tracking and Objects APIs on 127.0.0.1: what reaches Segment and how each
//! failure is answered; calls batched across webhooks, one webhook's refused calls
//! kept from failing the others'; durable mode's queue (a 200 while Segment is down,
//! the events sent when it is back); and the crash test: webhooks while the real
//! binary is killed with `kill -9`, every one answered 200 reaching the fake under
//! one `messageId`.

use crate::durable::{Server, eventually, metric_sum};
use crate::javascript::js_wasm;
use crate::sources::sources_dir;
use crate::support::*;
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Segment's Tracking and Objects APIs, faked on 127.0.0.1: they check what Segment
/// checks (the write key as Basic auth, JSON of the right shape, 32 KB a message and
/// 500 KB a batch, a user on every event) and record what they accepted; `fail` makes
/// the next answers a given status, `down` every answer a 503, `delay_ms` each batch
/// slow, and a batch with a message for `refuse_user` is refused (400) as a whole.
#[derive(Clone, Default)]
struct FakeSegment {
    batches: Arc<Mutex<Vec<Value>>>,
    sets: Arc<Mutex<Vec<Value>>>,
    attempts: Arc<Mutex<usize>>,
    fail: Arc<Mutex<Vec<u16>>>,
    down: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    refuse_user: Arc<Mutex<Option<String>>>,
}

const WRITE_KEY: &str = "wk_test_7d1e";

impl FakeSegment {
    async fn start() -> (FakeSegment, String) {
        let fake = FakeSegment::default();
        let state = fake.clone();
        let app = axum::Router::new()
            .route("/v1/batch", axum::routing::post(fake_batch))
            .route("/v1/set", axum::routing::post(fake_set))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, url)
    }

    fn batches(&self) -> Vec<Value> {
        self.batches.lock().unwrap().clone()
    }

    /// Every accepted message's `messageId`, by its `userId`, with how often each came.
    fn ids_by_user(&self) -> HashMap<String, HashMap<String, u32>> {
        let mut out: HashMap<String, HashMap<String, u32>> = HashMap::new();
        for batch in self.batches() {
            for m in batch["batch"].as_array().unwrap() {
                let user = m["userId"].as_str().unwrap_or_default().to_owned();
                let id = m["messageId"].as_str().unwrap_or_default().to_owned();
                *out.entry(user).or_default().entry(id).or_default() += 1;
            }
        }
        out
    }
}

/// The status a request gets before its body is looked at: forced, or 401.
fn gate(fake: &FakeSegment, headers: &axum::http::HeaderMap) -> Option<u16> {
    *fake.attempts.lock().unwrap() += 1;
    if fake.down.load(Ordering::Relaxed) {
        return Some(503);
    }
    let mut fail = fake.fail.lock().unwrap();
    if !fail.is_empty() {
        return Some(fail.remove(0));
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{WRITE_KEY}:"))
    );
    (headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()))
        .then_some(401)
}

async fn fake_batch(
    axum::extract::State(fake): axum::extract::State<FakeSegment>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    let delay = fake.delay_ms.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    if let Some(status) = gate(&fake, &headers) {
        return StatusCode::from_u16(status).unwrap();
    }
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let Some(messages) = parsed["batch"].as_array() else {
        return StatusCode::BAD_REQUEST;
    };
    let well_formed = body.len() <= 500 << 10
        && messages.iter().all(|m| {
            m.to_string().len() <= 32 << 10
                && m["type"].is_string()
                && m["messageId"].is_string()
                && (m["userId"].is_string() || m["anonymousId"].is_string())
        });
    let refused = fake.refuse_user.lock().unwrap().clone();
    if !well_formed
        || messages
            .iter()
            .any(|m| refused.is_some() && m["userId"].as_str() == refused.as_deref())
    {
        return StatusCode::BAD_REQUEST;
    }
    fake.batches.lock().unwrap().push(parsed);
    StatusCode::OK
}

async fn fake_set(
    axum::extract::State(fake): axum::extract::State<FakeSegment>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    if let Some(status) = gate(&fake, &headers) {
        return axum::http::StatusCode::from_u16(status).unwrap();
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(set)
            if set["collection"].is_string()
                && set["objects"].as_array().is_some_and(|o| o.len() <= 10) =>
        {
            fake.sets.lock().unwrap().push(set);
            axum::http::StatusCode::OK
        }
        _ => axum::http::StatusCode::BAD_REQUEST,
    }
}

/// Segment's own GitHub source function, in JavaScript, built once.
async fn github_wasm() -> PathBuf {
    let script = sources_dir().join("github/handler.js");
    tokio::task::spawn_blocking(move || js_wasm("source-github", &script))
        .await
        .unwrap()
}

/// A configuration with one source (`github`) at `/webhooks/TOKEN` sending to the fake
/// at `tracking`, its `[server]` table given `server` lines.
fn source_config(dir: &std::path::Path, tracking: &str, server: &str) -> PathBuf {
    let config = dir.join("segfn.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nstore = {:?}\n{server}\n[[source]]\nname = \"github\"\ntoken = \"{TOKEN}\"\nwrite_key = \"{WRITE_KEY}\"\ntracking_api = \"{tracking}\"\nobjects_api = \"{tracking}\"\n",
            dir.join("store.redb")
        ),
    )
    .unwrap();
    config
}

/// `segfn serve` in process with [`source_config`].
async fn serve_source(
    tracking: &str,
    server: &str,
) -> (
    std::net::SocketAddr,
    tokio::sync::watch::Sender<bool>,
    tempfile::TempDir,
) {
    let wasm = github_wasm().await;
    let dir = tempfile::tempdir().unwrap();
    let config = source_config(dir.path(), tracking, server);
    let (addr, stop) = serve_in_process(&config, &wasm).await;
    (addr, stop, dir)
}

/// Segment's GitHub example webhook, sent by user `user`.
fn github_body(user: &str) -> Vec<u8> {
    let example =
        std::fs::read(sources_dir().join("github/webhook-examples/issue-opened.json")).unwrap();
    let mut body = serde_json::from_slice::<Value>(&example).unwrap()["payload"]["body"].take();
    body["sender"]["id"] = json!(user);
    serde_json::to_vec(&body).unwrap()
}

const TOKEN: &str = "gh-hook-5b2c9e0a7f13d4c6e8b1";

async fn post_webhook(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let resp = client()
        .post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("x-github-event", "issues")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A webhook to `segfn serve` reaches Segment: the source's function runs, its track
/// goes to the Tracking API with the write key and a messageId that is the same when
/// the sender retries; a busy Tracking API is retried; a refusal by Segment, a failing
/// function and bad requests are answered for what they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_to_segfn_serve_reaches_segments_tracking_api() {
    let (fake, tracking) = FakeSegment::start().await;
    let (addr, _stop, _dir) = serve_source(&tracking, "").await;
    let example =
        std::fs::read(sources_dir().join("github/webhook-examples/issue-opened.json")).unwrap();
    let body =
        serde_json::to_vec(&serde_json::from_slice::<Value>(&example).unwrap()["payload"]["body"])
            .unwrap();
    let path = format!("/webhooks/{TOKEN}");

    let (status, answer) = post_webhook(addr, &path, "application/json", body.clone()).await;
    assert_eq!((status, &answer["events"]), (200, &json!(1)), "{answer}");
    let batches = fake.batches();
    assert_eq!(batches.len(), 1);
    let event = &batches[0]["batch"][0];
    assert_eq!(event["type"], "track");
    assert_eq!(event["event"], "issues opened");
    let id = event["messageId"].as_str().unwrap().to_owned();

    // The sender retries: the same messageId, for Segment to drop.
    let (status, _) = post_webhook(addr, &path, "application/json", body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(fake.batches()[1]["batch"][0]["messageId"], id.as_str());

    // Another query, the same body: another webhook, other ids.
    let (status, _) = post_webhook(
        addr,
        &format!("{path}?delivery=2"),
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let last = fake.batches().len() - 1;
    assert_ne!(fake.batches()[last]["batch"][0]["messageId"], id.as_str());

    // Segment busy twice: retried, then accepted; the sender gets its 200.
    fake.fail.lock().unwrap().extend([503, 429]);
    let before = *fake.attempts.lock().unwrap();
    let (status, answer) = post_webhook(addr, &path, "application/json", body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(*fake.attempts.lock().unwrap() - before, 3);

    // Segment refuses (a 400 is not retried): 502, saying what Segment said.
    fake.fail.lock().unwrap().push(400);
    let (status, answer) = post_webhook(addr, &path, "application/json", body.clone()).await;
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("Segment answered 400"),
        "{answer}"
    );

    // The function fails (no sender in the body): its outcome, nothing sent.
    let sent = fake.batches().len();
    let (status, answer) = post_webhook(addr, &path, "application/json", b"{}".to_vec()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["kind"], "bad_request", "{answer}");
    assert_eq!(fake.batches().len(), sent);

    // What is refused before anything runs.
    let (status, _) = post_webhook(
        addr,
        "/webhooks/not-the-token-000000000000",
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post_webhook(addr, &path, "text/plain", body.clone()).await;
    assert_eq!(status, 415);
    // Over 512 KiB as declared: refused before the body is read (and so without it,
    // as a client that sends it would see a reset while writing).
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        600 << 10
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes())
        .await
        .unwrap();
    let (text, _) =
        crate::endpoint::read_until_closed(&mut stream, Duration::from_millis(800)).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    // Over it once decompressed.
    let bomb = crate::endpoint::compress(&vec![b' '; 4 << 20], true);
    let resp = client()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let metrics = client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("segfn_source_requests_total{source=\"github\",outcome=\"success\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("segfn_source_events_sent_total{tenant=\"github\"} 4"),
        "{metrics}"
    );
}

/// Sends `bodies` to the webhook at once; the answers, in order.
async fn post_all(addr: std::net::SocketAddr, bodies: Vec<Vec<u8>>) -> Vec<(u16, Value)> {
    let path = format!("/webhooks/{TOKEN}");
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let path = path.clone();
            tokio::spawn(async move { post_webhook(addr, &path, "application/json", body).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Webhooks that arrive while a batch is on its way go to Segment together in the
/// next one; when Segment refuses a combined batch, each webhook's calls are sent
/// alone, so only the webhook whose call Segment refuses fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_batched_across_webhooks_and_a_refused_one_fails_alone() {
    let (fake, tracking) = FakeSegment::start().await;
    let (addr, _stop, _dir) = serve_source(&tracking, "").await;
    fake.delay_ms.store(300, Ordering::Relaxed);

    let users: Vec<String> = (0..12).map(|i| format!("user-{i}")).collect();
    let answers = post_all(addr, users.iter().map(|u| github_body(u)).collect()).await;
    for (user, (status, answer)) in users.iter().zip(&answers) {
        assert_eq!(*status, 200, "{user}: {answer}");
    }
    let by_user = fake.ids_by_user();
    for user in &users {
        assert_eq!(by_user.get(user).map(|ids| ids.len()), Some(1), "{user}");
    }
    let batches = fake.batches().len();
    assert!(
        batches <= 4,
        "12 webhooks at once went to Segment in {batches} batches"
    );

    *fake.refuse_user.lock().unwrap() = Some("user-bad".into());
    let users = ["user-a", "user-b", "user-bad", "user-c", "user-d"];
    let answers = post_all(addr, users.iter().map(|u| github_body(u)).collect()).await;
    for (user, (status, answer)) in users.iter().zip(&answers) {
        let expected = if *user == "user-bad" { 502 } else { 200 };
        assert_eq!(*status, expected, "{user}: {answer}");
    }
    let by_user = fake.ids_by_user();
    assert!(!by_user.contains_key("user-bad"));
    for user in ["user-a", "user-b", "user-c", "user-d"] {
        assert!(by_user.contains_key(user), "{user} reached Segment");
    }
}

/// Durable mode: a webhook is answered 200 once its calls are committed, while Segment
/// is down; a sender's retry of it is not queued twice; when Segment is back the
/// calls reach it, each once, and the queue drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_webhooks_are_answered_while_segment_is_down_and_sent_when_it_is_back() {
    let (fake, tracking) = FakeSegment::start().await;
    let (addr, _stop, _dir) = serve_source(
        &tracking,
        "durable = true\n[server.retry]\nbase_ms = 50\nfactor = 1.0\ncap_ms = 100",
    )
    .await;
    fake.down.store(true, Ordering::Relaxed);
    let users = ["user-a", "user-b", "user-c"];
    let answers = post_all(addr, users.iter().map(|u| github_body(u)).collect()).await;
    for (status, answer) in &answers {
        assert_eq!(
            (*status, &answer["message"]),
            (200, &json!("queued")),
            "{answer}"
        );
    }
    let (status, answer) = post_all(addr, vec![github_body("user-a")]).await.remove(0);
    assert_eq!(
        (status, &answer["message"]),
        (200, &json!("already queued")),
        "{answer}"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(fake.batches().is_empty());
    assert!(*fake.attempts.lock().unwrap() > 0, "sending was tried");

    fake.down.store(false, Ordering::Relaxed);
    let reached = eventually(Duration::from_secs(20), || async {
        fake.ids_by_user().len() == users.len()
    })
    .await;
    assert!(reached, "{:?}", fake.ids_by_user());
    for (user, ids) in fake.ids_by_user() {
        assert_eq!(ids.values().sum::<u32>(), 1, "{user}: {ids:?}");
    }
    let base = format!("http://{addr}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            metric_sum(&base, "segfn_queue_pending").await == 0.0
        })
        .await,
        "the source's queue drains"
    );
}

/// The crash test for sources: webhooks from several senders (each retried until it
/// is answered 200) while the real binary is killed with `kill -9` again and again
/// and Segment goes down for a while; every webhook answered 200 reaches the fake, and
/// under one `messageId` (a repeat after a crash carries the same id, for Segment's
/// deduplication to drop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_webhook_answered_200() {
    const WEBHOOKS: usize = 300;
    const KILLS: usize = 3;
    let (fake, tracking) = FakeSegment::start().await;
    // Slow enough that a kill usually falls while a batch is on its way.
    fake.delay_ms.store(50, Ordering::Relaxed);
    let wasm = github_wasm().await;
    let dir = tempfile::tempdir().unwrap();
    let config = source_config(
        dir.path(),
        &tracking,
        "durable = true\nlease_margin_ms = 1000\n[server.retry]\nretries = 40\nbase_ms = 50\nfactor = 2.0\ncap_ms = 500\nwindow_secs = 600",
    );
    let mut server = Server::start(&wasm, &config);
    let base = Arc::new(Mutex::new(server.base.clone()));

    let users: Vec<String> = (0..WEBHOOKS).map(|i| format!("crash-{i:04}")).collect();
    let queue = Arc::new(Mutex::new(users.clone()));
    let answered = Arc::new(Mutex::new(HashSet::new()));
    let senders: Vec<_> = (0..6)
        .map(|_| {
            let (queue, answered, base) = (queue.clone(), answered.clone(), base.clone());
            tokio::spawn(async move {
                let client = client();
                loop {
                    let Some(user) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let started = Instant::now();
                    loop {
                        assert!(
                            started.elapsed() < Duration::from_secs(60),
                            "{user} never accepted"
                        );
                        let url = format!("{}/webhooks/{TOKEN}", base.lock().unwrap());
                        let sent = client
                            .post(url)
                            .header("content-type", "application/json")
                            .header("x-github-event", "issues")
                            .body(github_body(&user))
                            .timeout(Duration::from_secs(5))
                            .send()
                            .await;
                        if sent.is_ok_and(|r| r.status().as_u16() == 200) {
                            answered.lock().unwrap().insert(user.clone());
                            break;
                        }
                        // Down or busy: a webhook sender retries; so do we.
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                }
            })
        })
        .collect();

    // Kills spread over the stream (after a quarter, half and three quarters of the
    // webhooks were answered), each while batches are on their way; Segment is down
    // around the second.
    for kill in 0..KILLS {
        let at = WEBHOOKS * (kill + 1) / (KILLS + 1);
        assert!(
            eventually(Duration::from_secs(60), || async {
                answered.lock().unwrap().len() >= at
            })
            .await,
            "the stream stalled before {at} webhooks were answered"
        );
        if kill == 1 {
            fake.down.store(true, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        server.kill();
        tokio::time::sleep(Duration::from_millis(100 * kill as u64)).await;
        server = Server::start(&wasm, &config);
        *base.lock().unwrap() = server.base.clone();
        fake.down.store(false, Ordering::Relaxed);
    }
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(
        answered.lock().unwrap().len(),
        WEBHOOKS,
        "every webhook is answered 200 in the end"
    );

    let reached = eventually(Duration::from_secs(60), || async {
        fake.ids_by_user().len() == WEBHOOKS
    })
    .await;
    let by_user = fake.ids_by_user();
    let missing: Vec<&String> = users.iter().filter(|u| !by_user.contains_key(*u)).collect();
    assert!(
        reached,
        "answered 200 but never reached Segment: {missing:?}"
    );
    for (user, ids) in &by_user {
        assert_eq!(
            ids.len(),
            1,
            "{user} reached Segment under several messageIds: {ids:?}"
        );
    }
    let repeats: u32 = by_user
        .values()
        .flat_map(|ids| ids.values())
        .map(|n| n - 1)
        .sum();
    let server_base = server.base.clone();
    assert!(
        eventually(Duration::from_secs(15), || async {
            metric_sum(&server_base, "segfn_queue_pending").await == 0.0
        })
        .await,
        "the source's queue drains"
    );
    eprintln!(
        "source crash test: {WEBHOOKS} webhooks, {KILLS} kill -9, Segment: {} requests, {} batches, \
         {repeats} repeated messages (Segment drops them by messageId)",
        fake.attempts.lock().unwrap(),
        fake.batches().len()
    );
}

/// A webhook the function makes no call for is answered 200 at once: nothing is sent to
/// Segment (nor queued, in durable mode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_without_calls_sends_nothing() {
    let (fake, tracking) = FakeSegment::start().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("skip.js");
    std::fs::write(
        &script,
        "async function onRequest(request) {\n\
           if (request.json().skip) return;\n\
           Segment.track({ event: 'Kept', userId: 'u-1' });\n\
         }\n",
    )
    .unwrap();
    let wasm = tokio::task::spawn_blocking(move || js_wasm("source-skip", &script))
        .await
        .unwrap();
    for server in ["", "durable = true"] {
        let at = dir.path().join(if server.is_empty() {
            "direct"
        } else {
            "durable"
        });
        std::fs::create_dir_all(&at).unwrap();
        let config = source_config(&at, &tracking, server);
        let (addr, _stop) = serve_in_process(&config, &wasm).await;
        let before = *fake.attempts.lock().unwrap();
        let (status, answer) = post_all(addr, vec![br#"{"skip": true}"#.to_vec()])
            .await
            .remove(0);
        assert_eq!(
            (status, &answer["message"]),
            (200, &json!("nothing to send")),
            "{server}: {answer}"
        );
        assert_eq!(answer["events"], 0);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            *fake.attempts.lock().unwrap(),
            before,
            "{server}: nothing sent"
        );
        let (status, answer) = post_all(addr, vec![br#"{"skip": false}"#.to_vec()])
            .await
            .remove(0);
        assert_eq!(
            (status, &answer["events"]),
            (200, &json!(1)),
            "{server}: {answer}"
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            // Both servers are one source to Segment: the same messageId, sent by each.
            fake.ids_by_user()
                .get("u-1")
                .map(|ids| ids.values().sum::<u32>())
                == Some(2)
        })
        .await,
        "each mode's kept call reached Segment: {:?}",
        fake.ids_by_user()
    );
}
