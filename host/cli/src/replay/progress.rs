//! A replay's state: what it replays (the function's and inputs' fingerprints, the time
//! window), which positions of each input are done, the counts so far and how much of
//! the failures file is accounted for; the identity check a resumed run must pass.
//!
//! The state directory holds three files (see [`super::files`] for how they are
//! written):
//!
//! - `state.json`, the snapshot (format below), replaced by atomic rename at every
//!   checkpoint (each second while something changes, and at the end);
//! - `journal.ndjson`, one [`Entry`] per position done since the snapshot, appended as
//!   each one completes and emptied after each snapshot;
//! - `failures.ndjson` (unless `--failures` puts it elsewhere): the failed events.
//!
//! `state.json`:
//!
//! ```json
//! {"format": "segfn-replay-state", "version": 1,
//!  "function": {"path": "/abs/forwarder.wasm", "sha256": "..."},
//!  "inputs": [{"path": "/abs/day1.ndjson.gz", "size": 1048576, "head_sha256": "...",
//!              "positions": null, "done_below": 1500, "done_beyond": [[1502, 1504]]}],
//!  "window": {"since": "2024-05-01T00:00:00Z", "until": null, "field": "timestamp"},
//!  "failures": {"path": "/abs/.segfn-replay/day1-1a2b3c4d/failures.ndjson", "bytes": 4096},
//!  "counts": {"success": 1490, "retry": 2, ..., "malformed": 1, "retried_sends": 6},
//!  "malformed": [{"input": "day1.ndjson.gz", "line": 12, "error": "not valid JSON: ..."}],
//!  "finished": false, "started_at": "...", "updated_at": "..."}
//! ```
//!
//! `positions` is the number of positions an input holds, once it has been read to
//! its end; the replay is finished when every input's is known and all are done.
//! `failures.bytes` is the failures file's length that the recorded fates account for:
//! a resumed run cuts the file back to it, so an event whose failure line was written
//! but whose fate was not recorded is not listed twice when it is sent again.

use super::done::{DoneRecord, DoneSet};
use super::filter::TimeWindow;
use super::summary::{Counts, Fate, MalformedLine};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The snapshot's `format` field.
pub const FORMAT: &str = "segfn-replay-state";
/// The snapshot's `version`.
pub const VERSION: u32 = 1;
/// How much of an input's start is hashed to recognise it (with its size).
pub const HEAD_BYTES: u64 = 1 << 20;
/// Malformed lines kept for the summary; the count goes on beyond.
pub const MALFORMED_KEPT: usize = 1000;

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading or writing a file of the state directory failed (the cause is the
    /// error's source).
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `state.json` is not a replay state this version can read.
    #[error("{path} is not a segfn replay state this version can read: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl StateError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
        move |source| StateError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The function replayed: resuming with another one would skip events it never saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionId {
    /// The `.wasm` file.
    pub path: String,
    /// SHA-256 of its bytes, in hex.
    pub sha256: String,
}

impl FunctionId {
    /// The fingerprint of `wasm`, loaded from `path`.
    pub fn new(path: &Path, wasm: &[u8]) -> FunctionId {
        FunctionId {
            path: path.display().to_string(),
            sha256: hex::encode(Sha256::digest(wasm)),
        }
    }
}

/// An input as recognised again: its path, size, and a hash of its first MiB (so a
/// file replaced by another of the same size is told apart, without reading gigabytes).
/// Stdin (`-`) and other inputs that are not regular files (a pipe, `<(zcat ...)`) have
/// neither: reading their start would consume it, and they cannot be recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputId {
    /// The canonical path, or `-`.
    pub path: String,
    /// Its size in bytes (compressed, as stored).
    pub size: Option<u64>,
    /// SHA-256 of its first [`HEAD_BYTES`], in hex.
    pub head_sha256: Option<String>,
}

impl InputId {
    /// Fingerprints the file at `path` (`-`: stdin, not fingerprinted).
    pub fn of(path: &Path) -> Result<InputId, std::io::Error> {
        let unverifiable = |path: String| InputId {
            path,
            size: None,
            head_sha256: None,
        };
        if path == Path::new("-") {
            return Ok(unverifiable("-".into()));
        }
        // Before canonicalising: /dev/fd/63 resolves to a pipe with no path.
        if !std::fs::metadata(path)?.is_file() {
            return Ok(unverifiable(path.display().to_string()));
        }
        let canonical = std::fs::canonicalize(path)?;
        let file = std::fs::File::open(&canonical)?;
        let size = file.metadata()?.len();
        let mut head = Vec::new();
        file.take(HEAD_BYTES).read_to_end(&mut head)?;
        Ok(InputId {
            path: canonical.display().to_string(),
            size: Some(size),
            head_sha256: Some(hex::encode(Sha256::digest(&head))),
        })
    }

    /// Whether it cannot be recognised again (stdin, a pipe).
    pub fn unverifiable(&self) -> bool {
        self.size.is_none()
    }
}

/// One input's part of the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputState {
    /// What the input is.
    pub id: InputId,
    /// How many positions it holds, once read to its end.
    pub positions: Option<u64>,
    /// Which positions are done.
    pub done: DoneSet,
}

impl InputState {
    /// Whether every position is done (the input has been read to its end).
    pub fn complete(&self) -> bool {
        self.positions.is_some_and(|n| self.done.watermark() >= n)
    }
}

/// What a replay is of: a resumed run must match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The function.
    pub function: FunctionId,
    /// The inputs, in order.
    pub inputs: Vec<InputId>,
    /// The time window.
    pub window: TimeWindow,
}

/// One position's fate, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The input (index in the command line's order).
    pub input: usize,
    /// The position.
    pub pos: u64,
    /// What became of it.
    pub fate: Fate,
    /// Tries beyond the first.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// The line it was on.
    pub line: u64,
    /// The array element it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<u64>,
    /// For a malformed line, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a failure: the failures file's length once its line was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures_end: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The whole state, in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// What is replayed.
    pub identity: Identity,
    /// Per input, in order.
    pub inputs: Vec<InputState>,
    /// The inputs as given on the command line, for messages.
    pub input_names: Vec<String>,
    /// The failures file.
    pub failures_path: PathBuf,
    /// Its length accounted for by recorded fates.
    pub failures_bytes: u64,
    /// Counts so far.
    pub counts: Counts,
    /// Malformed lines so far (the first [`MALFORMED_KEPT`]).
    pub malformed: Vec<MalformedLine>,
    /// Whether the replay has finished.
    pub finished: bool,
    /// When the replay began.
    pub started_at: String,
}

impl State {
    /// A new replay of `identity`, nothing done.
    pub fn new(identity: Identity, input_names: Vec<String>, failures_path: PathBuf) -> State {
        State {
            inputs: identity
                .inputs
                .iter()
                .map(|id| InputState {
                    id: id.clone(),
                    positions: None,
                    done: DoneSet::default(),
                })
                .collect(),
            identity,
            input_names,
            failures_path,
            failures_bytes: 0,
            counts: Counts::default(),
            malformed: Vec::new(),
            finished: false,
            started_at: now(),
        }
    }

    /// Records an entry; `false` (and nothing changes) when its position was already
    /// done, so a journal replayed twice counts nothing twice.
    pub fn apply(&mut self, entry: &Entry) -> bool {
        let Some(input) = self.inputs.get_mut(entry.input) else {
            return false;
        };
        if !input.done.mark(entry.pos) {
            return false;
        }
        self.counts.add(entry.fate, entry.retries);
        if let Some(end) = entry.failures_end {
            self.failures_bytes = self.failures_bytes.max(end);
        }
        if entry.fate == Fate::Malformed && self.malformed.len() < MALFORMED_KEPT {
            self.malformed.push(MalformedLine {
                input: self
                    .input_names
                    .get(entry.input)
                    .cloned()
                    .unwrap_or_default(),
                line: entry.line,
                element: entry.element,
                error: entry.error.clone().unwrap_or_default(),
            });
        }
        true
    }

    /// Positions done, over all inputs.
    pub fn done(&self) -> u64 {
        self.inputs.iter().map(|i| i.done.len()).sum()
    }

    /// Whether every input has been read to its end and all of it is done.
    pub fn all_complete(&self) -> bool {
        self.inputs.iter().all(InputState::complete)
    }

    /// Why this state cannot be resumed as a replay of `new`, if it cannot.
    pub fn mismatch(&self, new: &Identity) -> Option<String> {
        let old = &self.identity;
        if old.function.sha256 != new.function.sha256 {
            return Some(format!(
                "the state records a replay through another function ({}, sha256 {}); this one is {} (sha256 {})",
                old.function.path,
                short(&old.function.sha256),
                new.function.path,
                short(&new.function.sha256)
            ));
        }
        if old.inputs.len() != new.inputs.len() {
            return Some(format!(
                "the state records a replay of {} inputs; this one has {}",
                old.inputs.len(),
                new.inputs.len()
            ));
        }
        for (o, n) in old.inputs.iter().zip(&new.inputs) {
            if n.unverifiable() {
                return Some(format!(
                    "the input {} is stdin or a pipe, which cannot be checked to be the same input as before",
                    n.path
                ));
            }
            if o != n {
                let what = if o.path != n.path {
                    format!("{} (was {})", n.path, o.path)
                } else {
                    format!("{} has changed since (size or content)", n.path)
                };
                return Some(format!("the inputs differ from the state's: {what}"));
            }
        }
        if old.window != new.window {
            return Some(format!(
                "the state records another time window ({}); this one is {}",
                describe(&old.window),
                describe(&new.window)
            ));
        }
        None
    }

    /// Takes `new` as the identity (after `--force`): inputs at the same index keep
    /// what was done, inputs beyond the old ones start from nothing.
    pub fn adopt(&mut self, new: Identity, input_names: Vec<String>) {
        let mut inputs = Vec::with_capacity(new.inputs.len());
        for (i, id) in new.inputs.iter().enumerate() {
            let mut input = self.inputs.get(i).cloned().unwrap_or(InputState {
                id: id.clone(),
                positions: None,
                done: DoneSet::default(),
            });
            input.id = id.clone();
            inputs.push(input);
        }
        self.inputs = inputs;
        self.identity = new;
        self.input_names = input_names;
        self.finished = false;
    }

    /// The snapshot as written to `state.json`.
    pub fn to_snapshot(&self) -> Snapshot {
        Snapshot {
            format: FORMAT.into(),
            version: VERSION,
            function: self.identity.function.clone(),
            inputs: self
                .inputs
                .iter()
                .zip(&self.input_names)
                .map(|(i, name)| InputRecord {
                    name: name.clone(),
                    id: i.id.clone(),
                    positions: i.positions,
                    done: DoneRecord::from(&i.done),
                })
                .collect(),
            window: self.identity.window.clone(),
            failures: FailuresRecord {
                path: self.failures_path.clone(),
                bytes: self.failures_bytes,
            },
            counts: self.counts.clone(),
            malformed: self.malformed.clone(),
            finished: self.finished,
            started_at: self.started_at.clone(),
            updated_at: now(),
        }
    }

    /// The state a snapshot describes.
    pub fn from_snapshot(snapshot: Snapshot) -> State {
        State {
            identity: Identity {
                function: snapshot.function,
                inputs: snapshot.inputs.iter().map(|i| i.id.clone()).collect(),
                window: snapshot.window,
            },
            input_names: snapshot.inputs.iter().map(|i| i.name.clone()).collect(),
            inputs: snapshot
                .inputs
                .iter()
                .map(|i| InputState {
                    id: i.id.clone(),
                    positions: i.positions,
                    done: DoneSet::from(&i.done),
                })
                .collect(),
            failures_path: snapshot.failures.path,
            failures_bytes: snapshot.failures.bytes,
            counts: snapshot.counts,
            malformed: snapshot.malformed,
            finished: snapshot.finished,
            started_at: snapshot.started_at,
        }
    }
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The function.
    pub function: FunctionId,
    /// The inputs.
    pub inputs: Vec<InputRecord>,
    /// The time window.
    pub window: TimeWindow,
    /// The failures file.
    pub failures: FailuresRecord,
    /// Counts so far.
    pub counts: Counts,
    /// Malformed lines so far (the first 1000).
    #[serde(default)]
    pub malformed: Vec<MalformedLine>,
    /// Whether the replay finished.
    pub finished: bool,
    /// When the replay began.
    pub started_at: String,
    /// When this snapshot was written.
    pub updated_at: String,
}

/// One input in `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// As given on the command line.
    pub name: String,
    /// Its fingerprint.
    #[serde(flatten)]
    pub id: InputId,
    /// How many positions it holds, once read to its end.
    pub positions: Option<u64>,
    /// Which are done.
    #[serde(flatten)]
    pub done: DoneRecord,
}

/// The failures file in `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailuresRecord {
    /// Where it is.
    pub path: PathBuf,
    /// The length its recorded lines take.
    pub bytes: u64,
}

/// The state directory for a replay of `inputs` when `--state-dir` is not given:
/// `.segfn-replay/<first input's name>-<hash of all inputs' paths>` in the current
/// directory, so the same command finds the same state.
pub fn default_dir(inputs: &[PathBuf]) -> PathBuf {
    let mut hash = Sha256::new();
    for input in inputs {
        let path = std::fs::canonicalize(input).unwrap_or_else(|_| input.clone());
        hash.update(path.as_os_str().as_encoded_bytes());
        hash.update([0]);
    }
    let stem = inputs
        .first()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n != "-")
        .unwrap_or_else(|| "stdin".into());
    // Only characters that are safe in any file name.
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let digest = hex::encode(hash.finalize());
    PathBuf::from(".segfn-replay").join(format!("{stem}-{}", &digest[..8]))
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn describe(w: &TimeWindow) -> String {
    let fmt = |t: Option<time::OffsetDateTime>| {
        t.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into())
    };
    format!(
        "--since {} --until {} on {}",
        fmt(w.since),
        fmt(w.until),
        w.field
    )
}

fn now() -> String {
    segfn_engine::input::iso8601_millis(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            function: FunctionId::new(Path::new("f.wasm"), b"wasm"),
            inputs: vec![InputId {
                path: "/data/a.ndjson".into(),
                size: Some(10),
                head_sha256: Some("ab".into()),
            }],
            window: TimeWindow::default(),
        }
    }

    fn entry(pos: u64, fate: Fate) -> Entry {
        Entry {
            input: 0,
            pos,
            fate,
            retries: 0,
            line: pos + 1,
            element: None,
            error: None,
            failures_end: None,
        }
    }

    #[test]
    fn entries_count_once_and_track_the_failures_file() {
        let mut s = State::new(identity(), vec!["a.ndjson".into()], "f".into());
        assert!(s.apply(&entry(1, Fate::Success)));
        assert!(s.apply(&Entry {
            failures_end: Some(120),
            retries: 2,
            ..entry(0, Fate::Retry)
        }));
        assert!(s.apply(&Entry {
            error: Some("not valid JSON".into()),
            ..entry(2, Fate::Malformed)
        }));
        // The same entry again (a journal replayed over a snapshot that has it).
        assert!(!s.apply(&entry(1, Fate::Success)));
        assert_eq!(s.counts.success, 1);
        assert_eq!((s.counts.retry, s.counts.retried_sends), (1, 2));
        assert_eq!(s.failures_bytes, 120);
        assert_eq!(s.malformed[0].to_string(), "a.ndjson:3: not valid JSON");
        assert_eq!(s.done(), 3);
        assert!(!s.all_complete(), "the input has not been read to its end");
        s.inputs[0].positions = Some(3);
        assert!(s.all_complete());
    }

    #[test]
    fn the_snapshot_round_trips_through_json() {
        let mut s = State::new(identity(), vec!["a.ndjson".into()], "f".into());
        for p in [0, 1, 2, 5, 7] {
            s.apply(&entry(p, Fate::Success));
        }
        s.identity.window.since =
            Some(super::super::filter::parse_bound("--since", "2024-05-01").unwrap());
        let json = serde_json::to_string_pretty(&s.to_snapshot()).unwrap();
        assert!(json.contains("\"done_below\": 3"), "{json}");
        assert!(
            json.contains("\"since\": \"2024-05-01T00:00:00Z\""),
            "{json}"
        );
        let back = State::from_snapshot(serde_json::from_str(&json).unwrap());
        assert_eq!(back, s);
    }

    #[test]
    fn a_resumed_run_must_replay_the_same_things() {
        let s = State::new(identity(), vec!["a".into()], "f".into());
        assert_eq!(s.mismatch(&identity()), None);
        let mut other = identity();
        other.function = FunctionId::new(Path::new("g.wasm"), b"other");
        assert!(s.mismatch(&other).unwrap().contains("another function"));
        let mut other = identity();
        other.inputs[0].size = Some(11);
        assert!(s.mismatch(&other).unwrap().contains("has changed"));
        let mut other = identity();
        other.inputs[0].path = "/data/b.ndjson".into();
        assert!(s.mismatch(&other).unwrap().contains("(was /data/a.ndjson)"));
        let mut other = identity();
        other.inputs.push(other.inputs[0].clone());
        assert!(s.mismatch(&other).unwrap().contains("1 inputs"));
        let mut other = identity();
        other.window.field = "receivedAt".into();
        assert!(s.mismatch(&other).unwrap().contains("time window"));
        let mut other = identity();
        other.inputs[0] = InputId::of(Path::new("-")).unwrap();
        assert!(s.mismatch(&other).unwrap().contains("stdin or a pipe"));
        // Not a regular file: not read to fingerprint it (that would consume a pipe).
        let dev = InputId::of(Path::new("/dev/null")).unwrap();
        assert!(dev.unverifiable() && dev.path == "/dev/null");
        // The function's path alone may change (a rebuild to another target dir).
        let mut other = identity();
        other.function.path = "elsewhere/f.wasm".into();
        assert_eq!(s.mismatch(&other), None);
    }

    #[test]
    fn forcing_keeps_what_was_done_by_index() {
        let mut s = State::new(identity(), vec!["a".into()], "f".into());
        s.apply(&entry(0, Fate::Success));
        let mut new = identity();
        new.inputs.push(InputId {
            path: "/data/b".into(),
            size: Some(1),
            head_sha256: None,
        });
        s.adopt(new.clone(), vec!["a".into(), "b".into()]);
        assert_eq!(s.mismatch(&new), None);
        assert!(s.inputs[0].done.contains(0));
        assert!(s.inputs[1].done.is_empty());
    }

    #[test]
    fn default_dirs_differ_by_inputs_and_are_stable() {
        let a = default_dir(&["x/day 1.ndjson.gz".into()]);
        assert_eq!(a, default_dir(&["x/day 1.ndjson.gz".into()]));
        assert!(a.starts_with(".segfn-replay"));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("day_1.ndjson.gz-"), "{name}");
        assert_ne!(a, default_dir(&["x/day 2.ndjson.gz".into()]));
        let stdin = default_dir(&["-".into()]);
        assert!(
            stdin
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("stdin-")
        );
    }
}
