//! The port natively, on webhooks shaped like the original's examples (the e2e tests
//! run every example through the Wasm build, against what the JavaScript original
//! makes).

use segfn_sdk::source::WebhookRequest;
use segfn_sdk::testing;
use serde_json::json;
use stripe_source::StripeEvents;

#[test]
fn a_new_customer_is_a_track_and_an_identify() {
    let request = WebhookRequest::from_json(json!({
        "type": "customer.created",
        "data": {"object": {"id": "cus_1", "created": 1, "account_balance": 0, "currency": null}},
    }));
    let emitted = testing::handle_request::<StripeEvents>(request, json!({})).unwrap();
    assert_eq!(
        serde_json::to_string(&emitted.events).unwrap(),
        r#"[{"type":"track","event":"Customer Created","properties":{"createTime":1,"account_balance":0,"currency":null},"userId":"cus_1","context":{"source":"stripe"}},{"type":"identify","userId":"cus_1","context":{"source":"Stripe"}}]"#
    );
}

#[test]
fn a_charge_without_a_customer_and_other_events_make_no_calls() {
    for body in [
        json!({"type": "charge.succeeded", "data": {"object": {"customer": null}}}),
        json!({"type": "invoice.paid", "data": {"object": {}}}),
    ] {
        let emitted =
            testing::handle_request::<StripeEvents>(WebhookRequest::from_json(body), json!({}))
                .unwrap();
        assert!(emitted.events.is_empty() && emitted.objects.is_empty());
    }
}
