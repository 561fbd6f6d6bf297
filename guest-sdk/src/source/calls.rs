//! The Segment calls a source function makes, validated and written as Segment's
//! harness does.

use super::truthy;
use crate::abi::Emitted;
use crate::error::Error;
use serde::Serialize;
use serde_json::{Map, Value};

/// Where a source function's calls go (`Segment.track(...)` and friends).
#[derive(Debug, Default)]
pub struct Segment {
    emitted: Emitted,
}

impl Segment {
    /// Validates one event call and records it; returns it as it will be sent.
    pub fn send(&mut self, call: Call) -> Result<&Value, Error> {
        let event = call.into_event()?;
        self.emitted.events.push(event);
        Ok(self.emitted.events.last().expect("just pushed"))
    }

    /// Validates one object (`Segment.set`) and records it.
    pub fn set(&mut self, object: SetObject) -> Result<&Value, Error> {
        let object = object.into_value()?;
        self.emitted.objects.push(object);
        Ok(self.emitted.objects.last().expect("just pushed"))
    }

    /// What was sent so far.
    pub fn emitted(&self) -> &Emitted {
        &self.emitted
    }

    /// The calls made, for the host.
    pub fn into_emitted(self) -> Emitted {
        self.emitted
    }
}

/// An event call being built: [`track`], [`identify`], [`page`], [`screen`],
/// [`group`] or [`alias`], then the fields it has.
#[derive(Debug, Clone)]
#[must_use = "a call does nothing until `Segment::send`"]
pub struct Call {
    kind: &'static str,
    /// The call's own fields (`event`, `groupId`, `previousId`, `name`, `properties`,
    /// `traits`), in the harness's order.
    own: Vec<(&'static str, Value)>,
    /// The fields every call shares, by name.
    common: Map<String, Value>,
}

/// `Segment.track({event, ...})`.
pub fn track(event: impl Into<String>) -> Call {
    Call::new("track", vec![("event", Value::String(event.into()))])
}
/// `Segment.identify({...})`.
pub fn identify() -> Call {
    Call::new("identify", Vec::new())
}
/// `Segment.page({...})`.
pub fn page() -> Call {
    Call::new("page", Vec::new())
}
/// `Segment.screen({...})`.
pub fn screen() -> Call {
    Call::new("screen", Vec::new())
}
/// `Segment.group({groupId, ...})`.
pub fn group(group_id: impl Into<String>) -> Call {
    Call::new("group", vec![("groupId", Value::String(group_id.into()))])
}
/// `Segment.alias({previousId, ...})`.
pub fn alias(previous_id: impl Into<String>) -> Call {
    Call::new(
        "alias",
        vec![("previousId", Value::String(previous_id.into()))],
    )
}

impl Call {
    fn new(kind: &'static str, own: Vec<(&'static str, Value)>) -> Call {
        Call {
            kind,
            own,
            common: Map::new(),
        }
    }

    fn with_own(mut self, name: &'static str, value: Value) -> Call {
        self.own.retain(|(n, _)| *n != name);
        self.own.push((name, value));
        self
    }

    fn with_common(mut self, name: &str, value: Value) -> Call {
        self.common.insert(name.to_owned(), value);
        self
    }

    /// `userId`.
    pub fn user_id(self, id: impl Into<String>) -> Call {
        self.with_common("userId", Value::String(id.into()))
    }
    /// `anonymousId`.
    pub fn anonymous_id(self, id: impl Into<String>) -> Call {
        self.with_common("anonymousId", Value::String(id.into()))
    }
    /// `properties` (track, page, screen).
    pub fn properties(self, properties: impl Serialize) -> Call {
        self.with_own("properties", to_value(properties))
    }
    /// `traits` (identify, group).
    pub fn traits(self, traits: impl Serialize) -> Call {
        self.with_own("traits", to_value(traits))
    }
    /// `name` (page, screen).
    pub fn name(self, name: impl Into<String>) -> Call {
        self.with_own("name", Value::String(name.into()))
    }
    /// `context`.
    pub fn context(self, context: impl Serialize) -> Call {
        self.with_common("context", to_value(context))
    }
    /// `integrations`.
    pub fn integrations(self, integrations: impl Serialize) -> Call {
        self.with_common("integrations", to_value(integrations))
    }
    /// `messageId` (the host otherwise gives each call a stable one).
    pub fn message_id(self, id: impl Into<String>) -> Call {
        self.with_common("messageId", Value::String(id.into()))
    }
    /// `timestamp`: when it happened (ISO 8601).
    pub fn timestamp(self, timestamp: impl Into<String>) -> Call {
        self.with_common("timestamp", Value::String(timestamp.into()))
    }
    /// `sentAt` (ISO 8601).
    pub fn sent_at(self, sent_at: impl Into<String>) -> Call {
        self.with_common("sentAt", Value::String(sent_at.into()))
    }

    /// The event as Segment's harness writes it, or why it is refused.
    fn into_event(self) -> Result<Value, Error> {
        for (name, value) in &self.own {
            let required = matches!(*name, "event" | "groupId" | "previousId");
            if required && value.as_str() == Some("") {
                return Err(Error::validation(format!(
                    "{name} is required but not defined"
                )));
            }
        }
        let identified = ["userId", "anonymousId"]
            .iter()
            .any(|n| self.common.get(*n).is_some_and(truthy));
        if !identified {
            return Err(Error::validation(
                "One of userId,anonymousId is required but not defined",
            ));
        }
        let mut event = Map::new();
        event.insert("type".into(), Value::String(self.kind.into()));
        // The harness's order: the call's own fields, then the common ones; and only
        // the fields this call knows, as the harness copies them.
        let known: &[&str] = match self.kind {
            "track" => &["event", "properties"],
            "page" | "screen" => &["name", "properties"],
            "identify" => &["traits"],
            "group" => &["groupId", "traits"],
            "alias" => &["previousId"],
            _ => &[],
        };
        let order = [
            "event",
            "groupId",
            "name",
            "previousId",
            "properties",
            "traits",
        ];
        for name in order.into_iter().filter(|n| known.contains(n)) {
            if let Some((_, value)) = self.own.iter().find(|(n, _)| *n == name)
                && (truthy(value) || matches!(name, "event" | "groupId"))
            {
                event.insert(name.into(), value.clone());
            }
        }
        let common = [
            "userId",
            "anonymousId",
            "context",
            "integrations",
            "messageId",
            "sentAt",
            "timestamp",
        ];
        for name in common {
            if let Some(value) = self.common.get(name).filter(|v| truthy(v)) {
                event.insert(name.into(), value.clone());
            }
        }
        Ok(Value::Object(event))
    }
}

/// `Segment.set({collection, id, properties})`: an object for warehouses.
#[derive(Debug, Clone)]
#[must_use = "an object does nothing until `Segment::set`"]
pub struct SetObject {
    collection: String,
    id: String,
    properties: Option<Value>,
}

/// An object of `collection` with `id`.
pub fn object(collection: impl Into<String>, id: impl Into<String>) -> SetObject {
    SetObject {
        collection: collection.into(),
        id: id.into(),
        properties: None,
    }
}

impl SetObject {
    /// Its properties.
    pub fn properties(mut self, properties: impl Serialize) -> SetObject {
        self.properties = Some(to_value(properties));
        self
    }

    fn into_value(self) -> Result<Value, Error> {
        for (name, value) in [("collection", &self.collection), ("id", &self.id)] {
            if value.is_empty() {
                return Err(Error::validation(format!(
                    "{name} is required but not defined"
                )));
            }
        }
        let mut object = Map::new();
        object.insert("collection".into(), Value::String(self.collection));
        object.insert("id".into(), Value::String(self.id));
        if let Some(properties) = self.properties.filter(truthy) {
            object.insert("properties".into(), properties);
        }
        Ok(Value::Object(object))
    }
}

fn to_value(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_are_written_in_the_harnesss_order_with_set_fields_only() {
        let mut segment = Segment::default();
        segment
            .send(
                track("Order")
                    .timestamp("2024-01-01T00:00:00Z")
                    .context(json!({"ip": "1.2.3.4"}))
                    .properties(json!({"total": 3}))
                    .user_id("u1")
                    .anonymous_id(""),
            )
            .unwrap();
        segment
            .send(
                identify()
                    .anonymous_id("a")
                    .traits(json!(null))
                    .properties(json!({"not": "an identify field"})),
            )
            .unwrap();
        segment
            .set(object("rooms", "r1").properties(json!({"size": 3})))
            .unwrap();
        let text = serde_json::to_string(segment.emitted()).unwrap();
        assert_eq!(
            text,
            r#"{"events":[{"type":"track","event":"Order","properties":{"total":3},"userId":"u1","context":{"ip":"1.2.3.4"},"timestamp":"2024-01-01T00:00:00Z"},{"type":"identify","anonymousId":"a"}],"objects":[{"collection":"rooms","id":"r1","properties":{"size":3}}]}"#
        );
    }

    #[test]
    fn calls_are_validated_as_segment_validates_them() {
        let mut segment = Segment::default();
        for (call, message) in [
            (track("").user_id("u"), "event is required but not defined"),
            (
                track("E"),
                "One of userId,anonymousId is required but not defined",
            ),
            (
                group("").user_id("u"),
                "groupId is required but not defined",
            ),
            (
                alias("").user_id("u"),
                "previousId is required but not defined",
            ),
        ] {
            let error = segment.send(call).unwrap_err();
            assert_eq!(
                (error.class(), error.message()),
                ("ValidationError", message)
            );
        }
        let error = segment.set(object("c", "")).unwrap_err();
        assert_eq!(error.message(), "id is required but not defined");
        assert_eq!(segment.emitted(), &Emitted::default());
    }
}
