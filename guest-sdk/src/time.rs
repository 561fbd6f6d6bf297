//! Timestamps as Segment messages carry them: parsing the formats real traffic has, and
//! the conversions partner APIs want (milliseconds or seconds since the epoch, ISO-8601).
//!
//! [`Timestamp::parse`] reads what Segment's own libraries (`new-date`, `@segment/isodate`)
//! read: ISO-8601 with or without separators, fraction and offset (`2014-03-11T09:46:09Z`,
//! `2014-03-11T09:46:09.123456+02:00`, `20140311T094609`), bare dates and partial dates
//! (`2014-03-11`, `2014-03`, even `2014`, which means 2014-01-01T00:00:00Z), and epoch
//! numbers in strings (13 digits: milliseconds; 10 digits: seconds). [`Timestamp::from_json`]
//! also takes JSON numbers (below 31557600000 they are seconds, as `new-date` has it).
//!
//! ```
//! use segfn_sdk::time::Timestamp;
//! let t = Timestamp::parse("2014").unwrap();
//! assert_eq!(t.millis(), 1_388_534_400_000);
//! assert_eq!(t.to_string(), "2014-01-01T00:00:00.000Z");
//! assert_eq!(Timestamp::parse("2014-03-11T09:46:09.5+01:00").unwrap().seconds(), 1_394_527_569);
//! ```
//!
//! Calendar arithmetic is the `time` crate's (built without its `wasm-bindgen` feature, so
//! a Wasm module imports nothing for it); the clock is the host's ([`crate::now_millis`]).

use ::time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// An instant, held in UTC with millisecond precision (as JavaScript's `Date`).
///
/// ```
/// use segfn_sdk::Timestamp;
///
/// // JavaScript: new Date(event.timestamp).getTime()
/// let t = Timestamp::parse("2024-03-01T12:00:00.250+01:00").unwrap();
/// assert_eq!(t.millis(), 1_709_290_800_250);
/// assert_eq!(t.to_iso_string(), "2024-03-01T11:00:00.250Z");
/// assert_eq!(Timestamp::parse("2014").unwrap().seconds(), 1_388_534_400);
/// assert!(Timestamp::parse("yesterday").is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// The host's current time.
    pub fn now() -> Timestamp {
        Timestamp::from_millis(crate::env::now_millis())
            .unwrap_or(Timestamp(OffsetDateTime::UNIX_EPOCH))
    }

    /// The instant `millis` milliseconds after the epoch (`None` beyond year ±9999).
    pub fn from_millis(millis: i64) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .ok()
            .filter(|t| (-9999..=9999).contains(&t.year()))
            .map(Timestamp)
    }

    /// The instant `seconds` seconds after the epoch.
    pub fn from_seconds(seconds: i64) -> Option<Timestamp> {
        Timestamp::from_millis(seconds.checked_mul(1000)?)
    }

    /// Parses a timestamp string the way Segment's libraries do (see the [module](self)):
    /// ISO-8601 in its full, basic and partial forms, or epoch milliseconds (13 digits) or
    /// seconds (10 digits). `None` when it is none of these.
    pub fn parse(text: &str) -> Option<Timestamp> {
        parse_iso(text).or_else(|| {
            let digits = text.trim();
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            match digits.len() {
                13 => Timestamp::from_millis(digits.parse().ok()?),
                10 => Timestamp::from_seconds(digits.parse().ok()?),
                _ => None,
            }
        })
    }

    /// Like [`Timestamp::parse`], but only for strings that start with a full date
    /// (`YYYY-MM-DD`): the test Segment uses to tell a date inside free-form properties or
    /// traits from other strings (`"2014"` there is a number-like string, not a date).
    pub fn parse_strict(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        let full_date = b.len() >= 10
            && b[..4]
                .iter()
                .chain(&b[5..7])
                .chain(&b[8..10])
                .all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[7] == b'-';
        if full_date { parse_iso(text) } else { None }
    }

    /// Reads a JSON value as a timestamp: a string as [`Timestamp::parse`] does, a number
    /// as milliseconds since the epoch, or seconds when below 31557600000 (as `new-date`).
    pub fn from_json(value: &Value) -> Option<Timestamp> {
        match value {
            Value::String(s) => Timestamp::parse(s),
            Value::Number(n) => {
                let n = n.as_f64()?;
                let millis = if n.abs() < 31_557_600_000.0 {
                    n * 1000.0
                } else {
                    n
                };
                Timestamp::from_millis(millis.trunc() as i64)
            }
            _ => None,
        }
    }

    /// Milliseconds since the epoch (JavaScript's `date.getTime()`).
    pub fn millis(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Whole seconds since the epoch, rounded down (a Unix time).
    pub fn seconds(&self) -> i64 {
        self.millis().div_euclid(1000)
    }

    /// The instant as the `time` crate's `OffsetDateTime` (in UTC).
    pub fn as_offset_date_time(&self) -> OffsetDateTime {
        self.0
    }

    /// ISO-8601 in UTC with milliseconds, as JavaScript's `toISOString()` and
    /// `JSON.stringify(date)` write it: `2014-01-01T00:00:00.000Z`.
    pub fn to_iso_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let year = t.year();
        if (0..=9999).contains(&year) {
            write!(f, "{year:04}")?;
        } else {
            write!(
                f,
                "{}{:06}",
                if year < 0 { '-' } else { '+' },
                year.unsigned_abs()
            )?;
        }
        write!(
            f,
            "-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;
    fn from_str(s: &str) -> Result<Timestamp, String> {
        Timestamp::parse(s).ok_or_else(|| format!("{s:?} is not a timestamp"))
    }
}

impl Serialize for Timestamp {
    /// As an ISO-8601 string, as `JSON.stringify` writes a `Date`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Timestamp::from_json(&value)
            .ok_or_else(|| serde::de::Error::custom(format!("{value} is not a timestamp")))
    }
}

/// A cursor over ASCII text, for the ISO-8601 grammar below.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.0.first() == Some(&c);
        if hit {
            self.0 = &self.0[1..];
        }
        hit
    }

    /// Exactly `n` digits, or nothing consumed.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let head = self.0.get(..n)?;
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = &self.0[n..];
        Some(head.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    }

    /// `-?DD` (the separator is optional, as in the basic format).
    fn field(&mut self, sep: u8) -> Option<u32> {
        let saved = self.0;
        self.eat(sep);
        let value = self.digits(2);
        if value.is_none() {
            self.0 = saved;
        }
        value
    }
}

/// `@segment/isodate`'s grammar:
/// `YYYY[-?MM[-?DD]][(T| )hh:?mm[:?ss[(.|,)f+]][Z|(+|-)hh[:?mm]]]`. A space instead of
/// `T` meant the machine's local time there; here it is UTC (a server's zone).
fn parse_iso(text: &str) -> Option<Timestamp> {
    let mut c = Cursor(text.as_bytes());
    let year = c.digits(4)?;
    let month = c.field(b'-');
    let day = month.and_then(|_| c.field(b'-'));
    let (mut hour, mut minute, mut second, mut nanos, mut offset) = (0, 0, 0, 0, 0i32);
    if c.eat(b'T') || c.eat(b' ') {
        hour = c.digits(2)?;
        c.eat(b':');
        minute = c.digits(2)?;
        if let Some(s) = c.field(b':') {
            second = s;
            if c.eat(b'.') || c.eat(b',') {
                let len = c.0.iter().take_while(|b| b.is_ascii_digit()).count();
                if len == 0 {
                    return None;
                }
                // Milliseconds, truncated, as JavaScript keeps them.
                let ms = c.0[..len.min(3)]
                    .iter()
                    .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'));
                nanos = ms * 10u32.pow(3 - len.min(3) as u32) * 1_000_000;
                c.0 = &c.0[len..];
            }
        }
        if !c.eat(b'Z') {
            let sign = if c.eat(b'+') {
                1
            } else if c.eat(b'-') {
                -1
            } else {
                0
            };
            if sign != 0 {
                let hours = c.digits(2)?;
                let minutes = c.field(b':').unwrap_or(0);
                offset = sign * (hours * 3600 + minutes * 60) as i32;
            }
        }
    }
    if !c.0.is_empty() {
        return None;
    }
    let month = Month::try_from(month.unwrap_or(1) as u8).ok()?;
    let date = Date::from_calendar_date(year as i32, month, day.unwrap_or(1) as u8).ok()?;
    // JavaScript lets exactly 24:00 (24:00:00.000) roll over to the next day; so does
    // this. Any later moment of hour 24 is invalid there and here.
    let (date, hour) = if hour == 24 && minute == 0 && second == 0 && nanos == 0 {
        (date.next_day()?, 0)
    } else {
        (date, hour)
    };
    let time = Time::from_hms_nano(hour as u8, minute as u8, second as u8, nanos).ok()?;
    let offset = UtcOffset::from_whole_seconds(offset).ok()?;
    Some(Timestamp(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .to_offset(UtcOffset::UTC),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn iso(text: &str) -> String {
        Timestamp::parse(text).map_or_else(|| "none".into(), |t| t.to_string())
    }

    #[test]
    fn reads_the_formats_segment_traffic_has() {
        assert_eq!(iso("2014"), "2014-01-01T00:00:00.000Z");
        assert_eq!(iso("2014-02"), "2014-02-01T00:00:00.000Z");
        assert_eq!(iso("2014-01-02"), "2014-01-02T00:00:00.000Z");
        assert_eq!(iso("20140102"), "2014-01-02T00:00:00.000Z");
        assert_eq!(iso("2014-03-11T09:46:09.000Z"), "2014-03-11T09:46:09.000Z");
        assert_eq!(iso("2014-03-11T09:46:09Z"), "2014-03-11T09:46:09.000Z");
        assert_eq!(iso("2014-03-11T09:46"), "2014-03-11T09:46:00.000Z");
        assert_eq!(
            iso("2014-03-11T09:46:09.123456789Z"),
            "2014-03-11T09:46:09.123Z"
        );
        assert_eq!(iso("2014-03-11T09:46:09,5Z"), "2014-03-11T09:46:09.500Z");
        assert_eq!(iso("2014-03-11T09:46:09+02:00"), "2014-03-11T07:46:09.000Z");
        assert_eq!(iso("2014-03-11T09:46:09-0130"), "2014-03-11T11:16:09.000Z");
        assert_eq!(iso("2014-03-11T09:46:09+05"), "2014-03-11T04:46:09.000Z");
        assert_eq!(iso("2014-03-11 09:46:09"), "2014-03-11T09:46:09.000Z");
        assert_eq!(iso("1388534400000"), "2014-01-01T00:00:00.000Z");
        assert_eq!(iso("1388534400"), "2014-01-01T00:00:00.000Z");
        // Exactly 24:00 is the next day's start, as in JavaScript.
        assert_eq!(iso("2014-01-01T24:00:00.000Z"), "2014-01-02T00:00:00.000Z");
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for text in [
            "",
            "hello",
            "14",
            "2014-13-01",
            "2014-02-30",
            "2014-01-01T",
            "2014-01-01x",
            "2014-01-01T24:00:00.500Z",
            "2014-01-01T24:00:01Z",
        ] {
            assert_eq!(iso(text), "none", "{text:?}");
        }
        assert!(Timestamp::parse_strict("2014").is_none());
        assert!(Timestamp::parse_strict("2014-01-01").is_some());
    }

    #[test]
    fn json_numbers_are_seconds_or_milliseconds() {
        let t = Timestamp::from_json(&json!(1388534400)).unwrap();
        assert_eq!(t.millis(), 1_388_534_400_000);
        let t = Timestamp::from_json(&json!(1388534400123u64)).unwrap();
        assert_eq!(t.seconds(), 1_388_534_400);
        assert!(Timestamp::from_json(&json!(true)).is_none());
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            json!("2014-01-01T00:00:00.123Z")
        );
    }

    #[test]
    fn seconds_round_down_before_the_epoch() {
        let t = Timestamp::from_millis(-1).unwrap();
        assert_eq!(t.seconds(), -1);
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.999Z");
    }
}
