//! Webhook requests in the shape Segment's own harness writes its examples in:
//! `{"payload": {"body", "headers", "url"?, "queryParameters"?}, "settings"?}`. `body` is
//! the request's text, or JSON already parsed; without `url`, the URL is Segment's
//! webhook host with `queryParameters` (a query string, or names to a value or a list of
//! values) as its query, as the harness's `createURL` writes it. `segfn run --request`
//! reads these files, and so can a port's native tests.

use super::WebhookRequest;
use crate::error::Error;
use serde_json::{Map, Value};

/// The host Segment's harness puts before a request's query.
const DEFAULT_URL: &str = "https://fn.segmentapis.com/";

/// A request file: the request, and the settings that came with it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct HarnessFile {
    /// The request.
    pub request: WebhookRequest,
    /// The file's `settings`, when it has them.
    pub settings: Option<Value>,
}

/// Reads a request file; a file of another shape is a bad request naming the part.
///
/// ```
/// let file = segfn_sdk::source::read_harness(
///     br#"{"payload": {"body": {"a": 1}, "queryParameters": {"k": ["1", "2"]}}}"#,
/// ).unwrap();
/// assert_eq!(file.request.url(), "https://fn.segmentapis.com/?k=1&k=2");
/// ```
pub fn read_harness(bytes: &[u8]) -> Result<HarnessFile, Error> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Other(format!("the request file is not JSON: {e}")))?;
    let shape = |what: &str| {
        Error::Other(format!(
            "{what}: a request file is {{\"payload\": {{\"body\": ..., \"headers\": {{...}}, \"url\": \"...\"}}, \"settings\": {{...}}}} (url and settings optional)"
        ))
    };
    let Value::Object(mut file) = value else {
        return Err(shape("not an object"));
    };
    let Some(Value::Object(mut payload)) = file.remove("payload") else {
        return Err(shape("no \"payload\" object"));
    };
    let body = match payload.remove("body") {
        Some(body @ (Value::String(_) | Value::Object(_) | Value::Array(_) | Value::Null)) => body,
        Some(_) => {
            return Err(shape(
                "\"payload.body\" must be a string (the raw body) or JSON",
            ));
        }
        None => return Err(shape("no \"payload.body\"")),
    };
    let headers = match payload.remove("headers") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(headers @ Value::Object(_)) => headers,
        Some(_) => {
            return Err(shape(
                "\"payload.headers\" must be an object of names to values",
            ));
        }
    };
    let url = match (payload.remove("url"), payload.remove("queryParameters")) {
        (Some(Value::String(url)), _) if !url.is_empty() => url,
        (_, query) => url_with_query(query.as_ref()).map_err(|e| shape(&e))?,
    };
    let settings = match file.remove("settings") {
        None | Some(Value::Null) => None,
        Some(settings @ Value::Object(_)) => Some(settings),
        Some(_) => return Err(shape("\"settings\" must be an object")),
    };
    let request = WebhookRequest::from_value(serde_json::json!({
        "body": body, "headers": headers, "url": url,
    }))?;
    Ok(HarnessFile { request, settings })
}

/// [`DEFAULT_URL`] with `query` as its query string, as `URLSearchParams` writes it
/// (form encoding, each value of a list as its own pair).
fn url_with_query(query: Option<&Value>) -> Result<String, String> {
    let mut url = DEFAULT_URL.to_owned();
    match query {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => {
            if !text.starts_with('?') {
                url.push('?');
            }
            url.push_str(text);
        }
        Some(Value::Object(names)) => {
            let mut pairs = Vec::new();
            for (name, value) in names {
                match value {
                    Value::Array(values) => {
                        pairs.extend(values.iter().map(|v| (name.as_str(), js_string(v))));
                    }
                    v => pairs.push((name.as_str(), js_string(v))),
                }
            }
            url.push('?');
            url.push_str(&crate::encoding::form(pairs));
        }
        Some(_) => return Err("\"payload.queryParameters\" must be a string or an object".into()),
    }
    Ok(url)
}

/// A JSON value as JavaScript's `String(value)` writes it, for the few kinds a query
/// parameter holds.
fn js_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(js_string).collect::<Vec<_>>().join(","),
        Value::Object(_) => "[object Object]".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<HarnessFile, Error> {
        read_harness(value.to_string().as_bytes())
    }

    #[test]
    fn the_harness_shape_reads_with_its_defaults() {
        let r = read(json!({"payload": {"body": {"a": 1}, "headers": {"X-A": "b"}}})).unwrap();
        assert_eq!(
            r.request.to_value(),
            json!({"body": {"a": 1}, "headers": {"X-A": "b"}, "url": DEFAULT_URL})
        );
        assert_eq!(r.settings, None);
        let r = read(
            json!({"payload": {"body": "raw", "url": "https://h/x?y=1"}, "settings": {"k": 1}}),
        )
        .unwrap();
        assert_eq!(r.request.url(), "https://h/x?y=1");
        assert!(r.request.headers().is_empty());
        assert_eq!(r.settings, Some(json!({"k": 1})));
    }

    #[test]
    fn query_parameters_are_written_as_the_harness_writes_them() {
        let r = read(json!({"payload": {"body": "", "queryParameters": {"a b": "c&d", "l": ["1", 2], "n": null}}}))
            .unwrap();
        assert_eq!(
            r.request.url(),
            "https://fn.segmentapis.com/?a+b=c%26d&l=1&l=2&n=null"
        );
        let r = read(json!({"payload": {"body": "", "queryParameters": "x=1"}})).unwrap();
        assert_eq!(r.request.url(), "https://fn.segmentapis.com/?x=1");
    }

    #[test]
    fn other_shapes_are_refused_naming_the_part() {
        for (value, part) in [
            (json!([]), "not an object"),
            (json!({"body": {}}), "no \"payload\" object"),
            (json!({"payload": {"headers": {}}}), "no \"payload.body\""),
            (json!({"payload": {"body": 1}}), "must be a string"),
            (
                json!({"payload": {"body": "", "headers": []}}),
                "payload.headers",
            ),
            (
                json!({"payload": {"body": ""}, "settings": 1}),
                "\"settings\" must be an object",
            ),
        ] {
            let problem = read(value).unwrap_err().to_string();
            assert!(problem.contains(part), "{problem}");
        }
        assert!(
            read_harness(b"{")
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
    }
}
