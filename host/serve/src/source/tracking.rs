//! Sending a source function's calls to Segment: events to the Tracking API's
//! `POST /v1/batch` (at most 32 KB a message and 500 KB a batch, Segment's limits),
//! objects to the Objects API's `POST /v1/set` one collection and at most ten objects
//! at a time, with the
//! source's write key as Basic auth; each request retried on 429, 5xx and network
//! failures with backoff, within a deadline. Events carry their `messageId`, so a retry
//! that Segment did receive after all is removed by Segment's deduplication.

use base64::Engine as _;
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime};

/// Segment's limit on one message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 32 << 10;
/// Segment's limit on one batch request, in bytes.
pub const MAX_BATCH_BYTES: usize = 500 << 10;
/// Objects in one `/v1/set` request, as Segment's Objects API takes them.
pub const MAX_OBJECTS_PER_SET: usize = 10;

/// Where and as whom the calls go.
#[derive(Debug, Clone)]
pub struct Destination<'a> {
    /// The Tracking API's base URL.
    pub tracking_api: &'a str,
    /// The Objects API's base URL.
    pub objects_api: &'a str,
    /// The source's write key.
    pub write_key: &'a str,
}

/// Why the calls did not all reach Segment.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// A message over Segment's size limit: nothing was sent.
    #[error("event {index} is {bytes} bytes, over Segment's limit of 32 KB a message")]
    TooLarge {
        /// Its position among the calls.
        index: usize,
        /// Its size.
        bytes: usize,
    },
    /// Segment refused a request (not for being busy): retrying will not help.
    #[error("Segment answered {status}: {body}")]
    Refused {
        /// The status.
        status: u16,
        /// The start of the answer.
        body: String,
    },
    /// Segment could not be reached, or stayed busy, until the deadline.
    #[error("Segment did not accept the calls in time: {0}")]
    Unavailable(String),
}

impl SendError {
    /// Whether the webhook's sender should send it again.
    pub fn retryable(&self) -> bool {
        matches!(self, SendError::Unavailable(_))
    }
}

/// Sends `events` (in batches) and `objects` (by collection); the requests made.
pub async fn send(
    client: &reqwest::Client,
    to: &Destination<'_>,
    events: &[Value],
    objects: &[Value],
    deadline: Instant,
) -> Result<usize, SendError> {
    let mut requests = 0;
    for (url, body) in batches(to, events)?
        .into_iter()
        .chain(object_sets(to, objects))
    {
        post(client, &url, to.write_key, body, deadline).await?;
        requests += 1;
    }
    Ok(requests)
}

/// Checks each event against Segment's limit on one message, before anything is sent.
pub fn check(events: &[Value]) -> Result<(), SendError> {
    for (index, event) in events.iter().enumerate() {
        let bytes = event.to_string().len();
        if bytes > MAX_MESSAGE_BYTES {
            return Err(SendError::TooLarge { index, bytes });
        }
    }
    Ok(())
}

/// The `/v1/batch` requests for `events`, each within [`MAX_BATCH_BYTES`].
fn batches(to: &Destination<'_>, events: &[Value]) -> Result<Vec<(String, Vec<u8>)>, SendError> {
    let url = format!("{}/v1/batch", to.tracking_api);
    let sent_at = segfn_engine::input::iso8601_millis(SystemTime::now());
    // The wrapper around the messages, with room for the commas between them.
    let wrapper = json!({"batch": [], "sentAt": sent_at}).to_string().len();
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = wrapper;
    for (index, event) in events.iter().enumerate() {
        let text = event.to_string();
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(SendError::TooLarge {
                index,
                bytes: text.len(),
            });
        }
        if !current.is_empty() && size + text.len() + 1 > MAX_BATCH_BYTES {
            out.push((url.clone(), batch_body(&current, &sent_at)));
            current.clear();
            size = wrapper;
        }
        size += text.len() + 1;
        current.push(text);
    }
    if !current.is_empty() {
        out.push((url, batch_body(&current, &sent_at)));
    }
    Ok(out)
}

fn batch_body(messages: &[String], sent_at: &str) -> Vec<u8> {
    format!(
        "{{\"batch\":[{}],\"sentAt\":\"{sent_at}\"}}",
        messages.join(",")
    )
    .into_bytes()
}

/// One `/v1/set` request per collection, objects in the order made.
fn object_sets(to: &Destination<'_>, objects: &[Value]) -> Vec<(String, Vec<u8>)> {
    let mut collections: Vec<(String, Vec<Value>)> = Vec::new();
    for object in objects {
        let collection = object["collection"].as_str().unwrap_or_default().to_owned();
        let entry = json!({"id": object["id"], "properties": object.get("properties").cloned().unwrap_or(json!({}))});
        match collections.iter_mut().find(|(c, _)| *c == collection) {
            Some((_, list)) => list.push(entry),
            None => collections.push((collection, vec![entry])),
        }
    }
    let url = format!("{}/v1/set", to.objects_api);
    collections
        .into_iter()
        .flat_map(|(collection, objects)| {
            objects
                .chunks(MAX_OBJECTS_PER_SET)
                .map(|chunk| {
                    let body = json!({"collection": collection, "objects": chunk});
                    (url.clone(), body.to_string().into_bytes())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// POSTs one body, retrying while Segment is busy or unreachable and time is left.
async fn post(
    client: &reqwest::Client,
    url: &str,
    write_key: &str,
    body: Vec<u8>,
    deadline: Instant,
) -> Result<(), SendError> {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{write_key}:"))
    );
    let mut wait = Duration::from_millis(100);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = client
            .post(url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .timeout(left.max(Duration::from_millis(1)))
            .body(body.clone())
            .send()
            .await;
        let problem = match attempt {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(200).collect();
                if status != 429 && (status < 500 || status == 501) {
                    return Err(SendError::Refused { status, body: text });
                }
                format!("{status} {text}")
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() + wait >= deadline {
            return Err(SendError::Unavailable(problem));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 3).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TO: Destination<'static> = Destination {
        tracking_api: "https://t",
        objects_api: "https://o",
        write_key: "wk",
    };

    #[test]
    fn batches_stay_under_segments_limits() {
        let event = json!({"type": "track", "event": "E", "properties": {"p": "x".repeat(20_000)}});
        let events = vec![event; 60];
        let requests = batches(&TO, &events).unwrap();
        assert!(requests.len() >= 3, "{}", requests.len());
        let mut total = 0;
        for (url, body) in &requests {
            assert_eq!(url, "https://t/v1/batch");
            assert!(body.len() <= MAX_BATCH_BYTES, "{}", body.len());
            let parsed: Value = serde_json::from_slice(body).unwrap();
            total += parsed["batch"].as_array().unwrap().len();
            assert!(parsed["sentAt"].is_string());
        }
        assert_eq!(total, 60, "every event in exactly one batch");
        let huge = vec![json!({"type": "track", "p": "x".repeat(MAX_MESSAGE_BYTES)})];
        assert!(matches!(
            batches(&TO, &huge),
            Err(SendError::TooLarge { index: 0, .. })
        ));
    }

    #[test]
    fn objects_go_one_collection_at_a_time() {
        let objects = vec![
            json!({"collection": "rooms", "id": "1", "properties": {"a": 1}}),
            json!({"collection": "users", "id": "2"}),
            json!({"collection": "rooms", "id": "3", "properties": {"b": 2}}),
        ];
        let sets = object_sets(&TO, &objects);
        assert_eq!(sets.len(), 2);
        let many: Vec<Value> = (0..23)
            .map(|i| json!({"collection": "c", "id": i.to_string()}))
            .collect();
        let chunks = object_sets(&TO, &many);
        assert_eq!(chunks.len(), 3, "ten, ten and three");
        let rooms: Value = serde_json::from_slice(&sets[0].1).unwrap();
        assert_eq!(
            rooms,
            json!({"collection": "rooms", "objects": [{"id": "1", "properties": {"a": 1}}, {"id": "3", "properties": {"b": 2}}]})
        );
    }
}
