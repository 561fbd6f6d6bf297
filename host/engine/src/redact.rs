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

/// Most bytes of one secret value: twice a PEM-encoded 4096-bit RSA private key (the
/// largest credential Segment settings commonly carry, about 3.3 KB). A longer value is
/// not a credential but an attempt to make redaction expensive.
pub const MAX_SECRET_VALUE_BYTES: usize = 8 << 10;

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
    /// One value under a secret name too long to be a credential.
    #[error(
        "the secret setting {setting:?} holds a value longer than {}; a credential is shorter",
        crate::limits::bytes(MAX_SECRET_VALUE_BYTES)
    )]
    TooLong {
        /// The name of the setting that holds it (names are not secret).
        setting: String,
    },
}

/// Replaces every occurrence of known secret values, in one pass over the text
/// whatever the number of secrets (an Aho-Corasick automaton, leftmost-longest so a
/// secret containing another is replaced whole).
///
/// The automaton is an NFA, never a DFA: settings arrive with deliveries, and building
/// aho-corasick's DFA is quadratic in the length of a repetitive pattern (32,000
/// characters took 18 s to build; the NFA 2 ms). Building and searching the NFA are
/// both linear in their input, whatever the values.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    matcher: Matcher,
}

/// How a redactor finds its secrets.
#[derive(Clone, Default)]
enum Matcher {
    /// No secrets: text passes unchanged.
    #[default]
    Nothing,
    /// The automaton over every secret form.
    Automaton(aho_corasick::AhoCorasick),
    /// The automaton could not be built (only past sizes the caps rule out): every text
    /// is replaced whole rather than risk showing a secret.
    Everything,
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
        use aho_corasick::AhoCorasickKind::{ContiguousNFA, NoncontiguousNFA};
        secrets.sort();
        secrets.dedup();
        if secrets.is_empty() {
            return Redactor::default();
        }
        let build = |kind| {
            aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .kind(Some(kind))
                .build(&secrets)
        };
        // The contiguous NFA searches faster; it has a smaller limit on its states.
        let matcher = match build(ContiguousNFA).or_else(|_| build(NoncontiguousNFA)) {
            Ok(automaton) => Matcher::Automaton(automaton),
            Err(_) => Matcher::Everything,
        };
        Redactor { secrets, matcher }
    }

    /// The bytes of every secret form together: what building this redactor took.
    pub fn pattern_bytes(&self) -> usize {
        self.secrets.iter().map(String::len).sum()
    }

    /// The length of the longest secret form, in bytes: text cut after this many more
    /// bytes than it keeps cannot end inside a secret that reaches into what is kept.
    pub fn longest(&self) -> usize {
        self.secrets.iter().map(String::len).max().unwrap_or(0)
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        matches!(self.matcher, Matcher::Nothing)
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.matcher {
            Matcher::Everything if !text.is_empty() => Cow::Borrowed(REDACTED),
            Matcher::Automaton(m) if m.is_match(text) => {
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

    /// The first `keep` bytes of `text` (cut back to a character boundary) with every
    /// secret that starts in them replaced whole, however far it reaches past `keep`.
    /// Cutting after redacting would not do: a redacted prefix is shorter, and would let
    /// text from past `keep` in, where a secret may lie cut short and so unmatched.
    /// `text` must reach [`Redactor::longest`] bytes past `keep`, or be whole.
    pub fn redact_prefix<'a>(&self, text: &'a str, keep: usize) -> Cow<'a, str> {
        let mut end = keep.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        match &self.matcher {
            Matcher::Nothing => Cow::Borrowed(&text[..end]),
            Matcher::Everything => Cow::Borrowed(if text.is_empty() { "" } else { REDACTED }),
            Matcher::Automaton(m) => {
                let mut out = String::with_capacity(end);
                let mut at = 0;
                for found in m.find_iter(text) {
                    if found.start() >= keep {
                        break;
                    }
                    out.push_str(&text[at..found.start()]);
                    out.push_str(REDACTED);
                    at = found.end();
                }
                if at < end {
                    out.push_str(&text[at..end]);
                }
                Cow::Owned(out)
            }
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
                    all_strings(name, value, out)?;
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

/// Every string in `value`, the value of the secret setting `setting`.
fn all_strings<'a>(
    setting: &str,
    value: &'a Value,
    out: &mut Found<'a>,
) -> Result<(), SecretsError> {
    match value {
        Value::String(s) => {
            if s.len() > MAX_SECRET_VALUE_BYTES {
                return Err(SecretsError::TooLong {
                    setting: setting.to_owned(),
                });
            }
            out.values.push(s);
            out.bytes += s.len();
            if out.values.len() > MAX_SECRET_VALUES {
                return Err(SecretsError::TooMany);
            }
            if out.bytes > MAX_SECRET_BYTES {
                return Err(SecretsError::TooLarge);
            }
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| all_strings(setting, v, out))?,
        Value::Object(map) => map
            .values()
            .try_for_each(|v| all_strings(setting, v, out))?,
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
        let long: Vec<String> = (0..9)
            .map(|i| format!("{i}").repeat(MAX_SECRET_VALUE_BYTES))
            .collect();
        assert_eq!(
            Redactor::from_settings(&json!({ "tokens": long }), &[]).unwrap_err(),
            SecretsError::TooLarge
        );
        let huge = "x".repeat(MAX_SECRET_VALUE_BYTES + 1);
        let problem = Redactor::from_settings(&json!({ "a": { "token": huge } }), &[]).unwrap_err();
        assert_eq!(
            problem,
            SecretsError::TooLong {
                setting: "token".into()
            }
        );
        assert!(problem.to_string().contains("8 KiB"), "{problem}");
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

    /// The attack that stalled a core for a minute: long, repetitive, overlapping secret
    /// values at the caps. Building aho-corasick's DFA over them is quadratic (16,000
    /// characters took 17 s); the NFA builds and searches in linear time. The bound is
    /// loose (a debug build on a busy 2-core machine), the quadratic build far past it.
    #[test]
    fn adversarial_secret_values_build_and_redact_in_linear_time() {
        let n = MAX_SECRET_VALUE_BYTES;
        let sets: [(&str, Vec<String>); 4] = [
            ("one letter", (0..8).map(|i| "a".repeat(n - i)).collect()),
            (
                "overlapping periods",
                (0..8)
                    .map(|i| "ab".repeat(n / 2 - i) + &"b".repeat(i))
                    .collect(),
            ),
            (
                "escapes in every form",
                (0..8)
                    .map(|i| "\u{1}\"/%+".repeat(n / 5 - 1) + &i.to_string())
                    .collect(),
            ),
            (
                "nested prefixes",
                (0..8).map(|i| "xyz".repeat((n / 3) >> i) + "!").collect(),
            ),
        ];
        for (name, values) in &sets {
            let settings = json!({ "tokens": values });
            let started = std::time::Instant::now();
            let r = Redactor::from_settings(&settings, &[]).expect(name);
            let built = started.elapsed();
            // A text that keeps the automaton in long partial matches throughout.
            let text = format!("{} {} {}", values[0].repeat(3), values[7], values[0]);
            let started = std::time::Instant::now();
            let redacted = r.redact(&text);
            let searched = started.elapsed();
            assert!(
                built < std::time::Duration::from_secs(1)
                    && searched < std::time::Duration::from_secs(1),
                "{name}: built in {built:?}, redacted in {searched:?}"
            );
            assert!(redacted.contains(REDACTED), "{name}");
            assert!(
                redacted.len() < 200,
                "{name}: {} bytes left",
                redacted.len()
            );
        }
    }

    /// A log line is cut to what is kept: redacting first and cutting the shorter
    /// result afterwards let the text of a fourth secret, read only in part, in.
    #[test]
    fn a_prefix_keeps_no_part_of_a_secret() {
        let secrets: Vec<String> = (0..4).map(|i| format!("secret-{i}-").repeat(50)).collect();
        let r = Redactor::new(secrets.iter().map(String::as_str));
        let text = secrets.concat();
        let keep = 2 * secrets[0].len() + 3;
        // Read to `keep` plus the longest secret, as the log call does.
        let read = &text[..keep + r.longest()];
        assert_eq!(r.redact_prefix(read, keep), "[redacted]".repeat(3));
        assert_eq!(r.redact_prefix(read, 5), "[redacted]");
        assert_eq!(r.redact_prefix("plain text", 5), "plain");
        assert_eq!(Redactor::default().redact_prefix("héllo", 2), "h");
    }

    #[test]
    fn longest_covers_every_encoded_form() {
        let r = Redactor::new(["abcd"]);
        // base64 of "abcd:" is the longest form: 8 characters.
        assert_eq!(r.longest(), 8);
        assert_eq!(Redactor::default().longest(), 0);
    }
}
