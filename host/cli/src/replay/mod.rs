//! `segfn replay`: sends archived Segment events (NDJSON or JSON arrays, gzipped or
//! not) through a function, one invocation per event, at a bounded rate and
//! concurrency, with a summary by outcome, a failures file that can itself be replayed,
//! and a state that lets an interrupted replay resume without sending again what
//! already reached an outcome.
//!
//! The parts, each in its own file:
//!
//! - [`source`]: opening an input (a file or stdin; gzip found by its magic bytes),
//!   reading it as NDJSON line by line or as a JSON array element by element
//!   ([`array`]), and numbering what it holds: every event, and every malformed line,
//!   gets a *position*, the unit the state records.
//! - [`filter`]: `--since`/`--until` on the events' timestamps.
//! - [`rate`]: the token bucket behind `--rate`.
//! - [`done`]: which positions of an input are done (a watermark and the set beyond it).
//! - [`progress`]: what the state records (fingerprints, done positions, counts) and the
//!   check a resumed run must pass; [`files`]: its files, a snapshot written by atomic
//!   rename and a journal appended after every event, and the failures file kept
//!   consistent with both.
//! - [`summary`]: the counts by outcome and their rendering.
//! - [`runner`]: the loop that reads, filters, rate-limits, invokes, retries and records.
//!
//! # What a resumed replay guarantees
//!
//! An event is *done* once its final outcome is recorded in the journal (one `write`
//! after the event's failures line, if any, is written). The journal survives the
//! process being killed (`kill -9`): the kernel holds what was written. So after a kill,
//! `--resume` sends again only the events that were in flight when the process died: at
//! most `--concurrency` events (each possibly partway through its retries). After a
//! machine crash or power loss, what was written since the last checkpoint (taken every
//! second, with fsync) may be lost too, so the events completed in that second are also
//! sent again. Nothing recorded as done is ever sent again by `--resume`.

pub mod array;
pub mod done;
pub mod files;
pub mod filter;
pub mod progress;
pub mod rate;
pub mod runner;
pub mod source;
pub mod summary;

pub use filter::TimeWindow;
pub use runner::{Live, Observer, Quiet, ReplayOptions, StartMode, Stop, replay};
pub use summary::{Counts, Summary};

use std::path::PathBuf;

/// Why a replay could not start or could not go on. Problems with single events or
/// lines are not errors: they are counted and reported in the [`Summary`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// An input could not be opened (the cause is the error's source).
    #[error("cannot read {path}")]
    Open {
        /// The input.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A `--since`/`--until` value is not a timestamp.
    #[error(transparent)]
    Filter(#[from] filter::FilterError),
    /// The state directory could not be read or written.
    #[error(transparent)]
    State(#[from] progress::StateError),
    /// The state records a replay of something else (another function, other inputs,
    /// another time window); resuming it would skip the wrong events.
    #[error("{0}; pass --force to resume it anyway, or --restart to start over")]
    Mismatch(String),
    /// A state records an unfinished replay and neither `--resume` nor `--restart` was
    /// given: starting over silently would send again what it already sent.
    #[error(
        "{dir} holds an unfinished replay of these inputs ({done} events done): pass --resume to continue it, or --restart to start over"
    )]
    Unfinished {
        /// The state directory.
        dir: PathBuf,
        /// Events it records as done.
        done: u64,
    },
    /// A command line that cannot work (the failures file is one of the inputs, ...).
    #[error("{0}")]
    Usage(String),
    /// Writing the failures file failed (the cause is the error's source).
    #[error("cannot write the failures file {path}")]
    Failures {
        /// The failures file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
