//! The last runs, in memory: each with its event and report (settings are not kept, so
//! the history holds no secret the report did not already redact).

use segfn_engine::Report;
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::sync::Arc;

/// One run: what went in (the event, as sent) and the report.
#[derive(Debug, Serialize)]
pub struct RunRecord {
    /// Counts runs from 1.
    pub id: u64,
    /// When it ran, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What the page called the event (a sample's name, or "Custom event").
    pub label: String,
    /// The build whose module ran.
    pub build: u64,
    /// The event, exactly as sent.
    pub event: Box<RawValue>,
    /// The report, as `segfn run --json` prints it.
    pub report: Report,
}

/// A run as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run's id.
    pub id: u64,
    /// When it ran.
    pub at_ms: u64,
    /// The event's label.
    pub label: String,
    /// The build whose module ran.
    pub build: u64,
    /// The outcome kind.
    pub kind: &'static str,
    /// The outcome's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How long it took.
    pub duration_ms: f64,
    /// How many requests it made.
    pub requests: usize,
}

/// The last `keep` runs.
#[derive(Debug)]
pub(crate) struct History {
    keep: usize,
    next_id: u64,
    runs: VecDeque<Arc<RunRecord>>,
}

impl History {
    pub(crate) fn new(keep: usize) -> History {
        History {
            keep: keep.max(1),
            next_id: 1,
            runs: VecDeque::new(),
        }
    }

    /// Adds a run, forgetting the oldest beyond `keep`; returns it.
    pub(crate) fn add(
        &mut self,
        at_ms: u64,
        label: String,
        build: u64,
        event: Box<RawValue>,
        report: Report,
    ) -> Arc<RunRecord> {
        let record = Arc::new(RunRecord {
            id: self.next_id,
            at_ms,
            label,
            build,
            event,
            report,
        });
        self.next_id += 1;
        self.runs.push_front(record.clone());
        self.runs.truncate(self.keep);
        record
    }

    /// A kept run.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<RunRecord>> {
        self.runs.iter().find(|r| r.id == id).cloned()
    }

    /// The kept runs, newest first.
    pub(crate) fn summaries(&self) -> Vec<RunSummary> {
        self.runs
            .iter()
            .map(|r| RunSummary {
                id: r.id,
                at_ms: r.at_ms,
                label: r.label.clone(),
                build: r.build,
                kind: r.report.outcome.kind.as_str(),
                message: r.report.outcome.message.clone(),
                duration_ms: r.report.stats.duration_ms,
                requests: r.report.requests.len(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use segfn_engine::Outcome;
    use segfn_engine::report::{Output, Stats};
    use segfn_sdk::OutcomeKind;

    fn report() -> Report {
        Report {
            outcome: Outcome {
                kind: OutcomeKind::Success,
                message: None,
            },
            fault: None,
            logs: vec![],
            requests: vec![],
            output: Output::None,
            stats: Stats {
                instructions: 1,
                memory_bytes: 1,
                duration_ms: 1.0,
            },
        }
    }

    #[test]
    fn keeps_the_newest_runs() {
        let mut history = History::new(2);
        for i in 0..3 {
            let event = RawValue::from_string(format!("{{\"n\": {i}}}")).unwrap();
            history.add(i, format!("run {i}"), 1, event, report());
        }
        let ids: Vec<u64> = history.summaries().iter().map(|s| s.id).collect();
        assert_eq!(ids, [3, 2]);
        assert!(history.get(1).is_none());
        assert_eq!(history.get(3).unwrap().event.get(), "{\"n\": 2}");
    }
}
