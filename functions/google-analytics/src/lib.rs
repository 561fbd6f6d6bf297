//! Google Analytics destination: Segment's old server-side Google Analytics integration
//! (`segment-boneyard/integration-google-analytics`, `lib/index.js` and
//! `lib/universal/{index,mapper,enhanced-ecommerce}.js`) ported to a segfn function,
//! mapping for mapping. Upstream code: MIT, "Copyright (c) 2016 Segment.io" (the full
//! notice is in `tests/pairs/SOURCES.md`). The legacy "classic" (`__utm.gif`) mode is not
//! ported: with `serversideClassic` on, events are rejected.
//!
//! Every call becomes one Measurement Protocol hit, a form posted to `{endpoint}` (`t=`
//! `pageview`, `screenview` or `event`); Order Completed without enhanced ecommerce sends
//! three kinds of hits (the event, the `transaction`, one `item` per product). With
//! `enhancedEcommerce` on, the ecommerce spec events (Product Viewed, Checkout Started,
//! Order Refunded, Promotion Clicked, ...) carry Enhanced Ecommerce parameters. Custom
//! dimensions and metrics come from traits and properties per the `dimensions` and
//! `metrics` settings. `qt` is the queue time: now minus the event's timestamp.

use segfn_sdk::facade::{Facade, js_number, js_string, lookup, truthy};
use segfn_sdk::{
    Error, Event, Function, HandlerResult, Object, Page, Request, Response, Screen, Track,
    fetch_all, now_millis,
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The destination's settings, as configured in Segment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Tracking id for events from servers and browsers (`UA-...`).
    #[serde(default)]
    pub serverside_tracking_id: String,
    /// Tracking id for events from Segment's iOS, Android and Xamarin libraries.
    #[serde(default)]
    pub mobile_tracking_id: String,
    /// The legacy classic mode, which this port does not have.
    #[serde(default)]
    pub serverside_classic: bool,
    /// Send ecommerce spec events with Enhanced Ecommerce parameters.
    #[serde(default)]
    pub enhanced_ecommerce: bool,
    /// Send the `userId` as `uid`.
    #[serde(default)]
    pub send_user_id: bool,
    /// Mark every event as a non-interaction hit (any truthy value).
    #[serde(default)]
    pub non_interaction: Value,
    /// Trait or property name to `dimensionN`.
    #[serde(default)]
    pub dimensions: Map<String, Value>,
    /// Trait or property name to `metricN`.
    #[serde(default)]
    pub metrics: Map<String, Value>,
    /// The collect endpoint.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
}

fn default_endpoint() -> String {
    "https://ssl.google-analytics.com/collect".into()
}

/// The function.
#[derive(Debug)]
pub struct GoogleAnalytics;

impl Function for GoogleAnalytics {
    type Settings = Settings;

    fn on_track(event: Track, settings: &Settings) -> HandlerResult {
        send(
            settings,
            track_hits(&ensure(&Event::Track(event), settings)?, settings),
        )
    }

    fn on_page(event: Page, settings: &Settings) -> HandlerResult {
        send(
            settings,
            vec![page(&ensure(&Event::Page(event), settings)?, settings)],
        )
    }

    fn on_screen(event: Screen, settings: &Settings) -> HandlerResult {
        send(
            settings,
            vec![screen(&ensure(&Event::Screen(event), settings)?, settings)],
        )
    }
}

/// The integration's checks: a tracking id, the universal mode, and an app name on
/// screen calls (Google requires it for screen views).
fn ensure(event: &Event, settings: &Settings) -> Result<Facade, Error> {
    if settings.serverside_tracking_id.is_empty() && settings.mobile_tracking_id.is_empty() {
        return Err(Error::validation(
            "Must set either server-side or mobile tracking ID",
        ));
    }
    if settings.serverside_classic {
        return Err(Error::validation(
            "classic Google Analytics is not supported; use Universal",
        ));
    }
    let msg = Facade::new(event)?;
    if msg.kind() == "screen" && msg.proxy("context.app.name").is_none_or(|n| !truthy(&n)) {
        return Err(Error::invalid_payload("context.app.name required"));
    }
    Ok(msg)
}

/// The hits for a track call: by event name, an ecommerce or mobile campaign mapping
/// (as `analytics-events` names them), else a plain event.
pub fn track_hits(msg: &Facade, settings: &Settings) -> Vec<Object> {
    let event = msg.field("event").map(js_string).unwrap_or_default();
    let ee = settings.enhanced_ecommerce;
    let spec = SPEC_EVENTS.iter().find(|(_, enhanced, alternatives)| {
        (ee || !enhanced)
            && alternatives
                .iter()
                .enumerate()
                .any(|(i, words)| spec_matches(&event, words, i == alternatives.len() - 1))
    });
    let Some((name, _, _)) = spec else {
        return vec![track(msg, settings)];
    };
    let common = || common_form(msg, settings, false);
    let product = |action| {
        ee_event(msg, Some(action))
            .chain(common())
            .chain(page_data(msg))
            .chain(format_product(&msg.properties(), 1, false))
            .collect()
    };
    let checkout = || {
        ee_event(msg, Some("checkout"))
            .chain(common())
            .chain(format_products(&msg.products(), false))
            .chain(page_data(msg))
            .chain(renamed(msg, &[("step", "cos"), ("option", "col")]))
            .collect()
    };
    let hit: Object = match (*name, ee) {
        ("orderCompleted", false) => return order_completed(msg, settings),
        (
            "installAttributed"
            | "pushNotificationReceived"
            | "pushNotificationTapped"
            | "pushNotificationBounced",
            _,
        ) => {
            let el = msg
                .proxy("properties.action")
                .filter(truthy)
                .unwrap_or("event".into());
            let event = [
                ("ea", msg.field("event").cloned()),
                ("ec", Some("All".into())),
                ("el", Some(el)),
                ("t", Some("event".into())),
            ];
            event
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                .chain(common_form(msg, settings, true))
                .chain(page_data(msg))
                .collect()
        }
        ("productViewed", _) => product("detail"),
        ("productClicked", _) => product("click"),
        ("productAdded", _) => product("add"),
        ("productRemoved", _) => product("remove"),
        ("checkoutStarted" | "orderUpdated" | "checkoutStepViewed", _) => checkout(),
        ("checkoutStepCompleted", _) => ee_event(msg, Some("checkout_option"))
            .chain(common())
            .chain(renamed(msg, &[("option", "col"), ("step", "cos")]))
            .collect(),
        ("orderCompleted", true) => {
            let transaction = [
                ("ta", msg.proxy("properties.affiliation")),
                ("ts", msg.proxy("properties.shipping")),
                ("cu", Some(msg.currency())),
                ("tr", msg.revenue().map(Value::from)),
                ("ti", msg.order_id()),
                ("tt", msg.proxy("properties.tax")),
            ];
            let transaction = transaction
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?)));
            transaction
                .chain(ee_event(msg, Some("purchase")))
                .chain(common())
                .chain(page_data(msg))
                .chain(format_products(&msg.products(), false))
                .collect()
        }
        ("orderRefunded", _) => {
            let ti = msg.order_id().map(|id| ("ti".to_owned(), id));
            ee_event(msg, Some("refund"))
                .chain(common())
                .chain(format_products(&msg.products(), false))
                .chain(ti)
                .chain([("ni".to_owned(), 1.into())])
                .collect()
        }
        ("promotionViewed" | "promotionClicked", _) => {
            let renames = [
                ("creative", "promo1cr"),
                ("id", "promo1id"),
                ("promotion_id", "promo1id"),
                ("promotionId", "promo1id"),
                ("name", "promo1nm"),
                ("position", "promo1ps"),
            ];
            let mut hit: Object = ee_event(msg, None).collect();
            if *name == "promotionViewed" {
                hit.extend(page_data(msg));
            }
            hit.extend(common());
            hit.extend(renamed(msg, &renames));
            if *name == "promotionClicked" {
                hit.insert("promoa".into(), "click".into());
            }
            hit.insert("ni".into(), 1.into());
            hit
        }
        ("productListViewed" | "productListFiltered", _) => {
            let mut products =
                msg.field("properties").cloned().unwrap_or_default()["products"].take();
            if *name == "productListFiltered" {
                let props = msg.properties();
                let variant = format_filters(props.get("filters"), props.get("sorts"));
                for product in products.as_array_mut().into_iter().flatten() {
                    if let Value::Object(product) = product {
                        product.insert("variant".into(), variant.clone().into());
                    }
                }
            }
            let list = renamed(msg, &[("list_id", "il1nm")]);
            ee_event(msg, Some("detail"))
                .chain(common())
                .chain(page_data(msg))
                .chain(format_products(
                    products.as_array().map_or(&[], Vec::as_slice),
                    true,
                ))
                .chain(list)
                .collect()
        }
        _ => track(msg, settings),
    };
    vec![hit]
}

/// The spec events this integration maps, in `analytics-events` order: (method, only
/// with enhanced ecommerce, word orders). `analytics-events` joins the alternatives into
/// one pattern anchored only at its very end: the others match as prefixes.
const SPEC_EVENTS: &[(&str, bool, &[&[&str]])] = &[
    (
        "promotionViewed",
        true,
        &[&["viewed", "promotion"], &["promotion", "viewed"]],
    ),
    (
        "promotionClicked",
        true,
        &[&["clicked", "promotion"], &["promotion", "clicked"]],
    ),
    (
        "productListViewed",
        true,
        &[
            &["viewed", "product", "list"],
            &["product", "list", "viewed"],
            &["viewed", "product", "category"],
            &["product", "category", "viewed"],
        ],
    ),
    (
        "productListFiltered",
        true,
        &[
            &["filtered", "product", "list"],
            &["product", "list", "filtered"],
        ],
    ),
    (
        "productClicked",
        true,
        &[&["clicked", "product"], &["product", "clicked"]],
    ),
    (
        "productViewed",
        true,
        &[&["viewed", "product"], &["product", "viewed"]],
    ),
    (
        "productAdded",
        true,
        &[&["added", "product"], &["product", "added"]],
    ),
    (
        "productRemoved",
        true,
        &[&["removed", "product"], &["product", "removed"]],
    ),
    (
        "orderUpdated",
        true,
        &[&["updated", "order"], &["order", "updated"]],
    ),
    (
        "orderCompleted",
        false,
        &[&["completed", "order"], &["order", "completed"]],
    ),
    (
        "orderRefunded",
        true,
        &[&["refunded", "order"], &["order", "refunded"]],
    ),
    (
        "checkoutStarted",
        true,
        &[&["started", "checkout"], &["checkout", "started"]],
    ),
    (
        "checkoutStepViewed",
        true,
        &[
            &["viewed", "checkout", "step"],
            &["checkout", "step", "viewed"],
        ],
    ),
    (
        "checkoutStepCompleted",
        true,
        &[
            &["completed", "checkout", "step"],
            &["checkout", "step", "completed"],
        ],
    ),
    (
        "installAttributed",
        false,
        &[&["attributed", "install"], &["install", "attributed"]],
    ),
    (
        "pushNotificationReceived",
        false,
        &[
            &["received", "push", "notification"],
            &["push", "notification", "received"],
        ],
    ),
    (
        "pushNotificationTapped",
        false,
        &[
            &["tapped", "push", "notification"],
            &["push", "notification", "tapped"],
        ],
    ),
    (
        "pushNotificationBounced",
        false,
        &[
            &["bounced", "push", "notification"],
            &["push", "notification", "bounced"],
        ],
    ),
];

/// `^[ _]?w1[ _]?w2...[ _]?` (case-insensitive), to the end when `anchored`.
fn spec_matches(event: &str, words: &[&str], anchored: bool) -> bool {
    let event = event.to_ascii_lowercase();
    let mut rest = event.as_str();
    let skip = |s: &str| s.strip_prefix([' ', '_']).unwrap_or(s).to_owned();
    let mut owned = skip(rest);
    for word in words {
        rest = &owned;
        let Some(after) = rest.strip_prefix(word) else {
            return false;
        };
        owned = skip(after);
    }
    !anchored || owned.is_empty()
}

/// `mapper.track`: an event hit.
pub fn track(msg: &Facade, settings: &Settings) -> Object {
    let ni = msg
        .proxy("properties.nonInteraction")
        .filter(truthy)
        .is_some()
        || truthy(&settings.non_interaction);
    let mut hit = page_url_data(msg, common_form(msg, settings, false));
    let value = msg
        .proxy("properties.value")
        .as_ref()
        .and_then(js_to_number)
        .filter(|v| *v != 0.0);
    let ev = value.or(msg.revenue()).unwrap_or(0.0);
    hit.insert("ev".into(), js_number((ev + 0.5).floor()));
    hit.insert(
        "el".into(),
        msg.proxy("properties.label")
            .filter(truthy)
            .unwrap_or("event".into()),
    );
    hit.insert(
        "ec".into(),
        msg.proxy("properties.category")
            .filter(truthy)
            .unwrap_or("All".into()),
    );
    put(&mut hit, "ea", msg.field("event").cloned());
    hit.insert("t".into(), "event".into());
    if ni {
        hit.insert("ni".into(), 1.into());
    }
    hit
}

/// `mapper.page`: a pageview hit.
pub fn page(msg: &Facade, settings: &Settings) -> Object {
    let mut hit = page_url_data(msg, common_form(msg, settings, false));
    let referrer = [
        "context.referrer.url",
        "context.page.referrer",
        "properties.referrer",
    ];
    if let Some(referrer) = referrer.iter().find_map(|p| msg.proxy(p).filter(truthy)) {
        hit.insert("dr".into(), referrer);
    }
    put(&mut hit, "dt", msg.full_name());
    hit.insert("t".into(), "pageview".into());
    hit
}

/// `mapper.screen`: a screenview hit.
pub fn screen(msg: &Facade, settings: &Settings) -> Object {
    let mut hit = common_form(msg, settings, false);
    hit.shift_remove("cd");
    put(&mut hit, "cd", msg.name());
    hit.insert("t".into(), "screenview".into());
    hit
}

/// `mapper.orderCompleted` (standard ecommerce): the event, the transaction, the items.
pub fn order_completed(msg: &Facade, settings: &Settings) -> Vec<Object> {
    let (currency, order_id) = (msg.currency(), msg.order_id());
    let mut transaction = page_url_data(msg, common_form(msg, settings, false));
    put(&mut transaction, "ta", msg.proxy("properties.affiliation"));
    put(&mut transaction, "ts", msg.proxy("properties.shipping"));
    put(&mut transaction, "tr", msg.revenue().map(Value::from));
    transaction.insert("t".into(), "transaction".into());
    put(&mut transaction, "tt", msg.proxy("properties.tax"));
    transaction.insert("cu".into(), currency.clone());
    put(&mut transaction, "ti", order_id.clone());
    let mut hits = vec![track(msg, settings), transaction];
    for product in msg.products() {
        let product = Value::Object(product.as_object().cloned().unwrap_or_default());
        let mut item = common_form(msg, settings, false);
        item.insert("iq".into(), quantity(&product));
        for (key, field) in [
            ("iv", "category"),
            ("ip", "price"),
            ("in", "name"),
            ("ic", "sku"),
        ] {
            put(&mut item, key, lookup(&product, field).cloned());
        }
        item.insert("cu".into(), currency.clone());
        put(&mut item, "ti", order_id.clone());
        item.insert("t".into(), "item".into());
        hits.push(item);
    }
    hits
}

/// What every hit carries: ids, custom dimensions and metrics, campaign, screen, locale,
/// app, user, IP, queue time and a user agent.
fn common_form(msg: &Facade, settings: &Settings, mobile_event: bool) -> Object {
    let library = msg.proxy("context.library");
    let tracking_id = match is_mobile(library.as_ref()) && !settings.mobile_tracking_id.is_empty() {
        true => &settings.mobile_tracking_id,
        false => &settings.serverside_tracking_id,
    };
    let user = msg
        .user_id()
        .filter(|v| truthy(v))
        .or(msg.anonymous_id())
        .map(js_string);
    let client_id = msg
        .integration_options("Google Analytics")
        .get("clientId")
        .filter(|c| c.is_string())
        .cloned();
    let campaign = match mobile_event {
        true => msg.proxy("properties.campaign"),
        false => msg.proxy("context.campaign"),
    };
    let (campaign, screen) = (
        campaign.unwrap_or_default(),
        msg.proxy("context.screen").unwrap_or_default(),
    );
    let app = msg.proxy("context.app").unwrap_or_default();
    let mut form = metrics(&msg.traits(), settings);
    form.extend(metrics(
        &msg.field("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        settings,
    ));
    form.insert(
        "cid".into(),
        client_id.unwrap_or_else(|| string_hash(&user.unwrap_or("undefined".into())).into()),
    );
    form.insert("tid".into(), tracking_id.as_str().into());
    form.insert("v".into(), 1.into());
    for (key, obj, field) in [
        ("cn", &campaign, "name"),
        ("cs", &campaign, "source"),
        ("cm", &campaign, "medium"),
        ("ck", &campaign, "keyword"),
        ("cc", &campaign, "content"),
        ("cd", &screen, "name"),
    ] {
        put(&mut form, key, Some(obj[field].clone()).filter(truthy));
    }
    if truthy(&screen["height"]) && truthy(&screen["width"]) {
        form.insert(
            "sr".into(),
            format!(
                "{}x{}",
                js_string(&screen["width"]),
                js_string(&screen["height"])
            )
            .into(),
        );
    }
    let locale = msg.proxy("context.locale").filter(truthy);
    put(&mut form, "ul", locale.clone());
    for (key, field) in [
        ("an", "name"),
        ("av", "version"),
        ("aid", "appId"),
        ("aiid", "appInstallerId"),
    ] {
        put(&mut form, key, Some(app[field].clone()).filter(truthy));
    }
    if settings.send_user_id {
        put(
            &mut form,
            "uid",
            msg.user_id().filter(|v| truthy(v)).cloned(),
        );
    }
    put(&mut form, "uip", msg.proxy("context.ip").filter(truthy));
    // Queue time: how long ago the event happened, at most 3 h 59 min (GA drops older).
    let queue = (now_millis() - msg.timestamp.millis()).clamp(0, 14_340_000);
    form.insert("qt".into(), queue.into());
    let text = |path: &str| msg.text(path).filter(|t| !t.is_empty());
    if let Some(agent) = msg.proxy("context.userAgent").filter(truthy) {
        form.insert("ua".into(), agent);
    } else if let (Some(os), Some(version), Some(model), Some(_), Some(_)) = (
        text("context.os.name"),
        text("context.os.version"),
        text("context.device.model"),
        text("context.device.manufacturer"),
        locale,
    ) {
        // GA tells devices apart by user agent: one in the shape iOS devices send.
        let model: String = model
            .chars()
            .take(model.chars().count().saturating_sub(3))
            .collect();
        let major = version.chars().next().unwrap_or_default();
        let ua = format!(
            "Mozilla/5.0 ({model}; CPU {os} {} like Mac OS X) AppleWebKit/600.1.4 (KHTML, like Gecko) Version/{major}.0 Mobile/10B329 Safari/8536.25",
            version.replace('.', "_")
        );
        form.insert("ua".into(), ua.into());
    }
    form
}

/// `dh` and `dp` from `properties.url` or `context.page.url` (`dp` with the query).
fn page_url_data(msg: &Facade, mut form: Object) -> Object {
    let url = msg
        .proxy("properties.url")
        .filter(truthy)
        .or_else(|| msg.proxy("context.page.url"));
    if let Some(Value::String(url)) = url {
        let parsed = Url::parse(&url);
        put(&mut form, "dh", parsed.hostname.map(Value::from));
        put(&mut form, "dp", parsed.path.map(Value::from));
    }
    form
}

/// `formatPage`: `dh`, `dp` (without the query) and `dt` from `context.page`.
fn page_data(msg: &Facade) -> impl Iterator<Item = (String, Value)> {
    let parsed = Url::parse(&msg.text("context.page.url").unwrap_or_default());
    let pathname = parsed
        .path
        .map(|p| p.split('?').next().unwrap_or_default().to_owned());
    [
        ("dh", parsed.hostname.map(Value::from)),
        ("dp", pathname.map(Value::from)),
        ("dt", msg.proxy("context.page.title")),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_owned(), v?)))
}

/// `formatEnhancedEcommerceEvent`: the event part of an enhanced ecommerce hit.
fn ee_event(msg: &Facade, action: Option<&str>) -> impl Iterator<Item = (String, Value)> {
    let label = msg
        .proxy("properties.label")
        .filter(truthy)
        .unwrap_or("event".into());
    let fields = [
        ("pa", action.map(Value::from)),
        ("t", Some("event".into())),
        ("ea", msg.field("event").cloned()),
        ("ec", Some("EnhancedEcommerce".into())),
        ("el", Some(label)),
    ];
    fields
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?)))
}

/// `pick(values(renames), track.properties(renames))`: properties under GA's names, a
/// later rename of the same target winning.
fn renamed(msg: &Facade, renames: &[(&str, &str)]) -> Object {
    let props = Value::Object(msg.properties());
    let mut out = Object::new();
    for (from, to) in renames {
        let value = match *from {
            "promotionId" => lookup(&props, "promotion_id")
                .or(lookup(&props, "promotionId"))
                .cloned(),
            "orderId" => msg.order_id(),
            _ => lookup(&props, from).cloned(),
        };
        put(&mut out, to, value);
    }
    out
}

/// `formatProduct`: one product as `pr{i}..` (or `il1pi{i}..` in a list) parameters.
fn format_product(product: &Object, index: usize, in_list: bool) -> Object {
    let prefix = if in_list {
        format!("il1pi{index}")
    } else {
        format!("pr{index}")
    };
    let product = Value::Object(product.clone());
    let product_id = lookup(&product, "product_id").or(lookup(&product, "productId"));
    let fields = [
        ("br", lookup(&product, "brand").cloned()),
        ("ca", lookup(&product, "category").cloned()),
        ("id", lookup(&product, "sku").cloned()),
        ("id", lookup(&product, "id").cloned()),
        ("id", product_id.cloned()),
        ("nm", lookup(&product, "name").cloned()),
        ("ps", lookup(&product, "position").cloned()),
        ("pr", lookup(&product, "price").cloned()),
        ("qt", Some(quantity(&product))),
        ("va", lookup(&product, "variant").cloned()),
    ];
    let mut out = Object::new();
    for (suffix, value) in fields {
        put(&mut out, &format!("{prefix}{suffix}"), value);
    }
    out
}

/// `formatProducts`: every product that is an object, numbered from 1.
fn format_products(products: &[Value], in_list: bool) -> Object {
    let mut out = Object::new();
    for (i, product) in products.iter().enumerate() {
        if let Value::Object(product) = product {
            out.extend(format_product(product, i + 1, in_list));
        }
    }
    out
}

/// `formatFilters`: `type:value,...::type:value,...` of the filters and sorts.
fn format_filters(filters: Option<&Value>, sorts: Option<&Value>) -> String {
    let list = |items: Option<&Value>| {
        let items = items.and_then(Value::as_array).into_iter().flatten();
        items
            .map(|f| format!("{}:{}", js_string(&f["type"]), js_string(&f["value"])))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!("{}::{}", list(filters), list(sorts))
}

/// Custom dimensions and metrics: `cdN` / `cmN` for each configured name found in `obj`.
fn metrics(obj: &Object, settings: &Settings) -> Object {
    let obj = Value::Object(obj.clone());
    let names = settings.metrics.iter().chain(&settings.dimensions);
    let mut out = Object::new();
    for (name, _) in names {
        let target = settings
            .metrics
            .get(name)
            .filter(|t| truthy(t))
            .or(settings.dimensions.get(name));
        let Some(key) = target.and_then(Value::as_str).and_then(shorten) else {
            continue;
        };
        let value = lookup(&obj, name)
            .filter(|v| truthy(v))
            .or(obj.get(name))
            .filter(|v| !v.is_null());
        match value {
            Some(Value::Bool(b)) => out.insert(key, b.to_string().into()),
            Some(v) => out.insert(key, v.clone()),
            None => None,
        };
    }
    out
}

/// `metric12` → `cm12`, `dimension3` → `cd3`.
fn shorten(name: &str) -> Option<String> {
    let short = |prefix: &str, to: &str| {
        let n = name.strip_prefix(prefix)?;
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| format!("{to}{n}"))
    };
    short("metric", "cm").or_else(|| short("dimension", "cd"))
}

/// Whether the event comes from Segment's iOS, Android or Xamarin library.
fn is_mobile(library: Option<&Value>) -> bool {
    let name = match library {
        Some(Value::String(name)) => name.clone(),
        Some(other) => other["name"].as_str().unwrap_or_default().to_owned(),
        None => return false,
    };
    let name = name.to_lowercase();
    ["ios", "android", "analytics.xamarin"]
        .iter()
        .any(|m| name.contains(m))
}

/// A product's `quantity`, or 1.
fn quantity(product: &Value) -> Value {
    product
        .get("quantity")
        .filter(|q| truthy(q))
        .cloned()
        .unwrap_or(1.into())
}

/// JavaScript's `Number(value)` for numbers and numeric strings.
fn js_to_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            match s {
                "Infinity" | "+Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                // Rust also reads "inf", "NaN", "infinity": JavaScript's Number() does
                // not (NaN, which the mapping treats as absent).
                _ if s
                    .bytes()
                    .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E')) =>
                {
                    None
                }
                _ => s.parse().ok(),
            }
        }
        _ => None,
    }
}

/// `string-hash` (djb2, xor variant, over UTF-16 code units from the end): the client id.
fn string_hash(text: &str) -> u32 {
    let units: Vec<u16> = text.encode_utf16().collect();
    units.iter().rev().fold(5381u32, |hash, &unit| {
        hash.wrapping_mul(33) ^ u32::from(unit)
    })
}

/// The parts of Node's `url.parse` the mapping reads.
struct Url {
    hostname: Option<String>,
    /// Path and query (`path` in Node's terms).
    path: Option<String>,
}

impl Url {
    fn parse(url: &str) -> Url {
        let url = url.split('#').next().unwrap_or_default();
        let Some((_, rest)) = url.split_once("://") else {
            return Url {
                hostname: None,
                path: Some(url.to_owned()).filter(|p| !p.is_empty()),
            };
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let host = rest[..end].rsplit('@').next().unwrap_or_default();
        let host = host.split(':').next().unwrap_or_default().to_lowercase();
        let path = match &rest[end..] {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Url {
            hostname: Some(host).filter(|h| !h.is_empty()),
            path: Some(path),
        }
    }
}

/// Sets `key` when there is a value (JavaScript left `undefined` out of the form).
fn put(form: &mut Object, key: &str, value: Option<Value>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        form.insert(key.into(), value);
    }
}

/// A hit as the form Google's collect endpoint takes.
pub fn request(settings: &Settings, hit: &Object) -> Request {
    Request::post(&settings.endpoint).form(hit.iter().map(|(k, v)| (k.as_str(), js_string(v))))
}

/// Sends the hits (several at once for an order), and maps the answers: any failure
/// fails the event, 429 and 5xx asking for a retry.
fn send(settings: &Settings, hits: Vec<Object>) -> HandlerResult {
    for response in fetch_all(hits.iter().map(|hit| request(settings, hit))) {
        check(response?)?;
    }
    Ok(None)
}

/// 2xx is success; 429 and 5xx are retried; any other answer rejects the event.
pub fn check(response: Response) -> Result<Response, Error> {
    match response.status {
        200..=299 => Ok(response),
        429 | 500..=599 => Err(Error::retry(format!(
            "Google Analytics answered {}",
            response.status
        ))),
        status => Err(Error::validation(format!(
            "Google Analytics rejected the hit ({status})"
        ))),
    }
}

segfn_sdk::export!(GoogleAnalytics);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::{OutcomeKind, encoding, testing};
    use serde_json::json;

    fn settings() -> Value {
        json!({"serversideTrackingId": "UA-1", "enhancedEcommerce": true})
    }

    #[test]
    fn numbers_in_text_read_as_javascripts_number_reads_them() {
        let n = |v: Value| js_to_number(&v);
        assert_eq!(n(json!(" 12.5 ")), Some(12.5));
        assert_eq!(n(json!("1e3")), Some(1000.0));
        assert_eq!(n(json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(n(json!(7)), Some(7.0));
        for text in ["inf", "NaN", "infinity", "12px", "abc"] {
            assert_eq!(n(json!(text)), None, "{text}");
        }
    }

    #[test]
    fn spec_event_names_match_as_analytics_events_does() {
        let words: &[&str] = &["product", "viewed"];
        assert!(spec_matches("Product Viewed", words, true));
        assert!(spec_matches("product_viewed", words, true));
        assert!(spec_matches("ProductViewed", words, true));
        assert!(!spec_matches("Product Viewed Twice", words, true));
        assert!(spec_matches(
            "Viewed Product Details",
            &["viewed", "product"],
            false
        ));
    }

    #[test]
    fn client_ids_hash_the_user() {
        assert_eq!(string_hash("user-id"), 2_710_159_508);
    }

    #[test]
    fn screens_need_an_app_name_and_classic_is_refused() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let screen = json!({"type": "screen", "userId": "u", "name": "Home"});
        let result = testing::handle::<GoogleAnalytics>(screen, settings());
        assert_eq!(result.kind, OutcomeKind::MessageRejected);
        let mut classic = settings();
        classic["serversideClassic"] = true.into();
        let result =
            testing::handle::<GoogleAnalytics>(json!({"type": "page", "userId": "u"}), classic);
        assert_eq!(result.kind, OutcomeKind::MessageRejected);
        assert!(testing::requests().is_empty());
    }

    #[test]
    fn an_order_is_three_kinds_of_hits_without_enhanced_ecommerce() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let order = json!({"type": "track", "userId": "u", "event": "Order Completed",
            "properties": {"orderId": "o", "total": 10, "products": [{"sku": "a"}, {"sku": "b"}]}});
        let result =
            testing::handle::<GoogleAnalytics>(order, json!({"serversideTrackingId": "UA-1"}));
        assert_eq!(result.kind, OutcomeKind::Success, "{result:?}");
        let kinds: Vec<String> = testing::requests()
            .iter()
            .map(|r| {
                let form = encoding::form_decode(std::str::from_utf8(&r.body).unwrap());
                form.into_iter().find(|(k, _)| k == "t").unwrap().1
            })
            .collect();
        assert_eq!(kinds, ["event", "transaction", "item", "item"]);
    }

    #[test]
    fn answers_become_outcomes() {
        for (status, kind) in [
            (200, OutcomeKind::Success),
            (429, OutcomeKind::Retry),
            (502, OutcomeKind::Retry),
            (400, OutcomeKind::MessageRejected),
        ] {
            testing::mock_fetch(move |_| Ok(Response::new(status)));
            let result = testing::handle::<GoogleAnalytics>(
                json!({"type": "track", "userId": "u", "event": "E"}),
                settings(),
            );
            assert_eq!(result.kind, kind, "{status}");
        }
    }
}
