//! Runs `examples/embed.rs`, the engine inside an axum app of one's own, on 127.0.0.1:
//! an event in over HTTP, through a WAT guest in a fresh sandbox, its outcome out with
//! the status the outcome table gives it and the settings' secrets redacted.

#[allow(dead_code)] // Its `main` is the example's, not the test's.
#[path = "../examples/embed.rs"]
mod embed;

use segfn_engine::{Runtime, RuntimeOptions};
use serde_json::{Value, json};

/// A guest that logs the envelope it was given and answers `result`.
fn guest(result: &str) -> Vec<u8> {
    let escaped = result.replace('"', "\\\"");
    wat::parse_str(format!(
        r#"(module
  (import "segfn" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 65536))
  (data (i32.const 1024) "{escaped}")
  (func (export "segfn_abi_version") (result i32) (i32.const 1))
  (func (export "segfn_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $p))
  (func (export "segfn_handle") (param $ptr i32) (param $len i32) (result i64)
    (call $log (i32.const 1) (local.get $ptr) (local.get $len))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const {len}))))"#,
        len = result.len()
    ))
    .expect("valid WAT")
}

async fn serve(wasm: &[u8], settings: Value) -> String {
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap();
    let function = runtime.load(wasm).await.expect("the guest loads");
    let options = embed::options(&settings, &[]).unwrap();
    let app = embed::app(embed::Embedded {
        function,
        options,
        settings,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn an_event_runs_through_the_embedded_engine() {
    let settings = json!({ "apiKey": "sk_embedded_secret_1", "region": "eu" });
    let url = serve(&guest(r#"{"abi":1,"kind":"success"}"#), settings).await;
    let event = json!({"type": "track", "event": "Signed Up", "userId": "u1"});
    let (status, body) = post(&url, &event).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"]["kind"], "success", "{body}");
    let logged = body["logs"][0].as_str().unwrap();
    assert!(
        logged.contains("Signed Up"),
        "the guest saw the event: {logged}"
    );
    assert!(
        logged.contains("[redacted]") && !logged.contains("sk_embedded_secret_1"),
        "{logged}"
    );
}

#[tokio::test]
async fn outcomes_map_to_http_statuses_in_the_embedding_app() {
    let url = serve(
        &guest(r#"{"abi":1,"kind":"retry","message":"partner down"}"#),
        json!({}),
    )
    .await;
    let (status, body) = post(&url, &json!({"type": "identify", "userId": "u1"})).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["outcome"]["kind"], "retry", "{body}");
    assert_eq!(body["outcome"]["message"], "partner down", "{body}");
}
