//! Keeps secrets (secret settings, credentials in headers) out of logs, traces, reports
//! and error messages.

use serde_json::Value;
use std::borrow::Cow;

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Headers whose values are always credentials.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
];

/// Setting names that mark a setting as secret even when not declared so.
const SECRET_NAME_HINTS: &[&str] = &[
    "key",
    "secret",
    "token",
    "password",
    "passwd",
    "credential",
    "auth",
];

/// Secrets shorter than this are not redacted as substrings: replacing every "ab" in a
/// report would destroy it, and such values are not credentials.
const MIN_SECRET_LEN: usize = 4;

/// Replaces every occurrence of known secret values.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Collects the secrets of a settings object: the string values (nested included)
    /// of every setting named in `declared`, or whose name looks like a credential.
    pub fn from_settings(settings: &Value, declared: &[String]) -> Redactor {
        let mut redactor = Redactor::default();
        if let Value::Object(map) = settings {
            for (name, value) in map {
                if is_secret_name(name, declared) {
                    redactor.add_value(value);
                }
            }
        }
        redactor
    }

    /// Adds one secret, with the encodings it commonly travels in (Basic auth).
    pub fn add(&mut self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        self.secrets.push(secret.to_owned());
        // The forms a secret travels in: Basic auth, base64, a query string, a JSON string.
        let json = serde_json::to_string(secret).unwrap_or_default();
        for encoded in [
            segfn_sdk::base64_encode(format!("{secret}:").as_bytes()),
            segfn_sdk::base64_encode(secret.as_bytes()),
            percent_encode(secret),
            json[1..json.len().saturating_sub(1).max(1)].to_owned(),
        ] {
            if !self.secrets.contains(&encoded) {
                self.secrets.push(encoded);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    fn add_value(&mut self, value: &Value) {
        match value {
            Value::String(s) => self.add(s),
            Value::Array(items) => items.iter().for_each(|v| self.add_value(v)),
            Value::Object(map) => map.values().for_each(|v| self.add_value(v)),
            _ => {}
        }
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }

    /// A header value as it may be shown: credentials entirely hidden, other values
    /// with secrets replaced.
    pub fn header(&self, name: &str, value: &str) -> String {
        if CREDENTIAL_HEADERS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        {
            REDACTED.to_owned()
        } else {
            self.redact(value).into_owned()
        }
    }

    /// Redacts every string in a JSON value, keys included.
    pub fn redact_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (k, mut v) in entries {
                    self.redact_json(&mut v);
                    map.insert(self.redact(&k).into_owned(), v);
                }
            }
            _ => {}
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether a setting name marks a secret: declared, or named like a credential.
pub fn is_secret_name(name: &str, declared: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    declared.iter().any(|d| d == name) || SECRET_NAME_HINTS.iter().any(|h| lower.contains(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_declared_and_credential_like_settings() {
        let settings = json!({"apiKey": "sk_live_123", "region": "eu-west", "sharedPassphrase": "open sesame", "endpoint": "https://x"});
        let r = Redactor::from_settings(&settings, &["sharedPassphrase".to_string()]);
        assert_eq!(
            r.redact("key=sk_live_123 at https://x in eu-west"),
            "key=[redacted] at https://x in eu-west"
        );
        assert_eq!(r.redact("say open sesame"), "say [redacted]");
        let basic = segfn_sdk::base64_encode(b"sk_live_123:");
        assert_eq!(r.redact(&format!("Basic {basic}")), "Basic [redacted]");
    }

    #[test]
    fn encoded_forms_are_redacted_too() {
        let r = Redactor::from_settings(&json!({"apiKey": "a+b/c=\"d"}), &[]);
        assert_eq!(r.redact("?key=a%2Bb%2Fc%3D%22d"), "?key=[redacted]");
        assert_eq!(r.redact(r#"{"k":"a+b/c=\"d"}"#), r#"{"k":"[redacted]"}"#);
    }

    #[test]
    fn credential_headers_are_hidden_whole() {
        let r = Redactor::default();
        assert_eq!(r.header("Authorization", "Bearer abc"), REDACTED);
        assert_eq!(
            r.header("content-type", "application/json"),
            "application/json"
        );
    }

    #[test]
    fn short_values_are_not_substring_redacted() {
        let r = Redactor::from_settings(&json!({"apiKey": "ab"}), &[]);
        assert_eq!(r.redact("about abc"), "about abc");
    }

    #[test]
    fn json_is_redacted_deeply() {
        let r = Redactor::from_settings(&json!({"token": "t0k3n-value"}), &[]);
        let mut v = json!({"a": ["x t0k3n-value"], "t0k3n-value": 1});
        r.redact_json(&mut v);
        assert_eq!(v, json!({"a": ["x [redacted]"], "[redacted]": 1}));
    }
}
