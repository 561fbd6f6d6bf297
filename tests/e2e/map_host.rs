//! `--map-host HOST=TARGET` end to end: a function keeps its real partner URL
//! (`https://api.partner.example/v1`) and a partner on 127.0.0.1 receives its requests,
//! through `segfn run`, `segfn serve` (flags and configuration) and the library; the
//! trace shows both URL and target; unmapped hosts are still refused; bad targets are
//! refused before anything runs; redirects are not mapped; a target without a scheme
//! keeps TLS, verified for the original host. Every connection is to 127.0.0.1.

use crate::adversarial::fetching_guest;
use crate::support::*;
use segfn_engine::{FetchClient, FetchPolicy, HostMap, InvokeOptions, Limits, Redactor, Report};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;

/// The partner's real-looking address, as the example's settings have it.
const ENDPOINT: &str = "https://api.partner.example/v1";
const SECRET: &str = "sk_live_mapped_secret_42";

/// `segfn ARGS` with stdin closed.
async fn segfn_output(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        segfn()
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("running segfn")
    })
    .await
    .unwrap()
}

/// A temporary directory holding the event and settings files.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, value: &Value) -> String {
        let path = self.0.path().join(name);
        std::fs::write(&path, serde_json::to_vec(value).unwrap()).unwrap();
        path.display().to_string()
    }
}

async fn forwarder() -> PathBuf {
    tokio::task::spawn_blocking(|| example_wasm("forwarder"))
        .await
        .unwrap()
}

/// `segfn run <forwarder> --event <track> --settings {apiKey, endpoint} EXTRA...`.
async fn run_forwarder(endpoint: &str, extra: &[String]) -> Output {
    let files = Files::new();
    let mut args = vec![
        "run".to_string(),
        forwarder().await.display().to_string(),
        "--event".into(),
        files.write("event.json", &track("Signed Up", "u1")),
        "--settings".into(),
        files.write(
            "settings.json",
            &json!({"apiKey": SECRET, "endpoint": endpoint}),
        ),
    ];
    args.extend(extra.iter().cloned());
    segfn_output(args).await
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// Invoke options with an allow-list and host mappings.
fn mapped_options(allow: &[String], map: &[String]) -> InvokeOptions {
    let policy = FetchPolicy::parse(allow)
        .unwrap()
        .with_map(HostMap::parse(map).unwrap());
    InvokeOptions {
        limits: Limits::default(),
        client: FetchClient::new(policy).unwrap(),
        redactor: Arc::new(Redactor::default()),
        capture_bodies: true,
    }
}

/// A guest that GETs `url` once, run with `allow` and `map`.
async fn fetch_mapped(url: &str, allow: &[String], map: &[String]) -> Report {
    let f = fetching_guest(url, 1).await;
    invoke_event(&f, &mapped_options(allow, map), track("E", "u"), json!({})).await
}

#[tokio::test]
async fn run_sends_a_mapped_host_to_the_local_partner_and_the_trace_shows_both() {
    let partner = Partner::start().await;
    let target = format!("http://{}", partner.addr);
    let map = vec![
        "--map-host".to_string(),
        format!("api.partner.example={target}"),
    ];
    let out = run_forwarder(ENDPOINT, &[map.clone(), vec!["--json".into()]].concat()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The partner got the request as the real one would have: path, Host, body, key.
    let received = partner.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let r = &received[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/track");
    assert_eq!(header(r, "host"), "api.partner.example");
    assert_eq!(header(r, "authorization"), format!("Bearer {SECRET}"));
    assert_eq!(r.json()["name"], "Signed Up");
    assert_eq!(r.json()["user"]["id"], "u1");

    // The trace: the URL the function asked for, and where it went; secrets redacted.
    let report = stdout_json(&out);
    let request = &report["requests"][0];
    assert_eq!(request["url"], "https://api.partner.example/v1/track");
    assert_eq!(request["sent_to"], target);
    assert_eq!(request["status"], 200);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(SECRET), "the secret leaked: {stdout}");

    // The human report puts the target after the URL.
    let out = run_forwarder(ENDPOINT, &map).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("https://api.partner.example/v1/track -> {target}")),
        "{text}"
    );
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
    assert_eq!(partner.received().len(), 2);
}

#[tokio::test]
async fn a_star_sends_every_host_to_one_server() {
    let partner = Partner::start().await;
    let out = run_forwarder(
        "https://eu.other-partner.example:8443/v2",
        &[
            "--map-host".into(),
            format!("*=http://{}", partner.addr),
            "--json".into(),
        ],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received = partner.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/v2/track");
    // A non-default port stays in the Host header, as the real request would send it.
    assert_eq!(
        header(&received[0], "host"),
        "eu.other-partner.example:8443"
    );
    let report = stdout_json(&out);
    assert_eq!(
        report["requests"][0]["url"],
        "https://eu.other-partner.example:8443/v2/track"
    );
    assert_eq!(
        report["requests"][0]["sent_to"],
        format!("http://{}", partner.addr)
    );

    // In the library too, and `*` also catches address hosts, even non-public ones:
    // they go to the target, never to the address itself.
    let r = fetch_mapped(
        "http://169.254.169.254/latest/meta-data?x=1",
        &[],
        &[format!("*={}", partner.addr)],
    )
    .await;
    assert_eq!(r.requests[0].status, Some(200), "{:?}", r.requests[0]);
    let last = partner.received().pop().unwrap();
    assert_eq!(last.method, "GET");
    assert_eq!(last.path, "/latest/meta-data?x=1");
    assert_eq!(header(&last, "host"), "169.254.169.254");
}

#[tokio::test]
async fn unmapped_hosts_are_still_refused() {
    let partner = Partner::start().await;
    let map = vec![
        "--map-host".to_string(),
        format!("api.partner.example=http://{}", partner.addr),
        "--json".into(),
    ];
    // Another host: not on the (empty) allow-list.
    let out = run_forwarder("https://api.other.example/v1", &map).await;
    assert_eq!(out.status.code(), Some(13), "bad_request");
    let report = stdout_json(&out);
    let request = &report["requests"][0];
    let error = request["error"].as_str().unwrap();
    assert!(error.starts_with("denied"), "{error}");
    assert!(
        error.contains("api.other.example is not on the allow-list"),
        "{error}"
    );
    assert!(request.get("sent_to").is_none(), "{request}");

    // The target itself: a mapping does not allow fetching it directly.
    let out = run_forwarder(&partner.url("/v1"), &map).await;
    assert_eq!(out.status.code(), Some(13));
    let error = stdout_json(&out)["requests"][0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.starts_with("denied"), "{error}");
    assert!(
        partner.received().is_empty(),
        "no request reached the partner"
    );

    // A scheme-restricted HOST maps only that scheme; the other is checked as usual.
    let r = fetch_mapped(
        "http://api.partner.example/x",
        &[],
        &[format!("https://api.partner.example={}", partner.addr)],
    )
    .await;
    let error = r.requests[0].error.as_deref().unwrap();
    assert!(error.contains("not on the allow-list"), "{error}");
    assert!(partner.received().is_empty());
}

#[tokio::test]
async fn bad_targets_are_refused_before_anything_runs() {
    // Each is refused while the command line is read: nothing is loaded, built or
    // connected to (none of these addresses is contacted).
    for (mapping, needle) in [
        (
            "api.partner.example=10.0.0.1:80",
            "is not a loopback address",
        ),
        (
            "api.partner.example=https://api.partner.example:443",
            "is not a loopback address",
        ),
        ("api.partner.example=127.0.0.1", "has no port"),
        ("api.partner.example=http://127.0.0.1:9/v1", "has a path"),
        ("api.partner.example", "expected HOST=TARGET"),
        (
            "ftp://api.partner.example=127.0.0.1:9",
            "not a valid host pattern",
        ),
    ] {
        let out = segfn_output(vec![
            "run".into(),
            "/nonexistent.wasm".into(),
            "--event".into(),
            "/nonexistent.json".into(),
            "--map-host".into(),
            mapping.into(),
        ])
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{mapping}: {stderr}");
        assert!(stderr.contains(needle), "{mapping}: {stderr}");
        assert!(stderr.contains("--map-host"), "{mapping}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = segfn_output(vec![
        "run".into(),
        "/nonexistent.wasm".into(),
        "--event".into(),
        "/nonexistent.json".into(),
        "--map-host".into(),
        "api.partner.example=127.0.0.1:1".into(),
        "--map-host".into(),
        "api.partner.example=127.0.0.1:2".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mapped twice"), "{stderr}");

    // serve: the flag as for run; the configuration's table at start, exit 1.
    let out = segfn_output(vec![
        "serve".into(),
        "/nonexistent.wasm".into(),
        "--api-key".into(),
        "k".into(),
        "--map-host".into(),
        "api.partner.example=192.168.1.1:80".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("segfn.toml");
    std::fs::write(
        &config,
        "[[tenant]]\nname = \"acme\"\napi_key = \"k\"\nmap_hosts = { \"api.partner.example\" = \"http://192.168.1.1:80\" }\n",
    )
    .unwrap();
    let out = segfn_output(vec![
        "serve".into(),
        forwarder().await.display().to_string(),
        "--config".into(),
        config.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tenant \"acme\": map_hosts: ")
            && stderr.contains("is not a loopback address"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_with_a_configured_mapping_delivers_to_the_local_partner() {
    let partner = Partner::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("segfn.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nstore = {store:?}\n[[tenant]]\nname = \"acme\"\napi_key = \"key-acme\"\ndebug_responses = true\n\
             settings = {{ apiKey = {SECRET:?}, endpoint = {ENDPOINT:?} }}\n\
             map_hosts = {{ \"api.partner.example\" = \"http://{addr}\" }}\n",
            store = dir.path().join("store.redb").display().to_string(),
            addr = partner.addr,
        ),
    )
    .unwrap();
    let (addr, _stop) = serve_in_process(&config, &forwarder().await).await;
    let response = segment_post(
        &format!("http://{addr}"),
        "key-acme",
        serde_json::to_vec(&track("Signed Up", "u7")).unwrap(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    let request = &body["report"]["requests"][0];
    assert_eq!(request["url"], "https://api.partner.example/v1/track");
    assert_eq!(request["sent_to"], format!("http://{}", partner.addr));
    assert!(!body.to_string().contains(SECRET), "{body}");
    let received = partner.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/v1/track");
    assert_eq!(header(&received[0], "host"), "api.partner.example");
    assert_eq!(received[0].json()["user"]["id"], "u7");
}

#[tokio::test]
async fn serve_with_the_flag_warns_at_start_and_delivers() {
    let partner = Partner::start().await;
    let files = Files::new();
    let settings = files.write(
        "settings.json",
        &json!({"apiKey": SECRET, "endpoint": ENDPOINT}),
    );
    let mut serve = segfn();
    serve
        .arg("serve")
        .arg(forwarder().await)
        .args(["--api-key", "key-acme", "--settings", &settings])
        .arg("--map-host")
        .arg(format!("api.partner.example=http://{}", partner.addr))
        .arg("--store")
        .arg(files.0.path().join("store.redb"));
    let (status, stderr) = serve_one_track(serve, "key-acme", "u8").await;
    assert_eq!(status, 200, "{stderr}");
    let received = partner.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/v1/track");
    assert_eq!(header(&received[0], "host"), "api.partner.example");
    assert!(
        stderr.contains("a production endpoint normally has none")
            && stderr.contains(&format!("api.partner.example=http://{}", partner.addr)),
        "no startup warning in {stderr}"
    );
}

#[tokio::test]
async fn redirects_stay_within_the_target_and_are_never_mapped() {
    let partner = Partner::start().await;
    let map = [format!("api.partner.example=http://{}", partner.addr)];

    // A relative Location stays on the target: followed, with the original Host.
    partner.redirect_to("/v1/after");
    let r = fetch_mapped("https://api.partner.example/redirect", &[], &map).await;
    assert_eq!(r.requests[0].status, Some(200), "{:?}", r.requests[0]);
    let received = partner.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].path, "/v1/after");
    assert_eq!(header(&received[1], "host"), "api.partner.example");

    // An absolute Location to the mapped host would not be mapped: refused.
    partner.redirect_to("https://api.partner.example/elsewhere");
    let r = fetch_mapped("https://api.partner.example/redirect", &[], &map).await;
    let error = r.requests[0].error.as_deref().unwrap();
    assert!(error.starts_with("denied"), "{error}");
    assert!(error.contains("redirects are not mapped"), "{error}");
    assert_eq!(
        partner.received().len(),
        3,
        "only the first request was sent"
    );

    // An unmapped request redirected to a mapped host is refused too: followed, it
    // would reach the real host.
    let other = Partner::start().await;
    other.redirect_to("https://api.partner.example/stolen");
    let r = fetch_mapped(&other.url("/redirect"), &other.allow(), &map).await;
    let error = r.requests[0].error.as_deref().unwrap();
    assert!(error.contains("it is a mapped host"), "{error}");
    assert_eq!(partner.received().len(), 3);
}

/// A target without a scheme keeps TLS: the local server is reached with TLS, the
/// client names the original host (SNI) and verifies the certificate for it.
#[tokio::test]
async fn a_target_without_a_scheme_keeps_tls_for_the_original_host() {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    // A TLS server on 127.0.0.1 with a self-signed certificate for the partner's name:
    // no public root signed it, so a verifying client must refuse it.
    let cert = rcgen::generate_simple_self_signed(vec!["api.partner.example".into()]).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.cert.der().to_vec())],
        PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let start =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream)
                .await
                .unwrap();
        let sni = start.client_hello().server_name().map(str::to_owned);
        // The handshake fails on the client's side: it refuses the certificate.
        let _ = start.into_stream(Arc::new(config)).await;
        sni
    });

    let r = fetch_mapped(
        "https://api.partner.example/v1/track",
        &[],
        &[format!("api.partner.example={addr}")],
    )
    .await;
    let sni = server.await.unwrap();
    assert_eq!(sni.as_deref(), Some("api.partner.example"));
    let request = &r.requests[0];
    assert_eq!(
        request.sent_to.as_deref(),
        Some(&*format!("https://{addr}"))
    );
    let error = request.error.as_deref().unwrap();
    assert!(error.starts_with("network"), "{error}");
    assert!(error.contains("certificate"), "{error}");
    // The error names the function's URL and where it was sent.
    assert!(
        error.contains("https://api.partner.example/v1/track")
            && error.contains(&format!("(mapped to https://{addr})")),
        "{error}"
    );
}
