//! Example function: turns Segment Ecommerce v2 "Order Completed" events into a
//! partner's conversion call, and rejects what it cannot send.

use segfn_sdk::schemars::{self, JsonSchema};
use segfn_sdk::spec::ecommerce::{self as spec, OrderCompleted, Product, minor_units};
use segfn_sdk::{Error, Function, HandlerResult, OrError, Request, Secret, Track, fetch, info};
use serde::{Deserialize, Serialize};

/// The function's settings. The doc comments are the settings' descriptions in
/// `segfn schema` and `segfn docs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Your partner account's API key, from the partner dashboard's Integrations page.
    pub api_key: Secret,
    /// Base URL of the partner's conversions API; change it only to use a regional or
    /// test endpoint.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Currency assumed for orders whose event has none (ISO 4217, e.g. `EUR`).
    /// Segment's Ecommerce spec assumes USD.
    #[serde(default = "default_currency")]
    pub default_currency: String,
}

fn default_endpoint() -> String {
    "https://conversions.partner.example/v2".into()
}

fn default_currency() -> String {
    "USD".into()
}

/// The partner's conversion call.
#[derive(Debug, Serialize, PartialEq)]
pub struct Conversion {
    /// The order id; the partner de-duplicates on it.
    pub conversion_id: String,
    /// Who converted.
    pub customer_id: String,
    /// Order value in minor units (cents), as the partner wants integers.
    pub value_minor: i64,
    /// Upper-case ISO 4217 code.
    pub currency: String,
    /// When it happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// Coupon code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coupon: Option<String>,
    /// Line items.
    pub items: Vec<Item>,
}

/// One line item.
#[derive(Debug, Serialize, PartialEq)]
pub struct Item {
    /// SKU, or the product id when there is none.
    pub sku: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unit price in minor units.
    pub unit_price_minor: i64,
    /// Quantity.
    pub quantity: u32,
}

/// The function.
#[derive(Debug)]
pub struct Ecommerce;

impl Function for Ecommerce {
    type Settings = Settings;

    fn on_track(event: Track, settings: &Settings) -> HandlerResult {
        // The SDK's Ecommerce view; "Completed Order", the v1 name, is the same event.
        let order = match event.ecommerce() {
            Some(spec::Ecommerce::OrderCompleted(order)) => order,
            _ => {
                return Err(match event.event() {
                    Some(other) => Error::not_supported(format!(
                        "only \"Order Completed\" is sent, not {other:?}"
                    )),
                    None => Error::invalid_payload("track event has no name"),
                });
            }
        };
        let conversion = translate(&event, &order, settings)?;
        let url = format!("{}/conversions", settings.endpoint.trim_end_matches('/'));
        let response = fetch(
            Request::post(url)
                .header("x-api-key", settings.api_key.expose())
                .json(&conversion)?,
        )?;
        match response.status {
            200..=299 => {
                info!(
                    "conversion {} sent: {} {}",
                    conversion.conversion_id, conversion.value_minor, conversion.currency
                );
                Ok(None)
            }
            409 => {
                // The partner already has this order: a duplicate delivery, not a failure.
                info!("conversion {} already recorded", conversion.conversion_id);
                Ok(None)
            }
            429 | 500..=599 => Err(Error::retry(format!(
                "partner answered {}",
                response.status
            ))),
            status => Err(Error::validation(format!(
                "partner rejected the conversion ({status}): {}",
                response.text()
            ))),
        }
    }
}

/// The properties of "Order Completed" this function sends, and of each product. A value
/// of the wrong type for one of them (an `order_id` sent as a number, a `"22.50"`
/// revenue) is refused rather than guessed at; the others are not this function's concern.
const ORDER_PROPERTIES: [&str; 6] = [
    "order_id", "revenue", "total", "currency", "coupon", "products",
];
const PRODUCT_PROPERTIES: [&str; 5] = ["sku", "product_id", "name", "price", "quantity"];

/// Builds the partner's conversion from an "Order Completed" event and its view.
pub fn translate(
    event: &Track,
    order: &OrderCompleted,
    settings: &Settings,
) -> Result<Conversion, Error> {
    if let Some(misfit) = ORDER_PROPERTIES.iter().find_map(|p| order.misfit(p)) {
        return Err(Error::invalid_payload(format!("properties.{misfit}")));
    }
    let conversion_id = order
        .order_id
        .clone()
        .filter(|id| !id.is_empty())
        .or_invalid_payload("properties.order_id is required")?;
    let customer_id = event
        .user_id()
        .or(event.anonymous_id())
        .or_invalid_payload("userId or anonymousId is required")?
        .to_owned();
    // Revenue, or the total when there is none: this partner's choice, not the spec's.
    let value = order
        .revenue
        .or(order.total)
        .or_validation("properties.revenue or properties.total is required")?;
    if !value.is_finite() || value < 0.0 {
        return Err(Error::validation(format!(
            "order value {value} is not a positive amount"
        )));
    }
    let currency = order
        .currency
        .clone()
        .unwrap_or_else(|| settings.default_currency.clone());
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(Error::validation(format!(
            "currency {currency:?} is not an ISO 4217 code"
        )));
    }
    let items = order
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| item(i, p))
        .collect::<Result<_, _>>()?;
    Ok(Conversion {
        conversion_id,
        customer_id,
        value_minor: minor(value)?,
        currency: currency.to_ascii_uppercase(),
        occurred_at: event.timestamp().map(str::to_owned),
        coupon: order.coupon.clone(),
        items,
    })
}

fn item(index: usize, product: &Product) -> Result<Item, Error> {
    if let Some(misfit) = PRODUCT_PROPERTIES.iter().find_map(|p| product.misfit(p)) {
        return Err(Error::invalid_payload(format!(
            "properties.products[{index}].{misfit}"
        )));
    }
    let sku = product
        .sku
        .clone()
        .or_else(|| product.product_id.clone())
        .ok_or_else(|| {
            Error::validation(format!("products[{index}] has neither sku nor product_id"))
        })?;
    // One item when the quantity is missing: this partner's default, not the spec's.
    let quantity = product.quantity.unwrap_or(1.0);
    if quantity < 1.0 || quantity.fract() != 0.0 || quantity > f64::from(u32::MAX) {
        return Err(Error::validation(format!(
            "products[{index}].quantity {quantity} is not a whole number of items"
        )));
    }
    Ok(Item {
        sku,
        name: product.name.clone(),
        unit_price_minor: minor(product.price.unwrap_or(0.0))?,
        quantity: quantity as u32,
    })
}

/// Amount in minor units (the partner takes two decimals for every currency).
fn minor(amount: f64) -> Result<i64, Error> {
    minor_units(amount, 2)
        .ok_or_else(|| Error::validation(format!("amount {amount} is out of range")))
}

// `schema`: the module also describes its settings, for `segfn schema` and `segfn docs`.
segfn_sdk::export!(Ecommerce, schema);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::{OutcomeKind, Response, testing};
    use serde_json::{Value, json};

    fn settings() -> Value {
        json!({"apiKey": "ck", "endpoint": "https://conv.test/v2"})
    }

    fn order(props: Value) -> Value {
        json!({"type": "track", "event": "Order Completed", "userId": "u7", "timestamp": "2024-05-01T10:00:00Z", "properties": props})
    }

    #[test]
    fn order_completed_becomes_a_conversion() {
        testing::mock_fetch(|_| Ok(Response::new(201)));
        let result = testing::handle::<Ecommerce>(
            order(
                json!({"order_id": "o1", "revenue": 22.5, "currency": "eur", "coupon": "X",
                         "products": [{"sku": "s1", "name": "A", "price": 19, "quantity": 1},
                                      {"product_id": "p2", "price": 1.75, "quantity": 2}]}),
            ),
            settings(),
        );
        assert_eq!(result.kind, OutcomeKind::Success, "{result:?}");
        let sent = testing::requests();
        assert_eq!(sent[0].url, "https://conv.test/v2/conversions");
        assert_eq!(sent[0].header_value("x-api-key"), Some("ck"));
        let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(
            body,
            json!({"conversion_id": "o1", "customer_id": "u7", "value_minor": 2250, "currency": "EUR",
                   "occurred_at": "2024-05-01T10:00:00Z", "coupon": "X",
                   "items": [{"sku": "s1", "name": "A", "unit_price_minor": 1900, "quantity": 1},
                             {"sku": "p2", "unit_price_minor": 175, "quantity": 2}]})
        );
    }

    #[test]
    fn rejects_what_it_cannot_send() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let cases = [
            (json!({"revenue": 1}), "order_id"),
            (json!({"order_id": "o", "revenue": -1}), "positive"),
            (json!({"order_id": "o"}), "revenue"),
            (
                json!({"order_id": "o", "revenue": 1, "currency": "dollars"}),
                "ISO 4217",
            ),
            (
                json!({"order_id": "o", "revenue": 1, "products": [{"name": "x"}]}),
                "sku",
            ),
            (
                json!({"order_id": "o", "revenue": 1, "products": [{"sku": "x", "quantity": 1.5}]}),
                "whole number",
            ),
            (json!({"order_id": 5, "revenue": 1}), "invalid type"),
        ];
        for (props, needle) in cases {
            let result = testing::handle::<Ecommerce>(order(props.clone()), settings());
            assert_eq!(
                result.kind,
                OutcomeKind::MessageRejected,
                "{props}: {result:?}"
            );
            assert!(
                result.message().unwrap_or("").contains(needle),
                "{props}: {result:?}"
            );
        }
        assert!(testing::requests().is_empty());
    }

    #[test]
    fn v1_name_and_unnamed_properties_are_accepted() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let mut event = order(json!({"order_id": "o2", "total": 5, "gift_wrap": "yes",
                                     "affiliation": 7, "products": [{"sku": "s", "color": 3}]}));
        event["event"] = json!("Completed Order");
        let result = testing::handle::<Ecommerce>(event, settings());
        assert_eq!(result.kind, OutcomeKind::Success, "{result:?}");
        let body: Value = serde_json::from_slice(&testing::requests()[0].body).unwrap();
        assert_eq!(body["value_minor"], 500);
        assert_eq!(
            body["items"],
            json!([{"sku": "s", "unit_price_minor": 0, "quantity": 1}])
        );
    }

    #[test]
    fn misfits_of_what_is_sent_are_rejected_by_name() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let cases = [
            (
                json!({"order_id": "o", "revenue": "22.50"}),
                "properties.revenue has an invalid type",
            ),
            (
                json!({"order_id": "o", "revenue": 1, "products": [null]}),
                "properties.products has an invalid type",
            ),
            (
                json!({"order_id": "o", "revenue": 1, "products": [{"sku": "s", "price": "9.99"}]}),
                "properties.products[0].price has an invalid type",
            ),
        ];
        for (props, needle) in cases {
            let result = testing::handle::<Ecommerce>(order(props.clone()), settings());
            assert_eq!(
                result.kind,
                OutcomeKind::MessageRejected,
                "{props}: {result:?}"
            );
            assert!(
                result.message().unwrap_or("").contains(needle),
                "{props}: {result:?}"
            );
        }
        assert!(testing::requests().is_empty());
    }

    #[test]
    fn other_events_are_not_supported() {
        let result = testing::handle::<Ecommerce>(
            json!({"type": "track", "event": "Product Viewed", "userId": "u"}),
            settings(),
        );
        assert_eq!(result.kind, OutcomeKind::UnsupportedEventType);
        let result =
            testing::handle::<Ecommerce>(json!({"type": "identify", "userId": "u"}), settings());
        assert_eq!(result.kind, OutcomeKind::UnsupportedEventType);
    }

    #[test]
    fn duplicate_is_success_and_overload_retries() {
        testing::mock_fetch(|_| Ok(Response::new(409)));
        let ok = order(json!({"order_id": "o", "total": 3}));
        assert_eq!(
            testing::handle::<Ecommerce>(ok.clone(), settings()).kind,
            OutcomeKind::Success
        );
        testing::mock_fetch(|_| Ok(Response::new(503)));
        assert_eq!(
            testing::handle::<Ecommerce>(ok, settings()).kind,
            OutcomeKind::Retry
        );
    }
}
