//! Durable mode end to end: deliveries answered 202 are run and retried by the server,
//! final outcomes are not retried, exhausted events are dead-lettered; and the crash
//! test: a stream of events while the partner fails and goes down and the real binary
//! is killed with `kill -9` again and again; every event answered 2xx reaches the
//! partner, and every duplicate the partner sees is one the server counted.

use crate::pg::Postgres;
use crate::support::*;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A small deterministic generator (the test prints its seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct ChaosState {
    /// messageId → times the partner accepted it (answered 2xx).
    accepted: Mutex<HashMap<String, u32>>,
    /// messageIds in the order the partner accepted them.
    order: Mutex<Vec<String>>,
    requests: AtomicU64,
    failed: AtomicU64,
    /// Percent of requests answered 503.
    fail_percent: AtomicU32,
    /// The status every request gets instead, when set (0: none).
    forced: AtomicU32,
    /// Milliseconds between processing a request and answering it.
    delay_ms: AtomicU64,
    seed: AtomicU64,
}

/// A partner that fails a share of requests with 503, can be taken fully down
/// (connections refused) and brought back on the same port, and counts what it
/// accepted by `idempotency_key` (the forwarder sends the messageId there).
struct ChaosPartner {
    addr: SocketAddr,
    state: Arc<ChaosState>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

async fn chaos_handle(
    State(state): State<Arc<ChaosState>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let forced = state.forced.load(Ordering::Relaxed);
    let roll = {
        // A shared generator, stepped under no lock: a race only repeats a roll.
        let mut rng = Rng(state.seed.load(Ordering::Relaxed) | 1);
        let roll = rng.below(100);
        state.seed.store(rng.0, Ordering::Relaxed);
        roll
    };
    let status = if forced != 0 {
        forced as u16
    } else if roll < u64::from(state.fail_percent.load(Ordering::Relaxed)) {
        503
    } else {
        200
    };
    if (200..300).contains(&status) {
        let id = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["idempotency_key"].as_str().map(str::to_owned));
        if let Some(id) = id {
            state.order.lock().unwrap().push(id.clone());
            *state.accepted.lock().unwrap().entry(id).or_default() += 1;
        }
    } else {
        state.failed.fetch_add(1, Ordering::Relaxed);
    }
    // Processed, then answered late: a kill meanwhile loses the answer, not the work.
    let delay = state.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    // A failure echoes the key it was sent, as some APIs do: only the redactor keeps it
    // out of what segfn records.
    let answer = if (200..300).contains(&status) {
        "{\"ok\":true}".to_owned()
    } else {
        let key = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        json!({ "error": format!("failed for {key}") }).to_string()
    };
    (StatusCode::from_u16(status).unwrap(), answer)
}

impl ChaosPartner {
    async fn start(seed: u64) -> ChaosPartner {
        let state = Arc::new(ChaosState::default());
        state.seed.store(seed, Ordering::Relaxed);
        let mut partner = ChaosPartner {
            addr: "127.0.0.1:0".parse().unwrap(),
            state,
            stop: None,
            task: None,
        };
        partner.up().await;
        partner
    }

    /// Listens (again) on the partner's address.
    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind the partner's address");
        self.addr = listener.local_addr().unwrap();
        let app = Router::new()
            .fallback(chaos_handle)
            .with_state(self.state.clone());
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        }));
    }

    /// Stops listening: requests get connection errors until [`ChaosPartner::up`].
    async fn down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    fn accepted(&self) -> HashMap<String, u32> {
        self.state.accepted.lock().unwrap().clone()
    }
}

/// A `segfn serve` process, killed (SIGKILL) on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) fn start(wasm: &Path, config: &Path) -> Server {
        let mut child = segfn()
            .arg("serve")
            .arg(wasm)
            .arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .env("SEGFN_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning segfn serve");
        let base = listening_url(&mut child);
        Server { child, base }
    }

    /// `kill -9`.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sum of a metric's samples (all label sets) in `/metrics`.
pub(crate) async fn metric_sum(base: &str, name: &str) -> f64 {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits (up to `within`) until every one of `ids` reached the partner; fails naming
/// those that did not. Returns what the partner accepted.
async fn all_reach_the_partner(
    partner: &ChaosPartner,
    ids: &[String],
    within: Duration,
) -> HashMap<String, u32> {
    let reached = eventually(within, || async {
        let accepted = partner.accepted();
        ids.iter().all(|id| accepted.contains_key(id))
    })
    .await;
    let accepted = partner.accepted();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !accepted.contains_key(*id))
        .collect();
    assert!(
        reached,
        "{} answered 2xx never reached the partner: {missing:?}",
        missing.len()
    );
    accepted
}

/// Polls `f` until it holds or `within` passes.
pub(crate) async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn forwarder() -> PathBuf {
    example_wasm("forwarder")
}

fn tenant(name: &str, partner: SocketAddr) -> String {
    format!(
        "[[tenant]]\nname = {name:?}\napi_key = \"key-{name}\"\nallow_hosts = [{:?}]\n\
         settings = {{ apiKey = \"sk_{name}_secret\", endpoint = \"http://{partner}/{name}\" }}\n",
        partner.to_string()
    )
}

/// The configuration: durable, short retries for a test, the store a file in `dir`.
fn write_config(
    dir: &Path,
    partner: SocketAddr,
    server: &str,
    retry: &str,
    tenants: &[&str],
) -> PathBuf {
    let store = dir.join("store.redb").display().to_string();
    write_config_at(dir, partner, server, retry, tenants, &store)
}

/// The same, with the store at `store` (a file or a postgres:// URL).
fn write_config_at(
    dir: &Path,
    partner: SocketAddr,
    server: &str,
    retry: &str,
    tenants: &[&str],
    store: &str,
) -> PathBuf {
    let path = dir.join("segfn.toml");
    let tenants: String = tenants.iter().map(|t| tenant(t, partner)).collect();
    let in_flight = if server.contains("max_in_flight") {
        ""
    } else {
        "max_in_flight = 16\n"
    };
    std::fs::write(
        &path,
        format!(
            "[server]\nstore = {store:?}\ndurable = true\n{in_flight}{server}\n\n[server.retry]\n{retry}\n\n[limits]\ndeadline_ms = 3000\n\n{tenants}"
        ),
    )
    .unwrap();
    path
}

fn track(id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "track", "event": "Order Completed", "userId": "u1", "messageId": id,
        "properties": {"total": 25.00}
    }))
    .unwrap()
}

#[tokio::test]
async fn final_outcomes_are_not_retried_and_exhausted_events_are_dead_lettered() {
    let wasm = tokio::task::spawn_blocking(forwarder).await.unwrap();
    let mut partner = ChaosPartner::start(7).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        partner.addr,
        "",
        "retries = 4\nbase_ms = 50\nfactor = 2.0\ncap_ms = 400\nwindow_secs = 60",
        &["acme"],
    );
    let (addr, _stop) = serve_in_process(&config, &wasm).await;
    let base = format!("http://{addr}");

    // Accepted: 202 with the queue id; the same messageId again: 200, a duplicate.
    let resp = segment_post(&base, "key-acme", track("ok-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["kind"], "queued", "{body}");
    assert!(body["id"].is_u64(), "{body}");
    let again = segment_post(&base, "key-acme", track("ok-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert!(
        eventually(Duration::from_secs(10), || async {
            partner.accepted().contains_key("ok-1")
        })
        .await
    );

    // Without an admin_token the admin path is a delivery path like any other.
    let resp = client()
        .post(format!("{base}/_segfn/admin"))
        .header("authorization", basic("key-acme"))
        .header("content-type", "application/json")
        .body(track("via-admin-path"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);

    // A batch: 202 with each event's fate; a repeat within it is queued once.
    let batch = json!({"batch": [
        {"type": "track", "event": "A", "userId": "u1", "messageId": "b-1"},
        {"type": "track", "event": "B", "userId": "u1", "messageId": "b-2"},
        {"type": "track", "event": "A", "userId": "u1", "messageId": "b-1"},
        {"type": "track", "event": "C", "userId": "u1", "messageId": "ok-1"},
    ]});
    let resp = segment_post(&base, "key-acme", serde_json::to_vec(&batch).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    let kinds: Vec<&str> = results
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["queued", "queued", "queued", "success"], "{body}");
    assert_eq!(
        results[2]["id"], results[0]["id"],
        "the repeat shares the first's id"
    );
    assert_eq!(results[2]["message"], "duplicate within this batch");
    assert_eq!(results[3]["status"], 200, "ok-1 was queued before: {body}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            let accepted = partner.accepted();
            accepted.get("b-1") == Some(&1) && accepted.get("b-2") == Some(&1)
        })
        .await
    );
    assert_eq!(partner.accepted().get("ok-1"), Some(&1));

    // A partner's 400 is final: one request, no retry, not a dead letter.
    partner.state.forced.store(400, Ordering::Relaxed);
    let before = partner.state.requests.load(Ordering::Relaxed);
    let resp = segment_post(&base, "key-acme", track("rejected-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(
        eventually(Duration::from_secs(10), || async {
            metric_sum(&base, "segfn_queue_completed_total").await >= 5.0
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(partner.state.requests.load(Ordering::Relaxed), before + 1);

    // A partner that answers 503 every time: 1 + 4 retries, then a dead letter.
    partner.state.forced.store(503, Ordering::Relaxed);
    let before = partner.state.requests.load(Ordering::Relaxed);
    let resp = segment_post(&base, "key-acme", track("doomed-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(
        eventually(Duration::from_secs(10), || async {
            metric_sum(&base, "segfn_dead_letters").await == 1.0
        })
        .await,
        "the event was not dead-lettered"
    );
    assert_eq!(partner.state.requests.load(Ordering::Relaxed), before + 5);
    assert_eq!(metric_sum(&base, "segfn_queue_pending").await, 0.0);

    // A partner that is down: connection errors are retried until it is back (the
    // four retries take 375 ms at least).
    partner.state.forced.store(0, Ordering::Relaxed);
    partner.down().await;
    let resp = segment_post(&base, "key-acme", track("later-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!partner.accepted().contains_key("later-1"));
    partner.up().await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            partner.accepted().contains_key("later-1")
        })
        .await,
        "not retried after the partner came back"
    );
}

/// Sends `ids` (spread over `tenants`) from `workers` tasks, each until it is
/// answered 2xx, to whichever servers are up (`bases`, the i-th event to the
/// (i mod n)-th); returns the ids answered 2xx.
async fn stream(
    ids: Vec<String>,
    tenants: &'static [&'static str],
    bases: Arc<Mutex<Vec<String>>>,
    workers: usize,
) -> HashSet<String> {
    let queue = Arc::new(Mutex::new(ids.into_iter().enumerate().collect::<Vec<_>>()));
    let answered = Arc::new(Mutex::new(HashSet::new()));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (queue, answered, bases) = (queue.clone(), answered.clone(), bases.clone());
            tokio::spawn(async move {
                let client = client();
                loop {
                    let Some((i, id)) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let tenant = tenants[i % tenants.len()];
                    let started = Instant::now();
                    loop {
                        assert!(
                            started.elapsed() < Duration::from_secs(60),
                            "{id} never accepted"
                        );
                        let url = {
                            let bases = bases.lock().unwrap();
                            format!("{}/", bases[i % bases.len()])
                        };
                        let sent = client
                            .post(url)
                            .header("authorization", basic(&format!("key-{tenant}")))
                            .header("content-type", "application/json")
                            .body(track(&id))
                            .timeout(Duration::from_secs(5))
                            .send()
                            .await;
                        match sent {
                            Ok(r) if r.status().is_success() => {
                                answered.lock().unwrap().insert(id.clone());
                                break;
                            }
                            // Down, refused or busy: Segment would retry; so do we.
                            _ => tokio::time::sleep(Duration::from_millis(30)).await,
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(answered).unwrap().into_inner().unwrap()
}

#[tokio::test]
async fn kill_9_loses_nothing_answered_2xx() {
    crash_test(None).await;
}

#[tokio::test]
async fn kill_9_loses_nothing_answered_2xx_on_postgres() {
    let Some(pg) = Postgres::start() else { return };
    crash_test(Some(&pg.url)).await;
}

/// The crash test on the embedded store, or on PostgreSQL at `pg`: there a killed
/// server's leases are not voided by its restart but expire (deadline + margin).
async fn crash_test(pg: Option<&str>) {
    const EVENTS: usize = 300;
    const KILLS: usize = 4;
    static TENANTS: [&str; 2] = ["acme", "globex"];
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let wasm = tokio::task::spawn_blocking(forwarder).await.unwrap();
    let mut partner = ChaosPartner::start(rng.next()).await;
    partner.state.fail_percent.store(20, Ordering::Relaxed);
    // Slow enough that a kill usually falls while attempts are in flight.
    partner.state.delay_ms.store(25, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let redb = dir.path().join("store.redb").display().to_string();
    let config = write_config_at(
        dir.path(),
        partner.addr,
        "lease_margin_ms = 1000",
        "retries = 40\nbase_ms = 50\nfactor = 2.0\ncap_ms = 500\nwindow_secs = 600",
        &TENANTS,
        pg.unwrap_or(&redb),
    );
    let mut server = Server::start(&wasm, &config);
    let base = Arc::new(Mutex::new(vec![server.base.clone()]));

    let ids: Vec<String> = (0..EVENTS).map(|i| format!("crash-{i:04}")).collect();
    let sending = tokio::spawn(stream(ids.clone(), &TENANTS, base.clone(), 6));

    // Kill -9 at random moments; the partner goes fully down for a stretch between
    // the first and the second kill.
    let mut kills = 0;
    while kills < KILLS {
        tokio::time::sleep(Duration::from_millis(300 + rng.below(900))).await;
        if kills == 1 {
            partner.down().await;
            tokio::time::sleep(Duration::from_millis(1000 + rng.below(1000))).await;
            partner.up().await;
        }
        server.kill();
        kills += 1;
        // Restart at once, or after a pause: both must resume the queue.
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
        server = Server::start(&wasm, &config);
        *base.lock().unwrap() = vec![server.base.clone()];
    }
    let answered = sending.await.unwrap();
    assert_eq!(
        answered.len(),
        EVENTS,
        "every event is eventually answered 2xx"
    );

    // Everything answered 2xx reaches the partner.
    let answered: Vec<String> = answered.into_iter().collect();
    let accepted = all_reach_the_partner(&partner, &answered, Duration::from_secs(90)).await;
    let sent: HashSet<&String> = ids.iter().collect();
    assert!(accepted.keys().all(|id| sent.contains(id)));

    let base = server.base.clone();
    assert!(
        eventually(Duration::from_secs(10), || async {
            metric_sum(&base, "segfn_queue_pending").await == 0.0
        })
        .await,
        "the queue drains"
    );
    assert_eq!(
        metric_sum(&base, "segfn_dead_letters").await,
        0.0,
        "nothing that should be retried was dead-lettered"
    );
    // Duplicates at the partner happen only where a kill fell between an attempt's
    // start (its lease committed) and its record; the server counts those.
    let duplicates: u32 = accepted.values().map(|n| n - 1).sum();
    let redelivered = metric_sum(&base, "segfn_queue_redelivered_total").await;
    let completed = metric_sum(&base, "segfn_queue_completed_total").await;
    eprintln!(
        "crash test: {EVENTS} events, {kills} kill -9, partner: {} requests, {} failed, \
         {} duplicates; server: {completed} completed, {redelivered} redelivered after a crash",
        partner.state.requests.load(Ordering::Relaxed),
        partner.state.failed.load(Ordering::Relaxed),
        duplicates
    );
    for (t, tenant) in TENANTS.iter().enumerate() {
        let theirs: u32 = accepted
            .iter()
            .filter(|(id, _)| ids.iter().position(|i| i == *id).unwrap() % TENANTS.len() == t)
            .map(|(_, n)| n - 1)
            .sum();
        let counted = metric_sum(
            &base,
            &format!("segfn_queue_redelivered_total{{tenant=\"{tenant}\"}}"),
        )
        .await;
        assert!(
            f64::from(theirs) <= counted,
            "{tenant}: {theirs} duplicates at the partner but {counted} counted as redelivered"
        );
    }
    assert!(
        f64::from(duplicates) <= redelivered,
        "{duplicates} duplicates but only {redelivered} counted as redelivered"
    );
    assert_eq!(
        completed as usize, EVENTS,
        "each event completed once in the store"
    );
}

/// Runs `segfn ARGS` (with `SEGFN_ADMIN_TOKEN` set to `token`) off the runtime.
async fn segfn_cli(args: &[&str], token: &str) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        segfn()
            .args(&args)
            .env("SEGFN_ADMIN_TOKEN", token)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// Runs `segfn ARGS --json`, expecting success; returns the JSON it printed.
async fn segfn_json(args: &[&str], token: &str) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = segfn_cli(&args, token).await;
    assert!(
        out.status.success(),
        "segfn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn dlq_and_status_from_the_server_and_from_the_store_file() {
    const TOKEN: &str = "adm-0123456789";
    let wasm = tokio::task::spawn_blocking(forwarder).await.unwrap();
    let partner = ChaosPartner::start(11).await;
    partner.state.forced.store(503, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        partner.addr,
        &format!("admin_token = {TOKEN:?}"),
        "retries = 1\nbase_ms = 20\nfactor = 2.0\ncap_ms = 50\nwindow_secs = 60",
        &["acme"],
    );
    // Reports with bodies, so the partner's echo of the key is in them, redacted.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "name = \"acme\"\n",
        "name = \"acme\"\ndebug_responses = true\n",
    );
    std::fs::write(&config, text).unwrap();
    let config_arg = config.display().to_string();
    let server = Server::start(&wasm, &config);
    let base = server.base.clone();

    // Settings from the header go with the event; they must not show in dead letters.
    let header_settings = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(r#"{"apiKey":"sk_header_secret"}"#)
    };
    let resp = segment_post(&base, "key-acme", track("dead-1"))
        .header("x-segment-settings", header_settings)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(
        eventually(Duration::from_secs(10), || async {
            metric_sum(&base, "segfn_dead_letters").await == 1.0
        })
        .await
    );

    // Through the running server's admin API.
    let status = segfn_json(&["status", "--server", &base], TOKEN).await;
    let acme = &status["tenants"][0];
    assert_eq!(acme["tenant"], "acme");
    assert_eq!(acme["dead_letters"], 1, "{status}");
    assert_eq!(acme["attempts"], 2, "1 + 1 retry: {status}");
    let human = segfn_cli(&["status", "--server", &base], TOKEN).await;
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.starts_with("TENANT") && human.contains("acme"),
        "{human}"
    );

    let list = segfn_json(&["dlq", "list", "--server", &base], TOKEN).await;
    let letter = &list["dead_letters"][0];
    assert_eq!(letter["message_id"], "dead-1", "{list}");
    assert_eq!(letter["last"]["partner_status"], 503, "{list}");
    let id = letter["id"].as_u64().unwrap().to_string();
    let shown = segfn_json(&["dlq", "show", &id, "--server", &base], TOKEN).await;
    assert_eq!(shown["job"]["event"]["messageId"], "dead-1");
    assert_eq!(
        shown["report"]["requests"][0]["status"], 503,
        "the last report"
    );
    let echoed = shown["report"]["requests"][0]["response_body"].to_string();
    assert!(echoed.contains("failed for Bearer [redacted]"), "{shown}");
    for secret in ["sk_acme_secret", "sk_header_secret"] {
        assert!(
            !shown.to_string().contains(secret),
            "secrets stay out of dead letters: {shown}"
        );
    }
    assert_eq!(
        shown["job"]["settings"],
        "[redacted: merged from X-Segment-Settings]"
    );

    // A wrong token, no selection, and the file held by the server are refused.
    let wrong = segfn_cli(&["status", "--server", &base], "nope").await;
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("401"));
    let unselected = segfn_cli(&["dlq", "retry", "--server", &base], TOKEN).await;
    assert_eq!(unselected.status.code(), Some(2));
    let held = segfn_cli(&["status", "--config", &config_arg], TOKEN).await;
    assert!(!held.status.success());
    assert!(String::from_utf8_lossy(&held.stderr).contains("use --server"));

    // Retried once the partner is back: it reaches the partner and leaves the list.
    partner.state.forced.store(0, Ordering::Relaxed);
    let out = segfn_cli(&["dlq", "retry", &id, "--server", &base], TOKEN).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "queued 1 dead letter(s) again\n"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            partner.accepted().contains_key("dead-1")
        })
        .await,
        "a retried dead letter reaches the partner"
    );
    let list = segfn_json(&["dlq", "list", "--server", &base], TOKEN).await;
    assert_eq!(list["dead_letters"], json!([]));

    // From the store file once the server is gone.
    partner.state.forced.store(503, Ordering::Relaxed);
    let resp = segment_post(&base, "key-acme", track("dead-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(
        eventually(Duration::from_secs(10), || async {
            metric_sum(&base, "segfn_dead_letters").await == 1.0
        })
        .await
    );
    server.kill();
    let list = segfn_json(&["dlq", "list", "--config", &config_arg], "").await;
    assert_eq!(list["dead_letters"][0]["message_id"], "dead-2");
    let purged = segfn_json(&["dlq", "purge", "--all", "--config", &config_arg], "").await;
    assert_eq!(purged["purged"], 1);
    let status = segfn_json(&["status", "--config", &config_arg], "").await;
    assert_eq!(status["tenants"][0]["dead_letters"], 0);
    assert_eq!(
        status["tenants"][0]["completed"], 1,
        "dead-1, after its retry"
    );
}

#[tokio::test]
async fn one_tenants_backlog_does_not_starve_another() {
    let wasm = tokio::task::spawn_blocking(forwarder).await.unwrap();
    let partner = ChaosPartner::start(3).await;
    // 40 ms a request, and 2 invocations per tenant (half of 4): the noisy tenant's
    // 120 events take 2.4 s at least.
    partner.state.delay_ms.store(40, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        partner.addr,
        "max_in_flight = 4",
        "retries = 3",
        &["noisy", "quiet"],
    );
    let (addr, _stop) = serve_in_process(&config, &wasm).await;
    let base = format!("http://{addr}");

    let backlog: Vec<Value> = (0..120)
        .map(|i| json!({"type": "track", "event": "E", "userId": "u", "messageId": format!("noisy-{i}")}))
        .collect();
    let resp = segment_post(
        &base,
        "key-noisy",
        serde_json::to_vec(&json!({ "batch": backlog })).unwrap(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 202);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = segment_post(&base, "key-quiet", track("quiet-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(
        eventually(Duration::from_secs(20), || async {
            partner.accepted().contains_key("quiet-1")
        })
        .await
    );
    let order = partner.state.order.lock().unwrap().clone();
    let before = order.iter().position(|id| id == "quiet-1").unwrap();
    eprintln!("fairness: the quiet tenant's event went after {before} of the noisy tenant's 120");
    assert!(
        before < 30,
        "the quiet tenant's event waited for {before} of the noisy tenant's 120"
    );
}

#[tokio::test]
async fn sigterm_finishes_running_events_and_a_restart_runs_the_rest() {
    let wasm = tokio::task::spawn_blocking(forwarder).await.unwrap();
    let partner = ChaosPartner::start(5).await;
    partner.state.delay_ms.store(300, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        partner.addr,
        "max_in_flight = 2",
        "retries = 3",
        &["acme"],
    );
    let server = Server::start(&wasm, &config);
    let ids: Vec<String> = (0..8).map(|i| format!("term-{i}")).collect();
    for id in &ids {
        let resp = segment_post(&server.base, "key-acme", track(id))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            partner.state.requests.load(Ordering::Relaxed) >= 1
        })
        .await
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(exit.success(), "a clean exit: {exit:?}");
    let done_before_restart = partner.accepted().len();
    assert!(
        done_before_restart < ids.len(),
        "some events were still queued at shutdown"
    );

    let server = Server::start(&wasm, &config);
    assert!(
        eventually(Duration::from_secs(20), || async {
            let accepted = partner.accepted();
            ids.iter().all(|id| accepted.contains_key(id))
        })
        .await,
        "the rest ran after the restart"
    );
    assert!(
        partner.accepted().values().all(|&n| n == 1),
        "no duplicates"
    );
    assert_eq!(
        metric_sum(&server.base, "segfn_queue_redelivered_total").await,
        0.0,
        "a graceful stop leaves no lease behind"
    );
    drop(server);
}

/// Several replicas on one PostgreSQL database, as behind a load balancer: the same
/// `messageId` delivered to two replicas at once runs once; then a replica is killed
/// mid-stream and not restarted, and the others finish its work.
#[tokio::test]
async fn replicas_on_postgres_run_each_event_once_and_take_over_a_dead_ones_work() {
    static TENANTS: [&str; 2] = ["acme", "globex"];
    let Some(pg) = Postgres::start() else { return };
    let wasm = tokio::task::spawn_blocking(forwarder).await.unwrap();
    let partner = ChaosPartner::start(11).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_at(
        dir.path(),
        partner.addr,
        "lease_margin_ms = 1000",
        "retries = 40\nbase_ms = 50\nfactor = 2.0\ncap_ms = 500\nwindow_secs = 600",
        &TENANTS,
        &pg.url,
    );
    let replicas: Vec<Server> = (0..3).map(|_| Server::start(&wasm, &config)).collect();
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();

    // 1. Each messageId at two replicas at the same moment: one queues it (202), the
    //    other finds it in the shared window (200); the partner gets it once.
    let client = client();
    let pairs: Vec<String> = (0..60).map(|i| format!("pair-{i:03}")).collect();
    for (i, id) in pairs.iter().enumerate() {
        let tenant = TENANTS[i % 2];
        let send = |base: &str| {
            client
                .post(format!("{base}/"))
                .header("authorization", basic(&format!("key-{tenant}")))
                .header("content-type", "application/json")
                .body(track(id))
                .send()
        };
        let (x, y) = tokio::join!(send(&bases[i % 3]), send(&bases[(i + 1) % 3]));
        let mut statuses = [x.unwrap().status().as_u16(), y.unwrap().status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 202],
            "{id}: one replica queues it, the other knows it"
        );
    }
    assert!(
        eventually(Duration::from_secs(30), || async {
            let accepted = partner.accepted();
            pairs.iter().all(|id| accepted.contains_key(id))
        })
        .await,
        "every pair reached the partner"
    );
    let accepted = partner.accepted();
    assert!(
        pairs.iter().all(|id| accepted[id] == 1),
        "each pair reached the partner once"
    );

    // 2. A stream over all three while the partner fails a fifth of the requests;
    //    one replica is killed mid-stream and stays dead.
    //    The partner answers slowly, so that each replica holds leased events (up to
    //    its 16 in flight) when the victim dies: its leased events must be taken over.
    partner.state.fail_percent.store(20, Ordering::Relaxed);
    partner.state.delay_ms.store(100, Ordering::Relaxed);
    let ids: Vec<String> = (0..300).map(|i| format!("rep-{i:04}")).collect();
    let live = Arc::new(Mutex::new(bases.clone()));
    let sending = tokio::spawn(stream(ids.clone(), &TENANTS, live.clone(), 6));
    assert!(
        eventually(Duration::from_secs(30), || async {
            let accepted = partner.accepted();
            ids.iter().filter(|id| accepted.contains_key(*id)).count() >= 60
        })
        .await,
        "the stream is under way"
    );
    let mut replicas = replicas;
    let victim = replicas.remove(2);
    victim.kill();
    live.lock().unwrap().retain(|b| *b != bases[2]);
    let answered = sending.await.unwrap();
    assert_eq!(
        answered.len(),
        ids.len(),
        "every event answered 2xx at last"
    );

    // The survivors run the dead replica's queued and leased events once its leases
    // expire (deadline 3 s + margin 1 s).
    let accepted = all_reach_the_partner(&partner, &ids, Duration::from_secs(60)).await;

    let base = &bases[0];
    assert!(
        eventually(Duration::from_secs(10), || async {
            metric_sum(base, "segfn_queue_pending").await == 0.0
        })
        .await,
        "the shared queue drains"
    );
    assert_eq!(metric_sum(base, "segfn_dead_letters").await, 0.0);
    let duplicates: u32 = ids.iter().map(|id| accepted[id] - 1).sum();
    let redelivered = metric_sum(base, "segfn_queue_redelivered_total").await;
    let completed = metric_sum(base, "segfn_queue_completed_total").await;
    eprintln!(
        "replicas: {} events over 3 replicas, one killed; partner: {} requests, {} failed, \
         {duplicates} duplicates; store: {completed} completed, {redelivered} taken over",
        pairs.len() + ids.len(),
        partner.state.requests.load(Ordering::Relaxed),
        partner.state.failed.load(Ordering::Relaxed),
    );
    assert!(
        redelivered >= 1.0,
        "the killed replica held leased events; the survivors took them over"
    );
    assert!(
        f64::from(duplicates) <= redelivered,
        "{duplicates} duplicates but only {redelivered} counted as taken over"
    );
    assert_eq!(
        completed as usize,
        pairs.len() + ids.len(),
        "each event completed once in the shared store"
    );
    // Both survivors see the same shared figures, and so does `segfn status` reading
    // the database directly while they run (its URL from $SEGFN_STORE).
    assert_eq!(
        metric_sum(&bases[1], "segfn_queue_completed_total").await,
        completed
    );
    let url = pg.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        segfn()
            .args(["status", "--json"])
            .env("SEGFN_STORE", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let done: u64 = status["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["completed"].as_u64().unwrap())
        .sum();
    assert_eq!(done as usize, pairs.len() + ids.len(), "{status}");
}

/// Synchronous mode (no queue) on PostgreSQL: replicas share the deduplication window,
/// so Segment's retry of a delivery that reached another replica is not run again.
#[tokio::test]
async fn synchronous_replicas_on_postgres_share_the_window() {
    let Some(pg) = Postgres::start() else { return };
    let wasm = tokio::task::spawn_blocking(forwarder).await.unwrap();
    let partner = ChaosPartner::start(5).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("segfn.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nstore = {:?}\n\n{}",
            pg.url,
            tenant("acme", partner.addr)
        ),
    )
    .unwrap();
    let (a, b) = (Server::start(&wasm, &config), Server::start(&wasm, &config));
    let client = client();
    let send = |base: &str| {
        client
            .post(format!("{base}/"))
            .header("authorization", basic("key-acme"))
            .header("content-type", "application/json")
            .body(track("sync-1"))
            .send()
    };
    let first = send(&a.base).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let message = |v: &Value| v["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message(&first).starts_with("duplicate"), "{first}");
    // Segment retries at the other replica: answered as a duplicate, not run.
    let again = send(&b.base).await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert!(message(&again).starts_with("duplicate"), "{again}");
    assert_eq!(partner.accepted().get("sync-1"), Some(&1));
    assert_eq!(partner.state.requests.load(Ordering::Relaxed), 1);
}
