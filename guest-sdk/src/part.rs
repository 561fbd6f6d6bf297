//! A free-form part of a message (`properties`, `traits`, `context`, `integrations`),
//! kept as the JSON text it arrived as until the function reads into it.
//!
//! Most functions read a few fields of an event and pass the rest through: a forwarder
//! copies `properties` into its partner's body, an insert function returns the event
//! with one trait added. Parsing every part into a tree and writing the tree out again
//! is most of what such a function costs (docs/PERFORMANCE.md). A [`Part`] holds the
//! part's text and parses it the first time it is read ([`Deref`]); writing a part that
//! was never changed copies its text as it came, numbers, escapes and key order
//! included. Changing it ([`DerefMut`]) parses it first and from then on it is written
//! from the tree.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

/// A free-form part of a message: its JSON text until it is read, parsed once on first
/// read, written back as the same text unless it was changed.
///
/// It reads as the `T` it holds (`track.properties().get("revenue")`, `.len()`,
/// `["plan"]`), and a `&Part<Object>` passes wherever a `&Object` is taken. To build a
/// partner body that carries a part through unchanged, give the body a `&Part<Object>`
/// field rather than a `&Object` one: serialising it then copies the text without
/// parsing it at all.
///
/// ```
/// use segfn_sdk::{Event, Object};
/// use segfn_sdk::event::Part;
///
/// let event = Event::from_json(r#"{"type":"track","event":"E","properties":{"price":25.00, "sku":"a"}}"#).unwrap();
/// let Event::Track(track) = event else { panic!() };
/// let properties: &Part<Object> = track.properties();
/// assert_eq!(properties.raw_json(), Some(r#"{"price":25.00, "sku":"a"}"#));
/// assert_eq!(properties["sku"], "a"); // parsed now, once
/// assert_eq!(serde_json::to_string(properties).unwrap(), r#"{"price":25.00, "sku":"a"}"#);
///
/// let mut track = track;
/// track.properties.as_mut().unwrap().insert("seen".into(), true.into());
/// assert_eq!(track.properties().raw_json(), None); // changed: written from the tree
/// assert_eq!(serde_json::to_string(track.properties()).unwrap(), r#"{"price":25.00,"sku":"a","seen":true}"#);
/// ```
pub struct Part<T> {
    /// The text as received; `None` once the part was changed or for a part built in code.
    raw: Option<Box<RawValue>>,
    /// The parsed value, filled on first read. Always filled when `raw` is `None`.
    parsed: OnceLock<T>,
}

impl<T> Part<T> {
    /// The part's JSON text as it was received, while it is unchanged.
    pub fn raw_json(&self) -> Option<&str> {
        self.raw.as_deref().map(RawValue::get)
    }

    /// Whether the part has been parsed (read, changed, or built in code).
    pub fn is_parsed(&self) -> bool {
        self.parsed.get().is_some()
    }

    /// A part read from text, when the text is an object. The caller has checked that.
    pub(crate) fn from_raw(raw: Box<RawValue>) -> Self {
        Part {
            raw: Some(raw),
            parsed: OnceLock::new(),
        }
    }
}

impl<T: for<'de> Deserialize<'de> + Default> Part<T> {
    /// The parsed value, parsing it now if it was not yet.
    fn value(&self) -> &T {
        self.parsed.get_or_init(|| match &self.raw {
            // The text is a JSON object (checked when it was read), the part types read
            // any object (the lenient structs never refuse one), and the host refuses
            // messages nested deeper than 100 levels, below serde_json's limit of 128:
            // this cannot fail.
            Some(raw) => serde_json::from_str(raw.get()).unwrap_or_default(),
            None => T::default(),
        })
    }

    /// The parsed value, owned.
    pub fn into_inner(mut self) -> T {
        self.value();
        self.parsed.take().unwrap_or_default()
    }

    /// Reads the part into the author's own type, from its text when it is unchanged
    /// (no tree is built), with [`crate::json`]'s exact-number handling.
    pub fn read_as<U: serde::de::DeserializeOwned>(&self) -> Result<U, serde_json::Error>
    where
        T: Serialize,
    {
        match &self.raw {
            Some(raw) => crate::json::from_slice(raw.get().as_bytes()),
            None => crate::json::from_value(&serde_json::to_value(self.value())?),
        }
    }
}

impl<T> From<T> for Part<T> {
    fn from(value: T) -> Self {
        Part {
            raw: None,
            parsed: OnceLock::from(value),
        }
    }
}

impl<T: Default> Default for Part<T> {
    fn default() -> Self {
        Part::from(T::default())
    }
}

impl<T: for<'de> Deserialize<'de> + Default> Deref for Part<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value()
    }
}

impl<T: for<'de> Deserialize<'de> + Default> DerefMut for Part<T> {
    /// Parses the part if it was not yet; from now on it is written from the tree.
    fn deref_mut(&mut self) -> &mut T {
        self.value();
        self.raw = None;
        match self.parsed.get_mut() {
            Some(value) => value,
            // `value()` has just filled it.
            None => unreachable!("a part is parsed before it is changed"),
        }
    }
}

impl<T: Clone> Clone for Part<T> {
    fn clone(&self) -> Self {
        Part {
            raw: self.raw.clone(),
            parsed: self.parsed.clone(),
        }
    }
}

impl<T: for<'de> Deserialize<'de> + Default + PartialEq> PartialEq for Part<T> {
    /// Equal values are equal parts, however they were spelled.
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl<T: fmt::Debug> fmt::Debug for Part<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.parsed.get(), &self.raw) {
            (Some(value), _) => value.fmt(f),
            (None, Some(raw)) => write!(f, "{}", raw.get()),
            (None, None) => f.write_str("?"),
        }
    }
}

impl<T: Serialize> Serialize for Part<T> {
    /// The text as received while the part is unchanged; the tree otherwise.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (&self.raw, self.parsed.get()) {
            (Some(raw), _) => raw.serialize(serializer),
            (None, Some(value)) => value.serialize(serializer),
            (None, None) => Err(serde::ser::Error::custom("a part with no value")),
        }
    }
}

impl<'de, T> Deserialize<'de> for Part<T> {
    /// Keeps the text of a JSON object; anything else is an error (a message's struct
    /// reads other values into its `extra` instead).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match classify(Box::<RawValue>::deserialize(deserializer)?).map_err(D::Error::custom)? {
            Ok(part) => Ok(part),
            Err(value) => Err(D::Error::custom(format!(
                "expected a JSON object, found {}",
                crate::json::kind(&value)
            ))),
        }
    }
}

/// A value that should be an object: a [`Part`] holding its text when it is one, the
/// value itself otherwise (`null`, a misfit), for the caller to keep as it was.
pub(crate) fn classify<T>(
    raw: Box<RawValue>,
) -> Result<Result<Part<T>, serde_json::Value>, serde_json::Error> {
    if raw.get().trim_start().starts_with('{') {
        Ok(Ok(Part::from_raw(raw)))
    } else {
        serde_json::from_str(raw.get()).map(Err)
    }
}
