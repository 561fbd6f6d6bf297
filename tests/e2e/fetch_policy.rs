//! `fetch` is deny by default: hosts off the allow-list, and loopback or private
//! addresses not named explicitly, are refused before any connection, on the resolved
//! address and on every redirect.

use crate::adversarial::fetch_once;
use crate::support::*;
use segfn_engine::{Limits, OutcomeKind};
use serde_json::json;

#[tokio::test]
async fn a_host_off_the_allow_list_is_refused_and_the_function_sees_why() {
    let partner = Partner::start().await;
    // The real forwarder, with an allow-list that does not include the partner.
    let f = load_example("forwarder").await;
    let settings = json!({"apiKey": "sk_test_abcdef", "endpoint": partner.url("/v1")});
    let opts = options(
        &["api.partner.example".to_string()],
        &settings,
        Limits::default(),
    );
    let r = invoke_event(&f, &opts, track("E", "u"), settings).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest, "{r:#?}");
    let message = r.outcome.message.unwrap();
    assert!(message.contains("not on the allow-list"), "{message}");
    assert!(
        message.contains(&format!("--allow-host 127.0.0.1:{}", partner.addr.port())),
        "{message}"
    );
    assert!(
        r.requests[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("denied")
    );
    assert!(partner.received().is_empty(), "no connection was made");
}

#[tokio::test]
async fn an_empty_allow_list_denies_everything() {
    let partner = Partner::start().await;
    let r = fetch_once(&partner.url("/x"), &[]).await;
    assert!(
        r.requests[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not on the allow-list")
    );
    assert!(partner.received().is_empty());
}

#[tokio::test]
async fn loopback_is_refused_unless_named_explicitly() {
    let partner = Partner::start().await;
    let port = partner.addr.port();
    for url in [
        partner.url("/x"),
        format!("http://localhost:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
    ] {
        let r = fetch_once(&url, &["*".to_string()]).await;
        let err = r.requests[0].error.as_deref().unwrap();
        assert!(err.starts_with("denied"), "{url}: {err}");
        assert!(err.contains("loopback"), "{url}: {err}");
    }
    assert!(partner.received().is_empty());

    // Named explicitly (address or `localhost`), it is allowed.
    for (url, allow) in [
        (partner.url("/ok"), partner.addr.to_string()),
        (
            format!("http://localhost:{port}/ok"),
            format!("localhost:{port}"),
        ),
    ] {
        let r = fetch_once(&url, &[allow]).await;
        assert_eq!(
            r.requests[0].status,
            Some(200),
            "{url}: {:?}",
            r.requests[0]
        );
    }
    assert_eq!(partner.received().len(), 2);
}

#[tokio::test]
async fn metadata_and_private_addresses_are_refused_without_connecting() {
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://[fe80::1]/",
    ] {
        let r = fetch_once(url, &["*".to_string()]).await;
        let err = r.requests[0].error.as_deref().unwrap();
        assert!(err.starts_with("denied"), "{url}: {err}");
    }
}

#[tokio::test]
async fn redirects_are_checked_too() {
    let partner = Partner::start().await;
    let other = Partner::start().await;
    partner.redirect_to(&other.url("/stolen"));
    let r = fetch_once(&partner.url("/redirect"), &partner.allow()).await;
    let err = r.requests[0].error.as_deref().unwrap();
    assert!(err.contains("not on the allow-list"), "{err}");
    assert!(
        other.received().is_empty(),
        "the redirect target was not contacted"
    );

    // Allowed targets are followed.
    let allow = vec![partner.addr.to_string(), other.addr.to_string()];
    let r = fetch_once(&partner.url("/redirect"), &allow).await;
    assert_eq!(r.requests[0].status, Some(200));
    assert_eq!(other.received().len(), 1);
}

#[tokio::test]
async fn unreachable_hosts_are_network_errors_the_function_can_retry() {
    // A port nothing listens on (bound, then closed).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let settings =
        json!({"apiKey": "sk_test_abcdef", "endpoint": format!("http://127.0.0.1:{port}/v1")});
    let f = load_example("forwarder").await;
    let r = invoke_event(
        &f,
        &options(&[format!("127.0.0.1:{port}")], &settings, Limits::default()),
        track("E", "u"),
        settings,
    )
    .await;
    assert_eq!(r.outcome.kind, OutcomeKind::Retry, "{r:#?}");
    assert!(
        r.requests[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("network")
    );
}
