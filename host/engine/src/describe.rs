//! What a function says about itself, for `segfn schema` and `segfn docs`: its package
//! and settings schema from the optional `segfn_describe` export, and which event types
//! it handles, found by running one sample event of each type with `fetch` denied.

use crate::fetch::FetchClient;
use crate::invocation::InvokeOptions;
use crate::invocation::new_store;
use crate::limits::Limits;
use crate::outcome::OutcomeKind;
use crate::runtime::LoadedFunction;
use segfn_sdk::EventType;
use segfn_sdk::abi::{self, Call, Description};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::{ExternType, ValType};

/// Why a function could not be described.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DescribeError {
    /// The module has no describe export: its author has not opted in.
    #[error(
        "the module does not export {export}, so it does not describe its settings. To opt in:\n  \
         1. Cargo.toml: segfn-sdk = {{ ..., features = [\"schema\"] }}\n  \
         2. the settings type: use segfn_sdk::schemars::{{self, JsonSchema}}; and #[derive(Deserialize, JsonSchema)], with a doc comment on each field\n  \
         3. the export: segfn_sdk::export!(YourFunction, schema);",
        export = abi::EXPORT_DESCRIBE
    )]
    NotExported,
    /// The export is there but of the wrong type.
    #[error(
        "the module exports {} but not as a function () -> i64",
        abi::EXPORT_DESCRIBE
    )]
    Signature,
    /// Calling it failed (trap, deadline, out of memory).
    #[error("calling {export} failed: {0}", export = abi::EXPORT_DESCRIBE)]
    Call(String),
    /// What it returned is not a description.
    #[error("{export} returned no valid description: {0}", export = abi::EXPORT_DESCRIBE)]
    Invalid(String),
    /// The settings the handlers were probed with do not fit the settings type.
    #[error(
        "the function refused the settings it was probed with ({0}); pass settings that fit with --settings FILE"
    )]
    ProbeSettings(String),
}

/// The event types in the order Segment's partner documentation lists them.
pub const EVENT_TYPES: [EventType; 7] = [
    EventType::Page,
    EventType::Screen,
    EventType::Identify,
    EventType::Track,
    EventType::Group,
    EventType::Alias,
    EventType::Delete,
];

impl LoadedFunction {
    /// Calls the module's `segfn_describe` export in an instance of its own (within the
    /// load deadline, host calls refused) and reads the [`Description`] it returns.
    pub async fn describe(&self) -> Result<Description, DescribeError> {
        match self.pre.module().get_export(abi::EXPORT_DESCRIBE) {
            None => return Err(DescribeError::NotExported),
            Some(ExternType::Func(f))
                if f.params().len() == 0
                    && f.results().len() == 1
                    && f.results().all(|r| matches!(r, ValType::I64)) => {}
            Some(_) => return Err(DescribeError::Signature),
        }
        let deadline = self.runtime.load_deadline();
        let options = quiet_options(Limits {
            deadline,
            ..Limits::default()
        })
        .map_err(DescribeError::Call)?;
        let cap = options.limits.output_bytes;
        let mut store = new_store(self.engine(), options, Instant::now() + deadline, 0);
        let call = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            let describe = instance.get_typed_func::<(), u64>(&mut store, abi::EXPORT_DESCRIBE)?;
            let (ptr, len) = abi::unpack(describe.call_async(&mut store, ()).await?);
            let memory = instance
                .get_memory(&mut store, abi::EXPORT_MEMORY)
                .ok_or_else(|| wasmtime::Error::msg("no memory export"))?;
            if len as usize > cap {
                return Err(wasmtime::Error::msg(format!(
                    "its result of {} exceeds the output limit of {}",
                    crate::limits::bytes(len as usize),
                    crate::limits::bytes(cap)
                )));
            }
            memory
                .data(&store)
                .get(ptr as usize..ptr as usize + len as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    wasmtime::Error::msg(format!("its result at {ptr}+{len} is outside its memory"))
                })
        };
        let bytes = match tokio::time::timeout(deadline, call).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => return Err(DescribeError::Call(format!("{e:#}"))),
            Err(_) => {
                return Err(DescribeError::Call(format!(
                    "it did not return within {} ms",
                    deadline.as_millis()
                )));
            }
        };
        let description: Description = serde_json::from_slice(&bytes)
            .map_err(|e| DescribeError::Invalid(format!("not a description object: {e}")))?;
        if description.abi != abi::VERSION {
            return Err(DescribeError::Invalid(format!(
                "it speaks segfn ABI v{}, this host v{}",
                description.abi,
                abi::VERSION
            )));
        }
        Ok(description)
    }

    /// The event types the function has a handler for, in [`EVENT_TYPES`] order. Each
    /// type's sample event runs in a fresh instance with `settings` and every fetch
    /// refused; only the SDK's answer for a missing handler
    /// ([`abi::no_handler_message`]) counts as "not handled". Anything else (success, a
    /// retry because the fetch was refused, a rejection of this sample, even
    /// `EventNotSupported` with a message of the handler's own) shows a handler that ran.
    pub async fn handled_event_types(
        &self,
        settings: &Value,
    ) -> Result<Vec<EventType>, DescribeError> {
        let mut options = quiet_options(Limits::default()).map_err(DescribeError::Call)?;
        // A settings error can quote a value (`invalid type: string "sk_live_…"`): the
        // settings' secrets are redacted from what the probe reports.
        options.redactor = Arc::new(
            crate::redact::Redactor::from_settings(settings, &[])
                .map_err(|e| DescribeError::ProbeSettings(e.to_string()))?,
        );
        let mut handled = Vec::new();
        for event_type in EVENT_TYPES {
            let event = sample_event(event_type);
            let report = self
                .invoke(&options, Call::Event { event }, settings.clone())
                .await;
            let message = report.outcome.message.unwrap_or_default();
            match report.outcome.kind {
                OutcomeKind::InvalidSettings => return Err(DescribeError::ProbeSettings(message)),
                OutcomeKind::UnsupportedEventType
                    if message == abi::no_handler_message(event_type.as_str()) => {}
                _ => handled.push(event_type),
            }
        }
        Ok(handled)
    }
}

impl LoadedFunction {
    /// Whether the function is a source function: it has a request handler
    /// (`on_request`, `onRequest`). An empty webhook runs as the event probes do; only
    /// the answer for a missing handler ([`abi::NO_REQUEST_HANDLER`]) counts as "no".
    pub async fn handles_requests(&self, settings: &Value) -> Result<bool, DescribeError> {
        let mut options = quiet_options(Limits::default()).map_err(DescribeError::Call)?;
        options.redactor = Arc::new(
            crate::redact::Redactor::from_settings(settings, &[])
                .map_err(|e| DescribeError::ProbeSettings(e.to_string()))?,
        );
        let request = json!({"body": "{}", "headers": {"content-type": "application/json"}});
        let report = self
            .invoke(&options, Call::Request { request }, settings.clone())
            .await;
        let message = report.outcome.message.unwrap_or_default();
        Ok(match report.outcome.kind {
            OutcomeKind::InvalidSettings => return Err(DescribeError::ProbeSettings(message)),
            OutcomeKind::UnsupportedEventType => message != abi::NO_REQUEST_HANDLER,
            _ => true,
        })
    }
}

/// Options that let nothing out: every fetch refused, nothing recorded.
fn quiet_options(limits: Limits) -> Result<InvokeOptions, String> {
    Ok(InvokeOptions {
        limits,
        client: FetchClient::new(Default::default()).map_err(|e| e.to_string())?,
        redactor: Arc::default(),
        capture_bodies: false,
    })
}

/// A small, valid message of `event_type`, with the fields handlers commonly require.
pub fn sample_event(event_type: EventType) -> Value {
    let mut event = json!({
        "type": event_type.as_str(),
        "userId": "segfn-docs-user",
        "anonymousId": "segfn-docs-anonymous",
        "messageId": format!("segfn-docs-{}", event_type.as_str()),
        "timestamp": "2024-01-01T00:00:00.000Z",
    });
    let extra = match event_type {
        EventType::Track => json!({"event": "Docs Sample", "properties": {"plan": "pro"}}),
        EventType::Identify => {
            json!({"traits": {"email": "docs@example.com", "name": "Docs Sample"}})
        }
        EventType::Page => json!({"name": "Home", "properties": {"url": "https://example.com/"}}),
        EventType::Screen => json!({"name": "Home", "properties": {}}),
        EventType::Group => json!({"groupId": "segfn-docs-group", "traits": {"name": "Docs"}}),
        EventType::Alias => json!({"previousId": "segfn-docs-previous"}),
        EventType::Delete => json!({}),
    };
    if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
        event.extend(extra);
    }
    event
}

/// Settings that fit `schema` (a settings JSON Schema from [`Description::settings`]):
/// each required setting gets a placeholder of its type (the first of its allowed
/// values, if it lists them); the others keep their defaults.
pub fn sample_settings(schema: &Value) -> Value {
    let mut settings = Map::new();
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    for name in required.iter().filter_map(Value::as_str) {
        settings.insert(name.to_owned(), sample_value(&schema["properties"][name]));
    }
    Value::Object(settings)
}

fn sample_value(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|v| v.first()) {
        return first.clone();
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = ["anyOf", "oneOf"]
        .iter()
        .find_map(|k| schema[k].as_array().and_then(|v| v.first()))
    {
        return sample_value(first);
    }
    let kind = match &schema["type"] {
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        other => other.as_str(),
    };
    match kind {
        Some("string") => json!("segfn-docs-sample"),
        Some("boolean") => json!(false),
        Some("integer" | "number") => schema.get("minimum").cloned().unwrap_or(json!(0)),
        Some("array") => json!([]),
        Some("object") => sample_settings(schema),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_settings_fill_only_required_settings() {
        let schema = json!({
            "type": "object",
            "properties": {
                "apiKey": {"type": "string", "writeOnly": true},
                "region": {"type": "string", "enum": ["eu", "us"]},
                "port": {"type": "integer", "minimum": 1},
                "flags": {"type": ["array", "null"]},
                "nested": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
                "endpoint": {"type": "string", "default": "https://x"}
            },
            "required": ["apiKey", "region", "port", "flags", "nested"]
        });
        assert_eq!(
            sample_settings(&schema),
            json!({"apiKey": "segfn-docs-sample", "region": "eu", "port": 1, "flags": [],
                   "nested": {"id": "segfn-docs-sample"}})
        );
    }

    #[test]
    fn every_sample_event_is_a_message_of_its_type() {
        for event_type in EVENT_TYPES {
            let event = sample_event(event_type);
            let parsed = segfn_sdk::Event::from_value(event.clone()).unwrap();
            assert_eq!(parsed.type_name(), Some(event_type.as_str()), "{event}");
        }
    }
}
