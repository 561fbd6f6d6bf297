//! The compiler's diagnostics of a captured build, reduced to what a person fixing the
//! code needs: level, message, where (file, line, column) and the rendered text.

use super::BuildError;
use serde::Serialize;
use std::path::PathBuf;

/// One error or warning from the compiler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// `error` or `warning` (an internal compiler error counts as `error`).
    pub level: String,
    /// The one-line message, e.g. "cannot find value `x` in this scope".
    pub message: String,
    /// The error code, e.g. `E0425`, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The file of the primary span, as cargo names it (relative to the workspace root
    /// of the crate, e.g. `src/lib.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line of the primary span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column of the primary span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The full text as rustc prints it (source excerpt, labels, notes), uncoloured.
    pub rendered: String,
}

impl Diagnostic {
    /// `file:line:column`, when the diagnostic points somewhere.
    pub fn location(&self) -> Option<String> {
        Some(format!(
            "{}:{}:{}",
            self.file.as_ref()?,
            self.line?,
            self.column?
        ))
    }
}

/// What a build said and how it ended, for callers that show it themselves.
#[derive(Debug)]
pub struct CapturedBuild {
    /// The `.wasm`, or why there is none.
    pub result: Result<PathBuf, BuildError>,
    /// Errors and warnings, in the order the compiler gave them.
    pub diagnostics: Vec<Diagnostic>,
    /// What cargo printed itself (progress, and errors that are not the compiler's,
    /// such as a Cargo.toml that does not parse).
    pub cargo_output: String,
}

impl Default for CapturedBuild {
    fn default() -> Self {
        CapturedBuild {
            result: Err(BuildError::NoArtifact(PathBuf::new())),
            diagnostics: Vec::new(),
            cargo_output: String::new(),
        }
    }
}

impl CapturedBuild {
    /// Keeps a compiler message if it is an error or a warning about the code. Summary
    /// lines ("aborting due to 2 previous errors", "1 warning emitted") repeat what the
    /// list shows, so they are left out.
    pub(super) fn push(&mut self, d: &cargo_metadata::diagnostic::Diagnostic) {
        use cargo_metadata::diagnostic::DiagnosticLevel;
        let level = match d.level {
            DiagnosticLevel::Error | DiagnosticLevel::Ice => "error",
            DiagnosticLevel::Warning => "warning",
            _ => return,
        };
        if d.spans.is_empty()
            && (d.message.starts_with("aborting due to") || d.message.ends_with(" emitted"))
        {
            return;
        }
        let primary = d.spans.iter().find(|s| s.is_primary).or(d.spans.first());
        self.diagnostics.push(Diagnostic {
            level: level.to_owned(),
            message: d.message.clone(),
            code: d.code.as_ref().map(|c| c.code.clone()),
            file: primary.map(|s| s.file_name.clone()),
            line: primary.map(|s| s.line_start),
            column: primary.map(|s| s.column_start),
            rendered: d.rendered.clone().unwrap_or_else(|| d.message.clone()),
        });
    }
}
