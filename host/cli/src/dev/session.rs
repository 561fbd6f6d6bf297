//! What the page shows, shared by the builder, the watcher and the HTTP handlers: the
//! build status, the module runs use, the settings file and the runs; and a version
//! number that moves whenever any of it changes, which the page's event stream follows.

use super::builder::{BuildStatus, BuildTarget, Builds, Current};
use super::history::{History, RunSummary};
use super::watch::{Change, Changes};
use super::{DevError, DevOptions};
use segfn_engine::outcome::OUTCOMES;
use segfn_engine::{Runtime, RuntimeOptions};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// A settings file larger than this is not loaded into the page.
const MAX_SETTINGS_FILE_BYTES: u64 = 1 << 20;

/// The settings file as the page prefills it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SettingsFile {
    /// The file, as given.
    path: String,
    /// Its text; `None` when there is no such file.
    text: Option<String>,
    /// Why the text is not a usable settings object, if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Moves each time the file is read again, so the page knows to offer the new text.
    version: u64,
}

/// The function being developed.
#[derive(Debug, Clone, Serialize)]
struct FunctionInfo {
    /// The package name in Cargo.toml, or the directory's name.
    name: String,
    /// The crate's directory, as given.
    dir: String,
}

/// One row of the outcome table, for the page's labels.
#[derive(Debug, Clone, Serialize)]
struct OutcomeInfo {
    kind: &'static str,
    label: &'static str,
    http_status: u16,
    retried: bool,
}

/// Everything the page needs to draw itself, as `GET /api/status` and the event stream
/// send it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Status {
    /// Moves on every change.
    version: u64,
    function: FunctionInfo,
    build: BuildStatus,
    /// The build number of the module runs use now, if there is one.
    module_build: Option<u64>,
    settings: SettingsFile,
    /// Moves when the crate's `events/` change, so the page reloads the sample list.
    samples_version: u64,
    /// The kept runs, newest first.
    runs: Vec<RunSummary>,
    /// The outcome table: label, HTTP status and retry per kind.
    outcomes: Vec<OutcomeInfo>,
}

/// The shared state of one `segfn dev`.
#[derive(Debug)]
pub(crate) struct Dev {
    pub(crate) options: DevOptions,
    pub(crate) runtime: Runtime,
    function: FunctionInfo,
    build: Mutex<BuildStatus>,
    module: Mutex<Option<Current>>,
    settings: Mutex<SettingsFile>,
    samples_version: AtomicU64,
    runs: Mutex<History>,
    version: watch::Sender<u64>,
}

/// Locks a mutex whose holder may have panicked: every update here leaves the state
/// whole, so what it holds is still good.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Dev {
    pub(crate) fn new(options: DevOptions) -> Result<Dev, DevError> {
        // Like `segfn run`: no pool (one invocation at a time is the norm here), and the
        // disk cache so restarting `segfn dev` does not recompile an unchanged module.
        let runtime = Runtime::new(&RuntimeOptions {
            pooling: false,
            disk_cache: true,
            load_deadline: options.limits.deadline,
            max_memory_bytes: options.limits.memory_bytes,
            ..RuntimeOptions::default()
        })
        .map_err(|e| DevError::Engine(format!("{e:#}")))?;
        let function = FunctionInfo {
            name: package_name(&options.dir),
            dir: options.dir.display().to_string(),
        };
        let settings = read_settings_file(&options.settings_file, 1);
        let runs = History::new(options.keep_runs);
        Ok(Dev {
            options,
            runtime,
            function,
            build: Mutex::new(BuildStatus::starting()),
            module: Mutex::new(None),
            settings: Mutex::new(settings),
            samples_version: AtomicU64::new(1),
            runs: Mutex::new(runs),
            version: watch::Sender::new(1),
        })
    }

    /// Says that something the page shows changed.
    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Follows changes: the receiver sees a new value after each.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The build status now.
    pub(crate) fn build(&self) -> BuildStatus {
        lock(&self.build).clone()
    }

    /// The module runs use now.
    pub(crate) fn module(&self) -> Option<Current> {
        lock(&self.module).clone()
    }

    /// The kept runs.
    pub(crate) fn runs(&self) -> MutexGuard<'_, History> {
        lock(&self.runs)
    }

    /// Says a run was added to the history.
    pub(crate) fn run_added(&self) {
        self.changed();
    }

    /// Reads the settings file again.
    pub(crate) fn reload_settings(&self) {
        let mut settings = lock(&self.settings);
        let next = read_settings_file(&self.options.settings_file, settings.version + 1);
        if next.text != settings.text || next.error != settings.error {
            *settings = next;
            drop(settings);
            self.changed();
        }
    }

    /// Says the crate's sample events changed.
    pub(crate) fn samples_changed(&self) {
        self.samples_version.fetch_add(1, Ordering::Relaxed);
        self.changed();
    }

    /// Everything the page shows.
    pub(crate) fn status(&self) -> Status {
        // The version first: a change racing with this read moves it again, so a
        // follower that saw this version will see the next one too.
        let version = *self.version.borrow();
        Status {
            version,
            function: self.function.clone(),
            build: self.build(),
            module_build: lock(&self.module).as_ref().map(|m| m.build),
            settings: lock(&self.settings).clone(),
            samples_version: self.samples_version.load(Ordering::Relaxed),
            runs: lock(&self.runs).summaries(),
            outcomes: OUTCOMES
                .iter()
                .map(|row| OutcomeInfo {
                    kind: row.kind.as_str(),
                    label: row.label,
                    http_status: row.http_status,
                    retried: row.retried,
                })
                .collect(),
        }
    }
}

impl BuildTarget for Dev {
    fn dir(&self) -> &std::path::Path {
        &self.options.dir
    }

    fn build_options(&self) -> &crate::toolchain::BuildOptions {
        &self.options.build
    }

    fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Updates the build status (and, for a build that produced a module, the module).
    fn set_build(&self, status: BuildStatus, module: Option<Current>) {
        if let Some(module) = module {
            *lock(&self.module) = Some(module);
        }
        *lock(&self.build) = status;
        self.changed();
    }
}

/// Turns file changes into rebuilds, settings reloads and sample-list refreshes.
pub(crate) async fn follow_changes(dev: Arc<Dev>, mut changes: Changes, builds: Builds) {
    while let Some(change) = changes.recv().await {
        match change {
            Change::Source(paths) => builds.request(format!("{} changed", paths.join(", "))),
            Change::Settings => dev.reload_settings(),
            Change::Events => dev.samples_changed(),
        }
    }
}

/// The package name from Cargo.toml, or the directory's name when it cannot be read.
fn package_name(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|manifest| {
            manifest
                .get("package")?
                .get("name")?
                .as_str()
                .map(str::to_owned)
        })
        .or_else(|| {
            dir.canonicalize()
                .ok()?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "function".to_owned())
}

/// Reads the settings file; a missing file is no error (the page starts from `{}`).
fn read_settings_file(path: &Path, version: u64) -> SettingsFile {
    let mut file = SettingsFile {
        path: path.display().to_string(),
        text: None,
        error: None,
        version,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return file,
        Ok(meta) if meta.len() > MAX_SETTINGS_FILE_BYTES => {
            file.error = Some(format!(
                "{} is larger than {} KiB; the page does not load it",
                file.path,
                MAX_SETTINGS_FILE_BYTES >> 10
            ));
            return file;
        }
        _ => {}
    }
    match std::fs::read_to_string(path) {
        Ok(text) => {
            file.error = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) if v.is_object() => None,
                Ok(_) => Some(format!(
                    "{} must hold a JSON object of setting names to values",
                    file.path
                )),
                Err(e) => Some(format!("{} is not valid JSON: {e}", file.path)),
            };
            file.text = Some(text);
        }
        Err(e) => file.error = Some(format!("cannot read {}: {e}", file.path)),
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_file_missing_invalid_and_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let missing = read_settings_file(&path, 1);
        assert!(missing.text.is_none() && missing.error.is_none());
        std::fs::write(&path, "{\"apiKey\": ").unwrap();
        let broken = read_settings_file(&path, 2);
        assert!(broken.error.unwrap().contains("not valid JSON"));
        std::fs::write(&path, "[1]").unwrap();
        assert!(
            read_settings_file(&path, 3)
                .error
                .unwrap()
                .contains("JSON object")
        );
        std::fs::write(&path, "{\"apiKey\": \"k\"}").unwrap();
        let good = read_settings_file(&path, 4);
        assert_eq!(good.text.as_deref(), Some("{\"apiKey\": \"k\"}"));
        assert!(good.error.is_none());
    }

    #[test]
    fn package_name_from_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"my-destination\"\n",
        )
        .unwrap();
        assert_eq!(package_name(dir.path()), "my-destination");
    }
}
