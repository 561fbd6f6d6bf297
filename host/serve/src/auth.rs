//! What Segment's request headers carry: the tenant's API key (Basic auth), the
//! `X-Signature` HMAC, and `X-Segment-Settings`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use serde_json::Value;

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// The API key from `Authorization: Basic base64(apiKey + ":")`, or why there is none.
pub fn api_key(authorization: Option<&str>) -> Result<String, &'static str> {
    let value = authorization
        .ok_or("missing Authorization header: Segment sends the API key as Basic auth")?;
    let (scheme, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or("Authorization is not Basic auth")?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err("Authorization is not Basic auth");
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| "Authorization is not valid base64")?;
    let text = String::from_utf8(decoded).map_err(|_| "Authorization is not valid UTF-8")?;
    // Segment sends `apiKey:` (empty password); accept a bare key too.
    let key = text.split_once(':').map_or(text.as_str(), |(user, _)| user);
    if key.is_empty() {
        return Err("Authorization carries an empty API key");
    }
    Ok(key.to_owned())
}

/// The `X-Signature` header is required and missing: checked before the body is read.
pub const MISSING_SIGNATURE: &str = "missing X-Signature: this tenant requires signed requests";

/// Checks `X-Signature` (hex HMAC-SHA1 with the shared secret), in constant time.
/// Segment signs the body; for batches it signs only the first event, whose
/// serialisation we cannot know byte for byte, so with `first_event` given (the
/// `first_event` batch policy) the first event is also accepted in compact JSON.
pub fn verify_signature(
    secret: &str,
    signature: Option<&str>,
    body: &[u8],
    first_event: Option<&str>,
) -> Result<(), &'static str> {
    let signature = signature.ok_or(MISSING_SIGNATURE)?;
    let expected = hex::decode(signature.trim()).map_err(|_| "X-Signature is not hex")?;
    let matches = |data: &[u8]| {
        let mut mac =
            HmacSha1::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(data);
        mac.verify_slice(&expected).is_ok()
    };
    // The first event as it appears in the body, or in compact form (as
    // `JSON.stringify` writes it; numbers and key order are kept exactly).
    let compact = || {
        first_event
            .and_then(|e| serde_json::from_str::<Value>(e).ok())
            .map(|v| v.to_string())
    };
    if matches(body)
        || first_event.is_some_and(|f| matches(f.as_bytes()))
        || compact().is_some_and(|f| matches(f.as_bytes()))
    {
        Ok(())
    } else {
        Err("X-Signature does not match the body")
    }
}

/// Hex HMAC-SHA1 of `data` (what a sender puts in `X-Signature`).
pub fn sign(secret: &str, data: &[u8]) -> String {
    let mut mac = HmacSha1::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// Reads `X-Segment-Settings`: base64 of a JSON object of settings.
pub fn segment_settings(header: &str) -> Result<serde_json::Map<String, Value>, &'static str> {
    let decoded = STANDARD
        .decode(header.trim())
        .map_err(|_| "X-Segment-Settings is not valid base64")?;
    match serde_json::from_slice(&decoded) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("X-Segment-Settings is not a JSON object"),
        Err(_) => Err("X-Segment-Settings is not valid JSON"),
    }
}

/// The tenant's settings with the request's settings merged over them (top-level
/// keys). With `overridable`, only those names are taken from the request; the rest
/// keep the tenant's values (the header is not signed).
pub fn merge_settings(
    base: &Value,
    extra: serde_json::Map<String, Value>,
    overridable: Option<&std::collections::HashSet<String>>,
) -> Value {
    let mut merged = base.as_object().cloned().unwrap_or_default();
    merged.extend(
        extra
            .into_iter()
            .filter(|(k, _)| overridable.is_none_or(|names| names.contains(k))),
    );
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn basic_auth_as_segment_sends_it() {
        let header = format!("Basic {}", STANDARD.encode("key-123:"));
        assert_eq!(api_key(Some(&header)).unwrap(), "key-123");
        assert!(api_key(None).is_err());
        assert!(api_key(Some("Bearer x")).is_err());
        assert!(api_key(Some("Basic !!!")).is_err());
        assert!(api_key(Some(&format!("Basic {}", STANDARD.encode(":")))).is_err());
    }

    #[test]
    fn signatures_over_body_or_first_event() {
        let body = br#"{"type":"track","event":"E"}"#;
        let sig = sign("s", body);
        assert!(verify_signature("s", Some(&sig), body, None).is_ok());
        assert!(verify_signature("other", Some(&sig), body, None).is_err());
        assert!(verify_signature("s", None, body, None).is_err());
        assert!(verify_signature("s", Some("zz"), body, None).is_err());
        let batch = br#"[{"type":"track","event":"E"},{"type":"page"}]"#;
        let first = r#"{"type":"track","event":"E"}"#;
        assert!(verify_signature("s", Some(&sig), batch, Some(first)).is_ok());
        let pretty = "{ \"type\": \"track\",\n  \"event\": \"E\" }";
        assert!(verify_signature("s", Some(&sig), batch, Some(pretty)).is_ok());
    }

    /// Vectors computed outside segfn, with Python's hmac module:
    /// `hmac.new(secret, body, hashlib.sha1).hexdigest()`.
    #[test]
    fn known_answer_vectors() {
        let vectors: [(&str, &[u8], &str); 3] = [
            (
                "s3cret",
                br#"{"type":"track","event":"Signed Up","userId":"u1"}"#,
                "c36f3ec91e0efcc6f4be57e6a49d803f51e7eb51",
            ),
            (
                "key",
                b"The quick brown fox jumps over the lazy dog",
                "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9",
            ),
            ("", b"", "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d"),
        ];
        for (secret, body, expected) in vectors {
            assert_eq!(sign(secret, body), expected);
            assert!(verify_signature(secret, Some(expected), body, None).is_ok());
            assert!(verify_signature(secret, Some(&expected.to_uppercase()), body, None).is_ok());
        }
    }

    #[test]
    fn settings_header_merges_over_tenant_settings() {
        let header = STANDARD.encode(r#"{"region":"eu","apiKey":"override"}"#);
        let extra = segment_settings(&header).unwrap();
        let merged = merge_settings(
            &json!({"apiKey": "k", "endpoint": "e"}),
            extra.clone(),
            None,
        );
        assert_eq!(
            merged,
            json!({"apiKey": "override", "endpoint": "e", "region": "eu"})
        );
        let only_region = ["region".to_owned()].into_iter().collect();
        let pinned = merge_settings(
            &json!({"apiKey": "k", "endpoint": "e"}),
            extra,
            Some(&only_region),
        );
        assert_eq!(
            pinned,
            json!({"apiKey": "k", "endpoint": "e", "region": "eu"})
        );
        assert!(segment_settings("%%%").is_err());
        assert!(segment_settings(&STANDARD.encode("[1]")).is_err());
        assert!(segment_settings(&STANDARD.encode("{")).is_err());
    }
}
