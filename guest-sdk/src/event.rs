//! Typed Segment messages (track, identify, page, screen, group, alias, delete), tolerant
//! the way real traffic needs and lossless on the way back out.
//!
//! Every named field is an `Option`: missing and `null` both read as `None`. A value
//! that does not fit its field's type (a numeric `userId`, an array-valued `context`) is
//! not an error: the field reads as `None` and the value stays in `extra` under its wire
//! name, as do all fields this model does not name (`_metadata`, `projectId`,
//! `writeKey`, ...). Writing a message back therefore yields the JSON it was read from:
//! the same values, numbers spelled as they were (serde_json's `arbitrary_precision`),
//! and the keys in the same order ([`KeyOrder`]).
//!
//! The free-form parts (`properties`, `traits`, `context`, `integrations`) are
//! [`Part`]s: read from a message's JSON text ([`Event::from_json`], which is how a
//! function gets its events), they stay that text until the function reads into them,
//! and a part the function did not change is written back by copying its text.

use serde::de::{DeserializeOwned, Error as _, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use crate::part::Part;

/// A JSON object, as Segment's free-form `properties`, `traits` and `context` parts are.
pub type Object = Map<String, Value>;

/// A type a named field can have. Reading takes the value out of the input when it fits
/// (no copy) and gives it back otherwise, so that it stays in `extra` as it was.
trait Field: Sized {
    fn from_json(value: Value) -> Result<Self, Value>;

    /// Reads the next value of a map being deserialised: the typed value, or the value
    /// itself when it is `null` or does not fit.
    fn read<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Result<Self, Value>, A::Error> {
        let value: Value = map.next_value()?;
        Ok(if value.is_null() {
            Err(value)
        } else {
            Self::from_json(value)
        })
    }
}

/// What a part holds: a type read from any JSON object ([`Object`], [`Context`]).
trait FromObject {
    fn from_map(map: Object) -> Self;
}

impl FromObject for Object {
    fn from_map(map: Object) -> Self {
        map
    }
}

impl<T: FromObject> Field for Part<T> {
    fn from_json(value: Value) -> Result<Self, Value> {
        match value {
            Value::Object(map) => Ok(Part::from(T::from_map(map))),
            other => Err(other),
        }
    }

    /// A part is read as its text when it is an object.
    fn read<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Result<Self, Value>, A::Error> {
        let raw: Box<RawValue> = map.next_value()?;
        crate::part::classify(raw).map_err(A::Error::custom)
    }
}

impl Field for String {
    fn from_json(value: Value) -> Result<Self, Value> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(other),
        }
    }
}

impl Field for bool {
    fn from_json(value: Value) -> Result<Self, Value> {
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(other),
        }
    }
}

impl Field for serde_json::Number {
    fn from_json(value: Value) -> Result<Self, Value> {
        match value {
            Value::Number(n) => Ok(n),
            other => Err(other),
        }
    }
}

impl Field for Object {
    fn from_json(value: Value) -> Result<Self, Value> {
        match value {
            Value::Object(map) => Ok(map),
            other => Err(other),
        }
    }
}

/// How a named field reads through its accessor: text as `Option<&str>`, objects as a
/// reference that is empty when the field is absent (JavaScript's `event.properties ||
/// {}`), other values as an `Option`.
pub trait Access: Sized {
    /// What the accessor returns.
    type Out<'a>
    where
        Self: 'a;
    /// The field's value, as the accessor returns it.
    fn access(field: &Option<Self>) -> Self::Out<'_>;
}

impl Access for String {
    type Out<'a> = Option<&'a str>;
    fn access(field: &Option<String>) -> Option<&str> {
        field.as_deref()
    }
}

impl Access for bool {
    type Out<'a> = Option<bool>;
    fn access(field: &Option<bool>) -> Option<bool> {
        *field
    }
}

impl Access for serde_json::Number {
    type Out<'a> = Option<&'a serde_json::Number>;
    fn access(field: &Option<serde_json::Number>) -> Option<&serde_json::Number> {
        field.as_ref()
    }
}

static EMPTY_OBJECT: std::sync::LazyLock<Object> = std::sync::LazyLock::new(Object::new);

impl Access for Object {
    type Out<'a> = &'a Object;
    fn access(field: &Option<Object>) -> &Object {
        field.as_ref().unwrap_or(&EMPTY_OBJECT)
    }
}

static EMPTY_PART: std::sync::LazyLock<Part<Object>> = std::sync::LazyLock::new(Part::default);

impl Access for Part<Object> {
    type Out<'a> = &'a Part<Object>;
    fn access(field: &Option<Part<Object>>) -> &Part<Object> {
        field.as_ref().unwrap_or(&EMPTY_PART)
    }
}

static EMPTY_CONTEXT: std::sync::LazyLock<Part<Context>> = std::sync::LazyLock::new(Part::default);

impl Access for Part<Context> {
    type Out<'a> = &'a Part<Context>;
    fn access(field: &Option<Part<Context>>) -> &Part<Context> {
        field.as_ref().unwrap_or(&EMPTY_CONTEXT)
    }
}

/// The order of the keys of the object a message was read from, so that writing it back
/// keeps it: every key the input had is written in its input position (unless the author
/// removed it), keys the author added to `extra` come after them, and named fields the
/// author set that the input did not have come last.
///
/// Key order is not data: `==` ignores it, as it does for [`Object`]. It is empty for
/// messages built in code.
#[derive(Clone, Default)]
pub struct KeyOrder(Vec<Key>);

/// One key of the input: a named field (by wire name) or a key kept in `extra`.
#[derive(Clone)]
enum Key {
    Named(&'static str),
    Extra(String),
}

impl KeyOrder {
    /// Whether the input had this named field (with a value that fit).
    fn has_named(&self, wire: &str) -> bool {
        self.0
            .iter()
            .any(|k| matches!(k, Key::Named(w) if *w == wire))
    }

    /// Whether the input had this key in `extra`.
    fn has_extra(&self, key: &str) -> bool {
        self.0
            .iter()
            .any(|k| matches!(k, Key::Extra(e) if e == key))
    }
}

impl PartialEq for KeyOrder {
    fn eq(&self, _: &KeyOrder) -> bool {
        true
    }
}

impl std::fmt::Debug for KeyOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self.0.iter().map(|k| match k {
            Key::Named(wire) => wire,
            Key::Extra(key) => key.as_str(),
        });
        f.debug_list().entries(keys).finish()
    }
}

/// A message's field as JavaScript sees it (`lenient` structs' `field`): what a typed
/// accessor's `None` does not tell apart.
///
/// ```
/// use segfn_sdk::{Event, Js};
/// use serde_json::json;
///
/// let event = Event::from_value(json!({"type": "track", "event": "E", "userId": 42, "anonymousId": null})).unwrap();
/// assert_eq!(event.user_id(), None);
/// assert_eq!(event.field("userId"), Js::Misfit(json!(42)));
/// assert_eq!(event.field("anonymousId"), Js::Null);
/// assert_eq!(event.field("messageId"), Js::Undefined);
/// assert_eq!(event.field("event"), Js::Fits(json!("E")));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Js {
    /// Not in the message (`undefined`).
    Undefined,
    /// `null`.
    Null,
    /// A value of the typed accessor's type (any value, for a key without one).
    Fits(Value),
    /// A value of another type than the typed accessor's: the accessor reads `None`.
    Misfit(Value),
}

/// Declares a lenient struct: named optional fields with wire names, plus `extra`.
macro_rules! lenient {
    (
        $(#[$meta:meta])*
        $name:ident $(as $wire_type:literal)? {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
            /// Everything else the message carried, as received.
            pub extra: Object,
            /// The input's key order, which writing back keeps (see [`KeyOrder`]).
            pub key_order: KeyOrder,
        }

        impl $name {
            $(
                $(#[$fmeta])*
                ///
                /// Text reads as `Option<&str>`; an absent object as an empty one.
                pub fn $field(&self) -> <$ty as Access>::Out<'_> {
                    <$ty as Access>::access(&self.$field)
                }
            )*

            /// Reads the struct out of a JSON object; never fails.
            pub fn from_object(map: Object) -> Self {
                let mut this = Self::default();
                for (key, value) in map {
                    let value = match key.as_str() {
                        $(
                            $wire if !value.is_null() => match <$ty as Field>::from_json(value) {
                                Ok(typed) => {
                                    this.key_order.0.push(Key::Named($wire));
                                    this.$field = Some(typed);
                                    continue;
                                }
                                Err(misfit) => misfit,
                            },
                        )*
                        _ => value,
                    };
                    this.key_order.0.push(Key::Extra(key.clone()));
                    this.extra.insert(key, value);
                }
                this
            }

            /// Writes the struct back as a JSON object.
            pub fn to_object(&self) -> Object {
                // Cannot fail: every field serialises to JSON.
                match serde_json::to_value(self) {
                    Ok(Value::Object(map)) => map,
                    _ => Object::new(),
                }
            }

            /// A field as JavaScript reads it, by its wire name (`"userId"`, or any key
            /// the message carried): [`Js::Undefined`] when the message did not have
            /// it, [`Js::Null`] for `null`, [`Js::Fits`] for a value of the typed
            /// accessor's type, [`Js::Misfit`] for a value of another type (which the
            /// typed accessor reads as `None`). A port of `if (event.userId === null)`
            /// or of a `TypeError` on a number where text was expected needs this.
            pub fn field(&self, wire: &str) -> Js {
                match wire {
                    $( $wire if self.$field.is_some() => {
                        return Js::Fits(serde_json::to_value(&self.$field).unwrap_or(Value::Null));
                    } )*
                    _ => {}
                }
                let named = [$($wire),*].contains(&wire);
                match self.extra.get(wire) {
                    None => Js::Undefined,
                    Some(Value::Null) => Js::Null,
                    Some(value) if named => Js::Misfit(value.clone()),
                    Some(value) => Js::Fits(value.clone()),
                }
            }

            /// Whether the named field with this wire name has a value.
            fn is_set(&self, wire: &str) -> bool {
                match wire {
                    $( $wire => self.$field.is_some(), )*
                    _ => false,
                }
            }

            /// Writes an `extra` entry; but when the author set the named field of the
            /// same name (the input's value did not fit it), the typed value wins, in
            /// the raw one's place.
            fn write_extra<M: SerializeMap>(&self, out: &mut M, key: &str, value: &Value) -> Result<(), M::Error> {
                if !self.is_set(key) {
                    out.serialize_entry(key, value)
                } else if !self.key_order.has_named(key) {
                    self.write_field(out, key)
                } else {
                    // Written where the input had the named field.
                    Ok(())
                }
            }

            /// Writes the named field with this wire name, if it has a value.
            fn write_field<M: SerializeMap>(&self, out: &mut M, wire: &str) -> Result<(), M::Error> {
                match wire {
                    $( $wire => match &self.$field {
                        Some(v) => out.serialize_entry($wire, v),
                        None => Ok(()),
                    }, )*
                    _ => Ok(()),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut out = serializer.serialize_map(None)?;
                $(
                    if !self.extra.contains_key("type") && !self.extra.contains_key("action") {
                        out.serialize_entry("type", $wire_type)?;
                    }
                )?
                // The input's keys, in input order. `extra` is usually unchanged, so its
                // entries are matched in order, and looked up only when that fails.
                let mut unchanged = self.extra.iter().peekable();
                let mut found = 0;
                for key in &self.key_order.0 {
                    match key {
                        Key::Named(wire) => self.write_field(&mut out, wire)?,
                        Key::Extra(key) => {
                            let entry = match unchanged.next_if(|(k, _)| *k == key) {
                                Some(entry) => Some(entry),
                                None => self.extra.get_key_value(key),
                            };
                            if let Some((k, v)) = entry {
                                self.write_extra(&mut out, k, v)?;
                                found += 1;
                            }
                        }
                    }
                }
                // Keys the author added to `extra`.
                if found < self.extra.len() {
                    for (k, v) in &self.extra {
                        if !self.key_order.has_extra(k) {
                            self.write_extra(&mut out, k, v)?;
                        }
                    }
                }
                // Named fields the author set that the input did not have.
                $(
                    if self.$field.is_some()
                        && !self.key_order.has_named($wire)
                        && !self.extra.contains_key($wire)
                    {
                        self.write_field(&mut out, $wire)?;
                    }
                )*
                out.end()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// Reads the struct in one pass over the input, with no tree in between:
            /// named fields by type, parts as their text, everything else into `extra`.
            /// As with `from_object`, a key that comes twice keeps its last value.
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Fields;
                impl<'de> Visitor<'de> for Fields {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        let mut this = $name::default();
                        while let Some(key) = map.next_key::<String>()? {
                            if this.is_set(&key) || this.extra.contains_key(&key) {
                                this.forget(&key);
                            }
                            let value = match key.as_str() {
                                $(
                                    $wire => match <$ty as Field>::read(&mut map)? {
                                        Ok(typed) => {
                                            this.key_order.0.push(Key::Named($wire));
                                            this.$field = Some(typed);
                                            continue;
                                        }
                                        Err(misfit) => misfit,
                                    },
                                )*
                                _ => map.next_value()?,
                            };
                            this.key_order.0.push(Key::Extra(key.clone()));
                            this.extra.insert(key, value);
                        }
                        Ok(this)
                    }
                }
                deserializer.deserialize_map(Fields)
            }
        }

        impl $name {
            /// Drops what an earlier occurrence of `key` left (a repeated key).
            fn forget(&mut self, key: &str) {
                match key {
                    $( $wire => self.$field = None, )*
                    _ => {}
                }
                self.extra.shift_remove(key);
                self.key_order.0.retain(|k| match k {
                    Key::Named(wire) => *wire != key,
                    Key::Extra(extra) => extra != key,
                });
            }
        }
    };
}

/// Declares one message type: the common fields of every Segment message plus its own.
macro_rules! message {
    ($(#[$meta:meta])* $name:ident as $wire_type:literal { $($own:tt)* }) => {
        lenient! {
            $(#[$meta])*
            $name as $wire_type {
                /// `messageId`: unique per message; the deduplication key.
                message_id: String = "messageId",
                /// `userId`: the user's identifier in the customer's database.
                user_id: String = "userId",
                /// `anonymousId`: a pseudo-identifier for users not yet identified.
                anonymous_id: String = "anonymousId",
                /// `timestamp`: when the event happened (ISO-8601 as received).
                timestamp: String = "timestamp",
                /// `originalTimestamp`: the client's clock when the call was made.
                original_timestamp: String = "originalTimestamp",
                /// `sentAt`: when the library sent it.
                sent_at: String = "sentAt",
                /// `receivedAt`: when Segment received it.
                received_at: String = "receivedAt",
                /// `context`: extra information about the event (device, page, ...).
                context: Part<Context> = "context",
                /// `integrations`: destination on/off map.
                integrations: Part<Object> = "integrations",
                /// `version`: Tracking API version.
                version: serde_json::Number = "version",
                /// `channel`: `server`, `browser`, `mobile`, ...
                channel: String = "channel",
                $($own)*
            }
        }
    };
}

message! {
    /// A `track` call: a user action.
    Track as "track" {
        /// `event`: the action's name, e.g. "Order Completed".
        event: String = "event",
        /// `properties`: the action's properties.
        properties: Part<Object> = "properties",
    }
}

message! {
    /// An `identify` call: who the user is.
    Identify as "identify" {
        /// `traits`: what is known about the user.
        traits: Part<Object> = "traits",
    }
}

message! {
    /// A `page` call: a web page view.
    Page as "page" {
        /// `name`: the page's name.
        name: String = "name",
        /// `category`: the page's category.
        category: String = "category",
        /// `properties`: the page's properties (`url`, `path`, `title`, ...).
        properties: Part<Object> = "properties",
    }
}

message! {
    /// A `screen` call: a mobile screen view.
    Screen as "screen" {
        /// `name`: the screen's name.
        name: String = "name",
        /// `category`: the screen's category.
        category: String = "category",
        /// `properties`: the screen's properties.
        properties: Part<Object> = "properties",
    }
}

message! {
    /// A `group` call: the user belongs to an account or organisation.
    Group as "group" {
        /// `groupId`: the group's identifier.
        group_id: String = "groupId",
        /// `traits`: what is known about the group.
        traits: Part<Object> = "traits",
    }
}

message! {
    /// An `alias` call: merges two user identities.
    Alias as "alias" {
        /// `previousId`: the identity being merged into `userId`.
        previous_id: String = "previousId",
    }
}

message! {
    /// A `delete` call: erase the user's data (partners only).
    Delete as "delete" {}
}

lenient! {
    /// The `context` object: information about the event that is not part of it.
    Context {
        /// `ip`: the user's IP address.
        ip: String = "ip",
        /// `userAgent`: the browser's user agent.
        user_agent: String = "userAgent",
        /// `locale`: e.g. `en-US`.
        locale: String = "locale",
        /// `timezone`: e.g. `Europe/Amsterdam`.
        timezone: String = "timezone",
        /// `groupId`: the group the event belongs to.
        group_id: String = "groupId",
        /// `active`: whether the user is active.
        active: bool = "active",
        /// `traits`: user traits sent along with a non-identify call.
        traits: Part<Object> = "traits",
        /// `library`: `{name, version}` of the sending library.
        library: Object = "library",
        /// `page`: `{path, referrer, search, title, url}`.
        page: Object = "page",
        /// `app`: `{name, version, build, namespace}`.
        app: Object = "app",
        /// `campaign`: `{name, source, medium, term, content}`.
        campaign: Object = "campaign",
        /// `device`: `{id, advertisingId, manufacturer, model, ...}`.
        device: Object = "device",
        /// `os`: `{name, version}`.
        os: Object = "os",
        /// `location`: `{city, country, latitude, longitude, speed}`.
        location: Object = "location",
        /// `network`: `{bluetooth, carrier, cellular, wifi}`.
        network: Object = "network",
        /// `screen`: `{width, height, density}`.
        screen: Object = "screen",
        /// `referrer`: `{id, type, name, url, link}`.
        referrer: Object = "referrer",
    }
}

impl FromObject for Context {
    fn from_map(map: Object) -> Self {
        Context::from_object(map)
    }
}

/// The types a Segment message can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `track`
    Track,
    /// `identify`
    Identify,
    /// `page`
    Page,
    /// `screen`
    Screen,
    /// `group`
    Group,
    /// `alias`
    Alias,
    /// `delete`
    Delete,
}

impl EventType {
    /// Segment's name for the type.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Track => "track",
            EventType::Identify => "identify",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
            EventType::Delete => "delete",
        }
    }

    /// The type for a name (case-insensitive, as old libraries varied).
    pub fn parse(name: &str) -> Option<EventType> {
        [
            EventType::Track,
            EventType::Identify,
            EventType::Page,
            EventType::Screen,
            EventType::Group,
            EventType::Alias,
            EventType::Delete,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }
}

/// Any Segment message, by type.
///
/// ```
/// use segfn_sdk::Event;
///
/// let event = Event::from_value(serde_json::json!({
///     "type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "_metadata": {}
/// })).unwrap();
/// let Event::Identify(identify) = &event else { panic!("an identify") };
/// assert_eq!(identify.traits()["plan"], "pro");
/// assert_eq!(event.user_id(), Some("u1"));
/// // Unknown fields are kept: the message writes back as it came.
/// assert!(event.to_value().get("_metadata").is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `track`
    Track(Track),
    /// `identify`
    Identify(Identify),
    /// `page`
    Page(Page),
    /// `screen`
    Screen(Screen),
    /// `group`
    Group(Group),
    /// `alias`
    Alias(Alias),
    /// `delete`
    Delete(Delete),
    /// A message whose `type` is missing or not one of the above, kept as received.
    Unknown(Object),
}

macro_rules! for_each_type {
    ($self:expr, $e:ident => $body:expr, $raw:ident => $other:expr) => {
        match $self {
            Event::Track($e) => $body,
            Event::Identify($e) => $body,
            Event::Page($e) => $body,
            Event::Screen($e) => $body,
            Event::Group($e) => $body,
            Event::Alias($e) => $body,
            Event::Delete($e) => $body,
            Event::Unknown($raw) => $other,
        }
    };
}

impl Event {
    /// Reads a message from a JSON object. The type comes from `type`, or from the
    /// legacy `action` field when `type` is absent.
    pub fn from_object(map: Object) -> Event {
        let name = ["type", "action"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str));
        match name.and_then(EventType::parse) {
            Some(EventType::Track) => Event::Track(Track::from_object(map)),
            Some(EventType::Identify) => Event::Identify(Identify::from_object(map)),
            Some(EventType::Page) => Event::Page(Page::from_object(map)),
            Some(EventType::Screen) => Event::Screen(Screen::from_object(map)),
            Some(EventType::Group) => Event::Group(Group::from_object(map)),
            Some(EventType::Alias) => Event::Alias(Alias::from_object(map)),
            Some(EventType::Delete) => Event::Delete(Delete::from_object(map)),
            None => Event::Unknown(map),
        }
    }

    /// Reads a message from its JSON text, as a function receives it: one pass to find
    /// its type and one to read it, no tree built, the free-form parts kept as their
    /// text until they are read (see [`Part`]).
    ///
    /// ```
    /// use segfn_sdk::Event;
    ///
    /// let event = Event::from_json(r#"{"type":"identify","userId":"u1","traits":{"plan":"pro"}}"#).unwrap();
    /// let Event::Identify(identify) = &event else { panic!("an identify") };
    /// assert_eq!(identify.traits()["plan"], "pro");
    /// assert!(Event::from_json("[1]").unwrap_err().contains("an array"));
    /// ```
    pub fn from_json(text: &str) -> Result<Event, String> {
        /// The fields that choose the type; everything else is skipped unread.
        #[derive(Deserialize)]
        struct Probe<'a> {
            #[serde(rename = "type", borrow, default)]
            kind: Option<&'a RawValue>,
            #[serde(borrow, default)]
            action: Option<&'a RawValue>,
        }
        fn read<T: DeserializeOwned>(text: &str) -> Option<T> {
            serde_json::from_str(text).ok()
        }
        let fast = || -> Option<Event> {
            if !text.trim_start().starts_with('{') {
                return None;
            }
            let probe: Probe = serde_json::from_str(text).ok()?;
            // The first of `type` and `action` that is text names the type.
            let name = [probe.kind, probe.action]
                .into_iter()
                .flatten()
                .find_map(|raw| serde_json::from_str::<String>(raw.get()).ok());
            Some(match name.as_deref().and_then(EventType::parse) {
                Some(EventType::Track) => Event::Track(read(text)?),
                Some(EventType::Identify) => Event::Identify(read(text)?),
                Some(EventType::Page) => Event::Page(read(text)?),
                Some(EventType::Screen) => Event::Screen(read(text)?),
                Some(EventType::Group) => Event::Group(read(text)?),
                Some(EventType::Alias) => Event::Alias(read(text)?),
                Some(EventType::Delete) => Event::Delete(read(text)?),
                None => Event::Unknown(read(text)?),
            })
        };
        // Whatever the fast path does not take (not an object, a repeated `type`,
        // invalid JSON) is read the plain way, which names the problem.
        match fast() {
            Some(event) => Ok(event),
            None => {
                let value: Value = serde_json::from_str(text)
                    .map_err(|e| format!("a Segment message is not valid JSON: {e}"))?;
                Event::from_value(value)
            }
        }
    }

    /// Reads a message from any JSON value; only objects are messages.
    pub fn from_value(value: Value) -> Result<Event, String> {
        match value {
            Value::Object(map) => Ok(Event::from_object(map)),
            other => Err(format!(
                "a Segment message is a JSON object, but this is {}",
                crate::json::kind(&other)
            )),
        }
    }

    /// The message's type, or `None` for [`Event::Unknown`].
    pub fn event_type(&self) -> Option<EventType> {
        Some(match self {
            Event::Track(_) => EventType::Track,
            Event::Identify(_) => EventType::Identify,
            Event::Page(_) => EventType::Page,
            Event::Screen(_) => EventType::Screen,
            Event::Group(_) => EventType::Group,
            Event::Alias(_) => EventType::Alias,
            Event::Delete(_) => EventType::Delete,
            Event::Unknown(_) => return None,
        })
    }

    /// The type as the message names it (`"track"`, ..., or whatever an unknown one says).
    pub fn type_name(&self) -> Option<&str> {
        match self {
            Event::Unknown(map) => ["type", "action"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Value::as_str)),
            known => known.event_type().map(EventType::as_str),
        }
    }

    /// `messageId`, if present and a string.
    pub fn message_id(&self) -> Option<&str> {
        for_each_type!(self, e => e.message_id.as_deref(), raw => raw.get("messageId").and_then(Value::as_str))
    }

    /// `userId`, if present and a string.
    pub fn user_id(&self) -> Option<&str> {
        for_each_type!(self, e => e.user_id.as_deref(), raw => raw.get("userId").and_then(Value::as_str))
    }

    /// `anonymousId`, if present and a string.
    pub fn anonymous_id(&self) -> Option<&str> {
        for_each_type!(self, e => e.anonymous_id.as_deref(), raw => raw.get("anonymousId").and_then(Value::as_str))
    }

    /// Writes the message back as JSON.
    pub fn to_value(&self) -> Value {
        for_each_type!(self, e => Value::Object(e.to_object()), raw => Value::Object(raw.clone()))
    }

    /// A top-level field as JavaScript reads it: missing, `null`, fitting its typed
    /// accessor, or of another type (see [`Js`]).
    pub fn field(&self, wire: &str) -> Js {
        for_each_type!(self, e => e.field(wire), raw => match raw.get(wire) {
            None => Js::Undefined,
            Some(Value::Null) => Js::Null,
            Some(value) => Js::Fits(value.clone()),
        })
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        for_each_type!(self, e => e.serialize(serializer), raw => raw.serialize(serializer))
    }
}

impl<'de> Deserialize<'de> for Event {
    /// Reads the message's text and then the message from it ([`Event::from_json`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Event::from_json(raw.get()).map_err(D::Error::custom)
    }
}

macro_rules! into_event {
    ($($t:ident),*) => {$(
        impl From<$t> for Event {
            fn from(e: $t) -> Event { Event::$t(e) }
        }
    )*};
}
into_event!(Track, Identify, Page, Screen, Group, Alias, Delete);

impl Track {
    /// A new track message with this event name (for tests and insert functions).
    pub fn new(event: impl Into<String>) -> Track {
        Track {
            event: Some(event.into()),
            ..Track::default()
        }
    }

    /// `properties` read as the author's own type, e.g. an Ecommerce "Order Completed".
    /// Fails with a message naming the property that did not fit.
    pub fn properties_as<T: DeserializeOwned>(&self) -> Result<T, crate::Error> {
        self.properties()
            .read_as()
            .map_err(|e| crate::Error::InvalidEventPayload(format!("properties: {e}")))
    }

    /// One property, if present.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties.as_ref()?.get(name)
    }
}

impl Identify {
    /// One trait, if present.
    pub fn trait_value(&self, name: &str) -> Option<&Value> {
        self.traits.as_ref()?.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_as_javascript_reads_them() {
        let track = Track::from_object(
            serde_json::from_value(serde_json::json!({
                "event": "E", "properties": null, "context": "oops", "custom": 0
            }))
            .unwrap(),
        );
        assert_eq!(track.field("event"), Js::Fits(serde_json::json!("E")));
        assert_eq!(track.field("properties"), Js::Null);
        assert!(
            track.properties().is_empty(),
            "the accessor reads null as empty"
        );
        assert_eq!(
            track.field("context"),
            Js::Misfit(serde_json::json!("oops"))
        );
        assert_eq!(track.field("userId"), Js::Undefined);
        assert_eq!(track.field("custom"), Js::Fits(serde_json::json!(0)));
        let unknown = Event::from_value(serde_json::json!({"type": "x", "a": null})).unwrap();
        assert_eq!(unknown.field("a"), Js::Null);
        assert_eq!(unknown.field("b"), Js::Undefined);
    }
    use serde_json::json;

    #[test]
    fn reads_common_and_own_fields() {
        let e: Event = serde_json::from_value(json!({
            "type": "track", "event": "Order Completed", "userId": "u1",
            "properties": {"revenue": 10}, "context": {"ip": "1.2.3.4", "x": 1},
            "writeKey": "wk", "_metadata": {"bundled": []}
        }))
        .unwrap();
        let Event::Track(t) = &e else {
            panic!("not a track: {e:?}")
        };
        assert_eq!(t.event.as_deref(), Some("Order Completed"));
        assert_eq!(t.user_id.as_deref(), Some("u1"));
        assert_eq!(t.context.as_ref().unwrap().ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(t.context.as_ref().unwrap().extra["x"], json!(1));
        assert_eq!(t.extra["writeKey"], json!("wk"));
        assert_eq!(e.message_id(), None);
    }

    #[test]
    fn misfit_and_null_values_are_kept_verbatim() {
        let input = json!({
            "type": "identify", "userId": 12345, "anonymousId": null,
            "context": [], "traits": {"age": "31"}, "version": "1"
        });
        let e: Event = serde_json::from_value(input.clone()).unwrap();
        let Event::Identify(i) = &e else { panic!() };
        assert_eq!(i.user_id, None);
        assert_eq!(i.context, None);
        assert_eq!(i.version, None);
        assert_eq!(serde_json::to_value(&e).unwrap(), input);
    }

    #[test]
    fn parts_stay_text_until_read_and_read_as_the_tree_does() {
        let text = r#"{"type":"track","event":"E","userId":"u","properties":{"a":1},"context":{"ip":"1.2.3.4","traits":{"email":"e"}},"integrations":{}}"#;
        let event = Event::from_json(text).unwrap();
        let Event::Track(track) = &event else {
            panic!("a track")
        };
        let (properties, context) = (
            track.properties.as_ref().unwrap(),
            track.context.as_ref().unwrap(),
        );
        assert!(
            !properties.is_parsed() && !context.is_parsed(),
            "nothing read yet"
        );
        assert_eq!(track.user_id(), Some("u"));
        assert!(
            !properties.is_parsed(),
            "named fields do not parse the parts"
        );
        assert_eq!(track.context().ip(), Some("1.2.3.4"));
        assert!(
            context.is_parsed() && !properties.is_parsed(),
            "only what was read"
        );
        assert_eq!(
            track.context().traits().raw_json(),
            Some(r#"{"email":"e"}"#)
        );
        // The same message as the tree reads it.
        let tree = Event::from_value(serde_json::from_str(text).unwrap()).unwrap();
        assert_eq!(event, tree);
        assert_eq!(serde_json::to_string(&event).unwrap(), text);
        assert_eq!(serde_json::to_string(&tree).unwrap(), text);
    }

    #[test]
    fn from_json_keeps_misfits_nulls_and_the_last_of_repeated_keys() {
        let text =
            r#"{"type":"identify","userId":1,"traits":null,"context":[],"x":1,"userId":"u","x":2}"#;
        let event = Event::from_json(text).unwrap();
        let Event::Identify(identify) = &event else {
            panic!("an identify")
        };
        assert_eq!(identify.user_id(), Some("u"), "the last userId");
        assert_eq!(identify.field("traits"), Js::Null);
        assert_eq!(identify.field("context"), Js::Misfit(json!([])));
        assert_eq!(identify.extra["x"], json!(2));
        assert!(identify.traits().is_empty());
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"type": "identify", "traits": null, "context": [], "userId": "u", "x": 2})
        );
        // A repeated `type` and text that is not a message take the plain path.
        let twice = Event::from_json(r#"{"type":"page","type":"track","event":"E"}"#).unwrap();
        assert_eq!(twice.event_type(), Some(EventType::Track));
        let err = Event::from_json("{").unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        assert!(Event::from_json("7").unwrap_err().contains("a number"));
        assert_eq!(
            Event::from_json(r#"{"a":1}"#).unwrap(),
            Event::Unknown(serde_json::from_str(r#"{"a":1}"#).unwrap())
        );
    }

    #[test]
    fn legacy_action_selects_the_type_and_is_written_back() {
        let input = json!({"action": "Track", "event": "Signed Up"});
        let e = Event::from_value(input.clone()).unwrap();
        assert_eq!(e.event_type(), Some(EventType::Track));
        assert_eq!(e.to_value(), input);
    }

    #[test]
    fn new_messages_carry_their_type_and_author_values_win() {
        let mut t = Track::new("Signed Up");
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"type": "track", "event": "Signed Up"})
        );
        t.extra.insert("userId".into(), json!(7));
        t.user_id = Some("seven".into());
        assert_eq!(serde_json::to_value(&t).unwrap()["userId"], json!("seven"));
    }

    /// Writes a message read from `input` after `edit`, as compact text.
    fn edited(input: &str, edit: impl FnOnce(&mut Track)) -> String {
        let mut track: Track = serde_json::from_str(input).unwrap();
        edit(&mut track);
        serde_json::to_string(&track).unwrap()
    }

    #[test]
    fn key_order_survives_and_edits_land_where_expected() {
        let input =
            r#"{"z":1,"event":"A","userId":"u","context":{"b":1,"ip":"x","a":2},"type":"track"}"#;
        assert_eq!(edited(input, |_| {}), input);
        // A changed value stays in its place.
        assert_eq!(
            edited(input, |t| t.user_id = Some("v".into())),
            r#"{"z":1,"event":"A","userId":"v","context":{"b":1,"ip":"x","a":2},"type":"track"}"#
        );
        // A removed field is left out; one the input did not have goes last.
        assert_eq!(
            edited(input, |t| {
                t.event = None;
                t.anonymous_id = Some("anon".into());
                t.extra.insert("added".into(), json!(true));
            }),
            r#"{"z":1,"userId":"u","context":{"b":1,"ip":"x","a":2},"type":"track","added":true,"anonymousId":"anon"}"#
        );
        // Removing an extra key moves nothing else, even when `remove` (which is
        // `swap_remove`) reorders `extra` itself.
        assert_eq!(
            edited(input, |t| {
                t.extra.remove("z");
            }),
            r#"{"event":"A","userId":"u","context":{"b":1,"ip":"x","a":2},"type":"track"}"#
        );
        let input = r#"{"z":1,"event":"A","w":2,"type":"track"}"#;
        assert_eq!(
            edited(input, |t| {
                t.extra.remove("z");
            }),
            r#"{"event":"A","w":2,"type":"track"}"#
        );
    }

    #[test]
    fn a_misfit_replaced_by_the_author_keeps_its_place() {
        let input = r#"{"type":"track","userId":42,"event":"A"}"#;
        assert_eq!(edited(input, |_| {}), input);
        assert_eq!(
            edited(input, |t| t.user_id = Some("42".into())),
            r#"{"type":"track","userId":"42","event":"A"}"#
        );
    }

    #[test]
    fn key_order_is_not_part_of_equality() {
        let a: Track =
            serde_json::from_str(r#"{"type":"track","event":"A","userId":"u"}"#).unwrap();
        let b: Track =
            serde_json::from_str(r#"{"userId":"u","event":"A","type":"track"}"#).unwrap();
        assert_eq!(a, b);
        assert_ne!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
    }

    #[test]
    fn unknown_types_and_non_objects() {
        let e = Event::from_value(json!({"type": "screenview", "a": 1})).unwrap();
        assert_eq!(e.event_type(), None);
        assert_eq!(e.type_name(), Some("screenview"));
        let err = Event::from_value(json!([1])).unwrap_err();
        assert!(err.contains("an array"), "{err}");
    }

    #[test]
    fn properties_as_reads_exact_numbers_into_buffered_types() {
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(untagged)]
        enum Amount {
            Number(f64),
            Text(String),
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct Order {
            revenue: Amount,
        }
        let t: Track =
            serde_json::from_str(r#"{"type":"track","properties":{"revenue":25.00}}"#).unwrap();
        assert_eq!(
            t.properties_as::<Order>().unwrap(),
            Order {
                revenue: Amount::Number(25.0)
            }
        );
    }

    #[test]
    fn properties_as_names_the_misfit() {
        #[derive(Deserialize, Debug)]
        struct Order {
            #[allow(dead_code)]
            order_id: String,
        }
        let t: Track =
            serde_json::from_value(json!({"type": "track", "properties": {"order_id": 5}}))
                .unwrap();
        let err = t.properties_as::<Order>().unwrap_err();
        assert!(
            matches!(err, crate::Error::InvalidEventPayload(ref m) if m.contains("invalid type")),
            "{err:?}"
        );
    }
}
