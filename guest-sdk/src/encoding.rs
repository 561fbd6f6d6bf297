//! Encodings partner APIs ask for, with the names JavaScript functions know them by:
//! base64 (`btoa`, `atob`), `encodeURIComponent`, and form bodies and query strings
//! (`URLSearchParams`).

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Standard base64 with padding (RFC 4648), as `btoa` and Basic auth use.
///
/// ```
/// assert_eq!(segfn_sdk::encoding::base64(b"key:"), "a2V5Og==");
/// ```
pub fn base64(input: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// Decodes standard base64 (with or without padding), as `atob` does.
///
/// ```
/// assert_eq!(segfn_sdk::encoding::base64_decode("a2V5Og").unwrap(), b"key:");
/// assert!(segfn_sdk::encoding::base64_decode("not base64!").is_err());
/// ```
pub fn base64_decode(input: &str) -> Result<Vec<u8>, crate::Error> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(input.trim())
        .map_err(|e| crate::Error::Other(format!("not base64: {e}")))
}

/// What `encodeURIComponent` leaves as it is: letters, digits and `-_.!~*'()`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// JavaScript's `encodeURIComponent`: for a value put into a URL's path or query.
///
/// ```
/// use segfn_sdk::encoding::uri_component;
/// assert_eq!(uri_component("a b&c/d"), "a%20b%26c%2Fd");
/// assert_eq!(uri_component("jöhn(1)"), "j%C3%B6hn(1)");
/// ```
pub fn uri_component(input: &str) -> String {
    utf8_percent_encode(input, URI_COMPONENT).to_string()
}

/// An `application/x-www-form-urlencoded` string of `pairs`, as `URLSearchParams`
/// writes it: for query strings and form bodies.
///
/// ```
/// use segfn_sdk::encoding::form;
/// assert_eq!(form([("v", "1"), ("dp", "/a b")]), "v=1&dp=%2Fa+b");
/// ```
pub fn form<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The name/value pairs of a form body or query string (a leading `?` allowed), decoded,
/// in order.
///
/// ```
/// use segfn_sdk::encoding::form_decode;
/// assert_eq!(form_decode("?v=1&dp=%2Fa+b"), [("v".into(), "1".into()), ("dp".into(), "/a b".into())]);
/// ```
pub fn form_decode(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.trim_start_matches('?').as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn forms_round_trip_unicode_and_reserved_characters() {
        let pairs = [("a&b", "c=d e+f"), ("ü", "100%")];
        let body = form(pairs);
        assert_eq!(body, "a%26b=c%3Dd+e%2Bf&%C3%BC=100%25");
        let decoded = form_decode(&body);
        assert_eq!(decoded[0], ("a&b".into(), "c=d e+f".into()));
        assert_eq!(decoded[1], ("ü".into(), "100%".into()));
    }

    #[test]
    fn uri_component_escapes_what_javascript_escapes() {
        // Every ASCII character against encodeURIComponent's rule (ECMA-262 §19.2.6.5).
        for byte in 0u8..128 {
            let c = char::from(byte);
            let kept = c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c);
            let expected = if kept {
                c.to_string()
            } else {
                format!("%{byte:02X}")
            };
            assert_eq!(uri_component(&c.to_string()), expected, "{c:?}");
        }
    }
}
