//! The report of one invocation, as Segment's function tester shows it: outcome, logs,
//! request trace, output and resource use; as JSON (`--json`) or for a terminal.

use crate::fetch::TraceEntry;
use crate::outcome::{Outcome, row};
use crate::redact::Redactor;
use segfn_sdk::abi::{EventResult, LogLevel};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

/// One log line the function wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// The text.
    pub message: String,
}

/// Resources one invocation used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Wasm instructions executed (fuel consumed).
    pub instructions: u64,
    /// Peak linear memory, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time of the invocation, instantiation included.
    pub duration_ms: f64,
}

/// What ended an invocation when the function did not return a result: which limit,
/// which kind of fault. Callers decide on it (a batch that hit the memory limit as a
/// whole is retried, a host fault is not described to the sender) without reading
/// messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The wall-clock deadline passed.
    Deadline,
    /// The memory limit was hit.
    Memory,
    /// The instruction limit was hit.
    Instructions,
    /// The result was larger than the output limit.
    Output,
    /// The guest broke the ABI (bad pointers, frames, results, host calls out of turn).
    Abi,
    /// The guest panicked.
    Panic,
    /// The guest trapped (unreachable, out-of-bounds access, stack overflow, ...).
    Trap,
    /// The host failed (no instance slot, an engine error): not the guest's doing.
    Host,
}

impl Fault {
    /// Lower-case name, as serialized in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Fault::Deadline => "deadline",
            Fault::Memory => "memory",
            Fault::Instructions => "instructions",
            Fault::Output => "output",
            Fault::Abi => "abi",
            Fault::Panic => "panic",
            Fault::Trap => "trap",
            Fault::Host => "host",
        }
    }

    /// Limits that a batch can hit as a whole although each of its events would fit:
    /// such a batch is worth retrying (or splitting), not dropping.
    pub fn is_size_limit(self) -> bool {
        matches!(self, Fault::Memory | Fault::Output | Fault::Instructions)
    }
}

/// What the function returned: for one message, the event an insert function
/// forwards (or nothing); for a batch, one result per event in order; for a source
/// function's request, the Segment calls it made. Serialised as `null`, the event, an
/// array of `{kind, message, output}`, or `{"events": [...], "objects": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(untagged)]
pub enum Output {
    /// Nothing returned (or the invocation failed).
    #[default]
    None,
    /// The event a single-message handler returned.
    Event(Value),
    /// A batch handler's results.
    Batch(Vec<EventResult>),
    /// A source function's calls: `Segment.track/identify/page/screen/group/alias`
    /// (events) and `Segment.set` (objects), in the order made.
    Emitted(Emitted),
}

/// The Segment calls a source function made for one request (the ABI's type).
pub use segfn_sdk::abi::Emitted;

impl Output {
    /// Whether there is nothing.
    pub fn is_none(&self) -> bool {
        matches!(self, Output::None)
    }
}

/// Everything one invocation did. Built by the engine with secrets already redacted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// What ended it, when the function did not return a result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// Log lines, in order.
    pub logs: Vec<LogLine>,
    /// Every outbound request, in order.
    pub requests: Vec<TraceEntry>,
    /// For one message: the event the handler returned, or null. For a batch: one
    /// `{kind, message, output}` per event, in order.
    pub output: Output,
    /// Resource use.
    pub stats: Stats,
}

impl Report {
    /// Replaces secrets in the messages the guest returned (the outcome's and, for a
    /// batch, each event's). Logs and the request trace are redacted where they are
    /// recorded (`imports.rs`, `TraceEntry::record`), before they are cut to size. The
    /// events a function returns are data passed on to Segment, not messages: they are
    /// left exactly as returned (a setting value such as a field name would otherwise
    /// be replaced inside them).
    pub(crate) fn redact(&mut self, redactor: &Redactor) {
        if redactor.is_empty() {
            return;
        }
        if let Some(m) = &mut self.outcome.message {
            *m = redactor.redact(m).into_owned();
        }
        if let Output::Batch(results) = &mut self.output {
            for result in results {
                if let Some(m) = &mut result.message {
                    *m = redactor.redact(m).into_owned();
                }
            }
        }
    }

    /// The report for a terminal, laid out like Segment's tester.
    pub fn render(&self, color: bool) -> String {
        let paint = |code: &str, text: &str| {
            if color {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_owned()
            }
        };
        let bold = |t: &str| paint("1", t);
        let mut out = String::new();
        let row = row(self.outcome.kind);
        let badge = format!(" {} ", self.outcome.kind.as_str().to_uppercase());
        let badge = match self.outcome.kind.as_str() {
            "success" | "dropped" => paint("30;42", &badge),
            "retry" => paint("30;43", &badge),
            _ => paint("97;41", &badge),
        };
        let _ = writeln!(out, "{badge} {}", row.label);
        if let Some(m) = &self.outcome.message {
            let _ = writeln!(out, "{} {m}", bold("Error message:"));
        }

        let _ = writeln!(out, "\n{}", bold("Logs"));
        if self.logs.is_empty() {
            let _ = writeln!(out, "  No logs were received.");
        }
        for line in &self.logs {
            let _ = writeln!(
                out,
                "  {:<5} {}",
                line.level.as_str().to_uppercase(),
                line.message
            );
        }

        let _ = writeln!(out, "\n{}", bold("Request trace"));
        if self.requests.is_empty() {
            let _ = writeln!(out, "  No requests were made.");
        } else {
            let _ = writeln!(
                out,
                "  {:<7} {:<6} {:>10}  URL",
                "METHOD", "STATUS", "DURATION"
            );
            for r in &self.requests {
                let status = r.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
                // A mapped request shows where it went after the URL the function used.
                let sent_to = r
                    .sent_to
                    .as_deref()
                    .map_or_else(String::new, |to| format!(" -> {to}"));
                let _ = writeln!(
                    out,
                    "  {:<7} {:<6} {:>7.1} ms  {}{sent_to}",
                    r.method, status, r.duration_ms, r.url
                );
                if let Some(e) = &r.error {
                    let _ = writeln!(out, "          ↳ {e}");
                }
                if let Some(body) = &r.request_body
                    && !body.is_empty()
                {
                    let _ = writeln!(out, "          → {body}");
                }
                if let Some(body) = &r.response_body
                    && !body.is_empty()
                {
                    let _ = writeln!(out, "          ← {body}");
                }
            }
        }

        if !self.output.is_none() {
            let _ = writeln!(out, "\n{}", bold("Output"));
            let pretty = serde_json::to_string_pretty(&self.output).unwrap_or_default();
            for line in pretty.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }

        let _ = writeln!(out, "\n{}", bold("Resources"));
        let _ = writeln!(
            out,
            "  instructions {}   memory {}   time {:.1} ms",
            group_thousands(self.stats.instructions),
            crate::limits::bytes(self.stats.memory_bytes),
            self.stats.duration_ms
        );
        out
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_sdk::OutcomeKind;

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(1234567), "1,234,567");
        assert_eq!(group_thousands(100), "100");
    }

    #[test]
    fn render_shows_every_section_without_color_codes() {
        let report = Report {
            outcome: Outcome::new(OutcomeKind::Retry, "partner answered 503"),
            logs: vec![LogLine {
                level: LogLevel::Info,
                message: "hello".into(),
            }],
            requests: vec![],
            output: Output::None,
            fault: None,
            stats: Stats {
                instructions: 1500,
                memory_bytes: 1 << 20,
                duration_ms: 2.0,
            },
        };
        let text = report.render(false);
        for needle in [
            " RETRY  Retry",
            "Error message: partner answered 503",
            "INFO  hello",
            "No requests were made.",
            "instructions 1,500",
            "memory 1 MiB",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn a_mapped_request_shows_its_url_and_where_it_went() {
        let entry = |sent_to: Option<&str>| TraceEntry {
            method: "POST".into(),
            url: "https://api.partner.example/v1/track".into(),
            sent_to: sent_to.map(str::to_owned),
            status: Some(200),
            duration_ms: 1.0,
            request_bytes: 2,
            response_bytes: 2,
            error: None,
            request_headers: None,
            request_body: None,
            response_body: None,
        };
        let report = Report {
            outcome: Outcome::new(OutcomeKind::Success, ""),
            logs: vec![],
            requests: vec![entry(Some("http://127.0.0.1:9000")), entry(None)],
            output: Output::None,
            fault: None,
            stats: Stats {
                instructions: 1,
                memory_bytes: 1,
                duration_ms: 1.0,
            },
        };
        let text = report.render(false);
        assert!(
            text.contains("https://api.partner.example/v1/track -> http://127.0.0.1:9000\n"),
            "{text}"
        );
        assert!(
            text.contains("https://api.partner.example/v1/track\n"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["requests"][0]["sent_to"], "http://127.0.0.1:9000");
        assert!(json["requests"][1].get("sent_to").is_none());
    }
}
