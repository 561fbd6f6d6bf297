//! URL and form encoding, for partner APIs that take query strings or
//! `application/x-www-form-urlencoded` bodies rather than JSON.
//!
//! ```
//! use segfn_sdk::uri;
//! let body = uri::form_encode([("api_key", "k 1"), ("event", r#"{"a":1}"#)]);
//! assert_eq!(body, "api_key=k+1&event=%7B%22a%22%3A1%7D");
//! assert_eq!(uri::form_decode(&body)[1], ("event".to_string(), r#"{"a":1}"#.to_string()));
//! assert_eq!(uri::encode_component("a b/ü"), "a%20b%2F%C3%BC");
//! ```

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What JavaScript's `encodeURIComponent` leaves as it is: letters, digits and
/// `- _ . ! ~ * ' ( )`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Percent-encodes `text` as JavaScript's `encodeURIComponent` does (UTF-8, spaces as
/// `%20`), for a path segment or a query value.
pub fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// An `application/x-www-form-urlencoded` body (or query string) from name/value pairs,
/// in order, as browsers and `URLSearchParams` write it (spaces as `+`).
pub fn form_encode<K: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        out.append_pair(name.as_ref(), value.as_ref());
    }
    out.finish()
}

/// The name/value pairs of a form body or query string, decoded, in order.
pub fn form_decode(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.trim_start_matches('?').as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_unicode_and_reserved_characters() {
        let pairs = [("a&b", "c=d e+f"), ("ü", "100%")];
        let body = form_encode(pairs);
        assert_eq!(body, "a%26b=c%3Dd+e%2Bf&%C3%BC=100%25");
        let decoded = form_decode(&body);
        assert_eq!(decoded[0], ("a&b".into(), "c=d e+f".into()));
        assert_eq!(decoded[1], ("ü".into(), "100%".into()));
    }

    #[test]
    fn components_keep_what_encode_uri_component_keeps() {
        assert_eq!(encode_component("-_.!~*'()"), "-_.!~*'()");
        assert_eq!(encode_component("?x=1&y"), "%3Fx%3D1%26y");
    }
}
