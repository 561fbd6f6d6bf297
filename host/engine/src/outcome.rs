//! The outcome table (docs/ARCHITECTURE.md, decision 6): for each outcome kind, its
//! CLI exit code, the HTTP status the endpoint answers with, and whether Segment
//! retries it. One table, here.

pub use segfn_sdk::OutcomeKind;
use serde::Serialize;

/// How one invocation ended, with the message that explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The kind, named as Segment names delivery outcomes.
    pub kind: OutcomeKind,
    /// What happened, for anything but plain success. Secrets are redacted.
    pub message: Option<String>,
}

impl Outcome {
    /// An outcome of `kind` with a message.
    pub fn new(kind: OutcomeKind, message: impl Into<String>) -> Outcome {
        Outcome {
            kind,
            message: Some(message.into()),
        }
    }
}

/// One row of the outcome table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeRow {
    /// The outcome.
    pub kind: OutcomeKind,
    /// `segfn run`'s exit status.
    pub exit_code: u8,
    /// The endpoint's HTTP status (Segment retries 5xx except 501, and 429).
    pub http_status: u16,
    /// Whether Segment delivers the message again.
    pub retried: bool,
    /// Segment's label in its delivery overview.
    pub label: &'static str,
}

/// Exit status for failures that are not an outcome (unreadable file, failed build).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for command-line usage errors.
pub const EXIT_USAGE: u8 = 2;

/// The table, most severe first.
pub const OUTCOMES: [OutcomeRow; 7] = [
    OutcomeRow {
        kind: OutcomeKind::Retry,
        exit_code: 10,
        http_status: 500,
        retried: true,
        label: "Retry",
    },
    OutcomeRow {
        kind: OutcomeKind::BadRequest,
        exit_code: 13,
        http_status: 400,
        retried: false,
        label: "Bad Request",
    },
    OutcomeRow {
        kind: OutcomeKind::InvalidSettings,
        exit_code: 14,
        http_status: 400,
        retried: false,
        label: "Invalid Settings",
    },
    OutcomeRow {
        kind: OutcomeKind::MessageRejected,
        exit_code: 12,
        http_status: 400,
        retried: false,
        label: "Message Rejected",
    },
    OutcomeRow {
        kind: OutcomeKind::UnsupportedEventType,
        exit_code: 11,
        http_status: 501,
        retried: false,
        label: "Unsupported Event Type",
    },
    OutcomeRow {
        kind: OutcomeKind::Dropped,
        exit_code: 0,
        http_status: 200,
        retried: false,
        label: "Dropped",
    },
    OutcomeRow {
        kind: OutcomeKind::Success,
        exit_code: 0,
        http_status: 200,
        retried: false,
        label: "Success",
    },
];

/// The table's row for `kind`.
pub fn row(kind: OutcomeKind) -> &'static OutcomeRow {
    OUTCOMES
        .iter()
        .find(|r| r.kind == kind)
        .expect("the table has a row for every kind")
}

/// The most severe of several outcomes (a batch's overall outcome), or success.
pub fn most_severe(kinds: impl IntoIterator<Item = OutcomeKind>) -> OutcomeKind {
    kinds
        .into_iter()
        .min_by_key(|k| k.severity_rank())
        .unwrap_or(OutcomeKind::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row_and_failures_have_distinct_exit_codes() {
        for kind in OutcomeKind::ALL {
            assert_eq!(
                OUTCOMES.iter().filter(|r| r.kind == kind).count(),
                1,
                "{kind}"
            );
        }
        let mut codes: Vec<u8> = OUTCOMES
            .iter()
            .filter(|r| r.exit_code != 0)
            .map(|r| r.exit_code)
            .collect();
        codes.extend([EXIT_FAILURE, EXIT_USAGE]);
        let n = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), n, "exit codes collide");
        assert_eq!(row(OutcomeKind::Success).exit_code, 0);
        assert_eq!(row(OutcomeKind::Dropped).exit_code, 0);
    }

    #[test]
    fn table_order_is_severity_order() {
        let kinds: Vec<_> = OUTCOMES.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, OutcomeKind::ALL);
        assert_eq!(
            most_severe([
                OutcomeKind::Success,
                OutcomeKind::Retry,
                OutcomeKind::BadRequest
            ]),
            OutcomeKind::Retry
        );
        assert_eq!(most_severe([]), OutcomeKind::Success);
    }
}
