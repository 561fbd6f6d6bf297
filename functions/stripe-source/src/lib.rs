//! Segment's Stripe source function (functions-library `sources/stripe-events`, MIT),
//! ported from JavaScript: charges, new customers, subscriptions and trials ending
//! become tracks (and an identify) for the Stripe customer.
//! `tests/fixtures/js-sources/stripe-events` holds the original; the tests check both
//! emit the same calls on its examples.

use segfn_sdk::facade::{js_string, truthy};
use segfn_sdk::source::{Segment, WebhookRequest, identify, track};
use segfn_sdk::{Error, Function, NoSettings};
use serde_json::{Map, Value, json};

/// The function.
#[derive(Debug)]
pub struct StripeEvents;

impl Function for StripeEvents {
    type Settings = NoSettings;

    fn on_request(
        request: WebhookRequest,
        _: &NoSettings,
        segment: &mut Segment,
    ) -> Result<(), Error> {
        let body: Value = request.json()?;
        let object = &body["data"]["object"];
        let plan = &object["plan"];
        let context = |source: &str| json!({ "source": source });
        match body["type"].as_str() {
            Some("charge.succeeded") if truthy(&object["customer"]) => {
                let properties = fields([
                    ("createTime", object.get("created")),
                    ("amount", object.get("amount")),
                    ("paid", object.get("paid")),
                    ("status", object.get("status")),
                ]);
                segment.send(
                    track("Charge Succeeded")
                        .user_id(js_string(&object["customer"]))
                        .properties(properties)
                        .context(context("Stripe")),
                )?;
            }
            Some("customer.created") => {
                let properties = fields([
                    ("createTime", object.get("created")),
                    ("account_balance", object.get("account_balance")),
                    ("currency", object.get("currency")),
                ]);
                segment.send(
                    track("Customer Created")
                        .user_id(js_string(&object["id"]))
                        .properties(properties)
                        .context(context("stripe")),
                )?;
                // The original passes `properties` to identify, which keeps only traits.
                segment.send(
                    identify()
                        .user_id(js_string(&object["id"]))
                        .context(context("Stripe")),
                )?;
            }
            Some("customer.subscription.created") => {
                let properties = fields([
                    ("createTime", object.get("created")),
                    ("plan_id", plan.get("id")),
                    ("plan_name", plan.get("name")),
                    ("plan_interval", plan.get("interval")),
                    ("trial_start", object.get("trial_start")),
                    ("trial_end", object.get("trial_end")),
                ]);
                segment.send(
                    track("Subscription Created")
                        .user_id(js_string(&object["customer"]))
                        .properties(properties)
                        .context(context("stripe")),
                )?;
            }
            Some("customer.subscription.trial_will_end") => {
                let properties = fields([
                    ("plan_id", plan.get("id")),
                    ("plan_name", plan.get("name")),
                    ("plan_interval", plan.get("interval")),
                    ("trial_start", object.get("trial_start")),
                    ("trial_end", object.get("trial_end")),
                ]);
                segment.send(
                    track("Trial Ending Soon")
                        .user_id(js_string(&object["customer"]))
                        .properties(properties)
                        .context(context("stripe")),
                )?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// An object of these fields, in order, as a JavaScript object literal writes it: a
/// field whose value is missing (`undefined`) is left out, `null` is kept.
fn fields<const N: usize>(pairs: [(&str, Option<&Value>); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?.clone())))
        .collect()
}

segfn_sdk::export!(StripeEvents);
