//! Segment's settings format from a function's settings schema: one [`Setting`] per
//! field of the settings type (name, label, type, description, required, sensitive,
//! default), with the types Segment's function settings have (`STRING`, `BOOLEAN`,
//! `ARRAY`, `TEXT_MAP`, as its Public API's `FunctionSettingV1` names them), and a
//! warning for every field those types cannot carry exactly.

use segfn_engine::redact::is_secret_name;
use segfn_sdk::abi::SCHEMA_SECRET_KEYWORD;
use serde::Serialize;
use serde_json::Value;

/// The type of a Segment function setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SettingType {
    /// Text.
    String,
    /// A checkbox.
    Boolean,
    /// A list of texts.
    Array,
    /// Text keys to text values ("Map" in Segment's settings dialog).
    TextMap,
}

impl SettingType {
    /// The name Segment's settings dialog shows.
    pub fn label(self) -> &'static str {
        match self {
            SettingType::String => "String",
            SettingType::Boolean => "Boolean",
            SettingType::Array => "Array",
            SettingType::TextMap => "Map",
        }
    }
}

/// One setting, in the shape of Segment's Public API `FunctionSettingV1` plus its
/// default.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    /// The camelCase name the function reads it by.
    pub name: String,
    /// What Segment's settings page shows: the field's `# Title` doc line or
    /// `#[schemars(title = ...)]`, else words made from the name (`apiKey` → "API Key").
    pub label: String,
    /// The field's doc comment, on one line per paragraph.
    pub description: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: SettingType,
    /// Whether the function needs a value (no default, not an `Option`).
    pub required: bool,
    /// Whether Segment hides the value: a `Secret<T>`, or a name the host treats as a
    /// secret's (see [`is_secret_name`]).
    pub sensitive: bool,
    /// The value used when none is set, if the type has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

/// The settings, and what Segment's format cannot say exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSettings {
    /// In the settings type's field order.
    pub settings: Vec<Setting>,
    /// One line per approximation, naming the setting and the consequence.
    pub warnings: Vec<String>,
}

/// Why a schema has no Segment settings form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The settings type is not a struct of named fields.
    #[error(
        "the settings type is not a struct with named fields (its schema is {0}); Segment settings are named values"
    )]
    NotAnObject(String),
}

/// Segment's settings for a settings schema (what `segfn_describe` returns).
pub fn segment_settings(schema: &Value) -> Result<SegmentSettings, SchemaError> {
    let is_object = schema["type"] == "object" || schema.get("properties").is_some();
    if !is_object {
        return Err(SchemaError::NotAnObject(compact(schema)));
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut warnings = Vec::new();
    let settings = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, property)| {
            let (kind, warning) = setting_type(property);
            warnings.extend(warning.map(|w| format!("setting {name}: {w}")));
            let secret_by_type = is_marked_secret(property);
            if !secret_by_type && is_secret_name(name, &[]) {
                warnings.push(format!(
                    "setting {name}: listed as sensitive for its name, which segfn redacts as a secret's; declare it a segfn_sdk::Secret so the function cannot log it by mistake"
                ));
            }
            Setting {
                name: name.clone(),
                label: property["title"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .map_or_else(|| label(name), str::to_owned),
                description: description(property),
                kind,
                required: required.contains(&name.as_str()),
                sensitive: secret_by_type || is_secret_name(name, &[]),
                default: property.get("default").cloned(),
            }
        })
        .collect();
    Ok(SegmentSettings { settings, warnings })
}

/// A label from a camelCase (or snake_case) name: words capitalised, the usual
/// abbreviations in capitals. `apiKey` → "API Key", `webhookUrl` → "Webhook URL".
pub fn label(name: &str) -> String {
    const UPPER: [&str; 12] = [
        "api", "url", "uri", "id", "ip", "http", "https", "sdk", "json", "utm", "ssl", "html",
    ];
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        let boundary = c == '_'
            || c == '-'
            || (c.is_uppercase() && previous.is_some_and(|p| p.is_lowercase() || p.is_numeric()));
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if c != '_' && c != '-' {
            word.push(c);
        }
        previous = Some(c);
    }
    words.push(word);
    words
        .iter()
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_lowercase();
            if UPPER.contains(&lower.as_str()) {
                lower.to_uppercase()
            } else {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// Whether the schema (or a branch of it) carries the secret mark.
fn is_marked_secret(schema: &Value) -> bool {
    schema[SCHEMA_SECRET_KEYWORD] == true
        || ["anyOf", "oneOf", "allOf"].iter().any(|k| {
            schema[k]
                .as_array()
                .is_some_and(|branches| branches.iter().any(is_marked_secret))
        })
}

/// The types a value may have, `null` aside (an `Option` adds it), looking through
/// `anyOf`/`oneOf` branches and enumerations.
fn types(schema: &Value) -> Vec<&str> {
    let mut found: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for key in ["anyOf", "oneOf"] {
        for branch in schema[key].as_array().into_iter().flatten() {
            found.extend(types(branch));
        }
    }
    if let Some(value) = schema.get("const") {
        found.push(json_type(value));
    }
    for value in schema["enum"].as_array().into_iter().flatten() {
        found.push(json_type(value));
    }
    found.retain(|t| *t != "null");
    found.sort_unstable();
    found.dedup();
    found
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Segment's type for a setting's schema, and why it is only an approximation when it
/// is one.
fn setting_type(schema: &Value) -> (SettingType, Option<String>) {
    match types(schema).as_slice() {
        ["string"] => (SettingType::String, None),
        ["boolean"] => (SettingType::Boolean, None),
        ["array"] => {
            let items = types(&schema["items"]);
            let warning = (items.as_slice() != ["string"]).then(|| {
                "Segment's array settings hold texts, this one holds other values: it is listed as an array, and values Segment sends as text may not fit".to_owned()
            });
            (SettingType::Array, warning)
        }
        ["object"] => {
            let values = &schema["additionalProperties"];
            let warning = (types(values).as_slice() != ["string"]).then(|| {
                "Segment's map settings map texts to texts, this one is a different object: it is listed as a map, and what Segment sends may not fit".to_owned()
            });
            (SettingType::TextMap, warning)
        }
        [number] if *number == "integer" || *number == "number" => (
            SettingType::String,
            Some("Segment's function settings have no number type: it is listed as a string, and Segment will send the number as text, which a number field refuses (invalid_settings); read a String and parse it".to_owned()),
        ),
        [] => (
            SettingType::String,
            Some("it takes any JSON value: it is listed as a string".to_owned()),
        ),
        several => (
            SettingType::String,
            Some(format!(
                "it takes several types ({}): it is listed as a string",
                several.join(", ")
            )),
        ),
    }
}

/// The doc comment, one line per paragraph (Segment shows descriptions as one block),
/// with the allowed values of an enumeration after it.
fn description(schema: &Value) -> String {
    let text = schema["description"].as_str().unwrap_or_default();
    let mut paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    let allowed: Vec<String> = schema["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            schema["oneOf"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| b.get("const")),
        )
        .map(|v| {
            format!(
                "`{}`",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            )
        })
        .collect();
    if !allowed.is_empty() {
        paragraphs.push(format!("One of {}.", allowed.join(", ")));
    }
    paragraphs.join("\n\n")
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_words_with_abbreviations_in_capitals() {
        for (name, label_) in [
            ("apiKey", "API Key"),
            ("endpoint", "Endpoint"),
            ("defaultCurrency", "Default Currency"),
            ("webhookUrl", "Webhook URL"),
            ("customerId", "Customer ID"),
            ("send_pages", "Send Pages"),
            ("v2Enabled", "V2 Enabled"),
        ] {
            assert_eq!(label(name), label_, "{name}");
        }
    }

    fn one(property: Value, required: bool) -> (Setting, Vec<String>) {
        let schema = json!({
            "type": "object",
            "properties": {"value": property},
            "required": if required { json!(["value"]) } else { json!([]) }
        });
        let mut out = segment_settings(&schema).unwrap();
        (out.settings.remove(0), out.warnings)
    }

    #[test]
    fn types_map_to_segments() {
        let cases = [
            (json!({"type": "string"}), SettingType::String, false),
            (
                json!({"type": ["string", "null"]}),
                SettingType::String,
                false,
            ),
            (json!({"type": "boolean"}), SettingType::Boolean, false),
            (
                json!({"type": "array", "items": {"type": "string"}}),
                SettingType::Array,
                false,
            ),
            (
                json!({"type": "object", "additionalProperties": {"type": "string"}}),
                SettingType::TextMap,
                false,
            ),
            (
                json!({"type": "string", "enum": ["eu", "us"]}),
                SettingType::String,
                false,
            ),
            (
                json!({"type": "integer", "format": "uint32"}),
                SettingType::String,
                true,
            ),
            (
                json!({"type": "array", "items": {"type": "integer"}}),
                SettingType::Array,
                true,
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string"}}}),
                SettingType::TextMap,
                true,
            ),
            (json!(true), SettingType::String, true),
        ];
        for (schema, kind, warns) in cases {
            let (setting, warnings) = one(schema.clone(), true);
            assert_eq!(setting.kind, kind, "{schema}");
            assert_eq!(!warnings.is_empty(), warns, "{schema}: {warnings:?}");
        }
    }

    #[test]
    fn a_secret_is_sensitive_by_its_mark_or_its_name() {
        let (setting, warnings) = one(
            json!({"type": "string", "writeOnly": true, "x-segfn-secret": true}),
            true,
        );
        assert!(setting.sensitive && setting.required && warnings.is_empty());
        let schema = json!({"properties": {"authToken": {"type": "string"}}, "required": []});
        let out = segment_settings(&schema).unwrap();
        assert!(out.settings[0].sensitive);
        assert!(
            out.warnings[0].contains("segfn_sdk::Secret"),
            "{:?}",
            out.warnings
        );
    }

    #[test]
    fn descriptions_defaults_and_titles_are_kept() {
        let (setting, _) = one(
            json!({"type": "string", "title": "Data region",
                   "description": "Where the account\nlives.\n\nAsk support to move it.",
                   "enum": ["eu", "us"], "default": "us"}),
            false,
        );
        assert_eq!(setting.label, "Data region");
        assert_eq!(
            setting.description,
            "Where the account lives.\n\nAsk support to move it.\n\nOne of `eu`, `us`."
        );
        assert_eq!(setting.default, Some(json!("us")));
        assert!(!setting.required && !setting.sensitive);
        let json = serde_json::to_value(&setting).unwrap();
        assert_eq!(json["type"], "STRING");
        let (setting, _) = one(json!({"type": "boolean"}), true);
        assert!(
            serde_json::to_value(&setting)
                .unwrap()
                .get("default")
                .is_none()
        );
    }

    #[test]
    fn a_settings_type_that_is_not_a_struct_is_refused() {
        assert!(matches!(
            segment_settings(&json!({"type": "string"})),
            Err(SchemaError::NotAnObject(_))
        ));
        // An empty struct has no settings, which is fine.
        let out = segment_settings(&json!({"type": "object", "properties": {}})).unwrap();
        assert!(out.settings.is_empty());
    }
}
