//! Sample events for the page: real Segment spec events of every type, embedded in the
//! binary (sources and licence in `samples/SOURCES.md`), the function crate's own
//! `events/*.json`, and, for source functions, its webhook requests (`requests/*.json`,
//! or `webhook-examples/*.json` as Segment's own examples keep them), read again on
//! each request so edits show up.

use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// The crate's sample files read at most: the page lists events, not a data set.
const MAX_CRATE_SAMPLES: usize = 200;
/// A crate's sample file larger than this is listed with an error instead of its text.
const MAX_SAMPLE_BYTES: u64 = 1 << 20;

/// The group the embedded samples are listed under.
pub const SPEC_GROUP: &str = "Segment spec events";
/// The group the crate's own samples are listed under.
pub const CRATE_GROUP: &str = "This function's events/";
/// The groups the crate's webhook requests are listed under (source functions).
pub const REQUEST_GROUPS: [(&str, &str); 2] = [
    ("requests", "This function's requests/"),
    ("webhook-examples", "This function's webhook-examples/"),
];

/// One sample event.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Stable id: `spec/<name>` or `events/<file>`.
    pub id: String,
    /// What the list shows.
    pub label: String,
    /// Which list it is in.
    pub group: &'static str,
    /// The message type (`track`, ...), `batch`, `request` (a webhook), or `invalid`.
    pub kind: String,
    /// The JSON text, as in the file.
    pub json: String,
    /// Why the file cannot be used as it is, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The embedded samples: one or more of each type, as Segment documents them.
const SPEC: &[(&str, &str, &str)] = &[
    (
        "track-signed-up",
        "Track: Signed Up",
        include_str!("samples/track-signed-up.json"),
    ),
    (
        "track-course-clicked",
        "Track: Course Clicked (anonymous, full context)",
        include_str!("samples/track-course-clicked.json"),
    ),
    (
        "track-order-completed",
        "Track: Order Completed (Ecommerce v2, no user)",
        include_str!("samples/track-order-completed.json"),
    ),
    (
        "track-partner-spec-registered",
        "Track: Registered (as delivered to partners)",
        include_str!("samples/track-partner-spec-registered.json"),
    ),
    (
        "identify-complete",
        "Identify",
        include_str!("samples/identify-complete.json"),
    ),
    (
        "identify-partner-spec",
        "Identify (as delivered to partners)",
        include_str!("samples/identify-partner-spec.json"),
    ),
    (
        "page-complete",
        "Page",
        include_str!("samples/page-complete.json"),
    ),
    (
        "screen-complete",
        "Screen",
        include_str!("samples/screen-complete.json"),
    ),
    (
        "group-complete",
        "Group",
        include_str!("samples/group-complete.json"),
    ),
    (
        "alias-complete",
        "Alias",
        include_str!("samples/alias-complete.json"),
    ),
    (
        "delete-subscription-function",
        "Delete",
        include_str!("samples/delete-subscription-function.json"),
    ),
    (
        "batch-destination-functions-onbatch",
        "Batch: identify, track, page (onBatch)",
        include_str!("samples/batch-destination-functions-onbatch.json"),
    ),
];

/// Every sample: the crate's own first (they fit the function: webhook requests, then
/// events), then Segment's.
pub fn all(dir: &Path) -> Vec<Sample> {
    let mut samples: Vec<Sample> = REQUEST_GROUPS
        .iter()
        .flat_map(|(sub, group)| crate_samples(dir, sub, group))
        .collect();
    samples.extend(crate_samples(dir, "events", CRATE_GROUP));
    samples.extend(SPEC.iter().map(|(name, label, json)| Sample {
        id: format!("spec/{name}"),
        label: (*label).to_owned(),
        group: SPEC_GROUP,
        kind: kind(json).unwrap_or_else(|e| e),
        json: (*json).to_owned(),
        error: None,
    }));
    samples
}

/// `DIR/SUB/*.json`, sorted by name; none when there is no such directory.
fn crate_samples(dir: &Path, sub: &str, group: &'static str) -> Vec<Sample> {
    let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    paths.sort();
    paths.truncate(MAX_CRATE_SAMPLES);
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = format!("{sub}/{name}");
            let mut sample = Sample {
                id: name.clone(),
                label: name.clone(),
                group,
                kind: "invalid".into(),
                json: String::new(),
                error: None,
            };
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            if size > MAX_SAMPLE_BYTES {
                sample.error = Some(format!(
                    "{name} is larger than {} KiB",
                    MAX_SAMPLE_BYTES >> 10
                ));
                return sample;
            }
            match std::fs::read_to_string(&path) {
                Ok(json) => {
                    match kind(&json) {
                        Ok(kind) => sample.kind = kind,
                        Err(problem) => sample.error = Some(format!("{name}: {problem}")),
                    }
                    sample.json = json;
                }
                Err(e) => sample.error = Some(format!("cannot read {name}: {e}")),
            }
            sample
        })
        .collect()
}

/// The message type of a sample, `batch` for a batch, `request` for a webhook request,
/// or what is wrong with it.
fn kind(json: &str) -> Result<String, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON: {e}"))?;
    if is_request(&value) {
        return segfn_sdk::source::read_harness(json.as_bytes())
            .map(|_| "request".to_owned())
            .map_err(|e| e.to_string());
    }
    match &value {
        Value::Array(_) => Ok("batch".into()),
        Value::Object(map) if map.get("batch").is_some_and(Value::is_array) => Ok("batch".into()),
        Value::Object(map) => Ok(map
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("no type")
            .to_owned()),
        _ => Err("not a Segment message (a JSON object) or a batch".into()),
    }
}

/// Whether a JSON value is a webhook request in the shape of Segment's harness
/// (`{"payload": {"body", "headers", ...}}`) rather than a Segment message.
pub fn is_request(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| o.contains_key("payload") && !o.contains_key("type"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_samples_cover_every_type() {
        let samples = all(Path::new("/nonexistent"));
        for kind in [
            "track", "identify", "page", "screen", "group", "alias", "delete", "batch",
        ] {
            assert!(
                samples.iter().any(|s| s.kind == kind),
                "no {kind} sample among {:?}",
                samples.iter().map(|s| &s.kind).collect::<Vec<_>>()
            );
        }
        for sample in &samples {
            assert!(sample.error.is_none(), "{}: {:?}", sample.id, sample.error);
            segfn_host_parses(&sample.json);
        }
    }

    fn segfn_host_parses(json: &str) {
        segfn_engine::input::parse_delivery(json.as_bytes()).expect("a usable delivery");
    }

    #[test]
    fn crate_samples_come_first_and_bad_ones_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events");
        std::fs::create_dir(&events).unwrap();
        std::fs::write(events.join("b-broken.json"), "{\"type\": ").unwrap();
        std::fs::write(events.join("a-track.json"), "{\"type\": \"track\"}").unwrap();
        std::fs::write(events.join("notes.md"), "not a sample").unwrap();
        let requests = dir.path().join("requests");
        std::fs::create_dir(&requests).unwrap();
        std::fs::write(
            requests.join("push.json"),
            r#"{"payload": {"body": {"ref": "main"}, "headers": {"X-Github-Event": "push"}}}"#,
        )
        .unwrap();
        let samples = all(dir.path());
        assert_eq!(
            (samples[0].id.as_str(), samples[0].kind.as_str()),
            ("requests/push.json", "request")
        );
        let samples = &samples[1..];
        assert_eq!(samples[0].id, "events/a-track.json");
        assert_eq!(samples[0].kind, "track");
        assert_eq!(samples[1].kind, "invalid");
        assert!(
            samples[1]
                .error
                .as_deref()
                .unwrap()
                .contains("not valid JSON")
        );
        assert_eq!(samples[2].group, SPEC_GROUP);
    }
}
