//! Segment messages read the way Segment's JavaScript integrations read them: through
//! `segmentio-facade` 3.x and `obj-case`. For porting an integration mapping for mapping.
//!
//! A [`Facade`] wraps one message and answers the questions facade's classes (`Track`,
//! `Identify`, `Group`, `Page`, `Screen`) answered, with their fallbacks: the user's
//! [`traits`](Facade::traits) (an identify's own, a group's, or `context.traits`), the
//! [`email`](Facade::email) (from the traits, the properties, or a `userId` that is an
//! address), [`revenue`](Facade::revenue) (`"$9.99"` reads as 9.99; an order's total
//! when it has no revenue), [`anonymous_id`](Facade::anonymous_id) (or the legacy
//! `sessionId`), and so on. [`Facade::proxy`] reads any path, `context.device.id`, with
//! its first segment through the accessor of that name and the rest through [`lookup`]:
//! keys match without regard to case or separators, so `properties.orderId` finds
//! `order_id`.
//!
//! ```
//! use segfn_sdk::facade::{Facade, truthy};
//! use serde_json::json;
//!
//! let msg = Facade::new(&json!({
//!     "type": "track",
//!     "event": "Order Completed",
//!     "userId": "jane@example.com",
//!     "properties": {"Order ID": "o-1", "total": "$25.00"},
//!     "context": {"device": {"id": "d-1"}, "library": {"name": "analytics-ios"}},
//!     "timestamp": "2024-01-02T03:04:05Z"
//! }))?;
//! assert_eq!(msg.proxy("context.device.id"), Some(json!("d-1")));
//! assert_eq!(msg.proxy("device.type"), Some(json!("ios")));
//! assert_eq!(msg.order_id(), Some(json!("o-1")));
//! assert_eq!(msg.revenue(), Some(25.0));
//! assert_eq!(msg.email(), Some(json!("jane@example.com")));
//! assert_eq!(msg.timestamp.millis(), 1_704_164_645_000);
//! assert!(truthy(&msg.currency()));
//! # Ok::<(), segfn_sdk::Error>(())
//! ```
//!
//! Beside the facade, what ported code needs of JavaScript's reading of values:
//! [`truthy`] (for `if (x)` and `a || b`), [`js_string`] (`String(v)`, numbers as
//! JavaScript prints them), [`js_number`] (a computed number as `JSON.stringify` writes
//! it), [`parse_float`], [`is_email`], and obj-case's [`lookup`] and [`remove`].
//!
//! What facade did that this does differently, on purpose: a `timestamp` that is not a
//! date is an invalid payload (JavaScript sent `NaN` on), and a `null` one is the time of
//! processing, as a missing one is (JavaScript read it as 1970). Accessors a class lacks
//! (`created` on a track, `phone` outside identify) return `None` where JavaScript would
//! throw.

mod js;
mod path;

pub use js::{is_email, js_number, js_number_text, js_string, parse_float, truthy};
pub use path::{lookup, remove};

use crate::error::Error;
use crate::event::Object;
use crate::time::Timestamp;
use js::js_trim;
use serde::Serialize;
use serde_json::Value;

/// A Segment message seen through `segmentio-facade`'s accessors.
///
/// Built with [`Facade::new`]; the accessors follow the class of the message's `type`
/// (`track`, `identify`, `group`, `page`, `screen`; others get the base class's).
#[derive(Debug, Clone)]
pub struct Facade {
    obj: Object,
    kind: String,
    /// `timestamp`, or the time of processing when the message has none.
    pub timestamp: Timestamp,
}

impl Facade {
    /// Reads a message (a typed event, an [`Event`](crate::Event) or JSON), as
    /// `new Track(msg)` and its siblings did: date strings anywhere in it read as dates
    /// (and are written back as `2014-01-01T00:00:00.000Z`, as `JSON.stringify` wrote a
    /// `Date`), and a missing `timestamp` is now. A `timestamp` that is not a date is an
    /// invalid payload.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let msg = Facade::new(&json!({"type": "Identify", "traits": {"since": "2014-01-01"}}))?;
    /// assert_eq!(msg.kind(), "identify");
    /// assert_eq!(msg.proxy("traits.since"), Some(json!("2014-01-01T00:00:00.000Z")));
    /// assert!(Facade::new(&json!({"type": "track", "timestamp": "soon"})).is_err());
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
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

    /// The message's `type`, lower case: `track`, `page`, `screen`, `identify`, ...
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// A top-level field as it is (`facade.field(name)`); `null` reads as absent.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    /// `facade.proxy(path)`: the value at a dotted path. The first segment goes through
    /// the accessor of that name when there is one (`traits`, `properties`, `options` and
    /// its alias `context`, `integrations`, `device`, `library`, `anonymousId` and its
    /// alias `sessionId`), else reads the top-level field; the rest is looked up with
    /// [`lookup`] (any case, any separators). `None` for a missing or `null` value.
    ///
    /// Facade's other accessors (`email`, `name`, `revenue`, ...) are methods here: call
    /// them rather than proxying to them.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let msg = Facade::new(&json!({
    ///     "type": "page", "name": "Docs",
    ///     "context": {"page": {"URL": "https://example.com/docs"}, "library": "analytics.js"}
    /// }))?;
    /// assert_eq!(msg.proxy("context.page.url"), Some(json!("https://example.com/docs")));
    /// assert_eq!(msg.proxy("properties.name"), Some(json!("Docs")));
    /// assert_eq!(msg.proxy("library.name"), Some(json!("analytics.js")));
    /// assert_eq!(msg.proxy("context.ip"), None);
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn proxy(&self, path: &str) -> Option<Value> {
        let (head, rest) = path.split_once('.').unwrap_or((path, ""));
        let root = match head {
            "traits" => Value::Object(self.traits()),
            "properties" => Value::Object(self.properties()),
            "options" | "context" => Value::Object(self.options()),
            "integrations" => Value::Object(self.integrations()),
            "device" => Value::Object(self.device()),
            "library" => Value::Object(self.library()),
            "anonymousId" | "sessionId" => self.anonymous_id()?.clone(),
            _ => self.field(head)?.clone(),
        };
        if rest.is_empty() {
            return Some(root);
        }
        lookup(&root, rest).cloned()
    }

    /// [`proxy`](Facade::proxy), when the value there is a string.
    pub fn text(&self, path: &str) -> Option<String> {
        self.proxy(path)?.as_str().map(str::to_owned)
    }

    /// `facade.userId()`: the `userId` field.
    pub fn user_id(&self) -> Option<&Value> {
        self.field("userId")
    }

    /// `facade.anonymousId()`: `anonymousId`, or the legacy `sessionId` when it is falsy.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let msg = Facade::new(&json!({"type": "track", "anonymousId": "", "sessionId": "s-1"}))?;
    /// assert_eq!(msg.anonymous_id(), Some(&json!("s-1")));
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn anonymous_id(&self) -> Option<&Value> {
        js_or([self.field("anonymousId"), self.field("sessionId")])
    }

    /// `facade.options()`: `options`, or else `context` (older libraries sent the context
    /// as `options`), as an object.
    pub fn options(&self) -> Object {
        let obj = js_or([self.field("options"), self.field("context")]);
        obj.and_then(Value::as_object).cloned().unwrap_or_default()
    }

    /// `facade.integrations()`: `integrations`, or else `context.providers`, or else the
    /// whole context (where the oldest libraries put integration options).
    pub fn integrations(&self) -> Object {
        let options = Value::Object(self.options());
        let value = js_or([self.field("integrations"), lookup(&options, "providers")]);
        match value {
            Some(Value::Object(map)) => map.clone(),
            Some(_) => Object::new(),
            None => self.options(),
        }
    }

    /// `facade.options(integration)`: the options the message carries for one
    /// integration: `integrations.<name>` when it is an object (the name matched exactly,
    /// then as [`lookup`] matches), else `context.<name>`; empty when neither is.
    ///
    /// Facade also answered `undefined` for an integration the message disables; Segment
    /// does not deliver such a message, and this answers empty.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let msg = Facade::new(&json!({
    ///     "type": "track",
    ///     "integrations": {"All": true, "google_analytics": {"clientId": "c-1"}}
    /// }))?;
    /// assert_eq!(msg.integration_options("Google Analytics")["clientId"], json!("c-1"));
    /// assert!(msg.integration_options("Amplitude").is_empty());
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn integration_options(&self, name: &str) -> Object {
        let integrations = Value::Object(self.integrations());
        let value = js_or([
            integrations.get(name).filter(|v| !v.is_null()),
            lookup(&integrations, name),
        ]);
        let value = match value {
            Some(value @ (Value::Object(_) | Value::Array(_))) => Some(value.clone()),
            _ => lookup(&Value::Object(self.options()), name).cloned(),
        };
        match value {
            Some(Value::Object(map)) => map,
            _ => Object::new(),
        }
    }

    /// `facade.active()`: `context.active`, true unless the message sets it falsy.
    pub fn active(&self) -> bool {
        self.proxy("options.active").is_none_or(|a| truthy(&a))
    }

    /// `facade.library()`: `context.library` as `{name, version}`; a bare string is the
    /// name, and no library is `{"name": "unknown", "version": null}`.
    pub fn library(&self) -> Object {
        match self.proxy("options.library").filter(truthy) {
            Some(Value::Object(library)) => library,
            Some(Value::String(name)) => library_named(name.into()),
            Some(_) => Object::new(),
            None => library_named("unknown".into()),
        }
    }

    /// `facade.device()`: `context.device`, with a `type` of `ios` or `android` when it
    /// has none and the library's name says which.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let msg = Facade::new(&json!({"type": "track", "context": {"library": {"name": "analytics-android"}}}))?;
    /// assert_eq!(msg.device()["type"], json!("android"));
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn device(&self) -> Object {
        let device = self.proxy("context.device");
        let mut device = match device {
            Some(Value::Object(device)) => device,
            _ => Object::new(),
        };
        if device.get("type").is_some_and(truthy) {
            return device;
        }
        let library = self.library();
        let name = library.get("name").and_then(Value::as_str).unwrap_or("");
        // Both tests run, as in facade: a name with both says android.
        for kind in ["ios", "android"] {
            if name.contains(kind) {
                device.insert("type".into(), kind.into());
            }
        }
        device
    }

    /// `facade.traits()`: the user's traits, by class:
    /// - identify: its `traits`, with `id` set to the `userId` when it has one;
    /// - group: the group's (`traits`, or else `properties`), with `id` the `groupId`;
    /// - others: `context.traits`, with `id` the `userId`.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let track = Facade::new(&json!({"type": "track", "userId": "u-1", "context": {"traits": {"plan": "pro"}}}))?;
    /// assert_eq!(serde_json::Value::from(track.traits()), json!({"plan": "pro", "id": "u-1"}));
    /// let group = Facade::new(&json!({"type": "group", "userId": "u-1", "groupId": "g-1", "traits": {"name": "Acme"}}))?;
    /// assert_eq!(serde_json::Value::from(group.traits()), json!({"name": "Acme", "id": "g-1"}));
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn traits(&self) -> Object {
        let (own, id) = match self.kind() {
            "identify" => (self.field("traits").cloned(), self.user_id()),
            "group" => (Some(self.properties().into()), self.field("groupId")),
            _ => {
                let options = Value::Object(self.options());
                (lookup(&options, "traits").cloned(), self.user_id())
            }
        };
        let mut traits = match own {
            Some(Value::Object(traits)) => traits,
            _ => Object::new(),
        };
        if let Some(id) = id.filter(|v| truthy(v)) {
            traits.insert("id".into(), id.clone());
        }
        traits
    }

    /// `facade.properties()`, by class: a group's are its `traits` (or else
    /// `properties`); a page's and screen's carry their `category` and `name` too; every
    /// other message's are its `properties`.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let page = Facade::new(&json!({"type": "page", "category": "Docs", "name": "Setup", "properties": {"path": "/setup"}}))?;
    /// assert_eq!(serde_json::Value::from(page.properties()), json!({"path": "/setup", "category": "Docs", "name": "Setup"}));
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn properties(&self) -> Object {
        let own = match self.kind() {
            "group" => js_or([self.field("traits"), self.field("properties")]),
            _ => self.field("properties"),
        };
        let mut props = own.and_then(Value::as_object).cloned().unwrap_or_default();
        if self.is_page() {
            for key in ["category", "name"] {
                if let Some(v) = self.field(key).filter(|v| truthy(v)) {
                    props.insert(key.into(), v.clone());
                }
            }
        }
        props
    }

    /// `facade.email()`, by class; the first truthy of:
    /// - identify: `traits.email`, the `userId` if it [is an email](is_email);
    /// - track: `traits.email` (that is `context.traits.email`), `properties.email`, the
    ///   `userId` if it is an email;
    /// - page, screen: `context.traits.email`, `properties.email`, the `userId`;
    /// - group: the group's `traits.email`, the `groupId` if it is an email.
    ///
    /// Other messages have no email.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let track = Facade::new(&json!({"type": "track", "userId": "u-1", "properties": {"Email": "a@b.co"}}))?;
    /// assert_eq!(track.email(), Some(json!("a@b.co")));
    /// let identify = Facade::new(&json!({"type": "identify", "userId": "u@b.co", "properties": {"email": "x@y.co"}}))?;
    /// assert_eq!(identify.email(), Some(json!("u@b.co")));
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn email(&self) -> Option<Value> {
        let (paths, id): (&[&str], _) = match self.kind() {
            "identify" => (&["traits.email"], self.user_id()),
            "track" => (
                &["traits.email", "properties.email", "options.traits.email"],
                self.user_id(),
            ),
            "page" | "screen" => (
                &["context.traits.email", "properties.email"],
                self.user_id(),
            ),
            "group" => (&["traits.email"], self.field("groupId")),
            _ => return None,
        };
        let email = paths.iter().find_map(|p| self.proxy(p).filter(truthy));
        email.or_else(|| id.filter(|id| is_email(id)).cloned())
    }

    /// `facade.name()`, by class:
    /// - identify: `traits.name` when it is a string (trimmed), else `firstName lastName`
    ///   when both are non-empty strings;
    /// - group: the group's `traits.name`;
    /// - track: `properties.name`;
    /// - page, screen: the `name` field.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let msg = Facade::new(&json!({"type": "identify", "traits": {"first_name": " Jane ", "lastName": "Doe"}}))?;
    /// assert_eq!(msg.name(), Some(json!("Jane Doe")));
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn name(&self) -> Option<Value> {
        match self.kind() {
            "identify" => {
                if let Some(name) = self.text("traits.name") {
                    return Some(js_trim(&name).into());
                }
                let part = |path| self.text(path).map(|s| js_trim(&s).to_owned());
                match (part("traits.firstName"), part("traits.lastName")) {
                    (Some(first), Some(last)) if !first.is_empty() && !last.is_empty() => {
                        Some(js_trim(&format!("{first} {last}")).into())
                    }
                    _ => None,
                }
            }
            "group" => self.proxy("traits.name"),
            "track" => self.proxy("properties.name"),
            "page" | "screen" => self.field("name").cloned(),
            _ => None,
        }
    }

    /// A page's or screen's `page.fullName()`: `category name` when it has both, else its
    /// `name` as it is (possibly falsy). Other messages have none.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let msg = Facade::new(&json!({"type": "screen", "category": "Docs", "name": "Setup"}))?;
    /// assert_eq!(msg.full_name(), Some(json!("Docs Setup")));
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn full_name(&self) -> Option<Value> {
        if !self.is_page() {
            return None;
        }
        let name = self.field("name")?;
        match self.field("category") {
            Some(category) if truthy(category) && truthy(name) => {
                Some(format!("{} {}", js_string(category), js_string(name)).into())
            }
            _ => Some(name.clone()),
        }
    }

    /// `facade.created()` for identify (`traits.created`, `traits.createdAt`) and group
    /// (`traits.createdAt`, `traits.created`, then the same in `properties`): the first
    /// truthy one, read as a date (`None` when it is not one). Other messages have none.
    pub fn created(&self) -> Option<Timestamp> {
        let paths: &[&str] = match self.kind() {
            "identify" => &["traits.created", "traits.createdAt"],
            "group" => &[
                "traits.createdAt",
                "traits.created",
                "properties.createdAt",
                "properties.created",
            ],
            _ => return None,
        };
        let created = paths.iter().find_map(|p| self.proxy(p).filter(truthy))?;
        Timestamp::from_json(&created)
    }

    /// An identify's `identify.phone()`: `traits.phone` when truthy, else the first of
    /// `traits.phones`. Other messages have none.
    pub fn phone(&self) -> Option<Value> {
        if self.kind() != "identify" {
            return None;
        }
        let phone = self.proxy("traits.phone").filter(truthy);
        phone.or_else(|| match self.proxy("traits.phones") {
            Some(Value::Array(phones)) => phones.into_iter().next().filter(|p| !p.is_null()),
            _ => None,
        })
    }

    /// `facade.country()`, `.city()`, `.region()`, `.state()`, `.street()`: `name` from
    /// the traits' `address`, the traits, the properties' `address` or the properties
    /// (a track's, page's, screen's or group's: identify has none), the first truthy;
    /// failing all, the last of them as it is (possibly falsy).
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let msg = Facade::new(&json!({"type": "track",
    ///     "context": {"traits": {"address": {"city": ""}}}, "properties": {"City": "Berlin"}}))?;
    /// assert_eq!(msg.address("city"), Some(json!("Berlin")));
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn address(&self, name: &str) -> Option<Value> {
        self.address_of(&[name])
    }

    /// `facade.zip()`: as [`address`](Facade::address), `postalCode` or else `zip` at
    /// each place.
    pub fn zip(&self) -> Option<Value> {
        self.address_of(&["postalCode", "zip"])
    }

    fn address_of(&self, names: &[&str]) -> Option<Value> {
        let traits = Value::Object(self.traits());
        // Only facade's Track, Page and Group classes have properties to look in.
        let props = if self.is_page() || matches!(self.kind(), "track" | "group") {
            Value::Object(self.properties())
        } else {
            Value::Null
        };
        let places = [&traits, &props].into_iter().flat_map(|obj| {
            names.iter().flat_map(move |name| {
                [format!("address.{name}"), (*name).to_owned()].map(|path| lookup(obj, &path))
            })
        });
        js_or(places).cloned()
    }

    /// `track.revenue()`: `properties.revenue` when truthy, else, for an order completed
    /// (`Order Completed`, `completed_order`, ...), `properties.total`; a number as it is,
    /// a string through [`parse_float`] after dropping `$` signs.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let order = Facade::new(&json!({"type": "track", "event": "Completed Order", "properties": {"total": "$1,299.00"}}))?;
    /// assert_eq!(order.revenue(), Some(1.0));
    /// let sale = Facade::new(&json!({"type": "track", "event": "Sold", "properties": {"revenue": 9.5, "total": 10}}))?;
    /// assert_eq!(sale.revenue(), Some(9.5));
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn revenue(&self) -> Option<f64> {
        let mut revenue = self.proxy("properties.revenue").filter(truthy);
        let event = self.field("event").and_then(Value::as_str);
        if revenue.is_none() && event.is_some_and(is_order_completed) {
            revenue = self.proxy("properties.total");
        }
        match revenue.filter(truthy)? {
            Value::Number(n) => Some(js::to_f64(&n)),
            Value::String(s) => parse_float(&s.replace('$', "")),
            _ => None,
        }
    }

    /// `track.currency()`: `properties.currency` (that key exactly) when truthy, else
    /// `"USD"`.
    pub fn currency(&self) -> Value {
        self.own_property("currency").unwrap_or("USD".into())
    }

    /// `track.quantity()`: `properties.quantity` (that key exactly) when truthy, else `1`.
    pub fn quantity(&self) -> Value {
        self.own_property("quantity").unwrap_or(1.into())
    }

    fn own_property(&self, key: &str) -> Option<Value> {
        let props = self.field("properties").and_then(Value::as_object)?;
        props.get(key).filter(|v| truthy(v)).cloned()
    }

    /// `track.orderId()`: `properties.id`, `order_id` or `orderId`, the first truthy;
    /// failing all, the last as it is.
    pub fn order_id(&self) -> Option<Value> {
        let ids = ["properties.id", "properties.order_id", "properties.orderId"];
        let ids = ids.map(|path| self.proxy(path));
        js_or(ids.iter().map(Option::as_ref)).cloned()
    }

    /// `track.products()`: `properties.products` when it is an array, without its `null`
    /// entries; else empty.
    ///
    /// ```
    /// use segfn_sdk::facade::Facade;
    /// use serde_json::json;
    /// let msg = Facade::new(&json!({"type": "track", "properties": {"Products": [{"sku": "a"}, null]}}))?;
    /// assert_eq!(msg.products(), [json!({"sku": "a"})]);
    /// # Ok::<(), segfn_sdk::Error>(())
    /// ```
    pub fn products(&self) -> Vec<Value> {
        match lookup(&Value::Object(self.properties()), "products") {
            Some(Value::Array(products)) => {
                products.iter().filter(|p| !p.is_null()).cloned().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Page and screen messages share facade's `Page` class.
    fn is_page(&self) -> bool {
        matches!(self.kind(), "page" | "screen")
    }
}

/// JavaScript's `a || b || c` over values that may be absent: the first truthy one, or
/// else the last one as it is.
fn js_or<'a>(values: impl IntoIterator<Item = Option<&'a Value>>) -> Option<&'a Value> {
    let mut last = None;
    for value in values {
        if value.is_some_and(truthy) {
            return value;
        }
        last = value;
    }
    last
}

fn library_named(name: Value) -> Object {
    let mut library = Object::new();
    library.insert("name".into(), name);
    library.insert("version".into(), Value::Null);
    library
}

/// facade's "Order Completed" test, `/^[ _]?completed[ _]?order[ _]?|^[ _]?order[ _]?completed[ _]?$/i`:
/// `completed order` at the start, or `order completed` as the whole name, one optional
/// space or underscore around each word.
fn is_order_completed(event: &str) -> bool {
    let event = event.to_lowercase();
    let words = |words: &[&str]| {
        let skip = |s: &str| s.strip_prefix([' ', '_']).unwrap_or(s).to_owned();
        let mut rest = skip(&event);
        for word in words {
            rest = skip(rest.strip_prefix(word)?);
        }
        Some(rest)
    };
    words(&["completed", "order"]).is_some()
        || words(&["order", "completed"]).is_some_and(|rest| rest.is_empty())
}

/// `isodate-traverse`: date strings (`YYYY-MM-DD...`) anywhere in the message become
/// dates, which `JSON.stringify` then wrote in ISO form.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facade(message: Value) -> Facade {
        Facade::new(&message).unwrap()
    }

    #[test]
    fn timestamps_and_dates() {
        let msg = facade(json!({"type": "track", "timestamp": 1_388_534_400,
            "properties": {"at": ["2014-01-01T01:00:00+01:00", "2014"]}}));
        assert_eq!(msg.timestamp.millis(), 1_388_534_400_000);
        assert_eq!(
            msg.field("timestamp"),
            Some(&json!("2014-01-01T00:00:00.000Z"))
        );
        assert_eq!(
            msg.proxy("properties.at"),
            Some(json!(["2014-01-01T00:00:00.000Z", "2014"]))
        );
        let now = facade(json!({"type": "track", "timestamp": null}));
        assert!(now.timestamp.millis() > 1_388_534_400_000);
        let error = Facade::new(&json!({"type": "track", "timestamp": true})).unwrap_err();
        assert_eq!(error.class(), "InvalidEventPayload");
        assert!(Facade::new(&json!(["not", "an", "object"])).is_err());
    }

    #[test]
    fn proxy_goes_through_accessors_then_obj_case() {
        let msg = facade(json!({
            "type": "track",
            "userId": "u",
            "event": "",
            "sessionId": "s",
            "options": {"Library": "analytics-ios", "traits": {"Plan": "pro"}},
            "context": {"ip": "1.2.3.4"},
        }));
        // `options` wins over `context` when both are there.
        assert_eq!(msg.proxy("context.ip"), None);
        assert_eq!(msg.proxy("context.traits.plan"), Some(json!("pro")));
        assert_eq!(msg.proxy("traits.plan"), Some(json!("pro")));
        assert_eq!(msg.proxy("traits.id"), Some(json!("u")));
        assert_eq!(msg.proxy("library.name"), Some(json!("analytics-ios")));
        assert_eq!(msg.proxy("device.type"), Some(json!("ios")));
        assert_eq!(msg.proxy("anonymousId"), Some(json!("s")));
        // A single segment gives the value even when falsy; `null` and absent are `None`.
        assert_eq!(msg.proxy("event"), Some(json!("")));
        assert_eq!(msg.proxy("nothing"), None);
        assert_eq!(msg.text("userId").as_deref(), Some("u"));
        assert_eq!(msg.text("traits"), None);
    }

    #[test]
    fn options_skip_a_falsy_options_field() {
        let msg = facade(json!({"type": "track", "options": false, "context": {"ip": "1.2.3.4"}}));
        assert_eq!(msg.proxy("context.ip"), Some(json!("1.2.3.4")));
    }

    #[test]
    fn integration_options_fall_back_through_providers_and_context() {
        let exact = facade(json!({"type": "track", "integrations": {
            "Google Analytics": {"clientId": "exact"}, "google_analytics": {"clientId": "cased"}}}));
        assert_eq!(
            exact.integration_options("Google Analytics")["clientId"],
            json!("exact")
        );
        // `true` is not options: then `context.<name>`.
        let flag = facade(json!({"type": "track", "integrations": {"Amplitude": true},
            "context": {"Amplitude": {"session_id": 1}}}));
        assert_eq!(
            flag.integration_options("Amplitude")["session_id"],
            json!(1)
        );
        let providers = facade(json!({"type": "track",
            "context": {"providers": {"Intercom": {"unsubscribedFromEmails": true}}}}));
        assert_eq!(
            providers.integration_options("Intercom")["unsubscribedFromEmails"],
            json!(true)
        );
        let none = facade(json!({"type": "track"}));
        assert!(none.integration_options("Intercom").is_empty());
    }

    #[test]
    fn library_and_device() {
        let none = facade(json!({"type": "track"}));
        assert_eq!(
            Value::from(none.library()),
            json!({"name": "unknown", "version": null})
        );
        assert!(none.device().is_empty());
        let typed = facade(json!({"type": "track",
            "context": {"device": {"type": "tv"}, "library": {"name": "analytics-ios"}}}));
        assert_eq!(typed.device()["type"], json!("tv"));
        let both = facade(json!({"type": "track", "context": {"library": "ios-and-android"}}));
        assert_eq!(both.device()["type"], json!("android"));
    }

    #[test]
    fn active_unless_said_otherwise() {
        assert!(facade(json!({"type": "identify"})).active());
        assert!(facade(json!({"type": "identify", "context": {"active": null}})).active());
        assert!(!facade(json!({"type": "identify", "context": {"active": false}})).active());
    }

    #[test]
    fn traits_by_class() {
        let identify = facade(json!({"type": "identify", "userId": "u",
            "traits": {"a": 1}, "context": {"traits": {"b": 2}}}));
        assert_eq!(Value::from(identify.traits()), json!({"a": 1, "id": "u"}));
        let page = facade(json!({"type": "page", "userId": 0,
            "traits": {"a": 1}, "context": {"traits": {"b": 2}}}));
        assert_eq!(Value::from(page.traits()), json!({"b": 2}));
        let group = facade(json!({"type": "group", "userId": "u", "groupId": "g",
            "traits": {}, "properties": {"p": 1}}));
        assert_eq!(Value::from(group.traits()), json!({"id": "g"}));
        let old_group = facade(json!({"type": "group", "groupId": "g", "properties": {"p": 1}}));
        assert_eq!(Value::from(old_group.traits()), json!({"p": 1, "id": "g"}));
    }

    #[test]
    fn properties_by_class() {
        let page = facade(json!({"type": "page", "name": "", "category": "Docs"}));
        assert_eq!(Value::from(page.properties()), json!({"category": "Docs"}));
        let identify = facade(json!({"type": "identify", "properties": {"p": 1}}));
        assert_eq!(Value::from(identify.properties()), json!({"p": 1}));
        let group = facade(json!({"type": "group", "traits": "", "properties": {"p": 1}}));
        assert_eq!(Value::from(group.properties()), json!({"p": 1}));
    }

    #[test]
    fn email_by_class() {
        let track = facade(json!({"type": "track", "userId": "u@b.co",
            "context": {"traits": {"email": "c@b.co"}}, "properties": {"email": "p@b.co"}}));
        assert_eq!(track.email(), Some(json!("c@b.co")));
        let track =
            facade(json!({"type": "track", "userId": "u@b.co", "properties": {"email": ""}}));
        assert_eq!(track.email(), Some(json!("u@b.co")));
        let identify = facade(json!({"type": "identify", "userId": "u",
            "context": {"traits": {"email": "c@b.co"}}, "properties": {"email": "p@b.co"}}));
        assert_eq!(identify.email(), None);
        let page = facade(json!({"type": "page", "properties": {"email": "p@b.co"}}));
        assert_eq!(page.email(), Some(json!("p@b.co")));
        let group = facade(json!({"type": "group", "userId": "u@b.co", "groupId": "g@b.co"}));
        assert_eq!(group.email(), Some(json!("g@b.co")));
        let alias = facade(json!({"type": "alias", "userId": "u@b.co"}));
        assert_eq!(alias.email(), None);
    }

    #[test]
    fn names_by_class() {
        let name = |message| facade(message).name();
        assert_eq!(
            name(json!({"type": "identify", "traits": {"name": "  "}})),
            Some(json!(""))
        );
        assert_eq!(
            name(
                json!({"type": "identify", "traits": {"name": 7, "firstName": "A", "lastName": "B"}})
            ),
            Some(json!("A B"))
        );
        assert_eq!(
            name(json!({"type": "identify", "traits": {"firstName": "A", "lastName": " "}})),
            None
        );
        assert_eq!(
            name(json!({"type": "group", "traits": {"name": 0}})),
            Some(json!(0))
        );
        assert_eq!(
            name(json!({"type": "track", "properties": {"name": "T"}})),
            Some(json!("T"))
        );
        assert_eq!(
            name(json!({"type": "screen", "name": "S"})),
            Some(json!("S"))
        );
        assert_eq!(name(json!({"type": "alias", "name": "S"})), None);
    }

    #[test]
    fn full_names() {
        let full = |message| facade(message).full_name();
        assert_eq!(
            full(json!({"type": "page", "name": "N", "category": "C"})),
            Some(json!("C N"))
        );
        assert_eq!(
            full(json!({"type": "page", "name": "N", "category": ""})),
            Some(json!("N"))
        );
        assert_eq!(
            full(json!({"type": "page", "name": "", "category": "C"})),
            Some(json!(""))
        );
        assert_eq!(full(json!({"type": "page", "category": "C"})), None);
        assert_eq!(full(json!({"type": "track", "name": "N"})), None);
    }

    #[test]
    fn created_and_phone() {
        let identify = facade(json!({"type": "identify",
            "traits": {"created": 0, "createdAt": "2014-01-01", "phones": [null, "2"]}}));
        assert_eq!(
            identify.created().map(|t| t.millis()),
            Some(1_388_534_400_000)
        );
        assert_eq!(identify.phone(), None);
        let identify =
            facade(json!({"type": "identify", "traits": {"phone": "", "phones": ["1"]}}));
        assert_eq!(identify.phone(), Some(json!("1")));
        let group = facade(json!({"type": "group", "properties": {"created": "2014-01-01"}}));
        assert_eq!(group.created().map(|t| t.millis()), Some(1_388_534_400_000));
        let track = facade(
            json!({"type": "track", "context": {"traits": {"created": "2014-01-01", "phone": "1"}}}),
        );
        assert_eq!(track.created(), None);
        assert_eq!(track.phone(), None);
    }

    #[test]
    fn addresses_fall_back_from_traits_to_properties() {
        let msg = facade(json!({"type": "track",
            "context": {"traits": {"address": {"country": "DE"}, "city": "Berlin"}},
            "properties": {"region": "BE", "address": {"zip": "10115"}, "state": 0}}));
        assert_eq!(msg.address("country"), Some(json!("DE")));
        assert_eq!(msg.address("city"), Some(json!("Berlin")));
        assert_eq!(msg.address("region"), Some(json!("BE")));
        assert_eq!(msg.zip(), Some(json!("10115")));
        // Nothing truthy: the last place's value as it is.
        assert_eq!(msg.address("state"), Some(json!(0)));
        assert_eq!(msg.address("street"), None);
        // identify has no properties to fall back to.
        let identify = facade(json!({"type": "identify", "properties": {"country": "DE"}}));
        assert_eq!(identify.address("country"), None);
    }

    #[test]
    fn revenue_and_the_order_completed_names() {
        let revenue = |event: &str, props: Value| {
            facade(json!({"type": "track", "event": event, "properties": props})).revenue()
        };
        assert_eq!(revenue("Sold", json!({"revenue": "$9.99"})), Some(9.99));
        assert_eq!(revenue("Sold", json!({"revenue": "USD 9.99"})), None);
        assert_eq!(revenue("Sold", json!({"revenue": 0, "total": 5})), None);
        assert_eq!(revenue("Sold", json!({"Revenue": 3})), Some(3.0));
        for completed in [
            "Order Completed",
            "order_completed",
            "OrderCompleted",
            " order completed_",
            "Completed Order",
            "completed_order #2",
        ] {
            assert_eq!(
                revenue(completed, json!({"total": 5})),
                Some(5.0),
                "{completed}"
            );
        }
        for other in [
            "Order  Completed",
            "Order Completed Twice",
            "__order completed",
            "Orders Completed",
        ] {
            assert_eq!(revenue(other, json!({"total": 5})), None, "{other}");
        }
    }

    #[test]
    fn track_helpers() {
        let msg = facade(json!({"type": "track", "properties": {
            "Currency": "EUR", "quantity": 0, "order_id": "", "orderId": 0,
            "products": [{"sku": "a"}, null, "odd"]}}));
        // currency and quantity read the exact key.
        assert_eq!(msg.currency(), json!("USD"));
        assert_eq!(msg.quantity(), json!(1));
        // Nothing truthy: the last as it is; `orderId` finds `order_id` first (obj-case).
        assert_eq!(msg.order_id(), Some(json!("")));
        assert_eq!(msg.products(), [json!({"sku": "a"}), json!("odd")]);
        let msg = facade(
            json!({"type": "track", "properties": {"currency": "EUR", "quantity": 2, "id": "o"}}),
        );
        assert_eq!((msg.currency(), msg.quantity()), (json!("EUR"), json!(2)));
        assert_eq!(msg.order_id(), Some(json!("o")));
        assert!(msg.products().is_empty());
    }
}
