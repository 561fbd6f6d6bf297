//! `segfn replay`: the forwarder example replaying files of events at a recording
//! partner on 127.0.0.1: plain and gzip NDJSON, JSON arrays, the time window,
//! malformed lines, the failures file replayed, and `--resume` after `kill -9` and
//! after Ctrl-C, with the duplicates counted against the documented bound.

use crate::support::*;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the partner does: answers 500 to some messageIds (always, or once), and takes
/// its time.
#[derive(Default)]
struct Behaviour {
    received: Vec<String>,
    failing: HashSet<String>,
    fail_once: HashSet<String>,
    delay: Duration,
}

/// A partner that records the messageId (the forwarder's `idempotency_key`) of every
/// request, as it arrives.
#[derive(Clone)]
struct IdPartner {
    addr: SocketAddr,
    state: Arc<Mutex<Behaviour>>,
}

async fn answer(State(state): State<Arc<Mutex<Behaviour>>>, body: Bytes) -> (StatusCode, String) {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = body["idempotency_key"].as_str().unwrap_or("-").to_owned();
    let (delay, fail) = {
        let mut s = state.lock().unwrap();
        s.received.push(id.clone());
        let fail = s.failing.contains(&id) || s.fail_once.remove(&id);
        (s.delay, fail)
    };
    tokio::time::sleep(delay).await;
    if fail {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "{\"error\":\"busy\"}".into(),
        )
    } else {
        (StatusCode::OK, "{\"ok\":true}".into())
    }
}

impl IdPartner {
    async fn start() -> IdPartner {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(Behaviour::default()));
        let app = Router::new().fallback(answer).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        IdPartner { addr, state }
    }

    fn received(&self) -> Vec<String> {
        self.state.lock().unwrap().received.clone()
    }

    fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.state.lock().unwrap());
    }
}

/// A temporary directory with the settings for the partner, and files written in it.
struct Setup {
    dir: tempfile::TempDir,
    partner: IdPartner,
    wasm: PathBuf,
}

impl Setup {
    async fn new() -> Setup {
        let partner = IdPartner::start().await;
        let wasm = tokio::task::spawn_blocking(|| example_wasm("forwarder"))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let settings =
            json!({"apiKey": "k-replay", "endpoint": format!("http://{}/v1", partner.addr)});
        std::fs::write(dir.path().join("settings.json"), settings.to_string()).unwrap();
        Setup { dir, partner, wasm }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `segfn replay <forwarder> --settings .. --allow-host partner`, then `args`, run
    /// in the directory; the state in `DIR/state` unless `args` name another.
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = segfn();
        cmd.current_dir(self.dir.path())
            .arg("replay")
            .arg(&self.wasm)
            .arg("--settings")
            .arg(self.path("settings.json"))
            .arg("--allow-host")
            .arg(self.partner.addr.to_string());
        if !args.contains(&"--state-dir") {
            cmd.arg("--state-dir").arg(self.path("state"));
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    async fn replay(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

/// A track event with messageId `id` at `timestamp`.
fn track(id: &str, timestamp: &str) -> String {
    json!({"type": "track", "event": "Replayed", "userId": "u1", "messageId": id, "timestamp": timestamp})
        .to_string()
}

fn ndjson(lines: &[String]) -> Vec<u8> {
    let mut text = lines.join("\n");
    text.push('\n');
    text.into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The JSON summary (`--json`) on stdout.
fn summary(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// How many times each id was received.
fn tally(received: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in received {
        *counts.entry(id.clone()).or_default() += 1;
    }
    counts
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn plain_and_gzip_ndjson_with_a_batch_line_reach_the_partner_once_each() {
    let s = Setup::new().await;
    let plain: Vec<String> = ids("p", 12)
        .iter()
        .map(|id| track(id, "2024-05-01T10:00:00.000Z"))
        .collect();
    s.write("plain.ndjson", &ndjson(&plain));
    // gzip, told by its bytes: the name says nothing.
    let mut zipped: Vec<String> = ids("z", 10)
        .iter()
        .map(|id| track(id, "2024-05-01T11:00:00.000Z"))
        .collect();
    // A tracking-API batch line: three events, each its own invocation.
    let batch: Vec<Value> = ids("b", 3)
        .iter()
        .map(|id| serde_json::from_str(&track(id, "2024-05-01T12:00:00Z")).unwrap())
        .collect();
    zipped.push(json!({"batch": batch, "sentAt": "2024-05-01T12:00:01Z"}).to_string());
    s.write("archive.data", &gzip(&ndjson(&zipped)));

    let out = s
        .replay(&["--input", "plain.ndjson", "archive.data", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sum = summary(&out);
    assert_eq!(sum["ending"], "finished");
    assert_eq!(sum["counts"]["success"], 25, "{sum}");
    assert_eq!(sum["sent_this_run"], 25);
    let mut want = ids("p", 12);
    want.extend(ids("z", 10));
    want.extend(ids("b", 3));
    let received = s.partner.received();
    assert_eq!(sorted(received), sorted(want));
    // The state says it is finished: running it again starts a new replay.
    let state: Value =
        serde_json::from_slice(&std::fs::read(s.path("state/state.json")).unwrap()).unwrap();
    assert_eq!(state["finished"], true);
    assert_eq!(state["inputs"][1]["positions"], 13);
    assert_eq!(state["inputs"][1]["done_below"], 13);
}

#[tokio::test]
async fn a_json_array_and_stdin() {
    let s = Setup::new().await;
    let events: Vec<Value> = ids("a", 4)
        .iter()
        .map(|id| serde_json::from_str(&track(id, "2024-05-01T10:00:00Z")).unwrap())
        .collect();
    s.write(
        "export.json",
        serde_json::to_string_pretty(&events).unwrap().as_bytes(),
    );
    let out = s.replay(&["--input", "export.json", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary(&out)["counts"]["success"], 4);
    assert_eq!(sorted(s.partner.received()), ids("a", 4));

    // Gzipped NDJSON on stdin.
    let lines: Vec<String> = ids("s", 3)
        .iter()
        .map(|id| track(id, "2024-05-01T10:00:00Z"))
        .collect();
    let mut cmd = s.command(&["--input", "-", "--json", "--restart"]);
    cmd.stdin(Stdio::piped());
    let gz = gzip(&ndjson(&lines));
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&gz).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary(&out)["counts"]["success"], 3);
}

#[tokio::test]
async fn since_and_until_select_events_by_timestamp() {
    let s = Setup::new().await;
    let lines = vec![
        track("before", "2024-05-01T23:59:59.999Z"),
        track("first", "2024-05-02T00:00:00.000Z"),
        track("offset", "2024-05-02T08:00:00+02:00"),
        track("basic", "20240502T120000Z"),
        track("at-until", "2024-05-03T12:00:00Z"),
        track("after", "2024-06-01T00:00:00Z"),
        json!({"type": "track", "event": "E", "userId": "u", "messageId": "none"}).to_string(),
        track("garbled", "sometime in May"),
    ];
    s.write("events.ndjson", &ndjson(&lines));
    let out = s
        .replay(&[
            "--input",
            "events.ndjson",
            "--since",
            "2024-05-02",
            "--until",
            "2024-05-03T12:00:00Z",
            "--json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        sorted(s.partner.received()),
        ["basic", "first", "offset"].map(String::from).to_vec()
    );
    let sum = summary(&out);
    assert_eq!(sum["counts"]["success"], 3);
    assert_eq!(sum["counts"]["outside_window"], 3);
    assert_eq!(sum["counts"]["no_timestamp"], 2);

    // A bound that is not a timestamp is a usage error, before anything is sent.
    let out = s
        .replay(&[
            "--input",
            "events.ndjson",
            "--since",
            "May 2nd",
            "--restart",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));
}

#[tokio::test]
async fn malformed_lines_are_reported_with_their_numbers_and_skipped() {
    let s = Setup::new().await;
    let mut lines: Vec<String> = ids("m", 6)
        .iter()
        .map(|id| track(id, "2024-05-01T10:00:00Z"))
        .collect();
    lines.insert(2, "{\"type\": \"track\", oops".into()); // line 3
    lines.insert(4, "[1, 2".into()); // line 5
    lines.insert(6, String::new()); // line 7: blank, not malformed
    lines.insert(7, "\"a string\"".into()); // line 8
    s.write("events.ndjson", &ndjson(&lines));
    let out = s.replay(&["--input", "events.ndjson", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    for line in [3, 5, 8] {
        assert!(
            err.contains(&format!("events.ndjson:{line}: ")),
            "line {line} in {err}"
        );
    }
    let sum = summary(&out);
    assert_eq!(sum["counts"]["malformed"], 3);
    assert_eq!(sum["counts"]["success"], 6);
    let numbers: Vec<u64> = sum["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 5, 8]);
    assert_eq!(sorted(s.partner.received()), ids("m", 6));
    // The text summary lists them too.
    let out = s.replay(&["--input", "events.ndjson", "--restart"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("malformed: events.ndjson:3: not valid JSON"),
        "{text}"
    );
}

#[tokio::test]
async fn failures_go_to_a_file_that_replays_them() {
    let s = Setup::new().await;
    let all = ids("f", 10);
    let failing: HashSet<String> = ["f-2", "f-5", "f-9"].map(String::from).into();
    s.partner.set(|b| b.failing = failing.clone());
    // Written by hand, with spacing no serialiser would produce: the failures file
    // must hold these exact bytes.
    let lines: Vec<String> = all
        .iter()
        .map(|id| {
            format!("{{ \"type\":\"track\",  \"event\":\"E\", \"userId\":\"u\", \"messageId\":\"{id}\" }}")
        })
        .collect();
    s.write("events.ndjson", &ndjson(&lines));
    let out = s
        .replay(&["--input", "events.ndjson", "--retries", "0", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let sum = summary(&out);
    assert_eq!(sum["counts"]["success"], 7);
    assert_eq!(sum["counts"]["retry"], 3);
    assert_eq!(sum["failure_messages"][0]["count"], 3);
    let failures_path = PathBuf::from(sum["failures_file"].as_str().unwrap());
    let failures_path = s.dir.path().join(failures_path);
    let failures = std::fs::read_to_string(&failures_path).unwrap();
    let mut got: Vec<&str> = failures.lines().collect();
    got.sort();
    let mut want: Vec<&str> = lines
        .iter()
        .filter(|l| failing.iter().any(|id| l.contains(&format!("\"{id}\""))))
        .map(String::as_str)
        .collect();
    want.sort();
    assert_eq!(got, want, "the failed events, byte for byte");

    // The partner recovers; the failures file is replayed like any input.
    s.partner.set(|b| b.failing.clear());
    let before = s.partner.received().len();
    let out = s
        .replay(&[
            "--input",
            failures_path.to_str().unwrap(),
            "--state-dir",
            "retry-state",
            "--json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary(&out)["counts"]["success"], 3);
    let again = sorted(s.partner.received()[before..].to_vec());
    assert_eq!(again, sorted(failing.into_iter().collect()));
}

#[tokio::test]
async fn retry_outcomes_are_retried_with_backoff_before_they_count() {
    let s = Setup::new().await;
    s.partner
        .set(|b| b.fail_once = ["r-1", "r-3"].map(String::from).into());
    let lines: Vec<String> = ids("r", 4)
        .iter()
        .map(|id| track(id, "2024-05-01T10:00:00Z"))
        .collect();
    s.write("events.ndjson", &ndjson(&lines));
    let out = s
        .replay(&[
            "--input",
            "events.ndjson",
            "--retries",
            "1",
            "--retry-delay-ms",
            "20",
            "--json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sum = summary(&out);
    assert_eq!(sum["counts"]["success"], 4);
    assert_eq!(sum["counts"]["retried_sends"], 2);
    let tally = tally(&s.partner.received());
    assert_eq!((tally["r-1"], tally["r-0"]), (2, 1));
}

/// Waits until the partner has received `n` requests (or panics after 60 s).
async fn wait_for_requests(partner: &IdPartner, n: usize, child: &mut Child) {
    let start = Instant::now();
    while partner.received().len() < n {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("segfn replay ended early: {status}");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn finish(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

const CONCURRENCY: usize = 4;

/// 120 events at a partner that takes 30 ms each, 4 at a time: about a second.
async fn slow_setup() -> (Setup, Vec<String>) {
    let s = Setup::new().await;
    s.partner.set(|b| b.delay = Duration::from_millis(30));
    let all = ids("k", 120);
    let lines: Vec<String> = all
        .iter()
        .map(|id| track(id, "2024-05-01T10:00:00Z"))
        .collect();
    s.write("events.ndjson.gz", &gzip(&ndjson(&lines)));
    (s, all)
}

#[tokio::test]
async fn resume_after_kill_9_sends_again_at_most_what_was_in_flight() {
    let (s, all) = slow_setup().await;
    let concurrency = CONCURRENCY.to_string();
    let args = [
        "--input",
        "events.ndjson.gz",
        "--concurrency",
        &concurrency,
        "--json",
    ];
    let mut child = s.command(&args).spawn().unwrap();
    wait_for_requests(&s.partner, 40, &mut child).await;
    // kill -9: no chance to write anything more.
    child.kill().unwrap();
    let killed = finish(child).await;
    assert_eq!(killed.status.code(), None, "killed by a signal");
    // Requests the process sent before dying may still be on their way in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent_before_kill = s.partner.received().len();
    assert!(
        sent_before_kill < all.len(),
        "the kill came too late to test anything"
    );

    // Without --resume, an unfinished replay is not overwritten.
    let out = s.replay(&args).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    // Resuming with another window is refused: other events would be skipped.
    let mut other = args.to_vec();
    other.extend(["--resume", "--since", "2024-01-01"]);
    let out = s.replay(&other).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another time window"),
        "{}",
        stderr(&out)
    );

    let mut resume = args.to_vec();
    resume.push("--resume");
    let out = s.replay(&resume).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sum = summary(&out);
    // Counts are over the whole replay, both runs.
    assert_eq!(sum["counts"]["success"], all.len(), "{sum}");
    assert_eq!(sum["ending"], "finished");

    let received = s.partner.received();
    let tally = tally(&received);
    let missing: Vec<&String> = all.iter().filter(|id| !tally.contains_key(*id)).collect();
    assert!(missing.is_empty(), "never received: {missing:?}");
    let duplicates = received.len() - all.len();
    eprintln!("sent before the kill: {sent_before_kill}; sent twice: {duplicates}");
    assert!(
        duplicates <= CONCURRENCY,
        "{duplicates} events sent twice; the bound is --concurrency ({CONCURRENCY})"
    );
    // Everything that had reached the partner, but what was in flight, was skipped.
    let done_before = sum["done_before"].as_u64().unwrap() as usize;
    assert!(
        done_before + CONCURRENCY >= sent_before_kill,
        "{done_before} skipped of {sent_before_kill} sent before the kill"
    );
}

#[tokio::test]
async fn ctrl_c_drains_and_resume_sends_nothing_twice() {
    let (s, all) = slow_setup().await;
    let concurrency = CONCURRENCY.to_string();
    let args = [
        "--input",
        "events.ndjson.gz",
        "--concurrency",
        &concurrency,
        "--json",
    ];
    let mut child = s.command(&args).spawn().unwrap();
    wait_for_requests(&s.partner, 30, &mut child).await;
    // SAFETY: signalling our own child process by its pid.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(rc, 0);
    let out = finish(child).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let sum = summary(&out);
    assert_eq!(sum["ending"], "interrupted");
    assert!(stderr(&out).contains("stopping"), "{}", stderr(&out));
    let first = s.partner.received().len();
    assert!(first < all.len());
    // Every request that reached the partner finished and was recorded.
    assert_eq!(sum["counts"]["success"], first, "{sum}");

    let mut resume = args.to_vec();
    resume.push("--resume");
    let out = s.replay(&resume).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let received = s.partner.received();
    assert_eq!(
        received.len(),
        all.len(),
        "nothing sent twice after a drain"
    );
    assert_eq!(sorted(received), sorted(all));
}

#[tokio::test]
async fn the_failures_file_cannot_be_an_input() {
    let s = Setup::new().await;
    s.write(
        "events.ndjson",
        &ndjson(&[track("x", "2024-05-01T10:00:00Z")]),
    );
    let out = s
        .replay(&["--input", "events.ndjson", "--failures", "events.ndjson"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is also an input"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(s.path("events.ndjson")).unwrap(),
        ndjson(&[track("x", "2024-05-01T10:00:00Z")])
    );
    assert!(s.partner.received().is_empty());
    // And the help names the exit statuses.
    let help = segfn().args(["replay", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for want in ["--since", "--resume", "--rate", "130", "--allow-host"] {
        assert!(help.contains(want), "{want} in {help}");
    }
}
