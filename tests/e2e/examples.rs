//! The example functions, built from source, run through the engine against a real
//! partner API on 127.0.0.1: exact requests and every outcome kind.

use crate::support::*;
use segfn_engine::{Limits, OutcomeKind};
use segfn_sdk::abi::Call;
use serde_json::{Value, json};

fn forwarder_settings(partner: &Partner) -> Value {
    json!({"apiKey": "sk_live_forwarder_secret", "endpoint": partner.url("/v1")})
}

#[tokio::test]
async fn forwarder_sends_the_exact_request_and_succeeds() {
    let partner = Partner::start().await;
    let f = load_example("forwarder").await;
    let settings = forwarder_settings(&partner);
    let opts = options(&partner.allow(), &settings, Limits::default());
    let event = json!({
        "type": "track", "event": "Signed Up", "userId": "u-42", "messageId": "msg-1",
        "timestamp": "2024-01-02T03:04:05Z", "properties": {"plan": "pro", "seats": 3},
        "context": {"ip": "203.0.113.9"}, "_metadata": {"bundled": ["Segment.io"]}
    });
    let report = invoke_event(&f, &opts, event, settings).await;
    assert_eq!(report.outcome.kind, OutcomeKind::Success, "{report:#?}");

    let got = partner.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/v1/track");
    assert_eq!(
        got[0].headers["authorization"],
        "Bearer sk_live_forwarder_secret"
    );
    assert_eq!(got[0].headers["content-type"], "application/json");
    assert_eq!(
        got[0].json(),
        json!({"user": {"id": "u-42"}, "name": "Signed Up", "attributes": {"plan": "pro", "seats": 3},
               "occurred_at": "2024-01-02T03:04:05Z", "idempotency_key": "msg-1"})
    );

    // The report: trace, logs, resource figures; the key redacted everywhere.
    assert_eq!(report.requests.len(), 1);
    let trace = &report.requests[0];
    assert_eq!((trace.method.as_str(), trace.status), ("POST", Some(200)));
    assert_eq!(trace.url, partner.url("/v1/track"));
    assert!(trace.duration_ms > 0.0);
    assert_eq!(report.logs.len(), 1);
    assert_eq!(report.logs[0].message, "forwarded \"Signed Up\"");
    assert!(report.stats.instructions > 1000, "{:?}", report.stats);
    assert!(report.stats.memory_bytes >= 65536, "{:?}", report.stats);
    let text = serde_json::to_string(&report).unwrap();
    assert!(
        !text.contains("sk_live_forwarder_secret"),
        "secret leaked: {text}"
    );
    assert!(text.contains("[redacted]"));
}

#[tokio::test]
async fn forwarder_identify_and_partner_statuses() {
    let partner = Partner::start().await;
    let f = load_example("forwarder").await;
    let settings = forwarder_settings(&partner);
    let opts = options(&partner.allow(), &settings, Limits::default());

    let identify =
        json!({"type": "identify", "userId": "u1", "traits": {"email": "a@b.c", "name": "A"}});
    let report = invoke_event(&f, &opts, identify, settings.clone()).await;
    assert_eq!(report.outcome.kind, OutcomeKind::Success, "{report:#?}");
    let got = partner.received();
    assert_eq!(got[0].path, "/v1/users");
    assert_eq!(
        got[0].json(),
        json!({"user": {"id": "u1"}, "email": "a@b.c", "traits": {"email": "a@b.c", "name": "A"}})
    );

    for (status, kind) in [
        (429, OutcomeKind::Retry),
        (500, OutcomeKind::Retry),
        (503, OutcomeKind::Retry),
        (400, OutcomeKind::MessageRejected),
        (403, OutcomeKind::MessageRejected),
    ] {
        partner.answer(Answer {
            status,
            body: "{\"error\":\"nope\"}".into(),
            ..Answer::status(status)
        });
        let report = invoke_event(&f, &opts, track("E", "u1"), settings.clone()).await;
        assert_eq!(report.outcome.kind, kind, "partner {status}: {report:#?}");
        assert_eq!(report.requests[0].status, Some(status));
    }
}

#[tokio::test]
async fn every_outcome_kind_from_real_functions() {
    let partner = Partner::start().await;
    let f = load_example("forwarder").await;
    let settings = forwarder_settings(&partner);
    let opts = options(&partner.allow(), &settings, Limits::default());

    // unsupported_event_type: no page handler.
    let r = invoke_event(
        &f,
        &opts,
        json!({"type": "page", "userId": "u"}),
        settings.clone(),
    )
    .await;
    assert_eq!(r.outcome.kind, OutcomeKind::UnsupportedEventType);
    assert_eq!(r.outcome.message.as_deref(), Some("page is not supported"));
    // message_rejected: no identity.
    let r = invoke_event(
        &f,
        &opts,
        json!({"type": "track", "event": "E"}),
        settings.clone(),
    )
    .await;
    assert_eq!(r.outcome.kind, OutcomeKind::MessageRejected);
    // invalid_settings: the key is missing.
    let r = invoke_event(&f, &opts, track("E", "u"), json!({"endpoint": "x"})).await;
    assert_eq!(r.outcome.kind, OutcomeKind::InvalidSettings);
    assert!(r.outcome.message.unwrap().contains("apiKey"));
    // bad_request: a message that is not an object.
    let r = f
        .invoke(
            &opts,
            Call::Event {
                event: json!([1, 2]),
            },
            settings.clone(),
        )
        .await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest);
    // retry: the partner is down.
    partner.answer(Answer::status(502));
    let r = invoke_event(&f, &opts, track("E", "u"), settings.clone()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::Retry);
    // success again.
    partner.answer(Answer::status(200));
    let r = invoke_event(&f, &opts, track("E", "u"), settings.clone()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::Success);
    // No request went out for the events that were refused before sending.
    assert_eq!(partner.received().len(), 2);
}

#[tokio::test]
async fn dropped_is_reported_from_a_guest_result() {
    let f = WatGuest {
        result: r#"{"abi":1,"kind":"dropped","message":"filtered"}"#,
        ..WatGuest::default()
    }
    .load()
    .await
    .unwrap();
    let opts = options(&[], &json!({}), Limits::default());
    let r = invoke_event(&f, &opts, track("E", "u"), json!({})).await;
    assert_eq!(r.outcome.kind, OutcomeKind::Dropped);
    assert_eq!(segfn_engine::outcome::row(r.outcome.kind).exit_code, 0);
}

#[tokio::test]
async fn batches_get_one_result_per_event_in_order() {
    let partner = Partner::start().await;
    let f = load_example("forwarder").await;
    let settings = forwarder_settings(&partner);
    let opts = options(&partner.allow(), &settings, Limits::default());
    let events = vec![
        track("A", "u1"),
        json!({"type": "page", "userId": "u2"}),
        json!({"type": "identify", "userId": "u3"}),
        json!("junk"),
    ];
    let r = f.invoke(&opts, Call::Batch { events }, settings).await;
    let segfn_engine::Output::Batch(results) = &r.output else {
        panic!("batch results expected: {r:?}")
    };
    let kinds: Vec<&str> = results.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "success",
            "unsupported_event_type",
            "success",
            "bad_request"
        ]
    );
    assert_eq!(
        r.outcome.kind,
        OutcomeKind::BadRequest,
        "the most severe event outcome"
    );
    let paths: Vec<String> = partner.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/track", "/v1/users"]);
}

#[tokio::test]
async fn ecommerce_translates_order_completed() {
    let partner = Partner::start().await;
    let f = load_example("ecommerce").await;
    let settings = json!({"apiKey": "conv-key-123456", "endpoint": partner.url("/v2")});
    let opts = options(&partner.allow(), &settings, Limits::default());
    let event: Value = serde_json::from_str(include_str!(
        "../../functions/ecommerce/events/order-completed.json"
    ))
    .unwrap();
    let r = invoke_event(&f, &opts, event, settings.clone()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::Success, "{r:#?}");
    let got = partner.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/v2/conversions");
    assert_eq!(got[0].headers["x-api-key"], "conv-key-123456");
    assert_eq!(
        got[0].json(),
        json!({"conversion_id": "50314b8e9bcf000000000000", "customer_id": "user-8841", "value_minor": 2250,
               "currency": "USD", "occurred_at": "2024-03-02T18:24:05.000Z", "coupon": "hasbros",
               "items": [{"sku": "45790-32", "name": "Monopoly: 3rd Edition", "unit_price_minor": 1900, "quantity": 1},
                         {"sku": "46493-32", "name": "Uno Card Game", "unit_price_minor": 300, "quantity": 2}]})
    );

    let bad: Value = serde_json::from_str(include_str!(
        "../../functions/ecommerce/events/order-completed-missing-order-id.json"
    ))
    .unwrap();
    let r = invoke_event(&f, &opts, bad, settings.clone()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::MessageRejected);
    assert_eq!(
        r.outcome.message.as_deref(),
        Some("properties.order_id is required")
    );
    let r = invoke_event(&f, &opts, track("Product Viewed", "u"), settings).await;
    assert_eq!(r.outcome.kind, OutcomeKind::UnsupportedEventType);
    assert_eq!(partner.received().len(), 1);
}

#[tokio::test]
async fn nothing_survives_from_one_invocation_to_the_next() {
    // The same loaded function, many invocations: each starts from fresh memory, so the
    // peak memory and instruction count of identical events are identical.
    let partner = Partner::start().await;
    let f = load_example("forwarder").await;
    let settings = forwarder_settings(&partner);
    let opts = options(&partner.allow(), &settings, Limits::default());
    let first = invoke_event(&f, &opts, track("E", "u"), settings.clone()).await;
    for _ in 0..5 {
        let again = invoke_event(&f, &opts, track("E", "u"), settings.clone()).await;
        assert_eq!(again.stats.memory_bytes, first.stats.memory_bytes);
        assert_eq!(again.stats.instructions, first.stats.instructions);
        assert_eq!(again.logs, first.logs);
    }
}

#[tokio::test]
async fn pooling_allocator_runs_functions_too() {
    let runtime = segfn_engine::Runtime::new(&segfn_engine::RuntimeOptions::default()).unwrap();
    assert_eq!(
        runtime.allocation(),
        segfn_engine::Allocation::Pooled,
        "the full pool could be reserved on this machine"
    );
    let path = tokio::task::spawn_blocking(|| example_wasm("forwarder"))
        .await
        .unwrap();
    let f = runtime.load_file(&path).await.unwrap();
    let partner = Partner::start().await;
    let settings = forwarder_settings(&partner);
    let opts = options(&partner.allow(), &settings, Limits::default());
    let r = invoke_event(&f, &opts, track("E", "u"), settings).await;
    assert_eq!(r.outcome.kind, OutcomeKind::Success, "{r:#?}");
}

/// A batch of 150 events against a partner taking 50 ms per request: the forwarder's
/// `fetch_all` sends them concurrently (well inside the deadline, where one after
/// another would take 7.5 s), and the fetch limit grows with the batch (100 per event)
/// so no event is refused for the batch's size.
#[tokio::test]
async fn a_large_batch_against_a_slow_partner_finishes_and_loses_nothing() {
    let partner = Partner::start().await;
    partner.answer(Answer::delayed(50));
    let f = load_example("forwarder").await;
    let settings = forwarder_settings(&partner);
    let opts = options(&partner.allow(), &settings, Limits::default());
    let events: Vec<Value> = (0..150).map(|i| track("Bulk", &format!("u{i}"))).collect();
    let started = std::time::Instant::now();
    let r = f.invoke(&opts, Call::Batch { events }, settings).await;
    let took = started.elapsed();
    let segfn_engine::Output::Batch(results) = &r.output else {
        panic!("batch results expected: {:?}", r.outcome)
    };
    assert_eq!(results.len(), 150);
    assert!(
        results.iter().all(|e| e.kind == OutcomeKind::Success),
        "{:?}",
        results.iter().find(|e| e.kind != OutcomeKind::Success)
    );
    assert_eq!(partner.received().len(), 150);
    assert_eq!(r.requests.len(), 150, "each request is in the trace");
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
}
