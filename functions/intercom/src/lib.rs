//! Intercom destination: Segment's old server-side Intercom integration
//! (`segment-boneyard/integration-intercom`, `lib/index.js`, `lib/mapper-v1.js` and
//! `lib/mapper-v2.js`) ported to a segfn function, mapping for mapping. Upstream code:
//! MIT, "Copyright (c) 2016 Segment.io" (the full notice is in `tests/pairs/SOURCES.md`).
//!
//! Identify creates or updates the user (`POST /users`). With `isBulkAPIEnabled` (the
//! "v2" mapping) track and group go through Intercom's bulk API (`POST /bulk/events`,
//! `POST /bulk/users`, one new job per event: a function keeps no state between events,
//! so it cannot add to the job an earlier event opened, as the JavaScript did with Redis).
//! Without it ("v1") track posts `/events` and group posts the company to `/companies`,
//! then identifies the user as a member of it. Nested traits and properties are
//! flattened, stringified or dropped per `blacklisted` and `defaultMethod`; dates become
//! Unix times. Auth: the OAuth access token when set, else Basic `appId:apiKey`.

use segfn_sdk::facade::{Facade, js_number, lookup, remove, truthy};
use segfn_sdk::{
    Error, Function, Group, HandlerResult, Identify, Object, Request, Response, Secret, Timestamp,
    Track, fetch,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The destination's settings, as configured in Segment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The Intercom app id (with `apiKey`, for Basic auth).
    #[serde(default)]
    pub app_id: String,
    /// The Intercom API key (declared to the host as a secret when read).
    #[serde(default)]
    pub api_key: Secret<String>,
    /// `{"access-token": "..."}` from Intercom's OAuth; preferred when set.
    #[serde(default)]
    pub oauth: HashMap<String, String>,
    /// Send the device, OS and app of the context as custom attributes on identify.
    #[serde(default)]
    pub collect_context: bool,
    /// Per trait or property name: `flatten`, `stringify` or `drop` it when nested.
    #[serde(default)]
    pub blacklisted: HashMap<String, String>,
    /// What to do with other nested values: `flatten` (the default), `stringify`, `drop`.
    #[serde(default = "flatten")]
    pub default_method: String,
    /// Properties sent as nested objects (Intercom's rich links), untouched.
    #[serde(default)]
    pub rich_link_properties: Vec<String>,
    /// Send track and group through the bulk API (the v2 mapping).
    #[serde(default, rename = "isBulkAPIEnabled")]
    pub bulk: bool,
    /// Intercom's API base URL.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
}

fn flatten() -> String {
    "flatten".into()
}

fn default_endpoint() -> String {
    "https://api-segment.intercom.io".into()
}

/// The function.
#[derive(Debug)]
pub struct Intercom;

impl Function for Intercom {
    type Settings = Settings;

    fn on_identify(event: Identify, settings: &Settings) -> HandlerResult {
        let msg = ensure(Facade::new(&event)?, settings)?;
        send(settings, "/users", &identify(&msg, settings))
    }

    fn on_track(event: Track, settings: &Settings) -> HandlerResult {
        let msg = ensure(Facade::new(&event)?, settings)?;
        match settings.bulk {
            true => send(settings, "/bulk/events", &track_v2(&msg, settings)),
            false => send(settings, "/events", &track_v1(&msg, settings)),
        }
    }

    fn on_group(event: Group, settings: &Settings) -> HandlerResult {
        let msg = ensure(Facade::new(&event)?, settings)?;
        if settings.bulk {
            return send(settings, "/bulk/users", &group_v2(&msg, settings));
        }
        send(settings, "/companies", &group_v1(&msg, settings))?;
        // Then the user, as a member of the company.
        let mut company = msg.field("traits").cloned().unwrap_or(json!({}));
        company["id"] = msg.field("groupId").cloned().unwrap_or_default();
        let mut member = serde_json::to_value(&event).unwrap_or_default();
        member["type"] = "identify".into();
        member["traits"] = json!({ "companies": [company] });
        send(
            settings,
            "/users",
            &identify(&Facade::new(&member)?, settings),
        )
    }
}

/// The integration's checks: credentials, and a user (`userId` or an email).
fn ensure(msg: Facade, settings: &Settings) -> Result<Facade, Error> {
    if access_token(settings).is_none()
        && (settings.api_key.expose().is_empty() || settings.app_id.is_empty())
    {
        return Err(Error::validation(
            ".apiKey and .appId is required if .oauth['access-token'] is absent",
        ));
    }
    let email = ["traits.email", "properties.email"]
        .iter()
        .any(|p| msg.proxy(p).is_some_and(|e| truthy(&e)));
    if !email && !msg.user_id().is_some_and(truthy) {
        return Err(Error::invalid_payload(".userId or .email is required"));
    }
    Ok(msg)
}

fn access_token(settings: &Settings) -> Option<&str> {
    settings
        .oauth
        .get("access-token")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

/// A JSON post to Intercom with the customer's credentials.
pub fn request(settings: &Settings, path: &str, body: &Value) -> Result<Request, Error> {
    let url = format!("{}{path}", settings.endpoint.trim_end_matches('/'));
    let request = Request::post(url)
        .header("accept", "application/json")
        .header("user-agent", "Segment.io/1.0.0")
        .json(body)?;
    Ok(match access_token(settings) {
        Some(token) => request.bearer_auth(token),
        None => request.basic_auth(&settings.app_id, settings.api_key.expose()),
    })
}

fn send(settings: &Settings, path: &str, body: &Value) -> HandlerResult {
    check(fetch(request(settings, path, body)?)?)?;
    Ok(None)
}

/// 2xx is success; 429 and 5xx are retried; any other answer rejects the event.
pub fn check(response: Response) -> Result<Response, Error> {
    match response.status {
        200..=299 => Ok(response),
        429 | 500..=599 => Err(Error::retry(format!(
            "Intercom answered {}",
            response.status
        ))),
        status => Err(Error::validation(format!(
            "Intercom rejected the event ({status}): {}",
            response.text()
        ))),
    }
}

/// `mapper-v2.identify` (and, without the bulk API, `mapper-v1.identify`): the user.
pub fn identify(msg: &Facade, settings: &Settings) -> Value {
    let mut traits = format_traits(&Value::Object(msg.traits()));
    let traits = traits.as_object_mut().expect("traits are an object");
    let mut ret = Object::new();
    put(&mut ret, "user_id", msg.user_id().cloned());
    if settings.bulk {
        if let Some(created) = msg.created() {
            ret.insert("remote_created_at".into(), created.seconds().into());
        }
    } else {
        // v1: `created` is Intercom's "Signed Up"; `remote_created_at` a trait of its own.
        if let Some(created) = msg.created() {
            ret.insert("created_at".into(), created.seconds().into());
            remove(traits, "created_at");
            remove(traits, "createdAt");
        }
        let remote = traits
            .get("remote_created_at")
            .or_else(|| traits.get("remoteCreatedAt"));
        if let Some(remote) = remote.filter(|v| truthy(v)).and_then(Timestamp::from_json) {
            ret.insert("remote_created_at".into(), remote.seconds().into());
            traits.shift_remove("remote_created_at");
            traits.shift_remove("remoteCreatedAt");
        }
    }
    if msg.active() {
        let last = traits.get("lastRequestAt").filter(|v| truthy(v)).cloned();
        ret.insert(
            "last_request_at".into(),
            last.unwrap_or(msg.timestamp.seconds().into()),
        );
    }
    if traits.get("lastRequestAt").is_some_and(truthy) {
        remove(traits, "lastRequestAt");
    }
    // Upstream sets each of these only when truthy (`if (msg.name()) ret.name = ...`).
    put(
        &mut ret,
        "last_seen_ip",
        msg.proxy("context.ip").filter(truthy),
    );
    put(&mut ret, "email", msg.email());
    put(&mut ret, "name", msg.name().filter(truthy));
    put(
        &mut ret,
        "last_seen_user_agent",
        msg.proxy("context.userAgent").filter(truthy),
    );
    remove(traits, "name");
    remove(traits, "email");
    if settings.collect_context {
        for (key, path) in [
            ("device_type", "context.device.type"),
            ("device_manufacturer", "context.device.manufacturer"),
            ("device_model", "context.device.model"),
            ("os_name", "context.os.name"),
            ("os_version", "context.os.version"),
            ("app_name", "context.app.name"),
            ("app_version", "context.app.version"),
        ] {
            put(traits, key, msg.proxy(path).filter(truthy));
        }
    }
    // Unsubscribes the user when the event says so in `integrations.Intercom`.
    let unsubscribed = msg
        .integration_options("Intercom")
        .get("unsubscribedFromEmails")
        .cloned();
    put(
        &mut ret,
        "unsubscribed_from_emails",
        unsubscribed.filter(Value::is_boolean),
    );
    let companies = format_companies(msg, settings);
    if !companies.is_empty() {
        ret.insert("companies".into(), companies.into());
    }
    put(&mut ret, "phone", msg.phone().filter(truthy));
    for key in ["company", "companies", "phone"] {
        remove(traits, key);
    }
    ret.insert(
        "custom_attributes".into(),
        format_nested(traits, settings).into(),
    );
    ret.into()
}

/// `mapper-v2.track`: one event in a new bulk job.
pub fn track_v2(msg: &Facade, settings: &Settings) -> Value {
    let mut data = Object::new();
    data.insert(
        "event_name".into(),
        msg.field("event").cloned().unwrap_or_default(),
    );
    data.insert("created_at".into(), msg.timestamp.seconds().into());
    put(&mut data, "user_id", msg.user_id().cloned());
    data.insert("metadata".into(), metadata(msg, settings).into());
    put(&mut data, "email", msg.email());
    json!({ "items": [{ "method": "post", "data_type": "event", "data": data }] })
}

/// `mapper-v1.track`: the event for `POST /events`.
pub fn track_v1(msg: &Facade, settings: &Settings) -> Value {
    let mut ret = Object::new();
    ret.insert("created".into(), msg.timestamp.seconds().into());
    ret.insert(
        "event_name".into(),
        msg.field("event").cloned().unwrap_or_default(),
    );
    put(&mut ret, "user_id", msg.user_id().cloned());
    put(&mut ret, "email", msg.email());
    ret.insert("metadata".into(), metadata(msg, settings).into());
    ret.into()
}

/// The properties as event metadata, and revenue as a `price` in cents.
fn metadata(msg: &Facade, settings: &Settings) -> Object {
    let mut props = format_nested(&format_metadata(&msg.properties()), settings);
    if let Some(revenue) = msg.revenue() {
        let amount = js_number(revenue * 100.0);
        props.insert(
            "price".into(),
            json!({ "amount": amount, "currency": msg.currency() }),
        );
    }
    remove(&mut props, "revenue");
    remove(&mut props, "currency");
    props
}

/// `mapper-v2.group`: the user's company, in a new bulk job.
pub fn group_v2(msg: &Facade, settings: &Settings) -> Value {
    let mut company = Object::new();
    put(&mut company, "company_id", msg.field("groupId").cloned());
    put(&mut company, "name", msg.name());
    put(
        &mut company,
        "monthly_spend",
        msg.proxy("traits.monthlySpend"),
    );
    put(&mut company, "plan", msg.proxy("traits.plan"));
    let custom = without_semantic_traits(&Value::Object(msg.traits()));
    company.insert(
        "custom_attributes".into(),
        format_nested(&custom, settings).into(),
    );
    if let Some(created) = msg.created() {
        company.insert("remote_created_at".into(), created.seconds().into());
    }
    let mut data = Object::new();
    put(&mut data, "user_id", msg.user_id().cloned());
    data.insert("companies".into(), json!([company]));
    json!({ "items": [{ "method": "post", "data_type": "user", "data": data }] })
}

/// `mapper-v1.group`: the company for `POST /companies`.
pub fn group_v1(msg: &Facade, settings: &Settings) -> Value {
    let custom = without_semantic_traits(&format_traits(&Value::Object(msg.traits())));
    // JavaScript sent `NaN`, written as `null`, when there was no date.
    let mut company = Object::new();
    company.insert(
        "remote_created_at".into(),
        msg.created().map(|c| c.seconds()).into(),
    );
    put(&mut company, "company_id", msg.field("groupId").cloned());
    put(&mut company, "name", msg.name());
    put(
        &mut company,
        "monthly_spend",
        msg.proxy("traits.monthlySpend"),
    );
    put(&mut company, "plan", msg.proxy("traits.plan"));
    company.insert(
        "custom_attributes".into(),
        format_nested(&custom, settings).into(),
    );
    company.into()
}

/// The user's companies: `traits.company` (a name or an object) or `traits.companies`.
fn format_companies(msg: &Facade, settings: &Settings) -> Vec<Value> {
    let company = msg.proxy("traits.company").filter(truthy);
    let companies = match company.or_else(|| msg.proxy("traits.companies")) {
        Some(Value::String(name)) => {
            let mut payload = Object::new();
            payload.insert("name".into(), name.as_str().into());
            payload.insert("company_id".into(), string_hash(&name).into());
            put(
                &mut payload,
                "monthly_spend",
                msg.proxy("traits.monthlySpend"),
            );
            put(&mut payload, "plan", msg.proxy("traits.plan"));
            if let Some(created) = msg.created() {
                payload.insert("remote_created_at".into(), created.seconds().into());
            }
            return vec![payload.into()];
        }
        Some(Value::Object(company)) => vec![Value::Object(company)],
        Some(Value::Array(companies)) => companies,
        _ => return Vec::new(),
    };
    companies
        .iter()
        .map(|company| {
            let company = format_traits(company);
            let custom = without_semantic_traits(&company);
            let name = company.get("name").cloned().unwrap_or_default();
            let id = [company.get("id"), lookup(&company, "company_id")]
                .into_iter()
                .flatten()
                .find(|v| truthy(v))
                .cloned();
            let id = id.or_else(|| {
                name.as_str()
                    .filter(|n| !n.is_empty())
                    .map(|n| string_hash(n).into())
            });
            let created = [lookup(&company, "created"), lookup(&company, "createdAt")]
                .into_iter()
                .flatten()
                .find(|v| truthy(v));
            let mut payload = Object::new();
            put(&mut payload, "name", Some(name));
            put(&mut payload, "company_id", id);
            put(
                &mut payload,
                "monthly_spend",
                lookup(&company, "monthlySpend").cloned(),
            );
            put(&mut payload, "remote_created_at", created.cloned());
            put(&mut payload, "plan", company.get("plan").cloned());
            payload.insert(
                "custom_attributes".into(),
                format_nested(&custom, settings).into(),
            );
            put(&mut payload, "remove", company.get("remove").cloned());
            payload.into()
        })
        .collect()
}

/// The traits less those Intercom takes as fields of a company.
fn without_semantic_traits(traits: &Value) -> Object {
    let mut custom = match format_traits(traits) {
        Value::Object(map) => map,
        _ => Object::new(),
    };
    for key in [
        "companies",
        "company",
        "created_at",
        "created",
        "custom_attributes",
        "company_id",
        "id",
        "name",
        "monthly_spend",
        "plan",
        "remote_created_at",
        "remove",
    ] {
        remove(&mut custom, key);
    }
    custom
}

/// Dates, at any depth, as Unix times under a key ending in `_at` (`created` becomes
/// `created_at`; `createdAt` and `signup at` keep or get that ending).
fn format_traits(traits: &Value) -> Value {
    match traits {
        Value::Array(items) => items.iter().map(format_traits).collect(),
        Value::Object(map) => {
            let mut ret = Object::new();
            for (key, value) in map {
                match (value, date(value)) {
                    (Value::Array(_) | Value::Object(_), _) => {
                        ret.insert(key.clone(), format_traits(value))
                    }
                    (_, Some(t)) => ret.insert(date_key(key), t.seconds().into()),
                    _ => ret.insert(key.clone(), value.clone()),
                };
            }
            ret.into()
        }
        other => other.clone(),
    }
}

/// Event metadata Intercom accepts: booleans as strings, dates as Unix times.
fn format_metadata(props: &Object) -> Object {
    let mut ret = Object::new();
    for (key, value) in props {
        match (value, date(value)) {
            (_, Some(t)) => ret.insert(date_key(key), t.seconds().into()),
            (Value::Bool(b), _) => ret.insert(key.clone(), b.to_string().into()),
            (Value::Null, _) => None,
            _ => ret.insert(key.clone(), value.clone()),
        };
    }
    ret
}

/// A date as the facade gave it (a date string anywhere in the message).
fn date(value: &Value) -> Option<Timestamp> {
    value.as_str().and_then(Timestamp::parse_strict)
}

fn date_key(key: &str) -> String {
    if key.ends_with("_at") || key.ends_with("At") {
        key.into()
    } else if let Some(stem) = key.strip_suffix(" at") {
        format!("{stem}_at")
    } else {
        format!("{key}_at")
    }
}

/// Intercom rejects nested values: each nested one is flattened (`a.b.0`), stringified
/// (JSON) or dropped, per `blacklisted[key]` or else `defaultMethod`. Rich link
/// properties stay nested.
fn format_nested(obj: &Object, settings: &Settings) -> Object {
    let (mut stringified, mut flattened, mut plain) = (Object::new(), Object::new(), Object::new());
    let rich: Object = obj
        .iter()
        .filter(|(k, _)| settings.rich_link_properties.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut rest = obj.clone();
    settings
        .rich_link_properties
        .iter()
        .for_each(|p| remove(&mut rest, p));
    for (key, value) in rest {
        let nested = matches!(value, Value::Object(_) | Value::Array(_) | Value::Null);
        let method = match settings.blacklisted.get(&key) {
            Some(m) if ["stringify", "flatten", "drop"].contains(&m.as_str()) => m.as_str(),
            _ if nested => settings.default_method.as_str(),
            _ => "plain",
        };
        match method {
            "stringify" => {
                stringified.insert(
                    key,
                    serde_json::to_string(&value).unwrap_or_default().into(),
                );
            }
            "flatten" => {
                let mut pair = Object::new();
                flatten_into(&mut pair, key, value);
                pair.extend(std::mem::take(&mut flattened));
                flattened = pair;
            }
            "plain" => {
                plain.insert(key, value);
            }
            _ => {}
        }
    }
    stringified.extend(flattened);
    stringified.extend(plain);
    stringified.extend(rich);
    stringified
}

/// The `flat` package: nested objects and arrays as dotted keys; empty ones stay.
fn flatten_into(out: &mut Object, key: String, value: Value) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            map.into_iter()
                .for_each(|(k, v)| flatten_into(out, format!("{key}.{k}"), v));
        }
        Value::Array(items) if !items.is_empty() => {
            items
                .into_iter()
                .enumerate()
                .for_each(|(i, v)| flatten_into(out, format!("{key}.{i}"), v));
        }
        other => {
            out.insert(key, other);
        }
    }
}

/// `string-hash`: djb2 (xor variant) over UTF-16 code units from the end, as the legacy
/// company ids were made.
fn string_hash(text: &str) -> u32 {
    let units: Vec<u16> = text.encode_utf16().collect();
    units.iter().rev().fold(5381u32, |hash, &unit| {
        hash.wrapping_mul(33) ^ u32::from(unit)
    })
}

/// Sets `key` when there is a value (JavaScript left `undefined` out of the JSON).
fn put(obj: &mut Object, key: &str, value: Option<Value>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        obj.insert(key.into(), value);
    }
}

segfn_sdk::export!(Intercom);

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::{OutcomeKind, testing};

    fn settings() -> Value {
        json!({"appId": "app", "apiKey": "key", "isBulkAPIEnabled": true, "endpoint": "https://intercom.test"})
    }

    #[test]
    fn legacy_company_ids_are_string_hashes() {
        assert_eq!(string_hash("Segment"), 2_017_828_326);
    }

    #[test]
    fn auth_prefers_the_oauth_token() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let event = json!({"type": "identify", "userId": "u"});
        testing::handle::<Intercom>(event.clone(), settings());
        let basic = testing::requests()[0]
            .header_value("authorization")
            .map(str::to_owned);
        assert_eq!(basic.as_deref(), Some("Basic YXBwOmtleQ=="));
        let mut oauth = settings();
        oauth["oauth"] = json!({"access-token": "tok"});
        testing::mock_fetch(|_| Ok(Response::new(200)));
        testing::handle::<Intercom>(event, oauth);
        assert_eq!(
            testing::requests()[0].header_value("authorization"),
            Some("Bearer tok")
        );
    }

    #[test]
    fn needs_credentials_and_a_user() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let result =
            testing::handle::<Intercom>(json!({"type": "track", "event": "E"}), settings());
        assert_eq!(result.kind, OutcomeKind::MessageRejected);
        let result = testing::handle::<Intercom>(
            json!({"type": "track", "event": "E", "userId": "u"}),
            json!({}),
        );
        assert_eq!(result.kind, OutcomeKind::MessageRejected);
        assert!(testing::requests().is_empty());
    }

    #[test]
    fn v1_groups_post_the_company_then_the_member() {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let mut v1 = settings();
        v1["isBulkAPIEnabled"] = false.into();
        let event =
            json!({"type": "group", "userId": "u", "groupId": "g", "traits": {"name": "Acme"}});
        let result = testing::handle::<Intercom>(event, v1);
        assert_eq!(result.kind, OutcomeKind::Success, "{result:?}");
        let urls: Vec<String> = testing::requests().into_iter().map(|r| r.url).collect();
        assert_eq!(
            urls,
            [
                "https://intercom.test/companies",
                "https://intercom.test/users"
            ]
        );
        let member: Value = serde_json::from_slice(&testing::requests()[1].body).unwrap();
        assert_eq!(member["companies"][0]["company_id"], json!("g"));
    }

    #[test]
    fn answers_become_outcomes() {
        for (status, kind) in [
            (202, OutcomeKind::Success),
            (429, OutcomeKind::Retry),
            (500, OutcomeKind::Retry),
            (401, OutcomeKind::MessageRejected),
        ] {
            testing::mock_fetch(move |_| Ok(Response::new(status)));
            let result = testing::handle::<Intercom>(
                json!({"type": "track", "event": "E", "userId": "u"}),
                settings(),
            );
            assert_eq!(result.kind, kind, "{status}");
        }
    }
}
