//! Every recorded pair of Segment's old Google Analytics integration (`tests/pairs/*/`,
//! see `tests/pairs/SOURCES.md`): each `input.json` runs through the function natively
//! with `segfn_sdk::testing` (Google stubbed to answer 200), and the form parameters of
//! the hits it sent must equal `output.json`.
//!
//! What is compared: `output.json` is the object the integration sent as the form body
//! of a hit (`.type('form').send(payload)`), as the original tests asserted with
//! `.sendsAlmost(json.output, { ignored: ['qt'] })`; an array is one hit per request, in
//! order (Order Completed without enhanced ecommerce). On the wire every value is text,
//! so each expected value is compared as JavaScript wrote it into the form (`18.99`,
//! `1`, `true`), and every parameter must be there, none more.
//!
//! Time: `qt` (queue time: now minus the event's timestamp, at most 14340000 ms) depends
//! on the clock, so it is taken out before comparing, as the original tests did, after
//! checking that it is a whole number in that range. Nothing else is random.
//!
//! Settings: `meta.json`'s `test_settings`, then `fixture-settings.json`, then
//! `case.json`'s `settings` where the original test ran the fixture under other settings
//! (the enhanced ecommerce block sets `enhancedEcommerce: true`); `case.json` cites the
//! test line and says why, and may patch the input and the expected output (top-level
//! keys, `null` removing one) where the original test bypassed a check the integration
//! makes.

use google_analytics::GoogleAnalytics;
use segfn_sdk::{OutcomeKind, Response, encoding, testing};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A form value as JavaScript's form encoding wrote it.
fn form_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap();
            if f.fract() == 0.0 {
                format!("{f:.0}")
            } else {
                f.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// The form parameters of every request, `qt` checked and taken out.
fn sent() -> Vec<BTreeMap<String, String>> {
    testing::requests()
        .iter()
        .map(|request| {
            assert_eq!(request.url, "https://ssl.google-analytics.com/collect");
            assert_eq!(
                request.header_value("content-type"),
                Some("application/x-www-form-urlencoded")
            );
            let mut form: BTreeMap<_, _> =
                encoding::form_decode(std::str::from_utf8(&request.body).unwrap())
                    .into_iter()
                    .collect();
            let qt: u64 = form
                .remove("qt")
                .expect("every hit has a queue time")
                .parse()
                .unwrap();
            assert!(qt <= 14_340_000, "qt {qt}");
            form
        })
        .collect()
}

fn expected_forms(output: &Value) -> Vec<BTreeMap<String, String>> {
    let hits = match output {
        Value::Array(hits) => hits.clone(),
        hit => vec![hit.clone()],
    };
    hits.iter()
        .map(|hit| {
            hit.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), form_text(v)))
                .collect()
        })
        .collect()
}

/// The first difference between two lists of forms.
fn difference(
    expected: &[BTreeMap<String, String>],
    actual: &[BTreeMap<String, String>],
) -> Option<String> {
    if expected.len() != actual.len() {
        return Some(format!(
            "expected {} hits, got {}",
            expected.len(),
            actual.len()
        ));
    }
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        for key in e.keys().chain(a.keys()) {
            match (e.get(key), a.get(key)) {
                (Some(e), Some(a)) if e == a => {}
                (Some(e), Some(a)) => {
                    return Some(format!("hit {i}: {key}: expected {e:?}, got {a:?}"));
                }
                (Some(e), None) => return Some(format!("hit {i}: {key}: missing, expected {e:?}")),
                (None, Some(a)) => return Some(format!("hit {i}: {key}: unexpected {a:?}")),
                (None, None) => {}
            }
        }
    }
    None
}

#[test]
fn every_pair() {
    let pairs = segfn_pairs::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pairs"));
    segfn_pairs::check_all("Google Analytics", &pairs, 38, |pair| {
        testing::mock_fetch(|_| Ok(Response::new(200)));
        let result = testing::handle::<GoogleAnalytics>(pair.input.clone(), pair.settings.clone());
        if result.kind != OutcomeKind::Success {
            return Err(format!("{result:?}"));
        }
        match difference(&expected_forms(&pair.expected), &sent()) {
            Some(diff) => Err(diff),
            None => Ok(()),
        }
    });
}
