//! Amplitude destination: Segment's old server-side Amplitude integration
//! (`segment-boneyard/integration-amplitude`, `lib/index.js` and `lib/mapper.js`, MIT)
//! ported to a segfn function, mapping for mapping. Upstream code: MIT, "Copyright (c)
//! 2016 Segment.io" (the full notice is in `tests/pairs/SOURCES.md`).
//!
//! Track, page and screen calls become one Amplitude event each, posted as a form to
//! `{endpoint}/httpapi` (`api_key=...&event=<JSON>`); identify and group calls update the
//! user's properties through `{endpoint}/identify` (`identification=<JSON>`). Page and
//! screen calls are sent when `trackAllPages` is on, or when `trackCategorizedPages` /
//! `trackNamedPages` is on and the call has a category / name. Amplitude answering
//! `invalid api_key` rejects the event; 408, 423, 429 and 5xx other than 501 ask
//! Segment to retry.

pub mod locale;
pub mod ua;

use segfn_sdk::facade::{Facade, js_number, js_string, lookup, remove, truthy};
use segfn_sdk::{
    Error, Function, Group, HandlerResult, Identify, Object, Page, Request, Response, Screen,
    Track, fetch, info,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The destination's settings, as configured in Segment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The Amplitude project's API key.
    pub api_key: String,
    /// Send every page and screen call.
    #[serde(default)]
    pub track_all_pages: bool,
    /// Send page and screen calls that have a category.
    #[serde(default)]
    pub track_categorized_pages: bool,
    /// Send page and screen calls that have a name.
    #[serde(default)]
    pub track_named_pages: bool,
    /// `{"<property>": "user_properties" | "event_properties"}`: send
    /// `context.page.search` as this property (of the event; of the user on identify).
    #[serde(default)]
    pub map_query_params: Object,
    /// Amplitude's API base URL.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
}

fn default_endpoint() -> String {
    "https://api.amplitude.com".into()
}

/// The function.
#[derive(Debug)]
pub struct Amplitude;

impl Function for Amplitude {
    type Settings = Settings;

    fn on_track(event: Track, settings: &Settings) -> HandlerResult {
        send(
            settings,
            "/httpapi",
            "event",
            &track(&Facade::new(&event)?, settings),
        )
    }

    fn on_page(event: Page, settings: &Settings) -> HandlerResult {
        send_page(&Facade::new(&event)?, settings)
    }

    fn on_screen(event: Screen, settings: &Settings) -> HandlerResult {
        send_page(&Facade::new(&event)?, settings)
    }

    fn on_identify(event: Identify, settings: &Settings) -> HandlerResult {
        let payload = identify(&Facade::new(&event)?, settings);
        send(settings, "/identify", "identification", &payload)
    }

    fn on_group(event: Group, settings: &Settings) -> HandlerResult {
        let payload = group(&Facade::new(&event)?)?;
        send(settings, "/identify", "identification", &payload)
    }
}

/// Sends a page or screen call when the settings ask for it.
fn send_page(msg: &Facade, settings: &Settings) -> HandlerResult {
    let payload = page(msg, settings);
    let props = &payload["event_properties"];
    let wanted = settings.track_all_pages
        || (settings.track_categorized_pages && truthy(&props["category"]))
        || (settings.track_named_pages && truthy(&props["name"]));
    if !wanted {
        info!("{} not sent: the page settings leave it out", msg.kind());
        return Ok(None);
    }
    send(settings, "/httpapi", "event", &payload)
}

/// The form post Amplitude's HTTP API takes: the key and one JSON-encoded field.
pub fn request(settings: &Settings, path: &str, field: &str, payload: &Object) -> Request {
    let json = serde_json::to_string(payload).unwrap_or_default();
    let url = format!("{}{path}", settings.endpoint.trim_end_matches('/'));
    Request::post(url).form([("api_key", settings.api_key.as_str()), (field, &json)])
}

fn send(settings: &Settings, path: &str, field: &str, payload: &Object) -> HandlerResult {
    check(fetch(request(settings, path, field, payload))?)?;
    Ok(None)
}

/// 2xx is success, unless Amplitude says `invalid api_key`; otherwise the usual reading
/// ([`Response::error_for_status`]: 408, 423, 429 and 5xx other than 501 retried, other
/// failures rejected).
pub fn check(response: Response) -> Result<Response, Error> {
    if response.ok() && response.text() == "invalid api_key" {
        return Err(Error::validation("Amplitude answered: invalid api_key"));
    }
    response.error_for_status()
}

/// `mapper.track`: the common fields, revenue fields when there is revenue, the event.
pub fn track(msg: &Facade, settings: &Settings) -> Object {
    let mut payload = common(msg, settings);
    let revenue = msg.revenue();
    put(&mut payload, "revenue", revenue.map(js_number));
    if revenue.is_some() {
        if let Some(price) = msg.proxy("properties.price").filter(truthy) {
            payload.insert("price".into(), price);
            payload.insert("quantity".into(), msg.quantity());
        }
        for key in ["revenueType", "productId"] {
            put(
                &mut payload,
                key,
                msg.proxy(&format!("properties.{key}")).filter(truthy),
            );
        }
    }
    put(&mut payload, "event_type", msg.field("event").cloned());
    let props = event_properties(msg.properties(), revenue.is_some());
    extend_event_properties(&mut payload, props);
    payload
}

/// `mapper.page` and `mapper.screen`: the common fields, `Viewed {name} Page` (or
/// `Loaded a Page`; `Screen` for screens) and the properties with category and name.
pub fn page(msg: &Facade, settings: &Settings) -> Object {
    let mut payload = common(msg, settings);
    let noun = if msg.kind() == "screen" {
        "Screen"
    } else {
        "Page"
    };
    let event_type = match msg.full_name().filter(truthy) {
        Some(name) => format!("Viewed {} {noun}", js_string(&name)),
        None => format!("Loaded a {noun}"),
    };
    payload.insert("event_type".into(), event_type.into());
    extend_event_properties(&mut payload, event_properties(msg.properties(), false));
    payload
}

/// `mapper.identify`: the common fields without the event ones, plus `paying` and
/// `start_version` from the Amplitude options.
pub fn identify(msg: &Facade, settings: &Settings) -> Object {
    let mut payload = common(msg, settings);
    for key in ["amplitude_event_type", "session_id", "event_id"] {
        payload.shift_remove(key);
    }
    let options = Value::Object(msg.integration_options("Amplitude"));
    for key in ["paying", "start_version"] {
        put(&mut payload, key, lookup(&options, key).cloned());
    }
    payload
}

/// `mapper.group`: the group as the user property `[Segment] Group`.
pub fn group(msg: &Facade) -> Result<Object, Error> {
    let group_id = msg.field("groupId").filter(|v| truthy(v));
    let group_id = group_id.ok_or_else(|| Error::invalid_payload("group call without groupId"))?;
    let groups = json!({ "[Segment] Group": group_id });
    let mut payload = Object::new();
    put(&mut payload, "user_id", msg.user_id().cloned());
    put(&mut payload, "device_id", device_id(msg));
    payload.insert("time".into(), msg.timestamp.millis().into());
    payload.insert("groups".into(), groups.clone());
    payload.insert("user_properties".into(), groups);
    Ok(payload)
}

/// The fields every Amplitude call shares: user, device, time, context, options.
fn common(msg: &Facade, settings: &Settings) -> Object {
    let options = Value::Object(msg.integration_options("Amplitude"));
    let os = msg.proxy("context.os.name").filter(truthy);
    let mut ret = Object::new();
    let mut set = |key: &str, value: Option<Value>| {
        ret.insert(key.into(), value.unwrap_or(Value::Null));
    };
    set("user_id", msg.user_id().cloned());
    set("device_id", device_id(msg));
    set("time", Some(msg.timestamp.millis().into()));
    set("library", Some("segment".into()));
    for (key, path) in [
        ("app_version", "context.app.version"),
        ("os_name", "context.os.name"),
        ("os_version", "context.os.version"),
        ("carrier", "context.network.carrier"),
        ("device_model", "context.device.model"),
        ("device_brand", "context.device.brand"),
        ("device_manufacturer", "context.device.manufacturer"),
        ("location_lat", "context.location.latitude"),
        ("location_lng", "context.location.longitude"),
        ("ip", "context.ip"),
    ] {
        set(key, msg.proxy(path));
    }
    for (key, option) in [
        ("amplitude_event_type", "event_type"),
        ("session_id", "session_id"),
        ("event_id", "event_id"),
    ] {
        set(key, lookup(&options, option).cloned());
    }
    if let Some((language, country)) = msg.text("context.locale").and_then(|l| locale::parse(&l)) {
        set("language", Some(language.into()));
        set("country", Some(country.into()));
    }
    for key in ["country", "city", "region"] {
        if let Some(value) = msg.address(key).filter(truthy) {
            set(key, Some(value));
        }
    }
    // Older libraries sent `idfa`, newer ones `advertisingId`.
    let ad_id = msg.proxy("device.advertisingId").filter(truthy);
    let ad_id = ad_id.or_else(|| msg.proxy("device.idfa"));
    let os_lower = os.as_ref().map(|os| js_string(os).to_lowercase());
    match os_lower.as_deref() {
        Some("ios") => set("idfa", ad_id),
        Some("android") => set("adid", ad_id),
        _ => {}
    }
    let library = msg.proxy("context.library.name").filter(truthy);
    let platform = library
        .as_ref()
        .and_then(platform_from_library)
        .map(Value::from);
    let platform = platform
        .or_else(|| msg.proxy("context.device.type").filter(truthy))
        .or_else(|| os_lower.map(Value::from))
        .or(library.clone());
    if let Some(platform) = platform {
        set("platform", Some(sanitize_platform(&platform).into()));
    }
    // Events from analytics.js carry the browser in the user agent, as amplitude.js
    // reports it.
    let from_browser = library.as_ref().map(js_string).map(|l| l.to_lowercase());
    if let (Some("analytics.js"), Some(agent)) =
        (from_browser.as_deref(), msg.text("context.userAgent"))
    {
        let parsed = ua::parse(&agent);
        set("os_name", parsed.browser.map(Value::from));
        set("os_version", parsed.major.map(Value::from));
        set("device_model", parsed.os.map(Value::from));
    }
    let mut user_properties = msg.traits();
    remove(&mut user_properties, "address");
    let query_param = settings.map_query_params.keys().next();
    let query = msg.proxy("context.page.search");
    let groups = options.get("groups").filter(|g| truthy(g)).cloned();
    if let (Some(property), Some(query), "identify") = (query_param, &query, msg.kind()) {
        user_properties.insert(property.clone(), query.clone());
    }
    if let Some(Value::Object(groups)) = &groups {
        user_properties.extend(groups.clone());
    }
    set("user_properties", Some(user_properties.into()));
    if let (Some(property), false) = (query_param, msg.kind() == "identify") {
        let props: Object = query.map(|q| (property.clone(), q)).into_iter().collect();
        set("event_properties", Some(props.into()));
    }
    set("groups", groups);
    ret.retain(|_, v| !v.is_null());
    ret
}

/// `context.device.id`, or the anonymous id; analytics-android 1.4.4 sent ids that were
/// not unique, so for it the id is `userId:model:deviceId`.
fn device_id(msg: &Facade) -> Option<Value> {
    let text = |path: &str| msg.proxy(path).map(|v| js_string(&v));
    let library = (
        text("context.library.name"),
        text("context.library.version"),
    );
    if library == (Some("analytics-android".into()), Some("1.4.4".into())) {
        let user = msg.user_id().map(js_string).unwrap_or("undefined".into());
        let model = text("context.device.model").unwrap_or("undefined".into());
        let id = text("context.device.id").unwrap_or("undefined".into());
        return Some(format!("{user}:{model}:{id}").into());
    }
    let id = msg.proxy("context.device.id").filter(truthy);
    id.or_else(|| msg.anonymous_id().cloned())
}

/// The platform Segment's own libraries mean.
fn platform_from_library(library: &Value) -> Option<&'static str> {
    match js_string(library).to_lowercase().as_str() {
        "analytics.js" => Some("Web"),
        "analytics-android" => Some("Android"),
        "analytics-ios" => Some("iOS"),
        _ => None,
    }
}

/// Amplitude's spelling of the platforms it knows; others lower-cased.
fn sanitize_platform(platform: &Value) -> String {
    let lower = js_string(platform).to_lowercase();
    match lower.as_str() {
        "web" => "Web".into(),
        "android" => "Android".into(),
        "ios" => "iOS".into(),
        _ => lower,
    }
}

/// The event's properties less the ones Amplitude takes as fields.
fn event_properties(mut props: Object, has_revenue: bool) -> Object {
    for key in ["country", "language", "event_id", "amplitude_event_type"] {
        remove(&mut props, key);
    }
    if has_revenue {
        for key in ["price", "quantity", "productId", "revenueType"] {
            remove(&mut props, key);
        }
    }
    props
}

/// `extend(payload.event_properties, props)`: the query parameter property, if any, first.
fn extend_event_properties(payload: &mut Object, props: Object) {
    match payload.get_mut("event_properties") {
        Some(Value::Object(existing)) => existing.extend(props),
        _ => {
            payload.insert("event_properties".into(), props.into());
        }
    }
}

/// Sets `key` when there is a value (JavaScript left `undefined` out of the JSON).
fn put(payload: &mut Object, key: &str, value: Option<Value>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        payload.insert(key.into(), value);
    }
}

segfn_sdk::export!(Amplitude);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::{OutcomeKind, testing};

    fn settings() -> Value {
        json!({"apiKey": "k-1", "endpoint": "https://amplitude.test"})
    }

    #[test]
    fn answers_become_outcomes() {
        let event = json!({"type": "track", "event": "E", "userId": "u"});
        for (status, text, kind) in [
            (200, "success", OutcomeKind::Success),
            (200, "invalid api_key", OutcomeKind::MessageRejected),
            (429, "", OutcomeKind::Retry),
            (503, "", OutcomeKind::Retry),
            (400, "bad", OutcomeKind::MessageRejected),
        ] {
            testing::mock_fetch(move |_| {
                Ok(Response {
                    body: text.into(),
                    ..Response::new(status)
                })
            });
            let result = testing::handle::<Amplitude>(event.clone(), settings());
            assert_eq!(result.kind, kind, "{status} {text}: {result:?}");
        }
        let sent = &testing::requests()[0];
        assert_eq!(sent.url, "https://amplitude.test/httpapi");
        assert_eq!(
            sent.header_value("content-type"),
            Some("application/x-www-form-urlencoded")
        );
    }

    #[test]
    fn pages_follow_the_page_settings() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let only_named = json!({"apiKey": "k", "trackNamedPages": true});
        let unnamed = json!({"type": "page", "userId": "u", "category": "Docs"});
        let result = testing::handle::<Amplitude>(unnamed, only_named.clone());
        assert_eq!(result.kind, OutcomeKind::Success);
        assert!(testing::requests().is_empty());
        let named = json!({"type": "screen", "userId": "u", "name": "Home"});
        testing::handle::<Amplitude>(named, only_named);
        assert_eq!(testing::requests().len(), 1);
    }

    #[test]
    fn a_group_without_group_id_is_rejected() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let result =
            testing::handle::<Amplitude>(json!({"type": "group", "userId": "u"}), settings());
        assert_eq!(result.kind, OutcomeKind::MessageRejected);
    }
}
