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

/// Most secret values one settings object may hold. Settings can arrive with every
/// delivery (`X-Segment-Settings`), so the work of building a redactor must be bounded.
pub const MAX_SECRET_VALUES: usize = 256;

/// Most bytes of secret values one settings object may hold, all values together.
pub const MAX_SECRET_BYTES: usize = 64 << 10;

/// Settings whose secrets cannot be bounded; the message names the cap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// Too many values under secret names.
    #[error("the settings hold more than {MAX_SECRET_VALUES} secret values")]
    TooMany,
    /// Values under secret names too large altogether.
    #[error(
        "the settings' secret values exceed {} in total",
        crate::limits::bytes(MAX_SECRET_BYTES)
    )]
    TooLarge,
}

/// Replaces every occurrence of known secret values, in one pass over the text
/// whatever the number of secrets (an Aho-Corasick automaton, leftmost-longest so a
/// secret containing another is replaced whole).
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    matcher: Option<aho_corasick::AhoCorasick>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets themselves.
        f.debug_struct("Redactor")
            .field("patterns", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// Collects the secrets of a settings object: the string values (nested included)
    /// under every name, at any depth, that is declared in `declared` or looks like a
    /// credential. Fails when they exceed [`MAX_SECRET_VALUES`] or [`MAX_SECRET_BYTES`].
    pub fn from_settings(settings: &Value, declared: &[String]) -> Result<Redactor, SecretsError> {
        let mut found = Found::default();
        collect_secrets(settings, declared, &mut found)?;
        Ok(Redactor::new(found.values))
    }

    /// A redactor for these secret values, with the encodings they commonly travel in.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut secrets: Vec<String> = Vec::new();
        for secret in values {
            add_forms(&mut secrets, secret);
        }
        Redactor::from_forms(secrets)
    }

    /// Whether declaring `value` would change nothing: it is known already, or too short
    /// to be redacted as a substring.
    pub fn knows(&self, value: &str) -> bool {
        value.len() < MIN_SECRET_LEN
            || self
                .secrets
                .binary_search_by(|s| s.as_str().cmp(value))
                .is_ok()
    }

    /// This redactor and one more secret value (one the function declared).
    pub fn extended(&self, value: &str) -> Redactor {
        let mut secrets = self.secrets.clone();
        add_forms(&mut secrets, value);
        Redactor::from_forms(secrets)
    }

    fn from_forms(mut secrets: Vec<String>) -> Redactor {
        secrets.sort();
        secrets.dedup();
        let matcher = (!secrets.is_empty())
            .then(|| {
                aho_corasick::AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                    .build(&secrets)
                    .ok()
            })
            .flatten();
        Redactor { secrets, matcher }
    }

    /// The length of the longest secret form, in bytes: text cut after this many more
    /// bytes than it keeps cannot end inside a secret that reaches into what is kept.
    pub fn longest(&self) -> usize {
        self.secrets.iter().map(String::len).max().unwrap_or(0)
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.matcher {
            Some(m) if m.is_match(text) => {
                let mut out = String::with_capacity(text.len());
                m.replace_all_with(text, &mut out, |_, _, out| {
                    out.push_str(REDACTED);
                    true
                });
                Cow::Owned(out)
            }
            _ => Cow::Borrowed(text),
        }
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

/// Adds `secret` and the forms it travels in (Basic auth, base64, a URL path or query
/// in each percent-encoding the SDK and HTTP clients write, a form body, a JSON string)
/// to `secrets`, unless it is too short to be a credential or known.
fn add_forms(secrets: &mut Vec<String>, secret: &str) {
    if secret.len() < MIN_SECRET_LEN || secrets.iter().any(|s| s == secret) {
        return;
    }
    let json = serde_json::to_string(secret).unwrap_or_default();
    secrets.push(secret.to_owned());
    secrets.push(segfn_sdk::encoding::base64(format!("{secret}:").as_bytes()));
    secrets.push(segfn_sdk::encoding::base64(secret.as_bytes()));
    secrets.push(percent_encode(secret));
    // The SDK's own encoders: `encodeURIComponent` keeps `!*'()`, a form writes `+` for a
    // space and escapes `~`.
    secrets.push(segfn_sdk::encoding::uri_component(secret));
    secrets.push(segfn_sdk::encoding::form([("", secret)])[1..].to_owned());
    secrets.push(json[1..json.len().saturating_sub(1).max(1)].to_owned());
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

/// Walks settings: under a secret name every string is a secret; elsewhere, keep looking.
fn collect_secrets<'a>(
    value: &'a Value,
    declared: &[String],
    out: &mut Found<'a>,
) -> Result<(), SecretsError> {
    match value {
        Value::Object(map) => {
            for (name, value) in map {
                if is_secret_name(name, declared) {
                    all_strings(value, out)?;
                } else {
                    collect_secrets(value, declared, out)?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_secrets(item, declared, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Secret values found so far, and their size.
#[derive(Default)]
struct Found<'a> {
    values: Vec<&'a str>,
    bytes: usize,
}

fn all_strings<'a>(value: &'a Value, out: &mut Found<'a>) -> Result<(), SecretsError> {
    match value {
        Value::String(s) => {
            out.values.push(s);
            out.bytes += s.len();
            if out.values.len() > MAX_SECRET_VALUES {
                return Err(SecretsError::TooMany);
            }
            if out.bytes > MAX_SECRET_BYTES {
                return Err(SecretsError::TooLarge);
            }
        }
        Value::Array(items) => items.iter().try_for_each(|v| all_strings(v, out))?,
        Value::Object(map) => map.values().try_for_each(|v| all_strings(v, out))?,
        _ => {}
    }
    Ok(())
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
        let r = Redactor::from_settings(&settings, &["sharedPassphrase".to_string()]).unwrap();
        assert_eq!(
            r.redact("key=sk_live_123 at https://x in eu-west"),
            "key=[redacted] at https://x in eu-west"
        );
        assert_eq!(r.redact("say open sesame"), "say [redacted]");
        let basic = segfn_sdk::encoding::base64(b"sk_live_123:");
        assert_eq!(r.redact(&format!("Basic {basic}")), "Basic [redacted]");
    }

    #[test]
    fn encoded_forms_are_redacted_too() {
        let r = Redactor::from_settings(&json!({"apiKey": "a+b/c=\"d"}), &[]).unwrap();
        assert_eq!(r.redact("?key=a%2Bb%2Fc%3D%22d"), "?key=[redacted]");
        assert_eq!(r.redact(r#"{"k":"a+b/c=\"d"}"#), r#"{"k":"[redacted]"}"#);
    }

    #[test]
    fn the_sdks_encodings_of_a_secret_are_redacted() {
        let secret = "ab~c d!(e)";
        let r = Redactor::from_settings(&json!({ "token": secret }), &[]).unwrap();
        let form = segfn_sdk::encoding::form([("token", secret)]);
        assert_eq!(r.redact(&form), "token=[redacted]", "{form}");
        let component = segfn_sdk::encoding::uri_component(secret);
        assert_eq!(
            r.redact(&format!("/u/{component}")),
            "/u/[redacted]",
            "{component}"
        );
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
        let r = Redactor::from_settings(&json!({"apiKey": "ab"}), &[]).unwrap();
        assert_eq!(r.redact("about abc"), "about abc");
    }

    #[test]
    fn json_is_redacted_deeply() {
        let r = Redactor::from_settings(&json!({"token": "t0k3n-value"}), &[]).unwrap();
        let mut v = json!({"a": ["x t0k3n-value"], "t0k3n-value": 1});
        r.redact_json(&mut v);
        assert_eq!(v, json!({"a": ["x [redacted]"], "[redacted]": 1}));
    }

    #[test]
    fn secret_names_count_at_any_depth() {
        let settings = json!({
            "nested": {"token": "nested-t0ken", "region": "eu-west-1"},
            "list": [{"password": ["pw-one-1", {"x": "pw-two-2"}]}],
            "apiKey": {"primary": "prim4ry-key"},
        });
        let r = Redactor::from_settings(&settings, &[]).unwrap();
        assert_eq!(
            r.redact("nested-t0ken pw-one-1 pw-two-2 prim4ry-key eu-west-1"),
            "[redacted] [redacted] [redacted] [redacted] eu-west-1"
        );
    }

    #[test]
    fn the_longest_secret_wins_where_secrets_overlap() {
        let r = Redactor::new(["abcd", "abcdefgh"]);
        assert_eq!(r.redact("xx abcdefgh abcd"), "xx [redacted] [redacted]");
    }

    #[test]
    fn secrets_are_capped_in_number_and_size() {
        let many: Vec<String> = (0..=MAX_SECRET_VALUES)
            .map(|i| format!("secret-{i}"))
            .collect();
        assert_eq!(
            Redactor::from_settings(&json!({ "apiKeys": many }), &[]).unwrap_err(),
            SecretsError::TooMany
        );
        let huge = "x".repeat(MAX_SECRET_BYTES + 1);
        assert_eq!(
            Redactor::from_settings(&json!({ "token": huge }), &[]).unwrap_err(),
            SecretsError::TooLarge
        );
        // Values under other names are not secrets and not counted.
        let plain: Vec<String> = (0..10_000).map(|i| format!("v{i}")).collect();
        assert!(Redactor::from_settings(&json!({ "events": plain }), &[]).is_ok());
    }

    /// 20,000 strings took 8 s with one pass per secret; the automaton makes redaction
    /// linear. Timing is not asserted here (see the serve tests for the bound under
    /// load); this checks the result at the largest allowed size.
    #[test]
    fn the_largest_allowed_secret_set_redacts_correctly() {
        let values: Vec<String> = (0..MAX_SECRET_VALUES)
            .map(|i| format!("s3cr3t-{i:05}"))
            .collect();
        let r = Redactor::new(values.iter().map(String::as_str));
        let text = values.join(" ");
        let redacted = r.redact(&text);
        assert_eq!(redacted.matches(REDACTED).count(), MAX_SECRET_VALUES);
        assert!(!redacted.contains("s3cr3t"));
    }

    #[test]
    fn longest_covers_every_encoded_form() {
        let r = Redactor::new(["abcd"]);
        // base64 of "abcd:" is the longest form: 8 characters.
        assert_eq!(r.longest(), 8);
        assert_eq!(Redactor::default().longest(), 0);
    }
}
