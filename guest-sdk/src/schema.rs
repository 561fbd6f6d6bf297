//! Settings schemas (feature `schema`): the JSON Schema of a function's settings type,
//! derived with `schemars`, that `export!(F, schema)` hands to `segfn schema` and
//! `segfn docs`; and the schema of [`Secret`], which marks a setting secret.
//!
//! A settings type opts in with `#[derive(JsonSchema)]` next to `Deserialize`:
//!
//! ```
//! use segfn_sdk::Secret;
//! use segfn_sdk::schemars::{self, JsonSchema};
//!
//! #[derive(serde::Deserialize, JsonSchema)]
//! #[serde(rename_all = "camelCase")]
//! struct Settings {
//!     /// The customer's key for the partner API.
//!     api_key: Secret,
//!     /// Base URL of the partner API.
//!     #[serde(default = "default_endpoint")]
//!     endpoint: String,
//! }
//!
//! fn default_endpoint() -> String {
//!     "https://api.partner.example/v1".into()
//! }
//!
//! let schema = segfn_sdk::schema::settings_schema::<Settings>();
//! assert_eq!(schema["required"], serde_json::json!(["apiKey"]));
//! assert_eq!(schema["properties"]["apiKey"]["x-segfn-secret"], true);
//! assert_eq!(schema["properties"]["endpoint"]["default"], "https://api.partner.example/v1");
//! ```
//!
//! The derive's generated code names `schemars::...`; importing `schemars` from the SDK
//! (`use segfn_sdk::schemars::{self, JsonSchema}`) makes that path resolve, so the
//! function crate needs no dependency of its own. `#[schemars(crate =
//! "segfn_sdk::schemars")]` on the type does the same where the import cannot go.

use crate::Secret;
use crate::abi::{Description, SCHEMA_SECRET_KEYWORD, VERSION};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;
use std::borrow::Cow;

/// The JSON Schema (draft 2020-12) of a settings type, as it is deserialized, with
/// every subschema inlined (settings are a flat object; no `$ref` to follow).
pub fn settings_schema<S: JsonSchema>() -> Value {
    SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<S>()
        .to_value()
}

/// What `segfn_describe` returns for settings `S` of the crate `name` (`export!`
/// passes the function crate's `CARGO_PKG_*`).
pub fn description<S: JsonSchema>(name: &str, version: &str, description: &str) -> Description {
    Description {
        abi: VERSION,
        name: name.to_owned(),
        version: version.to_owned(),
        description: description.to_owned(),
        settings: settings_schema::<S>(),
    }
}

/// `T`'s schema, marked secret: `"writeOnly": true` (JSON Schema's word for a value
/// that is sent, never shown back) and `"x-segfn-secret": true`, which the host reads.
impl<T: JsonSchema> JsonSchema for Secret<T> {
    // Inlined, so the marks sit on the setting itself rather than behind a `$ref`.
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Secret_{}", T::schema_name()).into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("segfn_sdk::Secret<{}>", T::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = generator.subschema_for::<T>();
        schema.insert("writeOnly".into(), Value::Bool(true));
        schema.insert(SCHEMA_SECRET_KEYWORD.into(), Value::Bool(true));
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemars;
    use serde::Deserialize;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// Settings of every shape a Segment setting can have.
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Settings {
        /// The customer's key.
        api_key: Secret,
        /// Where to send events,
        /// e.g. a regional host.
        #[serde(default = "endpoint")]
        endpoint: String,
        /// Send page calls too.
        #[serde(default)]
        send_pages: bool,
        /// An optional secret.
        webhook_secret: Option<Secret>,
        /// Event names to drop.
        #[serde(default)]
        blocked_events: Vec<String>,
        /// Segment event name to partner event name.
        event_map: BTreeMap<String, String>,
        /// # Data region
        /// Where the account lives.
        #[serde(default)]
        region: Region,
    }

    // `Serialize` is what lets schemars write the default into the schema.
    #[derive(Deserialize, serde::Serialize, JsonSchema, Default)]
    #[serde(rename_all = "lowercase")]
    enum Region {
        #[default]
        Us,
        Eu,
    }

    fn endpoint() -> String {
        "https://api.example.com".into()
    }

    fn schema() -> Value {
        settings_schema::<Settings>()
    }

    #[test]
    fn settings_without_default_or_option_are_required() {
        assert_eq!(schema()["required"], json!(["apiKey", "eventMap"]));
    }

    #[test]
    fn secrets_are_marked_and_keep_their_type() {
        let schema = schema();
        let key = &schema["properties"]["apiKey"];
        assert_eq!(key["type"], "string");
        assert_eq!(key["writeOnly"], true);
        assert_eq!(key[SCHEMA_SECRET_KEYWORD], true);
        assert_eq!(key["description"], "The customer's key.");
        // An optional secret is still secret, and may be null.
        let optional = &schema["properties"]["webhookSecret"];
        assert_eq!(optional[SCHEMA_SECRET_KEYWORD], true, "{optional}");
        assert_eq!(optional["type"], json!(["string", "null"]));
        // Nothing else is.
        assert!(schema["properties"]["endpoint"].get("writeOnly").is_none());
    }

    #[test]
    fn defaults_and_doc_comments_are_carried() {
        let schema = schema();
        let endpoint = &schema["properties"]["endpoint"];
        assert_eq!(endpoint["default"], "https://api.example.com");
        assert_eq!(
            endpoint["description"],
            "Where to send events,\ne.g. a regional host."
        );
        assert_eq!(schema["properties"]["sendPages"]["default"], false);
        assert_eq!(schema["properties"]["blockedEvents"]["default"], json!([]));
        let region = &schema["properties"]["region"];
        assert_eq!(region["title"], "Data region");
        assert_eq!(region["description"], "Where the account lives.");
        assert_eq!(region["default"], "us");
        assert_eq!(region["enum"], json!(["us", "eu"]));
    }

    #[test]
    fn properties_keep_field_order_and_nothing_is_behind_a_ref() {
        let schema = schema();
        let names: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(
            names,
            [
                "apiKey",
                "endpoint",
                "sendPages",
                "webhookSecret",
                "blockedEvents",
                "eventMap",
                "region"
            ]
        );
        assert!(!schema.to_string().contains("$ref"), "{schema}");
    }

    #[test]
    fn the_description_names_the_package() {
        let d = description::<Settings>("acme", "1.2.3", "Sends events to Acme");
        assert_eq!(d.abi, VERSION);
        assert_eq!((d.name.as_str(), d.version.as_str()), ("acme", "1.2.3"));
        assert_eq!(d.settings, schema());
        let back: Description = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    /// The attribute form, for types where `schemars` cannot be imported.
    #[test]
    fn the_crate_attribute_works_without_the_import() {
        mod elsewhere {
            #[derive(serde::Deserialize, crate::JsonSchema)]
            #[schemars(crate = "crate::schemars")]
            #[allow(dead_code)]
            pub struct Other {
                /// A token.
                pub token: crate::Secret,
            }
        }
        let schema = settings_schema::<elsewhere::Other>();
        assert_eq!(schema["properties"]["token"][SCHEMA_SECRET_KEYWORD], true);
    }
}
