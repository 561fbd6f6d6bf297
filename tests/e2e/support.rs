//! Test support: building guests once, a recording partner API on 127.0.0.1, WAT
//! guests, and engine helpers.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use segfn_engine::{
    FetchClient, FetchPolicy, InvokeOptions, Limits, LoadedFunction, Redactor, Report, Runtime,
    RuntimeOptions,
};
use segfn_sdk::abi::Call;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/cli/ is two levels down")
        .to_owned()
}

/// The `segfn` binary under test.
pub fn segfn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_segfn"))
}

/// `segfn demo` on the example `functions/NAME`, expecting success; its stdout.
pub fn demo(name: &str) -> String {
    let out = segfn()
        .arg("demo")
        .arg(root().join("functions").join(name))
        .arg("--target-dir")
        .arg(guest_target_dir())
        .output()
        .expect("running segfn demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
}

/// Where guests are built: shared by all tests, kept between runs.
pub fn guest_target_dir() -> PathBuf {
    root().join("target/guests")
}

/// Runs `serve` (a `segfn serve ...` command) on a free port of 127.0.0.1 until it has
/// answered one delivery of a "Signed Up" track for `user`, sent with `key`; returns
/// the answer's status and what the server wrote to stderr.
pub async fn serve_one_track(mut serve: Command, key: &str, user: &str) -> (u16, String) {
    use std::io::Read as _;
    let mut child = serve
        .args(["--listen", "127.0.0.1:0"])
        .env("SEGFN_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning segfn serve");
    let base = listening_url(&mut child);
    let body = serde_json::to_vec(&track("Signed Up", user)).unwrap();
    let status = segment_post(&base, key, body)
        .send()
        .await
        .map(|r| r.status().as_u16());
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    (
        status.unwrap_or_else(|e| panic!("delivering: {e}\n{stderr}")),
        stderr,
    )
}

/// The URL a spawned `segfn serve` (stdout piped) announces on its first line,
/// `segfn serve: listening on URL`.
pub fn listening_url(child: &mut std::process::Child) -> String {
    use std::io::BufRead as _;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("reading segfn serve's first line");
    line.trim()
        .strip_prefix("segfn serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// Where crates the tests create (copies of an example, `segfn new` output) are built:
/// apart from [`guest_target_dir`], so that a copy named like an example never
/// overwrites the example's module there.
pub fn scratch_target_dir() -> PathBuf {
    root().join("target/scratch-guests")
}

/// Builds `functions/<name>` with `segfn build` once per test process.
pub fn example_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Holding the lock while building serialises builds, which cargo would do anyway.
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let out = segfn()
        .arg("build")
        .arg(root().join("functions").join(name))
        .arg("--target-dir")
        .arg(guest_target_dir())
        .output()
        .expect("running segfn build");
    assert!(
        out.status.success(),
        "segfn build {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8 path");
    let path = PathBuf::from(stdout.lines().last().expect("a path line").trim());
    assert!(path.is_file(), "{path:?} does not exist");
    built.insert(name.to_owned(), path.clone());
    path
}

/// A runtime for tests (on-demand allocation: many tests run at once).
pub fn runtime() -> Runtime {
    Runtime::new(&RuntimeOptions {
        pooling: false,
        ..RuntimeOptions::default()
    })
    .expect("a runtime")
}

/// Loads a built example.
pub async fn load_example(name: &str) -> LoadedFunction {
    let path = tokio::task::spawn_blocking({
        let name = name.to_owned();
        move || example_wasm(&name)
    })
    .await
    .expect("build task");
    runtime().load_file(&path).await.expect("example loads")
}

/// Invoke options with an allow-list and test-mode bodies.
pub fn options(allow: &[String], settings: &Value, limits: Limits) -> InvokeOptions {
    InvokeOptions {
        limits,
        client: FetchClient::new(FetchPolicy::parse(allow).expect("valid patterns"))
            .expect("client"),
        redactor: Arc::new(Redactor::from_settings(settings, &[]).expect("test settings")),
        capture_bodies: true,
    }
}

/// Runs one message.
pub async fn invoke_event(
    f: &LoadedFunction,
    opts: &InvokeOptions,
    event: Value,
    settings: Value,
) -> Report {
    f.invoke(opts, Call::Event { event }, settings).await
}

/// One request the partner received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("partner received JSON")
    }
}

/// How the partner answers: status and body, optionally after a delay.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    /// 200, after `ms` milliseconds.
    pub fn delayed(ms: u64) -> Answer {
        Answer {
            delay: Duration::from_millis(ms),
            ..Answer::status(200)
        }
    }

    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            body: "{\"ok\":true}".into(),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct PartnerState {
    received: Mutex<Vec<Received>>,
    answer: Mutex<Option<Answer>>,
    redirect_to: Mutex<Option<String>>,
}

/// A partner API on 127.0.0.1 that records every request.
#[derive(Clone)]
pub struct Partner {
    pub addr: SocketAddr,
    state: Arc<PartnerState>,
}

async fn handle(
    State(state): State<Arc<PartnerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    state.received.lock().unwrap().push(Received {
        method: method.to_string(),
        path: uri.to_string(),
        headers,
        body: body.to_vec(),
    });
    if uri.path() == "/redirect"
        && let Some(target) = state.redirect_to.lock().unwrap().clone()
    {
        return (StatusCode::FOUND, [("location", target)], String::new()).into_response();
    }
    if uri.path() == "/huge" {
        return (StatusCode::OK, "x".repeat(3 << 20)).into_response();
    }
    let answer = state
        .answer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or(Answer::status(200));
    tokio::time::sleep(answer.delay).await;
    (
        StatusCode::from_u16(answer.status).unwrap(),
        [("content-type", "application/json")],
        answer.body,
    )
        .into_response()
}

impl Partner {
    /// Starts a partner on an ephemeral port of 127.0.0.1.
    pub async fn start() -> Partner {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(PartnerState::default());
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Partner { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The allow-list entry that names this server's address.
    pub fn allow(&self) -> Vec<String> {
        vec![self.addr.to_string()]
    }

    pub fn answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = Some(answer);
    }

    pub fn redirect_to(&self, target: &str) {
        *self.state.redirect_to.lock().unwrap() = Some(target.to_owned());
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

/// WAT bytes escaped for a data segment.
pub fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A `fetch` request frame (length-prefixed JSON head, no body).
pub fn fetch_frame(method: &str, url: &str) -> Vec<u8> {
    segfn_sdk::abi::encode_frame(
        &segfn_sdk::abi::FetchRequestHead {
            method: method.into(),
            url: url.into(),
            headers: vec![],
        },
        b"",
    )
}

/// A guest in WAT following the ABI: a bump allocator, `segfn_abi_version` returning
/// `abi`, and `segfn_handle` running `handle_body` and then returning the JSON at
/// offset 1024 (`result`). `data` places extra bytes at offsets.
pub struct WatGuest<'a> {
    pub abi: u32,
    pub handle_body: &'a str,
    pub result: &'a str,
    pub data: Vec<(u32, Vec<u8>)>,
    pub extra: &'a str,
}

impl Default for WatGuest<'_> {
    fn default() -> Self {
        WatGuest {
            abi: 1,
            handle_body: "",
            result: r#"{"abi":1,"kind":"success"}"#,
            data: vec![],
            extra: "",
        }
    }
}

impl WatGuest<'_> {
    pub fn wat(&self) -> String {
        let data: String = self
            .data
            .iter()
            .map(|(offset, bytes)| {
                format!("(data (i32.const {offset}) \"{}\")\n", wat_bytes(bytes))
            })
            .collect();
        format!(
            r#"(module
  (import "segfn" "fetch" (func $fetch (param i32 i32) (result i64)))
  (import "segfn" "fetch_all" (func $fetch_all (param i32 i32) (result i64)))
  (import "segfn" "log" (func $log (param i32 i32 i32)))
  (import "segfn" "panic" (func $panic (param i32 i32)))
  (import "segfn" "secret" (func $secret (param i32 i32)))
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 65536))
  (data (i32.const 1024) "{result}")
  {data}
  (func (export "segfn_abi_version") (result i32) (i32.const {abi}))
  (func $alloc (export "segfn_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.const 1)
        (i32.shr_u (i32.sub (global.get $next) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)))))))
    (local.get $p))
  (func (export "segfn_handle") (param $ptr i32) (param $len i32) (result i64)
    {body}
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const {result_len})))
  {extra}
)"#,
            result = wat_bytes(self.result.as_bytes()),
            abi = self.abi,
            body = self.handle_body,
            result_len = self.result.len(),
            extra = self.extra,
        )
    }

    pub async fn load(&self) -> Result<LoadedFunction, segfn_engine::LoadError> {
        load_wat(&self.wat()).await
    }
}

/// A default WAT guest whose `segfn_handle` runs `body` first.
pub async fn guest_running(body: &str) -> LoadedFunction {
    WatGuest {
        handle_body: body,
        ..WatGuest::default()
    }
    .load()
    .await
    .expect("the guest loads")
}

/// Compiles WAT and loads it as a function.
pub async fn load_wat(wat: &str) -> Result<LoadedFunction, segfn_engine::LoadError> {
    runtime()
        .load(&wat::parse_str(wat).expect("valid WAT"))
        .await
}

/// A track event for the examples.
pub fn track(event: &str, user: &str) -> Value {
    serde_json::json!({"type": "track", "event": event, "userId": user, "messageId": format!("m-{user}")})
}

/// A client that never goes through a proxy (tests talk to 127.0.0.1 only).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `Authorization` as Segment sends it: Basic auth with the API key as user name.
pub fn basic(key: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

/// A delivery as Segment sends it to `base` (`http://127.0.0.1:PORT`), ready to send.
pub fn segment_post(base: &str, key: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
    client()
        .post(format!("{base}/"))
        .header("authorization", basic(key))
        .header("content-type", "application/json")
        .body(body)
}

/// Serves `function` with the configuration file at `config` in this process, on
/// 127.0.0.1 (any port); stops when the returned sender says so or is dropped.
pub async fn serve_in_process(
    config: &Path,
    function: &Path,
) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let mut config = segfn_serve::ServeConfig::load(config).unwrap();
    config.server.listen = "127.0.0.1:0".into();
    let tenants = config.resolve_tenants(|_| None).unwrap();
    let options = segfn_serve::ServeOptions {
        config,
        tenants,
        function: function.to_owned(),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        segfn_serve::serve_until(options, stopped, move |addr, _| {
            let _ = tx.send(addr);
        })
        .await
        .expect("serving");
    });
    (rx.await.expect("the endpoint starts"), stop)
}
