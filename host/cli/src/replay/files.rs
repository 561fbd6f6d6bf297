//! The state directory's files and how each is written so that a kill at any instant
//! leaves them consistent:
//!
//! - the snapshot is written to a temporary file, fsynced, renamed over `state.json`
//!   and the directory fsynced: a reader sees the old snapshot or the new, whole;
//! - the journal is appended with one `write` per entry, flushed as soon as an
//!   invocation's fate is known (the kernel keeps it across a `kill -9`), and emptied
//!   only after a snapshot that holds its entries is in place. Loading applies the
//!   journal over the snapshot; an entry already in the snapshot counts nothing
//!   ([`State::apply`]), and a last line cut short by a crash is ignored;
//! - a failure's line goes to the failures file *before* its journal entry, which
//!   carries the file's length after it. Loading cuts the failures file back to the
//!   length the recorded entries account for.

use super::progress::{Entry, Snapshot, State, StateError};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// The snapshot's name in the state directory.
pub const STATE_FILE: &str = "state.json";
/// The journal's name in the state directory.
pub const JOURNAL_FILE: &str = "journal.ndjson";
/// The failures file's default name in the state directory.
pub const FAILURES_FILE: &str = "failures.ndjson";

/// The state directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    journal: Option<BufWriter<File>>,
}

impl Store {
    /// The store in `dir` (created when first written).
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_owned(),
            journal: None,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The snapshot with the journal applied, or `None` when there is no state.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        let path = self.path(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::io(&path)(e)),
        };
        let unreadable = |reason: String| StateError::Unreadable {
            path: path.clone(),
            reason,
        };
        let snapshot: Snapshot =
            serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
        if snapshot.format != super::progress::FORMAT
            || snapshot.version != super::progress::VERSION
        {
            return Err(unreadable(format!(
                "format {:?} version {}",
                snapshot.format, snapshot.version
            )));
        }
        let mut state = State::from_snapshot(snapshot);
        let journal = self.path(JOURNAL_FILE);
        let mut text = String::new();
        match File::open(&journal) {
            Ok(mut f) => {
                f.read_to_string(&mut text)
                    .map_err(StateError::io(&journal))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StateError::io(&journal)(e)),
        }
        for line in text.lines() {
            // Only a last line cut short by a crash can fail to parse: skip it (its
            // position is simply not done).
            if let Ok(entry) = serde_json::from_str::<Entry>(line) {
                state.apply(&entry);
            }
        }
        Ok(Some(state))
    }

    /// Writes `state` as the snapshot (atomically), then empties the journal, whose
    /// entries the snapshot now holds.
    pub fn save(&mut self, state: &State) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.dir).map_err(StateError::io(&self.dir))?;
        let path = self.path(STATE_FILE);
        let tmp = self.path("state.json.tmp");
        let json =
            serde_json::to_vec_pretty(&state.to_snapshot()).expect("the snapshot is plain data");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // The rename itself is durable once the directory is synced.
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(StateError::io(&path))?;
        let journal = self.path(JOURNAL_FILE);
        match &mut self.journal {
            Some(w) => {
                w.flush().map_err(StateError::io(&journal))?;
                w.get_ref().set_len(0).map_err(StateError::io(&journal))?;
            }
            None => match std::fs::remove_file(&journal) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StateError::io(&journal)(e)),
            },
        }
        Ok(())
    }

    /// Appends an entry; with `flush`, it reaches the kernel before this returns.
    pub fn append(&mut self, entry: &Entry, flush: bool) -> Result<(), StateError> {
        let path = self.path(JOURNAL_FILE);
        if self.journal.is_none() {
            std::fs::create_dir_all(&self.dir).map_err(StateError::io(&self.dir))?;
            // Appending: after `set_len(0)` the next write goes to the new end.
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(StateError::io(&path))?;
            self.journal = Some(BufWriter::with_capacity(64 << 10, file));
        }
        let w = self.journal.as_mut().expect("opened above");
        let mut line = serde_json::to_vec(entry).expect("an entry is plain data");
        line.push(b'\n');
        w.write_all(&line).map_err(StateError::io(&path))?;
        if flush {
            w.flush().map_err(StateError::io(&path))?;
        }
        Ok(())
    }

    /// Hands buffered entries (those of positions that were not sent) to the kernel.
    pub fn flush(&mut self) -> Result<(), StateError> {
        let path = self.path(JOURNAL_FILE);
        if let Some(w) = &mut self.journal {
            w.flush().map_err(StateError::io(&path))?;
        }
        Ok(())
    }
}

/// The failures file: failed events as NDJSON, appended; its length is what journal
/// entries record.
#[derive(Debug)]
pub struct FailuresFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl FailuresFile {
    /// Opens the file, keeping its first `keep` bytes (those the state accounts for)
    /// and dropping the rest; `keep` of 0 starts it empty.
    pub fn open(path: &Path, keep: u64) -> std::io::Result<FailuresFile> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let len = file.metadata()?.len();
        // Shorter than recorded: someone cut or replaced it; keep what is there.
        let keep = keep.min(len);
        file.set_len(keep)?;
        file.seek(SeekFrom::Start(keep))?;
        Ok(FailuresFile {
            path: path.to_owned(),
            file,
            len: keep,
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event's line (line breaks inside it become spaces: in JSON text
    /// they can only be whitespace); the file's length after it.
    pub fn write(&mut self, json: &str) -> std::io::Result<u64> {
        let mut line = json.replace(['\n', '\r'], " ").into_bytes();
        line.push(b'\n');
        // One write: the line is whole in the file, or (after a crash) cut at its end.
        self.file.write_all(&line)?;
        self.len += line.len() as u64;
        Ok(self.len)
    }

    /// Makes what was written durable (at checkpoints).
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter::TimeWindow;
    use super::super::progress::{FunctionId, Identity, InputId};
    use super::super::summary::Fate;
    use super::*;

    fn state(failures: &Path) -> State {
        State::new(
            Identity {
                function: FunctionId::new(Path::new("f.wasm"), b"w"),
                inputs: vec![InputId {
                    path: "/a".into(),
                    size: Some(1),
                    head_sha256: None,
                }],
                window: TimeWindow::default(),
            },
            vec!["a".into()],
            failures.to_owned(),
        )
    }

    fn entry(pos: u64, fate: Fate, failures_end: Option<u64>) -> Entry {
        Entry {
            input: 0,
            pos,
            fate,
            retries: 0,
            line: pos + 1,
            element: None,
            error: None,
            failures_end,
        }
    }

    #[test]
    fn journal_entries_survive_without_a_snapshot_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::new(dir.path());
        assert!(store.load().unwrap().is_none());
        let mut s = state(&dir.path().join(FAILURES_FILE));
        store.save(&s).unwrap();
        // After the snapshot: two entries, the process "dies" (the store is dropped
        // without another save), and a torn last line.
        for e in [entry(0, Fate::Success, None), entry(2, Fate::Success, None)] {
            s.apply(&e);
            store.append(&e, true).unwrap();
        }
        drop(store);
        let journal = dir.path().join(JOURNAL_FILE);
        let mut f = OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(b"{\"input\":0,\"pos\":1,\"fa").unwrap();
        let loaded = Store::new(dir.path()).load().unwrap().unwrap();
        assert_eq!(loaded.inputs[0].done, s.inputs[0].done);
        assert_eq!(loaded.counts.success, 2);
        assert!(!loaded.inputs[0].done.contains(1));
    }

    #[test]
    fn a_snapshot_empties_the_journal_and_a_replayed_journal_counts_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join(JOURNAL_FILE);
        let mut store = Store::new(dir.path());
        let mut s = state(&dir.path().join(FAILURES_FILE));
        let e = entry(0, Fate::Success, None);
        s.apply(&e);
        store.append(&e, true).unwrap();
        let with_entry = std::fs::read(&journal).unwrap();
        store.save(&s).unwrap();
        assert_eq!(std::fs::read(&journal).unwrap(), b"");
        assert!(!dir.path().join("state.json.tmp").exists());
        // Appends after a save go to the emptied journal.
        store.append(&entry(1, Fate::Success, None), true).unwrap();
        let text = std::fs::read_to_string(&journal).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("\"pos\":1"), "{text}");
        drop(store);
        // A crash between the snapshot's rename and the journal's truncation leaves
        // both holding the entry: it counts once.
        std::fs::write(&journal, with_entry).unwrap();
        let loaded = Store::new(dir.path()).load().unwrap().unwrap();
        assert_eq!(loaded.counts.success, 1);
    }

    #[test]
    fn the_failures_file_is_cut_back_to_what_the_state_accounts_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/failures.ndjson");
        let mut f = FailuresFile::open(&path, 0).unwrap();
        let end = f.write("{\"a\":\n1}").unwrap();
        assert_eq!(end, 9);
        // Written, but its journal entry never was.
        f.write("{\"b\":2}").unwrap();
        drop(f);
        let mut f = FailuresFile::open(&path, end).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\": 1}\n");
        f.write("{\"c\":3}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\": 1}\n{\"c\":3}\n"
        );
        // A fresh replay starts it empty.
        FailuresFile::open(&path, 0).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn an_unreadable_state_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "{}").unwrap();
        let err = Store::new(dir.path()).load().unwrap_err();
        assert!(
            err.to_string().contains("not a segfn replay state"),
            "{err}"
        );
    }
}
