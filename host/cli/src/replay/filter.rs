//! `--since`/`--until`: which events fall in the time window, read from one field of
//! each event (`timestamp` by default, the time Segment assigns to an event).
//!
//! Bounds are RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00+02:00`) or a date
//! (`2024-05-01`, midnight UTC). The window is half-open, `since <= t < until`, so
//! `--since 2024-05-01 --until 2024-05-02` is the one day of May 1 (UTC) and consecutive
//! windows never share an event. Event timestamps are read as Segment's libraries read
//! them ([`Timestamp::parse`]: ISO-8601 in its full, basic and partial forms, epoch
//! milliseconds): the same reading the function itself gets from the SDK. An event
//! whose field is missing or unreadable is not in any window: with a bound given it is
//! skipped and counted as "no timestamp", never sent.

use segfn_sdk::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A `--since`/`--until` value that is neither RFC 3339 nor a date.
#[derive(Debug, thiserror::Error)]
#[error(
    "{flag} {value:?} is not a timestamp: give RFC 3339 (2024-05-01T12:00:00Z) or a date (2024-05-01, midnight UTC)"
)]
pub struct FilterError {
    /// The flag.
    pub flag: &'static str,
    /// What it was given.
    pub value: String,
}

/// Parses a bound: RFC 3339, or a date meaning its midnight UTC.
pub fn parse_bound(flag: &'static str, value: &str) -> Result<OffsetDateTime, FilterError> {
    let error = || FilterError {
        flag,
        value: value.to_owned(),
    };
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t);
    }
    let date = time::Date::parse(
        value,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| error())?;
    Ok(date.midnight().assume_utc())
}

/// Where an event falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// In the window (or there is no window): send it.
    Keep,
    /// Before `since` or at or after `until`.
    Outside,
    /// There is a window, and the event has no readable timestamp.
    NoTimestamp,
}

/// The window, as the state records it (a resumed replay must use the same one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    /// Inclusive lower bound.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Exclusive upper bound.
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// The event field holding the timestamp.
    pub field: String,
}

impl Default for TimeWindow {
    fn default() -> TimeWindow {
        TimeWindow {
            since: None,
            until: None,
            field: "timestamp".into(),
        }
    }
}

impl TimeWindow {
    /// Whether any bound is set (without one, timestamps are not even read).
    pub fn is_bounded(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }

    /// Where the event whose JSON text is `json` falls.
    pub fn check(&self, json: &str) -> Verdict {
        if !self.is_bounded() {
            return Verdict::Keep;
        }
        let Some(t) = self.timestamp(json) else {
            return Verdict::NoTimestamp;
        };
        let t = t.as_offset_date_time();
        let after_since = self.since.is_none_or(|since| t >= since);
        let before_until = self.until.is_none_or(|until| t < until);
        if after_since && before_until {
            Verdict::Keep
        } else {
            Verdict::Outside
        }
    }

    /// The event's timestamp: a string in the field, read as Segment's libraries read
    /// it; numbers are not timestamps here (archives always hold strings).
    fn timestamp(&self, json: &str) -> Option<Timestamp> {
        // Only the top level is built, as borrowed raw values; keys may be escaped.
        let fields: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_str(json).ok()?;
        let raw = fields.get(self.field.as_str())?;
        let text: Cow<'_, str> = serde_json::from_str(raw.get()).ok()?;
        Timestamp::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(since: Option<&str>, until: Option<&str>) -> TimeWindow {
        TimeWindow {
            since: since.map(|s| parse_bound("--since", s).unwrap()),
            until: until.map(|s| parse_bound("--until", s).unwrap()),
            ..TimeWindow::default()
        }
    }

    fn at(t: &str) -> String {
        format!("{{\"type\":\"track\",\"timestamp\":\"{t}\"}}")
    }

    #[test]
    fn bounds_are_rfc3339_or_a_date_at_midnight_utc() {
        let day = parse_bound("--since", "2024-05-01").unwrap();
        assert_eq!(day, parse_bound("--since", "2024-05-01T00:00:00Z").unwrap());
        let offset = parse_bound("--until", "2024-05-01T02:00:00+02:00").unwrap();
        assert_eq!(offset, day);
        for bad in ["yesterday", "2024-13-01", "2024-05-01T12:00", "1714521600"] {
            let err = parse_bound("--since", bad).unwrap_err();
            assert!(err.to_string().contains("RFC 3339"), "{err}");
        }
    }

    #[test]
    fn the_window_is_half_open() {
        let w = window(Some("2024-05-01"), Some("2024-05-02"));
        assert_eq!(w.check(&at("2024-05-01T00:00:00.000Z")), Verdict::Keep);
        assert_eq!(w.check(&at("2024-05-01T23:59:59.999Z")), Verdict::Keep);
        assert_eq!(w.check(&at("2024-05-02T00:00:00.000Z")), Verdict::Outside);
        assert_eq!(w.check(&at("2024-04-30T23:59:59.999Z")), Verdict::Outside);
        // Offsets count: 01:00+02:00 is April 30th, 23:00 UTC.
        assert_eq!(w.check(&at("2024-05-01T01:00:00+02:00")), Verdict::Outside);
        // Segment's other spellings.
        assert_eq!(w.check(&at("2024-05-01T12:00:00Z")), Verdict::Keep);
        assert_eq!(w.check(&at("20240501T120000")), Verdict::Keep);
    }

    #[test]
    fn one_bound_alone_and_no_bound() {
        let since = window(Some("2024-05-01"), None);
        assert_eq!(since.check(&at("2030-01-01T00:00:00Z")), Verdict::Keep);
        assert_eq!(since.check(&at("2024-04-01T00:00:00Z")), Verdict::Outside);
        let until = window(None, Some("2024-05-01"));
        assert_eq!(until.check(&at("2024-04-01T00:00:00Z")), Verdict::Keep);
        // No window: nothing is read, even from an event without a timestamp.
        assert_eq!(TimeWindow::default().check("{}"), Verdict::Keep);
        assert_eq!(TimeWindow::default().check("not json"), Verdict::Keep);
    }

    #[test]
    fn missing_or_unreadable_timestamps_are_their_own_verdict() {
        let w = window(Some("2024-05-01"), None);
        assert_eq!(w.check("{\"type\":\"track\"}"), Verdict::NoTimestamp);
        assert_eq!(w.check(&at("last tuesday")), Verdict::NoTimestamp);
        assert_eq!(
            w.check("{\"timestamp\":1714521600000}"),
            Verdict::NoTimestamp
        );
        assert_eq!(w.check("{\"timestamp\":null}"), Verdict::NoTimestamp);
        // Another field, and an escaped key.
        let received = TimeWindow {
            field: "receivedAt".into(),
            ..w.clone()
        };
        assert_eq!(
            received.check("{\"receiv\\u0065dAt\":\"2024-06-01T00:00:00Z\"}"),
            Verdict::Keep
        );
    }
}
