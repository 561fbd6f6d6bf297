//! The webhook a source function receives.

use crate::error::Error;
use serde_json::{Map, Value};

/// One webhook request as the host hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRequest {
    body: Body,
    headers: Vec<(String, String)>,
    url: String,
}

/// A request's body: its text, or JSON a test gave already parsed.
#[derive(Debug, Clone, PartialEq)]
enum Body {
    Text(String),
    Json(Value),
}

impl WebhookRequest {
    /// A request whose body is `text`, at Segment's webhook URL, without headers.
    pub fn from_text(text: impl Into<String>) -> WebhookRequest {
        WebhookRequest {
            body: Body::Text(text.into()),
            headers: Vec::new(),
            url: "https://fn.segmentapis.com/".into(),
        }
    }

    /// A request whose body is this JSON (as Segment's example files give it).
    pub fn from_json(body: Value) -> WebhookRequest {
        WebhookRequest {
            body: Body::Json(body),
            ..WebhookRequest::from_text("")
        }
    }

    /// This request with one more header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// This request at `url` (absolute, with its query).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Reads the ABI's `{"body", "headers", "url"}` ([`crate::abi::Call::Request`]).
    pub fn from_value(value: Value) -> Result<WebhookRequest, Error> {
        let Value::Object(mut fields) = value else {
            return Err(Error::Other("the request is not an object".into()));
        };
        let body = match fields.remove("body") {
            Some(Value::String(text)) => Body::Text(text),
            Some(json) => Body::Json(json),
            None => Body::Text(String::new()),
        };
        let headers = match fields.remove("headers") {
            Some(Value::Object(headers)) => headers
                .into_iter()
                .map(|(name, value)| (name, header_text(&value)))
                .collect(),
            _ => Vec::new(),
        };
        let url = match fields.remove("url") {
            Some(Value::String(url)) => url,
            _ => String::new(),
        };
        Ok(WebhookRequest { body, headers, url })
    }

    /// The ABI's `{"body", "headers", "url"}` for this request.
    pub fn to_value(&self) -> Value {
        let body = match &self.body {
            Body::Text(text) => Value::String(text.clone()),
            Body::Json(json) => json.clone(),
        };
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect();
        serde_json::json!({"body": body, "headers": headers, "url": self.url})
    }

    /// The body as text (`request.text()`; JSON given parsed is written back).
    pub fn body_text(&self) -> String {
        match &self.body {
            Body::Text(text) => text.clone(),
            Body::Json(json) => json.to_string(),
        }
    }

    /// The body read as JSON into `T` (`request.json()`); a body that is not JSON, or
    /// not a `T`, is a bad request naming what was found.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        let parsed = match &self.body {
            Body::Json(json) => crate::json::from_value(json),
            Body::Text(text) => crate::json::from_slice(text.as_bytes()),
        };
        parsed.map_err(|e| Error::Other(format!("the request body is not the JSON expected: {e}")))
    }

    /// The body as form fields (`application/x-www-form-urlencoded`), decoded, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        crate::encoding::form_decode(&self.body_text())
    }

    /// A header's value, the name in any case (`request.headers.get(name)`); several
    /// values are joined with `, `.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers, as received.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The absolute URL, with its query (`request.url`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The query's first value for `name`, decoded (`request.url.searchParams.get`).
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The query's pairs, decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let without_fragment = self.url.split('#').next().unwrap_or("");
        match without_fragment.split_once('?') {
            Some((_, query)) => crate::encoding::form_decode(query),
            None => Vec::new(),
        }
    }
}

/// A header value as the ABI carries it: a string, or what JavaScript's `String(value)`
/// makes of another value (a list joined with commas).
fn header_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(header_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_reads_its_body_headers_and_query() {
        let request = WebhookRequest::from_value(json!({
            "body": "a=1&b=x+y",
            "headers": {"X-Hook": "h", "X-List": ["1", "2"]},
            "url": "https://fn.segmentapis.com/?k=v%20w&k=2#frag",
        }))
        .unwrap();
        assert_eq!(
            request.form(),
            [("a".into(), "1".into()), ("b".into(), "x y".into())]
        );
        assert_eq!(request.header("x-hook"), Some("h"));
        assert_eq!(request.header("X-LIST"), Some("1,2"));
        assert_eq!(request.query("k").as_deref(), Some("v w"));
        assert!(request.json::<Value>().is_err());
        let parsed = WebhookRequest::from_value(json!({"body": {"n": 1}})).unwrap();
        assert_eq!(parsed.json::<Value>().unwrap(), json!({"n": 1}));
        assert_eq!(parsed.body_text(), r#"{"n":1}"#);
    }
}
