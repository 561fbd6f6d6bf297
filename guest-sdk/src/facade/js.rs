//! JavaScript's reading of JSON values, which the ported integrations' output depends on:
//! truthiness, `String(v)`, how numbers print, `parseFloat`, `String.prototype.trim`
//! and the `is-email` test.

use serde_json::{Number, Value};

/// JavaScript truthiness: `null`, `false`, `0`, `-0` and `""` are false; everything else,
/// empty arrays and objects included, is true.
///
/// Ported code writes `if (x)` and `a || b` as `truthy(&x)` and `.filter(truthy)`.
///
/// ```
/// use segfn_sdk::facade::truthy;
/// use serde_json::json;
/// assert!(!truthy(&json!(0)) && !truthy(&json!(-0.0)) && !truthy(&json!("")) && !truthy(&json!(null)));
/// assert!(truthy(&json!("0")) && truthy(&json!([])) && truthy(&json!({})));
/// ```
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => {
            let n = to_f64(n);
            n != 0.0 && !n.is_nan()
        }
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The double JavaScript reads a JSON number as. With the SDK's exact numbers,
/// `Number::as_f64` refuses numbers too large for a double; JavaScript reads them as
/// `Infinity`.
pub(crate) fn to_f64(n: &Number) -> f64 {
    n.as_f64()
        .unwrap_or_else(|| n.to_string().parse().unwrap_or(f64::NAN))
}

/// JavaScript's `String(value)`: strings as they are, numbers as JavaScript prints them
/// ([`js_number_text`]), arrays joined with `,` (a `null` inside as nothing), objects as
/// `[object Object]`.
///
/// Partner APIs receive it wherever the JavaScript put a value into a URL, a form or a
/// string template.
///
/// ```
/// use segfn_sdk::facade::js_string;
/// use serde_json::json;
/// assert_eq!(js_string(&json!(299900.0)), "299900");
/// assert_eq!(js_string(&json!([1, null, "a", [2, 3]])), "1,,a,2,3");
/// assert_eq!(js_string(&json!({"a": 1})), "[object Object]");
/// assert_eq!(js_string(&json!(null)), "null");
/// ```
pub fn js_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => js_number_text(to_f64(n)),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        // `Array.prototype.join` writes `null` and `undefined` elements as nothing.
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => String::new(),
                item => js_string(item),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".into(),
    }
}

/// A number as JavaScript prints it (`Number.prototype.toString`, ECMA-262 §6.1.6.1.20):
/// the shortest digits that read back as the same double, without a fraction when it is
/// whole (`299900`, not `299900.0`), in exponent form from `1e+21` up and below `1e-6`,
/// `-0` as `0`.
///
/// ```
/// use segfn_sdk::facade::js_number_text;
/// assert_eq!(js_number_text(299900.0), "299900");
/// assert_eq!(js_number_text(0.1 + 0.2), "0.30000000000000004");
/// assert_eq!(js_number_text(1e21), "1e+21");
/// assert_eq!(js_number_text(1.5e-7), "1.5e-7");
/// assert_eq!(js_number_text(-0.0), "0");
/// assert_eq!(js_number_text(18446744073709551617.0), "18446744073709552000");
/// ```
pub fn js_number_text(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n == 0.0 {
        return "0".into();
    }
    if n < 0.0 {
        return format!("-{}", js_number_text(-n));
    }
    if n.is_infinite() {
        return "Infinity".into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits JavaScript chooses, as
    // `d.ddde<x>`; the value is 0.dddd × 10^point.
    let scientific = format!("{n:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let point = exponent.parse::<i32>().unwrap_or(0) + 1;
    let count = digits.len() as i32;
    let zeros = |n: i32| "0".repeat(n.max(0) as usize);
    if count <= point && point <= 21 {
        format!("{digits}{}", zeros(point - count))
    } else if 0 < point && point <= 21 {
        let (whole, fraction) = digits.split_at(point as usize);
        format!("{whole}.{fraction}")
    } else if -6 < point && point <= 0 {
        format!("0.{}{digits}", zeros(-point))
    } else {
        let exponent = point - 1;
        let sign = if exponent < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        format!("{first}{dot}{rest}e{sign}{}", exponent.abs())
    }
}

/// A number as `JSON.stringify` writes it: as [`js_number_text`] (so `299900`, not
/// `299900.0`), and `null` for `NaN` and the infinities, which JSON cannot carry.
///
/// For numbers a port computes (`revenue * 100`) and sends as JSON: the body then reads
/// as the JavaScript's did, byte for byte.
///
/// ```
/// use segfn_sdk::facade::js_number;
/// assert_eq!(js_number(2999.0 * 100.0).to_string(), "299900");
/// assert_eq!(js_number(f64::NAN), serde_json::Value::Null);
/// ```
pub fn js_number(n: f64) -> Value {
    if !n.is_finite() {
        return Value::Null;
    }
    serde_json::from_str(&js_number_text(n)).unwrap_or(Value::Null)
}

/// JavaScript's `parseFloat`: the longest number at the start of `text` (after
/// whitespace), `Infinity` included; `None` where JavaScript gives `NaN`.
///
/// ```
/// use segfn_sdk::facade::parse_float;
/// assert_eq!(parse_float(" 9.99 USD"), Some(9.99));
/// assert_eq!(parse_float("1e3x"), Some(1000.0));
/// assert_eq!(parse_float(".5"), Some(0.5));
/// assert_eq!(parse_float("-Infinity"), Some(f64::NEG_INFINITY));
/// assert_eq!(parse_float("$9.99"), None);
/// ```
pub fn parse_float(text: &str) -> Option<f64> {
    let text = text.trim_start_matches(is_js_space);
    let b = text.as_bytes();
    let digits_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut end = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if text[end..].starts_with("Infinity") {
        let infinity = f64::INFINITY;
        return Some(if b[0] == b'-' { -infinity } else { infinity });
    }
    let whole_end = digits_from(end);
    let mut any_digit = whole_end > end;
    end = whole_end;
    if b.get(end) == Some(&b'.') {
        let fraction_end = digits_from(end + 1);
        any_digit |= fraction_end > end + 1;
        if any_digit {
            end = fraction_end;
        }
    }
    if !any_digit {
        return None;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut at = end + 1;
        if matches!(b.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent_end = digits_from(at);
        if exponent_end > at {
            end = exponent_end;
        }
    }
    text[..end].parse().ok()
}

/// What JavaScript's `trim` and `parseFloat` take for whitespace (ECMA-262 WhiteSpace and
/// LineTerminator): Unicode's spaces, less U+0085, plus the byte-order mark.
pub(crate) fn is_js_space(c: char) -> bool {
    (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}'
}

/// JavaScript's `String.prototype.trim`.
pub(crate) fn js_trim(text: &str) -> &str {
    text.trim_matches(is_js_space)
}

/// The `is-email` test facade applies to a `userId` (or a group's `groupId`):
/// `/.+\@.+\..+/` on `String(value)`, which is loose on purpose: something, `@`,
/// something, `.`, something, on one line.
///
/// ```
/// use segfn_sdk::facade::is_email;
/// use serde_json::json;
/// assert!(is_email(&json!("jane@example.com")));
/// assert!(is_email(&json!("Jane Doe <jane@example.com>")));
/// assert!(!is_email(&json!("jane@localhost")));
/// assert!(!is_email(&json!("@example.com")));
/// ```
pub fn is_email(value: &Value) -> bool {
    js_string(value)
        .split(['\n', '\r', '\u{2028}', '\u{2029}'])
        .any(|line| {
            // The earliest `@` that has something before it leaves the most room after it.
            let Some((at, _)) = line.char_indices().skip(1).find(|(_, c)| *c == '@') else {
                return false;
            };
            let after: Vec<char> = line[at + 1..].chars().collect();
            after.len() >= 3 && after[1..after.len() - 1].contains(&'.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthiness_is_javascripts() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(-0.0),
            json!(""),
        ] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for truthy_value in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!("0"),
            json!("false"),
            json!(" "),
            json!([]),
            json!({}),
        ] {
            assert!(truthy(&truthy_value), "{truthy_value}");
        }
        // Numbers too large for a double are Infinity to JavaScript: truthy.
        let huge: Value = serde_json::from_str("1e400").unwrap();
        assert!(truthy(&huge));
        let zero: Value = serde_json::from_str("0e10").unwrap();
        assert!(!truthy(&zero));
    }

    #[test]
    fn numbers_print_as_in_javascript() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (299_900.0, "299900"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123.456, "123.456"),
            (1e20, "100000000000000000000"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (-1e21, "-1e+21"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.000001, "0.000001"),
            (0.0000015, "0.0000015"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (5e-324, "5e-324"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
        ];
        for (n, text) in cases {
            assert_eq!(js_number_text(*n), *text, "{n:?}");
        }
    }

    #[test]
    fn js_string_reads_json_numbers_as_javascript_parses_them() {
        for (json, text) in [
            ("299900.0", "299900"),
            ("25.00", "25"),
            ("-0", "0"),
            ("1E3", "1000"),
            ("18446744073709551617", "18446744073709552000"),
            ("1e21", "1e+21"),
            ("1e400", "Infinity"),
            ("-1e400", "-Infinity"),
        ] {
            let value: Value = serde_json::from_str(json).unwrap();
            assert_eq!(js_string(&value), text, "{json}");
        }
        assert_eq!(js_string(&json!(true)), "true");
        assert_eq!(js_string(&json!([])), "");
        assert_eq!(js_string(&json!([[null], [1.5]])), ",1.5");
    }

    #[test]
    fn js_number_is_json_stringify() {
        assert_eq!(js_number(299_900.0).to_string(), "299900");
        assert_eq!(js_number(1e21).to_string(), "1e+21");
        assert_eq!(js_number(-0.0).to_string(), "0");
        assert_eq!(js_number(f64::INFINITY), Value::Null);
    }

    #[test]
    fn parse_float_takes_the_longest_leading_number() {
        let cases: &[(&str, Option<f64>)] = &[
            ("9.99", Some(9.99)),
            ("  \n\t\u{a0}\u{feff}42abc", Some(42.0)),
            ("+5", Some(5.0)),
            ("-5.", Some(-5.0)),
            (".5", Some(0.5)),
            ("-.5e1", Some(-5.0)),
            ("1e", Some(1.0)),
            ("1e+", Some(1.0)),
            ("1e-2", Some(0.01)),
            ("12.34.56", Some(12.34)),
            ("0x10", Some(0.0)),
            ("1,000", Some(1.0)),
            ("Infinityx", Some(f64::INFINITY)),
            ("", None),
            (".", None),
            ("-", None),
            ("+.e5", None),
            ("$9.99", None),
            ("inf", None),
            ("NaN", None),
            ("\u{85}1", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_float(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn trim_is_javascripts() {
        assert_eq!(js_trim("\u{feff} a b \u{2028}"), "a b");
        assert_eq!(js_trim("\u{85}a"), "\u{85}a");
    }

    #[test]
    fn is_email_is_the_loose_regular_expression() {
        for yes in [
            "a@b.c",
            "jane.doe+tag@mail.example.co.uk",
            "x y@z.w",
            "@@b.c",
            "a@b@c.d",
            "first line\na@b.c",
        ] {
            assert!(is_email(&json!(yes)), "{yes}");
        }
        for no in ["", "a@b", "a@.c", "a@b.", "@b.c", "a@b\n.c", "ab.c"] {
            assert!(!is_email(&json!(no)), "{no}");
        }
        // `String(value)` first, as `RegExp.prototype.test` does.
        assert!(!is_email(&json!(12345)));
        assert!(!is_email(&json!(null)));
        assert!(is_email(&json!(["a@b.c"])));
    }
}
