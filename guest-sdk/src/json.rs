//! Reading your own types from JSON while numbers are kept exactly.
//!
//! The SDK builds serde_json with `arbitrary_precision`, so that numbers pass through a
//! function unchanged (`18446744073709551617`, `25.00` and `1e400` come back as written).
//! That has one cost for typed reading: serde's `#[serde(flatten)]`, `#[serde(untagged)]`
//! and internally tagged enums buffer values before reading them, and a buffered number
//! no longer reads as an `f64` when it has a fraction (`25.5` in text) or is spelled
//! unlike serde_json's own output (`25.00`). Plain structs, `Option`s, `Vec`s and maps
//! are not affected.
//!
//! [`from_slice`] and [`from_value`] read as serde_json does and, when that fails, once
//! more with every number that fits an `f64` or 64-bit integer rewritten the way
//! serde_json would write it, which such types read as they would without the feature.
//! The SDK's own readers use them: [`crate::Track::properties_as`],
//! [`crate::Response::json`] and the function's settings.

use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

/// Reads `T` from a JSON value (see the [module](self) for how it differs from
/// `serde_json::from_value`). The error is serde_json's first one.
///
/// ```
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct Price { amount: f64 }
/// // A decimal spelled with a trailing zero, as Segment passes it through.
/// let value: serde_json::Value = serde_json::from_str(r#"{"amount": 25.00}"#).unwrap();
/// let price: Price = segfn_sdk::json::from_value(&value).unwrap();
/// assert_eq!(price.amount, 25.0);
/// ```
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, serde_json::Error> {
    T::deserialize(value).or_else(|first| {
        let mut plain = value.clone();
        plain_numbers(&mut plain);
        T::deserialize(&plain).map_err(|_| first)
    })
}

/// Reads `T` from JSON text (see the [module](self) for how it differs from
/// `serde_json::from_slice`). The error is serde_json's first one, with its position.
///
/// ```
/// #[derive(serde::Deserialize)]
/// #[serde(untagged)]
/// enum Amount { Number(f64), Text(String) }
/// let amount: Amount = segfn_sdk::json::from_slice(b"19.99").unwrap();
/// assert!(matches!(amount, Amount::Number(x) if x == 19.99));
/// ```
pub fn from_slice<T: DeserializeOwned>(json: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(json).or_else(|first| {
        let Ok(mut plain) = serde_json::from_slice::<Value>(json) else {
            return Err(first);
        };
        plain_numbers(&mut plain);
        T::deserialize(plain).map_err(|_| first)
    })
}

/// `"an array"`, `"a string"`, ... for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Rewrites every number that is not a 128-bit integer but fits an `f64` in serde_json's
/// own spelling of that `f64`, which buffered reading accepts. Integers of up to 128 bits
/// are read either way; numbers beyond the `f64` range stay as they are.
fn plain_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if n.as_i128().is_none() && n.as_u128().is_none() => {
            if let Some(plain) = n.as_f64().and_then(Number::from_f64) {
                *n = plain;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(plain_numbers),
        Value::Object(map) => map.values_mut().for_each(plain_numbers),
        _ => {}
    }
}

/// Reads a number setting that may come as text: Segment's settings have no number type
/// (a customer types `500` into a text field and the function gets `"500"`), so a
/// numeric setting should accept both. For `#[serde(deserialize_with = ...)]`:
///
/// ```
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Settings {
///     #[serde(deserialize_with = "segfn_sdk::json::number_or_text")]
///     max_events_per_request: usize,
/// }
/// let from_text: Settings = serde_json::from_value(serde_json::json!({"maxEventsPerRequest": "500"})).unwrap();
/// let from_number: Settings = serde_json::from_value(serde_json::json!({"maxEventsPerRequest": 500})).unwrap();
/// assert_eq!((from_text.max_events_per_request, from_number.max_events_per_request), (500, 500));
/// ```
pub fn number_or_text<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    use serde::Deserialize as _;
    let text = match Value::deserialize(deserializer)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a number or a number as text, found {other}"
            )));
        }
    };
    text.trim()
        .parse()
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a valid number: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    enum Price {
        Number(f64),
        Text(String),
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Item {
        id: u64,
        price: Price,
        #[serde(flatten)]
        rest: BTreeMap<String, f64>,
    }

    #[test]
    fn buffered_types_read_numbers_kept_exactly() {
        for text in [
            r#"{"id":7,"price":25.5,"tax":1.25}"#,
            r#"{"id":7,"price":25.50,"tax":1.250}"#,
            r#"{"id":7,"price":2.55e1,"tax":125e-2}"#,
        ] {
            let expected = Item {
                id: 7,
                price: Price::Number(25.5),
                rest: BTreeMap::from([("tax".to_owned(), 1.25)]),
            };
            // What serde_json alone does with this build's features, which is why these
            // functions exist.
            assert!(serde_json::from_str::<Item>(text).is_err(), "{text}");

            assert_eq!(
                from_slice::<Item>(text.as_bytes()).unwrap(),
                expected,
                "{text}"
            );
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(from_value::<Item>(&value).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn errors_are_serde_jsons_first_with_position() {
        let err = from_slice::<Item>(br#"{"id":"seven","price":1}"#).unwrap_err();
        assert!(err.line() == 1 && err.column() > 0, "{err}");
        let err = from_slice::<Item>(b"{not json").unwrap_err();
        assert!(err.is_syntax(), "{err}");
        let err = from_value::<Item>(&json!({"id": "seven", "price": 1})).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn only_fractions_and_huge_integers_are_rewritten() {
        let mut value: Value = serde_json::from_str(
            "[1e400,18446744073709551617,-0,25.00,1234567890123456789012345678901234567890]",
        )
        .unwrap();
        plain_numbers(&mut value);
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            "[1e+400,18446744073709551617,-0,25.0,1.2345678901234568e+39]"
        );
    }
}
