//! Watching the crate with notify: `src/` (recursively) and `Cargo.toml` start a
//! rebuild, the settings file a settings reload, `events/` a fresh sample list. The
//! debouncer turns an editor's burst of writes (temporary file, rename) into one
//! change; reads are not changes (cargo reads Cargo.toml on every build).
//! [`Changes`] merges what the debouncer still splits (one save's events straddling
//! one of its checks arrive a check apart).

use super::DevError;
use notify_debouncer_full::notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the files must be quiet before a change counts.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// How long the debouncer's output must be quiet before [`Changes`] hands on what it
/// gathered: the debouncer checks every quarter of [`DEBOUNCE`] and sends each event
/// once it is [`DEBOUNCE`] old, so one save's events can come a check (50 ms) apart.
const SETTLE: Duration = Duration::from_millis(100);

/// The longest [`Changes`] gathers before handing on, however busy the files are.
const SETTLE_AT_MOST: Duration = Duration::from_secs(1);

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Source files or the manifest, relative to the crate: rebuild.
    Source(Vec<String>),
    /// The settings file.
    Settings,
    /// A sample event in `events/`.
    Events,
}

/// The watcher; dropping it stops watching.
pub(crate) type Watcher = Debouncer<RecommendedWatcher, RecommendedCache>;

/// The changes the watcher reports, merged once they settle: one save is one
/// [`Change::Source`], however the debouncer split its events.
pub(crate) struct Changes {
    raw: mpsc::UnboundedReceiver<Change>,
    ready: VecDeque<Change>,
}

impl Changes {
    fn new(raw: mpsc::UnboundedReceiver<Change>) -> Changes {
        Changes {
            raw,
            ready: VecDeque::new(),
        }
    }

    /// The next change; `None` once the watcher is gone. Not cancel-safe: what it
    /// gathered is lost if the future is dropped, so await it to the end (not in a
    /// `select!` that may drop it).
    pub(crate) async fn recv(&mut self) -> Option<Change> {
        if let Some(change) = self.ready.pop_front() {
            return Some(change);
        }
        let mut gathered = vec![self.raw.recv().await?];
        let deadline = tokio::time::Instant::now() + SETTLE_AT_MOST;
        loop {
            let quiet = (tokio::time::Instant::now() + SETTLE).min(deadline);
            match tokio::time::timeout_at(quiet, self.raw.recv()).await {
                Ok(Some(change)) => gathered.push(change),
                // Quiet, at the deadline, or the watcher gone: hand on what there is.
                Ok(None) | Err(_) => break,
            }
        }
        self.ready = merge(gathered);
        self.ready.pop_front()
    }
}

/// One change of each kind, in the order rebuild, settings, samples.
fn merge(changes: Vec<Change>) -> VecDeque<Change> {
    let mut sources = Vec::new();
    let (mut settings, mut events) = (false, false);
    for change in changes {
        match change {
            Change::Source(mut paths) => sources.append(&mut paths),
            Change::Settings => settings = true,
            Change::Events => events = true,
        }
    }
    sources.sort();
    sources.dedup();
    let mut merged = VecDeque::new();
    if !sources.is_empty() {
        merged.push_back(Change::Source(sources));
    }
    if settings {
        merged.push_back(Change::Settings);
    }
    if events {
        merged.push_back(Change::Events);
    }
    merged
}

/// Starts watching `dir` and `settings`.
pub(crate) fn start(dir: &Path, settings: &Path) -> Result<(Changes, Watcher), DevError> {
    // notify reports paths under the watched path as given; canonical paths make
    // them comparable with the crate's (a relative DIR, symlinks).
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let settings = canonical_file(settings);
    let (tx, rx) = mpsc::unbounded_channel();
    let change_dir = dir.clone();
    let change_settings = settings.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let Ok(events) = result else {
            return;
        };
        let mut changes = Vec::new();
        for event in events.iter().filter(|e| is_write(&e.kind)) {
            changes.extend(
                event
                    .paths
                    .iter()
                    .filter_map(|path| change_of(&change_dir, &change_settings, path)),
            );
        }
        // One message per kind, so one save of several files is one rebuild.
        for change in merge(changes) {
            let _ = tx.send(change);
        }
    })
    .map_err(|source| DevError::Watch {
        path: dir.clone(),
        source,
    })?;

    let mut watch = |path: &Path, mode: RecursiveMode| {
        debouncer
            .watch(path, mode)
            .map_err(|source| DevError::Watch {
                path: path.to_owned(),
                source,
            })
    };
    // The crate's top level, not recursively: Cargo.toml, settings.json, and not the
    // target directory, which every build rewrites.
    watch(&dir, RecursiveMode::NonRecursive)?;
    for (sub, mode) in [
        ("src", RecursiveMode::Recursive),
        ("events", RecursiveMode::NonRecursive),
    ] {
        if dir.join(sub).is_dir() {
            watch(&dir.join(sub), mode)?;
        }
    }
    if let Some(parent) = settings.parent()
        && parent != dir
        && parent.is_dir()
    {
        watch(parent, RecursiveMode::NonRecursive)?;
    }
    Ok((Changes::new(rx), debouncer))
}

/// The canonical path of a file that may not exist yet (its directory's, joined).
fn canonical_file(path: &Path) -> PathBuf {
    if let Ok(path) = path.canonicalize() {
        return path;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            parent
                .canonicalize()
                .map_or_else(|_| path.to_owned(), |p| p.join(name))
        }
        _ => path.to_owned(),
    }
}

/// Whether an event changed a file: created, removed, renamed or written. Opening and
/// reading are not changes, and neither are metadata updates (a save also writes data).
fn is_write(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// What a changed path means, if anything.
fn change_of(dir: &Path, settings: &Path, path: &Path) -> Option<Change> {
    if path == settings {
        return Some(Change::Settings);
    }
    let relative = path.strip_prefix(dir).ok()?;
    let mut parts = relative.components();
    let first = parts.next()?.as_os_str().to_str()?;
    let name = path.file_name()?.to_str()?;
    match first {
        // Cargo.lock is left out: cargo writes it during the build.
        "Cargo.toml" if parts.next().is_none() => Some(Change::Source(vec![first.to_owned()])),
        "src" if parts.next().is_some() && !is_editor_scratch(name) => Some(Change::Source(vec![
            relative.to_string_lossy().into_owned(),
        ])),
        // Sample events, and a source function's sample webhook requests.
        "events" | "requests" | "webhook-examples" => {
            (parts.next().is_none() || name.ends_with(".json")).then_some(Change::Events)
        }
        _ => None,
    }
}

/// Files editors write beside the one being saved: swap files, backups, vim's probe.
fn is_editor_scratch(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name == "4913"
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with("#")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified() {
        let dir = Path::new("/c");
        let settings = Path::new("/c/settings.json");
        let c = |p: &str| change_of(dir, settings, Path::new(p));
        assert_eq!(c("/c/settings.json"), Some(Change::Settings));
        assert_eq!(
            c("/c/Cargo.toml"),
            Some(Change::Source(vec!["Cargo.toml".into()]))
        );
        assert_eq!(
            c("/c/src/a/b.rs"),
            Some(Change::Source(vec!["src/a/b.rs".into()]))
        );
        assert_eq!(c("/c/src/.lib.rs.swp"), None);
        assert_eq!(c("/c/src/lib.rs~"), None);
        assert_eq!(c("/c/src/4913"), None);
        assert_eq!(c("/c/Cargo.lock"), None);
        assert_eq!(c("/c/target/release/x.wasm"), None);
        assert_eq!(c("/c/events/t.json"), Some(Change::Events));
        assert_eq!(c("/c/requests/push.json"), Some(Change::Events));
        assert_eq!(c("/c/events/README.md"), None);
        assert_eq!(c("/elsewhere/src/lib.rs"), None);
    }

    #[test]
    fn reads_are_not_changes() {
        use notify_debouncer_full::notify::event::{CreateKind, DataChange, MetadataKind};
        assert!(!is_write(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_write(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!is_write(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::Any
        ))));
        assert!(is_write(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(is_write(&EventKind::Create(CreateKind::File)));
    }

    /// What the debouncer sent before the changes settle is one change of each kind,
    /// and what comes after is the next. (The watcher test below is the one where the
    /// debouncer splits a save a check apart: without [`Changes`] it saw two changes in
    /// about one run in ten.)
    #[tokio::test]
    async fn changes_sent_together_are_merged() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut changes = Changes::new(rx);
        for change in [
            Change::Source(vec!["src/lib.rs".into()]),
            Change::Settings,
            Change::Source(vec!["src/a.rs".into()]),
            Change::Source(vec!["src/lib.rs".into()]),
        ] {
            tx.send(change).unwrap();
        }
        assert_eq!(
            changes.recv().await,
            Some(Change::Source(vec!["src/a.rs".into(), "src/lib.rs".into()]))
        );
        assert_eq!(changes.recv().await, Some(Change::Settings));
        tx.send(Change::Events).unwrap();
        assert_eq!(changes.recv().await, Some(Change::Events));
        drop(tx);
        assert_eq!(changes.recv().await, None);
    }

    /// Changes that never settle are handed on after [`SETTLE_AT_MOST`], not when they
    /// stop (five seconds here).
    #[tokio::test]
    async fn endless_changes_are_handed_on_at_most_a_second_late() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut changes = Changes::new(rx);
        tokio::spawn(async move {
            for _ in 0..100 {
                let _ = tx.send(Change::Events);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let started = std::time::Instant::now();
        assert_eq!(changes.recv().await, Some(Change::Events));
        let waited = started.elapsed();
        assert!(
            waited >= SETTLE_AT_MOST && waited < Duration::from_secs(4),
            "handed on after {waited:?}"
        );
    }

    #[tokio::test]
    async fn a_saved_source_file_is_one_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        let (mut rx, _watcher) = start(dir.path(), &dir.path().join("settings.json")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "// one").unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "// two").unwrap();
        let change = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a change within 10 s")
            .unwrap();
        assert_eq!(change, Change::Source(vec!["src/lib.rs".into()]));
        std::fs::write(dir.path().join("settings.json"), "{}").unwrap();
        let change = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a change within 10 s")
            .unwrap();
        assert_eq!(change, Change::Settings);
    }
}
