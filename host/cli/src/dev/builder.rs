//! Rebuilds: one build at a time, with the same toolchain code as `segfn build`;
//! changes that arrive during a build are covered by one build after it. A build that
//! fails (or whose module does not load) leaves the last good module running, and its
//! diagnostics go to the page.

use crate::toolchain::{self, BuildError, BuildOptions, CapturedBuild, Diagnostic};
use segfn_engine::{LoadedFunction, Runtime};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Cargo's own output kept for the page: its end, where the errors are.
const MAX_CARGO_OUTPUT_BYTES: usize = 16 << 10;

/// Where the build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildState {
    /// A build is running.
    Building,
    /// The last build succeeded and its module is the one runs use.
    Ok,
    /// The last build failed; runs use the last good module, if any.
    Failed,
}

/// The module runs use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleInfo {
    /// The build that made it.
    pub build: u64,
    /// The `.wasm` file.
    pub wasm: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its settings, when it describes them (`export!(F, schema)`): the page's form.
    pub settings: Option<Vec<crate::schema::Setting>>,
}

/// The state of the latest build, as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildStatus {
    /// Building, ok or failed.
    pub state: BuildState,
    /// The build's number: 1 for the first, one more for each after.
    pub number: u64,
    /// What started it: `start`, `src/lib.rs changed`, `requested`.
    pub reason: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// How long it took, once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Why it failed, in one paragraph.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The compiler's errors and warnings (errors first).
    pub diagnostics: Vec<Diagnostic>,
    /// The end of what cargo printed itself; it holds the reason when the compiler had
    /// nothing to say (a Cargo.toml that does not parse, a missing dependency).
    pub cargo_output: String,
    /// The module this build produced, when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleInfo>,
}

impl BuildStatus {
    /// Before the first build.
    pub(crate) fn starting() -> BuildStatus {
        BuildStatus {
            state: BuildState::Building,
            number: 0,
            reason: "start".into(),
            started_at_ms: now_ms(),
            duration_ms: None,
            error: None,
            diagnostics: Vec::new(),
            cargo_output: String::new(),
            module: None,
        }
    }
}

/// Asks for builds.
#[derive(Debug, Clone)]
pub(crate) struct Builds {
    requests: mpsc::UnboundedSender<String>,
}

impl Builds {
    /// Asks for a build, for `reason`; while one runs, the next covers every request
    /// made meanwhile.
    pub(crate) fn request(&self, reason: impl Into<String>) {
        let _ = self.requests.send(reason.into());
    }
}

/// The module runs use: the last one that built and loaded.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub(crate) function: LoadedFunction,
    /// The number of the build that made it.
    pub(crate) build: u64,
}

/// What the build loop builds, loads with, and tells of each build (`segfn dev`'s
/// state): the loop knows nothing else of it.
pub(crate) trait BuildTarget: Send + Sync + 'static {
    /// The function crate.
    fn dir(&self) -> &Path;
    /// How to build it.
    fn build_options(&self) -> &BuildOptions;
    /// What loads the module built.
    fn runtime(&self) -> &Runtime;
    /// A build's status, and the module it made if it loaded.
    fn set_build(&self, status: BuildStatus, module: Option<Current>);
}

/// Starts the build loop.
pub(crate) fn start<T: BuildTarget>(dev: Arc<T>) -> Builds {
    let (requests, mut pending) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut number = 0;
        while let Some(first) = pending.recv().await {
            let mut reasons = vec![first];
            while let Ok(more) = pending.try_recv() {
                if !reasons.contains(&more) {
                    reasons.push(more);
                }
            }
            number += 1;
            build_once(&dev, number, reasons.join(", ")).await;
        }
    });
    Builds { requests }
}

/// Builds and loads once, and publishes the result.
async fn build_once<T: BuildTarget>(dev: &Arc<T>, number: u64, reason: String) {
    let started = Instant::now();
    let mut status = BuildStatus {
        number,
        reason,
        ..BuildStatus::starting()
    };
    dev.set_build(status.clone(), None);
    eprintln!("segfn dev: build {number} started ({})", status.reason);

    let dir = dev.dir().to_owned();
    let options = dev.build_options().clone();
    let captured = tokio::task::spawn_blocking(move || match toolchain::detect() {
        Ok(method) => toolchain::build_captured(&dir, &method, &options),
        Err(e) => CapturedBuild {
            result: Err(e),
            ..CapturedBuild::default()
        },
    })
    .await
    .unwrap_or_else(|e| CapturedBuild {
        result: Err(BuildError::Spawn {
            program: "the build task".into(),
            source: std::io::Error::other(e.to_string()),
        }),
        ..CapturedBuild::default()
    });

    let mut diagnostics = captured.diagnostics;
    // Errors first: they are what stops the build; warnings follow in their order.
    diagnostics.sort_by_key(|d| d.level != "error");
    status.diagnostics = diagnostics;
    status.cargo_output = tail(&captured.cargo_output, MAX_CARGO_OUTPUT_BYTES);

    let mut module = None;
    match captured.result {
        Ok(wasm) => match dev.runtime().load_file(&wasm).await {
            Ok(function) => {
                status.state = BuildState::Ok;
                // A module without the describe export simply gets no form.
                let settings = match function.describe().await {
                    Ok(d) => crate::schema::segment_settings(&d.settings)
                        .ok()
                        .map(|s| s.settings),
                    Err(_) => None,
                };
                status.module = Some(ModuleInfo {
                    build: number,
                    wasm: wasm.display().to_string(),
                    bytes: std::fs::metadata(&wasm).map_or(0, |m| m.len()),
                    settings,
                });
                module = Some(Current {
                    function,
                    build: number,
                });
            }
            Err(e) => {
                status.state = BuildState::Failed;
                status.error = Some(format!(
                    "the module built but does not load: {}",
                    error_chain(&e)
                ));
            }
        },
        Err(e) => {
            status.state = BuildState::Failed;
            status.error = Some(failure_summary(&e, &status.diagnostics));
        }
    }
    status.duration_ms = Some(started.elapsed().as_millis() as u64);
    match (&status.state, &status.error) {
        (BuildState::Failed, Some(error)) => {
            eprintln!("segfn dev: build {number} failed: {error}");
        }
        _ => eprintln!(
            "segfn dev: build {number} ok in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
    }
    dev.set_build(status, module);
}

/// One paragraph on why a build failed: the compiler's first error with its place,
/// or the build error itself.
fn failure_summary(error: &BuildError, diagnostics: &[Diagnostic]) -> String {
    let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.level == "error").collect();
    match (error, errors.first()) {
        (BuildError::Cargo(_), Some(first)) => {
            let place = first
                .location()
                .map(|l| format!("{l}: "))
                .unwrap_or_default();
            let more = match errors.len() {
                1 => String::new(),
                n => format!(
                    " (and {} more error{})",
                    n - 1,
                    if n == 2 { "" } else { "s" }
                ),
            };
            format!("{place}{}{more}", first.message)
        }
        (BuildError::Cargo(status), None) => {
            format!("cargo build failed ({status}); cargo's output says why")
        }
        (other, _) => error_chain(other),
    }
}

/// An error with its causes, as one line (causes its message already holds are not
/// repeated).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// The last `max` bytes of `text`, from a line start, saying how much was left out.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let start = text[start..].find('\n').map_or(start, |i| start + i + 1);
    format!("… ({} bytes before)\n{}", start, &text[start..])
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(message: &str, line: usize) -> Diagnostic {
        Diagnostic {
            level: "error".into(),
            message: message.into(),
            code: None,
            file: Some("src/lib.rs".into()),
            line: Some(line),
            column: Some(5),
            rendered: message.into(),
        }
    }

    #[test]
    fn summary_names_the_first_error_and_its_place() {
        let status = std::process::Command::new("false").status().unwrap();
        let summary = failure_summary(
            &BuildError::Cargo(status),
            &[error("cannot find value `x`", 12), error("other", 20)],
        );
        assert_eq!(
            summary,
            "src/lib.rs:12:5: cannot find value `x` (and 1 more error)"
        );
        let summary = failure_summary(&BuildError::Cargo(status), &[]);
        assert!(summary.contains("cargo's output says why"), "{summary}");
    }

    #[test]
    fn tail_keeps_the_end_from_a_line_start() {
        assert_eq!(tail("short", 10), "short");
        let cut = tail("line one\nline two\nline three\n", 14);
        assert!(cut.ends_with("line three\n"), "{cut}");
        assert!(cut.starts_with("… ("), "{cut}");
    }
}
