//! The message accessors Segment's old integrations read events through
//! (`segmentio-facade` 3.x and `obj-case`), as far as this port uses them.
//!
//! Facade semantics kept: `proxy("context.device.id")` looks the first segment up through
//! the accessor of that name (`traits`, `properties`, `context`/`options`, `device`) and the
//! rest case- and separator-insensitively (`eventType` finds `event_type`); date strings
//! anywhere in the message read as dates (written back as `2014-01-01T00:00:00.000Z`, as
//! `JSON.stringify` wrote a `Date`); a missing `timestamp` is the time of processing.

use segfn_sdk::{Error, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};

/// A JSON object.
pub type Object = Map<String, Value>;

/// A Segment message seen through facade's accessors.
#[derive(Debug)]
pub struct Facade {
    obj: Object,
    kind: String,
    /// `timestamp`, or the time of processing when the message has none.
    pub timestamp: Timestamp,
}

impl Facade {
    /// Reads a message; a `timestamp` that is not a date is an invalid payload.
    pub fn new(message: &impl Serialize) -> Result<Facade, Error> {
        let Ok(Value::Object(mut obj)) = serde_json::to_value(message) else {
            return Err(Error::invalid_payload("a message is a JSON object"));
        };
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
        let kind = kind.to_ascii_lowercase();
        let timestamp = match obj.get("timestamp").filter(|v| !v.is_null()) {
            None => Timestamp::now(),
            Some(v) => Timestamp::from_json(v)
                .ok_or_else(|| Error::invalid_payload(format!("timestamp {v} is not a date")))?,
        };
        for value in obj.values_mut() {
            traverse(value);
        }
        obj.insert("timestamp".into(), timestamp.to_iso_string().into());
        Ok(Facade {
            obj,
            kind,
            timestamp,
        })
    }

    /// `track`, `page`, `screen`, `identify`, `group`, ...
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// A top-level field (`null` reads as absent).
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    /// A path: the first segment through its accessor, the rest with [`lookup`].
    pub fn proxy(&self, path: &str) -> Option<Value> {
        let (head, rest) = path.split_once('.').unwrap_or((path, ""));
        let root = match head {
            "traits" => Value::Object(self.traits()),
            "properties" => Value::Object(self.properties()),
            "options" | "context" => Value::Object(self.options()),
            "device" => Value::Object(self.device()),
            _ => self.field(head)?.clone(),
        };
        if rest.is_empty() {
            return Some(root).filter(truthy);
        }
        lookup(&root, rest).cloned()
    }

    /// `proxy` as a string, when it is one.
    pub fn text(&self, path: &str) -> Option<String> {
        self.proxy(path)?.as_str().map(str::to_owned)
    }

    /// `options` or else `context`: where old libraries put the context.
    pub fn options(&self) -> Object {
        let obj = self.field("options").or_else(|| self.field("context"));
        obj.and_then(Value::as_object).cloned().unwrap_or_default()
    }

    /// The integration-specific options: `integrations.<name>` (or `context.<name>`)
    /// when it is an object, else empty.
    pub fn integration_options(&self, name: &str) -> Object {
        let integrations = self.field("integrations").cloned().unwrap_or_default();
        let options = Value::Object(self.options());
        let value = lookup(&integrations, name).filter(|v| v.is_object());
        let value = value.or_else(|| lookup(&options, name));
        value
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// `context.device`, with `type` inferred from the library name (`ios`, `android`).
    pub fn device(&self) -> Object {
        let mut device = self
            .options()
            .get("device")
            .and_then(Value::as_object)
            .cloned();
        let mut device = device.take().unwrap_or_default();
        let library = self.proxy("context.library.name");
        let library = library
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        if device.get("type").is_none_or(|t| !truthy(t)) {
            for kind in ["ios", "android"] {
                if library.contains(kind) {
                    device.insert("type".into(), kind.into());
                }
            }
        }
        device
    }

    /// The user's traits: an identify's `traits`, a group's (with `id` the group's), or
    /// `context.traits` for other messages; `id` is the `userId` when there is one.
    pub fn traits(&self) -> Object {
        let own = match self.kind() {
            "identify" => self.field("traits").cloned(),
            "group" => return self.group_traits(),
            _ => lookup(&Value::Object(self.options()), "traits").cloned(),
        };
        let mut traits = own.and_then(|v| v.as_object().cloned()).unwrap_or_default();
        if let Some(id) = self.user_id().filter(|v| truthy(v)) {
            traits.insert("id".into(), id.clone());
        }
        traits
    }

    fn group_traits(&self) -> Object {
        let mut traits = self.properties();
        if let Some(id) = self.field("groupId").filter(|v| truthy(v)) {
            traits.insert("id".into(), id.clone());
        }
        traits
    }

    /// `properties`; a page's and screen's also carry their `category` and `name`; a
    /// group's are its `traits`.
    pub fn properties(&self) -> Object {
        let own = match self.kind() {
            "group" => self.field("traits").or_else(|| self.field("properties")),
            _ => self.field("properties"),
        };
        let mut props = own.and_then(Value::as_object).cloned().unwrap_or_default();
        if matches!(self.kind(), "page" | "screen") {
            for key in ["category", "name"] {
                if let Some(v) = self.field(key).filter(|v| truthy(v)) {
                    props.insert(key.into(), v.clone());
                }
            }
        }
        props
    }

    /// `userId`.
    pub fn user_id(&self) -> Option<&Value> {
        self.field("userId")
    }

    /// `anonymousId` (or the legacy `sessionId`).
    pub fn anonymous_id(&self) -> Option<&Value> {
        self.field("anonymousId")
            .filter(|v| truthy(v))
            .or_else(|| self.field("sessionId"))
    }

    /// A page's or screen's `category name` (or just the name).
    pub fn full_name(&self) -> Option<String> {
        let name = self.field("name").filter(|v| truthy(v)).map(js_string)?;
        match self.field("category").filter(|v| truthy(v)) {
            Some(category) => Some(format!("{} {name}", js_string(category))),
            None => Some(name),
        }
    }

    /// `properties.revenue` as a number (`"$9.99"` reads as 9.99), or for an order
    /// completed without one, `properties.total`.
    pub fn revenue(&self) -> Option<f64> {
        let event = self
            .field("event")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let revenue = self.proxy("properties.revenue").filter(truthy);
        let revenue = revenue.or_else(|| {
            is_order_completed(event)
                .then(|| self.proxy("properties.total"))
                .flatten()
        });
        match revenue? {
            Value::Number(n) => n.as_f64().filter(|n| *n != 0.0),
            Value::String(s) => parse_float(&s.replace('$', "")),
            _ => None,
        }
    }
}

/// "Order Completed", "Completed Order" and the like.
fn is_order_completed(event: &str) -> bool {
    let words: String = event.to_ascii_lowercase().replace(['_', ' '], "");
    words == "ordercompleted" || words.starts_with("completedorder")
}

/// Replaces date strings (`YYYY-MM-DD...`) with their ISO form, as facade turned them
/// into `Date`s that `JSON.stringify` wrote back in that form.
fn traverse(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Some(t) = Timestamp::parse_strict(s) {
                *s = t.to_iso_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(traverse),
        Value::Object(map) => map.values_mut().for_each(traverse),
        _ => {}
    }
}

/// `obj-case`'s key normal form: letters, digits and dots, lower case.
fn normalize(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Finds the key of `obj` that `path` starts with (obj-case matching), and the rest.
fn step<'a, 'p>(obj: &'a Object, path: &'p str) -> Option<(&'a String, &'p str)> {
    obj.keys().find_map(|key| {
        let key_norm = normalize(key);
        let rest = path.strip_prefix(key_norm.as_str())?;
        match rest.strip_prefix('.') {
            Some(rest) => Some((key, rest)),
            None => rest.is_empty().then_some((key, rest)),
        }
    })
}

/// `obj-case`: the value at a dotted path, matching keys case- and
/// separator-insensitively (`eventType` finds `event_type`, `Event Type`).
pub fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let path = normalize(path);
    let mut current = obj;
    let mut rest = path.as_str();
    loop {
        let (key, next) = step(current.as_object()?, rest)?;
        let child = current.get(key).filter(|v| !v.is_null())?;
        if next.is_empty() {
            return Some(child);
        }
        current = child;
        rest = next;
    }
}

/// JavaScript truthiness.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JavaScript's `String(value)` for the values messages carry.
pub fn js_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), js_number_text),
        Value::Array(items) => items.iter().map(js_string).collect::<Vec<_>>().join(","),
        Value::Object(_) => "[object Object]".into(),
        other => other.to_string(),
    }
}

/// A number written as JavaScript writes it (`1`, not `1.0`).
pub fn js_number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{n:.0}")
    } else {
        n.to_string()
    }
}

/// JavaScript's `parseFloat`: the longest leading number, if any.
fn parse_float(text: &str) -> Option<f64> {
    let text = text.trim_start();
    (1..=text.len())
        .rev()
        .filter(|end| text.is_char_boundary(*end))
        .find_map(|end| text[..end].parse::<f64>().ok())
        .filter(|n| n.is_finite())
}
