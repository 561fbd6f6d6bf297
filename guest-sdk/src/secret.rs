//! `Secret<T>`: a setting that must never be seen, by type. Reading one tells the host
//! its value, which the host then redacts from logs, the request trace and the report,
//! next to the settings its configuration names as secret; in the function it prints as
//! `[redacted]`, and reading the value takes an explicit [`Secret::expose`].

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::fmt;

/// A secret setting (an API key, a token, a password).
///
/// ```
/// use segfn_sdk::Secret;
///
/// #[derive(serde::Deserialize, Debug)]
/// #[serde(rename_all = "camelCase")]
/// struct Settings {
///     api_key: Secret,
///     region: String,
/// }
///
/// let settings: Settings =
///     serde_json::from_value(serde_json::json!({"apiKey": "sk_live_123", "region": "eu"})).unwrap();
/// assert_eq!(settings.api_key.expose(), "sk_live_123");
/// assert!(!format!("{settings:?}").contains("sk_live_123"));
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T = String>(T);

impl<T> Secret<T> {
    /// Wraps a value (for tests; settings are read with serde). The value is not
    /// declared to the host: only secrets read from settings are.
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The value, to put into a request.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The value, unwrapped.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Reads the value as `T` does, and declares every text and number in it to the host.
impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        declare(&value);
        crate::json::from_value(&value)
            .map(Secret)
            .map_err(serde::de::Error::custom)
    }
}

fn declare(value: &Value) {
    match value {
        Value::String(s) => crate::sys::declare_secret(s),
        Value::Number(n) => crate::sys::declare_secret(&n.to_string()),
        Value::Array(items) => items.iter().for_each(declare),
        Value::Object(map) => map.values().for_each(declare),
        Value::Null | Value::Bool(_) => {}
    }
}

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;

    #[test]
    fn reading_declares_every_value_to_the_host() {
        crate::sys::take_secrets();
        let secret: Secret<Value> =
            serde_json::from_value(serde_json::json!({"user": "u-1", "pins": [1234, true]}))
                .unwrap();
        assert_eq!(crate::sys::take_secrets(), ["u-1", "1234"]);
        assert_eq!(
            format!("{secret:?} {secret}"),
            "Secret([redacted]) [redacted]"
        );
    }
}
