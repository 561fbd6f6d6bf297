//! What a replay did: counts by final outcome (and of what was not sent: malformed
//! lines, events outside the time window), the malformed lines with their numbers,
//! the most frequent failure messages, and the text printed at the end.

use segfn_engine::outcome::OutcomeKind;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// What became of one position of an input: its event's final outcome, or why nothing
/// was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// The function succeeded.
    Success,
    /// `DropEvent`.
    Dropped,
    /// Still a retry after `--retries` more tries.
    Retry,
    /// No handler for the type, or `EventNotSupported`.
    UnsupportedEventType,
    /// `InvalidEventPayload` or `ValidationError`.
    MessageRejected,
    /// Any other error.
    BadRequest,
    /// The settings do not fit the function.
    InvalidSettings,
    /// The line or element is not a message: nothing sent.
    Malformed,
    /// Outside `--since`/`--until`: nothing sent.
    OutsideWindow,
    /// No readable timestamp while a window is set: nothing sent.
    NoTimestamp,
}

impl From<OutcomeKind> for Fate {
    fn from(kind: OutcomeKind) -> Fate {
        match kind {
            OutcomeKind::Success => Fate::Success,
            OutcomeKind::Dropped => Fate::Dropped,
            OutcomeKind::Retry => Fate::Retry,
            OutcomeKind::UnsupportedEventType => Fate::UnsupportedEventType,
            OutcomeKind::MessageRejected => Fate::MessageRejected,
            OutcomeKind::BadRequest => Fate::BadRequest,
            OutcomeKind::InvalidSettings => Fate::InvalidSettings,
        }
    }
}

impl Fate {
    /// Whether the event failed: it goes to the failures file and makes the exit status
    /// non-zero. `unsupported_event_type` is not a failure: the function has no handler
    /// for that type, which Segment neither retries nor treats as an error, and an
    /// archive holds every type.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Fate::Retry | Fate::MessageRejected | Fate::BadRequest | Fate::InvalidSettings
        )
    }

    /// Whether the function was invoked for it.
    pub fn was_sent(self) -> bool {
        !matches!(
            self,
            Fate::Malformed | Fate::OutsideWindow | Fate::NoTimestamp
        )
    }

    /// The name used in the summary and the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Success => "success",
            Fate::Dropped => "dropped",
            Fate::Retry => "retry",
            Fate::UnsupportedEventType => "unsupported_event_type",
            Fate::MessageRejected => "message_rejected",
            Fate::BadRequest => "bad_request",
            Fate::InvalidSettings => "invalid_settings",
            Fate::Malformed => "malformed",
            Fate::OutsideWindow => "outside_window",
            Fate::NoTimestamp => "no_timestamp",
        }
    }
}

/// Counts over the whole replay (every run of it, when resumed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Final outcome `success`.
    pub success: u64,
    /// Final outcome `dropped`.
    pub dropped: u64,
    /// Final outcome `retry` (retries exhausted).
    pub retry: u64,
    /// Final outcome `unsupported_event_type`.
    pub unsupported_event_type: u64,
    /// Final outcome `message_rejected`.
    pub message_rejected: u64,
    /// Final outcome `bad_request`.
    pub bad_request: u64,
    /// Final outcome `invalid_settings`.
    pub invalid_settings: u64,
    /// Malformed lines or elements, skipped.
    pub malformed: u64,
    /// Events outside `--since`/`--until`, skipped.
    pub outside_window: u64,
    /// Events without a readable timestamp while a window is set, skipped.
    pub no_timestamp: u64,
    /// Invocations beyond each event's first (retries).
    pub retried_sends: u64,
}

impl Counts {
    /// Adds one position's fate, and the retries it took.
    pub fn add(&mut self, fate: Fate, retries: u32) {
        *self.slot(fate) += 1;
        self.retried_sends += u64::from(retries);
    }

    fn slot(&mut self, fate: Fate) -> &mut u64 {
        match fate {
            Fate::Success => &mut self.success,
            Fate::Dropped => &mut self.dropped,
            Fate::Retry => &mut self.retry,
            Fate::UnsupportedEventType => &mut self.unsupported_event_type,
            Fate::MessageRejected => &mut self.message_rejected,
            Fate::BadRequest => &mut self.bad_request,
            Fate::InvalidSettings => &mut self.invalid_settings,
            Fate::Malformed => &mut self.malformed,
            Fate::OutsideWindow => &mut self.outside_window,
            Fate::NoTimestamp => &mut self.no_timestamp,
        }
    }

    /// The count for `fate`.
    pub fn get(&self, fate: Fate) -> u64 {
        *self.clone().slot(fate)
    }

    /// Events that reached a final outcome.
    pub fn sent(&self) -> u64 {
        FATES
            .iter()
            .filter(|f| f.was_sent())
            .map(|&f| self.get(f))
            .sum()
    }

    /// Events that failed (see [`Fate::is_failure`]).
    pub fn failed(&self) -> u64 {
        FATES
            .iter()
            .filter(|f| f.is_failure())
            .map(|&f| self.get(f))
            .sum()
    }
}

/// Every fate, in the summary's order: the outcomes as the outcome table lists them
/// from the best, then what was not sent.
pub const FATES: [Fate; 10] = [
    Fate::Success,
    Fate::Dropped,
    Fate::UnsupportedEventType,
    Fate::MessageRejected,
    Fate::InvalidSettings,
    Fate::BadRequest,
    Fate::Retry,
    Fate::Malformed,
    Fate::OutsideWindow,
    Fate::NoTimestamp,
];

/// A line or element that is not a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedLine {
    /// The input, as given on the command line.
    pub input: String,
    /// The line (1-based) it starts on.
    pub line: u64,
    /// For a JSON array input, the element (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<u64>,
    /// Why it is malformed.
    pub error: String,
}

impl std::fmt::Display for MalformedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.input, self.line)?;
        if let Some(element) = self.element {
            write!(f, "element {element}: ")?;
        }
        f.write_str(&self.error)
    }
}

/// One failure message and how often it was seen in this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureMessage {
    /// The outcome.
    pub fate: Fate,
    /// The function's message (secrets redacted).
    pub message: String,
    /// How many events ended with it.
    pub count: u64,
}

/// How a run of the replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Every input was read to its end and every event reached an outcome.
    Finished,
    /// Stopped early (Ctrl-C, SIGTERM): `--resume` continues.
    Interrupted,
    /// An input could not be read to its end (see `read_errors`): `--resume` retries it.
    Incomplete,
}

/// The report at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// How the run ended.
    pub ending: Ending,
    /// Counts over the whole replay, earlier runs of a resumed replay included.
    pub counts: Counts,
    /// Events that reached an outcome in this run.
    pub sent_this_run: u64,
    /// Positions skipped in this run because an earlier run had done them.
    pub done_before: u64,
    /// How long this run took.
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// Malformed lines, first ones first (at most the first 1000 are kept).
    pub malformed: Vec<MalformedLine>,
    /// This run's failure messages, most frequent first (at most 10).
    pub failure_messages: Vec<FailureMessage>,
    /// Inputs that could not be read to their end, with the cause.
    pub read_errors: Vec<String>,
    /// Where the failed events are, as NDJSON.
    pub failures_file: PathBuf,
    /// The state directory, for `--resume`.
    pub state_dir: PathBuf,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Exit status when some events failed (their final outcome was a failure).
pub const EXIT_EVENTS_FAILED: u8 = 3;
/// Exit status when the replay was interrupted (as a shell reports SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// How many malformed lines the summary lists.
const MALFORMED_SHOWN: usize = 10;

impl Summary {
    /// Events per second in this run.
    pub fn rate(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 {
            self.sent_this_run as f64 / secs
        } else {
            0.0
        }
    }

    /// The exit status: interrupted first, then an input not read to its end
    /// ([`segfn_engine::outcome::EXIT_FAILURE`]), then failed events, else 0. Malformed lines
    /// and events outside the window do not change it: they are reported.
    pub fn exit_code(&self) -> u8 {
        match self.ending {
            Ending::Interrupted => EXIT_INTERRUPTED,
            Ending::Incomplete => segfn_engine::outcome::EXIT_FAILURE,
            Ending::Finished if self.counts.failed() > 0 => EXIT_EVENTS_FAILED,
            Ending::Finished => 0,
        }
    }

    /// The summary as text for a person.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let how = match self.ending {
            Ending::Finished => "finished",
            Ending::Interrupted => "interrupted",
            Ending::Incomplete => "incomplete",
        };
        let _ = writeln!(
            out,
            "replay {how}: {} events in {:.1} s ({:.1}/s)",
            self.sent_this_run,
            self.duration.as_secs_f64(),
            self.rate()
        );
        if self.done_before > 0 {
            let _ = writeln!(
                out,
                "  resumed: {} lines or events done by earlier runs were skipped (counts below include them)",
                self.done_before
            );
        }
        for fate in FATES {
            let label = match fate {
                Fate::Malformed => "malformed (skipped)",
                Fate::OutsideWindow => "outside --since/--until",
                Fate::NoTimestamp => "no timestamp (skipped)",
                other => other.as_str(),
            };
            let _ = writeln!(out, "  {label:<26} {:>9}", self.counts.get(fate));
        }
        if self.counts.retried_sends > 0 {
            let _ = writeln!(
                out,
                "  {:<26} {:>9}",
                "retried sends", self.counts.retried_sends
            );
        }
        for m in self.malformed.iter().take(MALFORMED_SHOWN) {
            let _ = writeln!(out, "  malformed: {m}");
        }
        let unlisted = self.counts.malformed.saturating_sub(MALFORMED_SHOWN as u64);
        if unlisted > 0 {
            let _ = writeln!(out, "  ... and {unlisted} more malformed");
        }
        for f in &self.failure_messages {
            let _ = writeln!(out, "  {} x{}: {}", f.fate.as_str(), f.count, f.message);
        }
        for e in &self.read_errors {
            let _ = writeln!(out, "  read error: {e}");
        }
        let failed = self.counts.failed();
        if failed > 0 {
            let _ = writeln!(
                out,
                "{failed} events failed; they are in {} (replay them with --input)",
                self.failures_file.display()
            );
        }
        if self.ending != Ending::Finished {
            let _ = writeln!(
                out,
                "state in {}: run the same command with --resume to go on",
                self.state_dir.display()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_by_fate() {
        let mut c = Counts::default();
        c.add(Fate::Success, 0);
        c.add(Fate::Retry, 2);
        c.add(Fate::MessageRejected, 0);
        c.add(Fate::UnsupportedEventType, 1);
        c.add(Fate::Malformed, 0);
        c.add(Fate::OutsideWindow, 0);
        assert_eq!((c.sent(), c.failed(), c.retried_sends), (4, 2, 3));
        for kind in OutcomeKind::ALL {
            assert_eq!(Fate::from(kind).as_str(), kind.as_str());
        }
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["unsupported_event_type"], 1);
        assert_eq!(
            serde_json::to_value(Fate::NoTimestamp).unwrap(),
            "no_timestamp"
        );
    }

    #[test]
    fn the_text_names_every_outcome_and_the_files() {
        let mut counts = Counts::default();
        counts.add(Fate::Success, 0);
        counts.add(Fate::BadRequest, 0);
        counts.add(Fate::Malformed, 0);
        let summary = Summary {
            ending: Ending::Interrupted,
            counts,
            sent_this_run: 2,
            done_before: 0,
            duration: Duration::from_secs(2),
            malformed: vec![MalformedLine {
                input: "a.ndjson".into(),
                line: 7,
                element: None,
                error: "not valid JSON".into(),
            }],
            failure_messages: vec![],
            read_errors: vec![],
            failures_file: "f.ndjson".into(),
            state_dir: "st".into(),
        };
        assert_eq!(summary.exit_code(), EXIT_INTERRUPTED);
        let text = summary.render();
        for want in [
            "replay interrupted: 2 events in 2.0 s (1.0/s)",
            "success",
            "invalid_settings",
            "malformed: a.ndjson:7: not valid JSON",
            "1 events failed; they are in f.ndjson",
            "--resume",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
    }
}
