//! How a spec view reads an event's properties: each property the spec names takes its
//! value when the value has the spec's type, and everything else stays in the view's
//! `extra`, as received. Also the event-name matching every spec shares.

use serde_json::Value;
use std::fmt;

/// A type a named property can have, read from a borrowed JSON value.
pub(crate) trait Fit: Sized {
    /// What the spec says the value is, for [`Misfit`]'s message.
    const EXPECTED: &'static str;
    /// The same for a list of these.
    const EXPECTED_LIST: &'static str;
    /// The typed value, or `None` when the value does not have this type.
    fn fit(value: &Value) -> Option<Self>;
}

impl Fit for String {
    const EXPECTED: &'static str = "text";
    const EXPECTED_LIST: &'static str = "a list of text";
    fn fit(value: &Value) -> Option<String> {
        value.as_str().map(str::to_owned)
    }
}

impl Fit for bool {
    const EXPECTED: &'static str = "a boolean";
    const EXPECTED_LIST: &'static str = "a list of booleans";
    fn fit(value: &Value) -> Option<bool> {
        value.as_bool()
    }
}

/// Any JSON number that is a finite `f64`: the nearest one, as serde_json reads it
/// (`1e400` does not fit; the exact text stays in the event's properties either way).
impl Fit for f64 {
    const EXPECTED: &'static str = "a number";
    const EXPECTED_LIST: &'static str = "a list of numbers";
    fn fit(value: &Value) -> Option<f64> {
        value.as_number()?.as_f64()
    }
}

/// Where a named property's value goes: an `Option` of a [`Fit`] type, or a list of them.
pub(crate) trait Slot {
    /// What the spec says the value is.
    const EXPECTED: &'static str;
    /// Reads `value` into the slot; `false` when it, or part of it, did not fit, and so
    /// must also be kept in `extra`.
    fn fill(&mut self, value: &Value) -> bool;
}

impl<T: Fit> Slot for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn fill(&mut self, value: &Value) -> bool {
        *self = T::fit(value);
        self.is_some()
    }
}

/// A list keeps the elements that fit, in order; when one does not, the list as received
/// is kept in `extra` too, so that nothing is lost and the misfit is visible.
impl<T: Fit> Slot for Vec<T> {
    const EXPECTED: &'static str = T::EXPECTED_LIST;
    fn fill(&mut self, value: &Value) -> bool {
        self.clear();
        let Some(items) = value.as_array() else {
            return false;
        };
        let before = items.len();
        self.extend(items.iter().filter_map(T::fit));
        self.len() == before
    }
}

/// A property the spec names whose value was not of the spec's type. The view's field is
/// empty, and the value is in its `extra` as received; a `null` is not a misfit (it reads
/// as absent, as elsewhere in the SDK).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Misfit<'a> {
    /// The property's name, e.g. `revenue`.
    pub property: &'a str,
    /// The value as received.
    pub value: &'a Value,
    /// What the spec says it is: `"text"`, `"a number"`, `"a list of objects"`, ...
    pub expected: &'static str,
}

/// `revenue has an invalid type: "22.50" where the spec has a number`.
impl fmt::Display for Misfit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} has an invalid type: {} where the spec has {}",
            self.property, self.value, self.expected
        )
    }
}

/// Whether an event's name is this spec name, as Segment's own integrations compare them
/// (the `analytics-events` package analytics.js uses): ASCII case, spaces and underscores
/// do not matter, so `order_completed` and `ORDER COMPLETED` are "Order Completed".
pub(crate) fn same_name(event: &str, name: &str) -> bool {
    fn letters(s: &str) -> impl Iterator<Item = char> + '_ {
        s.chars()
            .filter(|c| *c != ' ' && *c != '_')
            .map(|c| c.to_ascii_lowercase())
    }
    letters(event).eq(letters(name))
}

/// Declares a view: a struct with one public field per property the spec names (an
/// `Option`, or a `Vec` for lists) and `extra`, read by [`Slot`]s. A view can also take
/// the properties of a nested view as its own (`+ product: Product`), for single-product
/// events whose properties are a product's.
macro_rules! view {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $wire:literal, )*
        }
        $( + $(#[$pmeta:meta])* $flat:ident : $flat_ty:ty )?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            $( $(#[$pmeta])* pub $flat: $flat_ty, )?
            /// Properties the spec does not name here, and named ones that were `null` or
            /// did not fit their field ([`misfits`](Self::misfits)), as received and in
            /// their order.
            pub extra: $crate::event::Object,
        }

        impl $name {
            /// Reads the view from an event's properties. It never fails: a value that
            /// does not have the spec's type leaves its field empty and stays in
            /// [`extra`](Self::extra).
            pub fn from_properties(properties: &$crate::event::Object) -> Self {
                let mut view = Self::default();
                for (key, value) in properties {
                    if !view.take(key, value) {
                        view.extra.insert(key.clone(), value.clone());
                    }
                }
                view
            }

            /// The properties the spec names here whose value did not fit (a `null`
            /// aside), in the order received.
            pub fn misfits(&self) -> impl Iterator<Item = $crate::spec::Misfit<'_>> {
                self.extra.iter().filter(|(_, value)| !value.is_null()).filter_map(
                    |(property, value)| {
                        Some($crate::spec::Misfit {
                            property,
                            value,
                            expected: Self::expected(property)?,
                        })
                    },
                )
            }

            /// The misfit of one property the spec names, if its value did not fit.
            pub fn misfit(&self, property: &str) -> Option<$crate::spec::Misfit<'_>> {
                let (property, value) = self.extra.get_key_value(property)?;
                Some($crate::spec::Misfit {
                    property,
                    value,
                    expected: Self::expected(property).filter(|_| !value.is_null())?,
                })
            }

            /// What the spec says a property named here is, or `None` when it does not
            /// name it.
            pub(crate) fn expected(property: &str) -> Option<&'static str> {
                match property {
                    $( $wire => Some(<$ty as $crate::spec::read::Slot>::EXPECTED), )*
                    _ => Self::expected_nested(property),
                }
            }

            /// Reads one property into its field; `false` when it belongs in `extra`.
            pub(crate) fn take(&mut self, key: &str, value: &serde_json::Value) -> bool {
                match key {
                    $( $wire => $crate::spec::read::Slot::fill(&mut self.$field, value), )*
                    _ => self.take_nested(key, value),
                }
            }
        }

        $crate::spec::read::view!(@nested $name $(, $flat: $flat_ty)?);

        impl $crate::spec::read::Fit for $name {
            const EXPECTED: &'static str = "an object";
            const EXPECTED_LIST: &'static str = "a list of objects";
            fn fit(value: &serde_json::Value) -> Option<Self> {
                value.as_object().map(Self::from_properties)
            }
        }

        /// Reads as [`from_properties`](Self::from_properties) does, so
        /// `track.properties_as::<T>()` gives the same view; fails only on a value that
        /// is not an object.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let properties =
                    <$crate::event::Object as serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::from_properties(&properties))
            }
        }
    };

    (@nested $name:ident) => {
        impl $name {
            fn expected_nested(_: &str) -> Option<&'static str> {
                None
            }
            fn take_nested(&mut self, _: &str, _: &serde_json::Value) -> bool {
                false
            }
        }
    };

    (@nested $name:ident, $flat:ident : $flat_ty:ty) => {
        // The nested view's misfits land in this view's `extra`: its own stays empty.
        impl $name {
            fn expected_nested(property: &str) -> Option<&'static str> {
                <$flat_ty>::expected(property)
            }
            fn take_nested(&mut self, key: &str, value: &serde_json::Value) -> bool {
                self.$flat.take(key, value)
            }
        }
    };
}
pub(crate) use view;

/// Declares a spec's enum: one variant per event, each holding its view, with the names
/// that select it (the spec's name first, then its aliases).
macro_rules! events {
    (
        $(#[$meta:meta])*
        $enum:ident {
            $( $(#[$vmeta:meta])* $variant:ident($view:ty) = $name:literal $(| $alias:literal)*, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum $enum {
            $( $(#[$vmeta])* $variant($view), )*
        }

        impl $enum {
            /// Every event of the spec: its name, then the other names that select it.
            pub const NAMES: &'static [&'static [&'static str]] = &[ $( &[$name $(, $alias)*], )* ];

            /// The view of an event of this spec, chosen by its name (see
            /// [`spec_name`](Self::spec_name)); `None` for any other event.
            pub fn from_event(event: &str, properties: &$crate::event::Object) -> Option<Self> {
                $(
                    if [$name $(, $alias)*].iter().any(|n| $crate::spec::read::same_name(event, n)) {
                        return Some($enum::$variant(<$view>::from_properties(properties)));
                    }
                )*
                None
            }

            /// The spec's name for an event name: itself, or the event an alias or a
            /// differently written name (`order_completed`) stands for.
            pub fn spec_name(event: &str) -> Option<&'static str> {
                Self::NAMES
                    .iter()
                    .find(|names| names.iter().any(|n| $crate::spec::read::same_name(event, n)))
                    .map(|names| names[0])
            }

            /// The spec's name of this event (the event's own name, which may be an
            /// alias, is `track.event()`).
            pub fn name(&self) -> &'static str {
                match self {
                    $( $enum::$variant(_) => $name, )*
                }
            }

            /// The view's [`extra`](Self::extra): properties it does not name or that did
            /// not fit.
            pub fn extra(&self) -> &$crate::event::Object {
                match self {
                    $( $enum::$variant(view) => &view.extra, )*
                }
            }

            /// The view's misfits (see [`Misfit`]($crate::spec::Misfit)).
            pub fn misfits(&self) -> Vec<$crate::spec::Misfit<'_>> {
                match self {
                    $( $enum::$variant(view) => view.misfits().collect(), )*
                }
            }
        }

        impl $crate::spec::Spec for $enum {
            fn from_event(event: &str, properties: &$crate::event::Object) -> Option<Self> {
                $enum::from_event(event, properties)
            }
        }
    };
}
pub(crate) use events;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_compare_as_segments_integrations_do() {
        assert!(same_name("Order Completed", "Order Completed"));
        assert!(same_name("order_completed", "Order Completed"));
        assert!(same_name("ORDER COMPLETED", "Order Completed"));
        assert!(same_name("OrderCompleted", "Order Completed"));
        assert!(!same_name("Order Completed!", "Order Completed"));
        assert!(!same_name("Order", "Order Completed"));
        assert!(!same_name("Order Completed", "Order"));
    }

    #[test]
    fn scalars_fit_only_their_own_type() {
        assert_eq!(String::fit(&json!("x")), Some("x".to_owned()));
        assert_eq!(String::fit(&json!(5)), None);
        assert_eq!(f64::fit(&json!(18.99)), Some(18.99));
        assert_eq!(f64::fit(&json!("18.99")), None);
        assert_eq!(bool::fit(&json!(false)), Some(false));
        assert_eq!(bool::fit(&json!(0)), None);
        let huge: Value = serde_json::from_str("1e400").unwrap();
        assert_eq!(f64::fit(&huge), None);
        let exact: Value = serde_json::from_str("25.00").unwrap();
        assert_eq!(f64::fit(&exact), Some(25.0));
    }

    #[test]
    fn slots_report_what_must_stay_in_extra() {
        let mut text: Option<String> = None;
        assert!(text.fill(&json!("a")));
        assert_eq!(text.as_deref(), Some("a"));
        assert!(!text.fill(&json!(null)));
        assert_eq!(text, None);

        let mut list: Vec<String> = Vec::new();
        assert!(list.fill(&json!(["a", "b"])));
        assert_eq!(list, ["a", "b"]);
        // Part of it fits: the fitting elements are kept, and the whole goes to `extra`.
        assert!(!list.fill(&json!(["a", 2, "c"])));
        assert_eq!(list, ["a", "c"]);
        assert!(!list.fill(&json!("a")));
        assert!(list.is_empty());
    }
}
