//! `segfn build`: compiles a function crate to `wasm32-unknown-unknown`, with the
//! installed rustup target when there is one and Cargo's `-Zbuild-std` from Debian's
//! `rustc-web` + `rust-web-src` when there is not (see TOOLCHAIN.md); then checks that
//! the module imports nothing but the segfn host functions, so a module that `segfn run`
//! would refuse fails the build instead, with the dependency to blame.

mod check;
mod diagnostics;
mod outer_env;

pub use diagnostics::{CapturedBuild, Diagnostic};

use outer_env::CLEARED_ENV;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target functions are built for.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// Where Debian's `rustc-web` puts its compiler and its library source.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_LIBRARY_SRC: &str = "/usr/lib/rustlib/src/rust/library";

/// How the build gets a standard library for the wasm target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `rustup target add wasm32-unknown-unknown` was done: a plain cargo build.
    RustupTarget,
    /// No prebuilt std: build it from Debian's library source with `/usr/bin/rustc`.
    BuildStd {
        /// The wasm linker shipped with the rustup toolchain.
        linker: PathBuf,
    },
}

impl Method {
    /// One line saying which path is used and why.
    pub fn describe(&self) -> String {
        match self {
            Method::RustupTarget => format!("using the installed rustup target {TARGET}"),
            Method::BuildStd { .. } => format!(
                "the rustup target {TARGET} is not installed; building std from source with {DEBIAN_RUSTC} and {DEBIAN_LIBRARY_SRC} (-Zbuild-std)"
            ),
        }
    }
}

/// Why a build could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// DIR has no Cargo.toml.
    #[error("{0} has no Cargo.toml: pass the directory of a function crate")]
    NotACrate(PathBuf),
    /// Neither way to get a wasm std is available.
    #[error(
        "cannot build for {TARGET}: its standard library is not installed.\n  fix: rustup target add {TARGET}\n  or, where rustup cannot download (Debian): apt-get install rustc-web rust-web-src"
    )]
    NoToolchain,
    /// A tool could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Cargo reported errors (they were printed above).
    #[error("cargo build failed ({0}); the compiler's messages are above")]
    Cargo(std::process::ExitStatus),
    /// The build produced no `.wasm` for the crate.
    #[error(
        "the build produced no .wasm for {0}: does its Cargo.toml have [lib] crate-type = [\"cdylib\", \"rlib\"]?"
    )]
    NoArtifact(PathBuf),
    /// The built `.wasm` could not be read or parsed.
    #[error("cannot read the built module {path}: {reason}")]
    Artifact {
        /// The `.wasm`.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The module imports something the host does not provide, so it could not run.
    #[error(
        "{wasm} imports {import}{more}, which the segfn host does not provide (it provides {}){advice}",
        check::provided()
    )]
    ForeignImport {
        /// The `.wasm`.
        wasm: PathBuf,
        /// The first foreign import, `module::name`.
        import: String,
        /// `" (and N more)"` when there are others.
        more: String,
        /// The likely cause and the fix.
        advice: String,
    },
}

/// Options of one build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Cargo's target directory (default: the crate's own).
    pub target_dir: Option<PathBuf>,
}

/// Picks how to build, or says what to install.
pub fn detect() -> Result<Method, BuildError> {
    let sysroot = rustc_output(&["--print", "sysroot"]).map(|s| PathBuf::from(s.trim()));
    if let Some(sysroot) = &sysroot
        && sysroot
            .join("lib/rustlib")
            .join(TARGET)
            .join("lib")
            .is_dir()
    {
        return Ok(Method::RustupTarget);
    }
    let host = rustc_output(&["-vV"]).and_then(|v| {
        v.lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
    });
    if let (Some(sysroot), Some(host)) = (sysroot, host) {
        let linker = sysroot.join("lib/rustlib").join(host).join("bin/rust-lld");
        if linker.is_file()
            && Path::new(DEBIAN_RUSTC).is_file()
            && Path::new(DEBIAN_LIBRARY_SRC).is_dir()
        {
            return Ok(Method::BuildStd { linker });
        }
    }
    Err(BuildError::NoToolchain)
}

fn rustc_output(args: &[&str]) -> Option<String> {
    let mut cmd = Command::new("rustc");
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    let out = cmd.args(args).stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Builds the function crate in `dir` (release, wasm32-unknown-unknown) and returns the
/// path of its `.wasm`. Cargo's progress and diagnostics go to stderr.
pub fn build(dir: &Path, method: &Method, options: &BuildOptions) -> Result<PathBuf, BuildError> {
    run_build(dir, method, options, None)
}

/// Like [`build`], but nothing is printed: the compiler's diagnostics (errors and
/// warnings, with file, line and column) and cargo's own output are returned, for a
/// caller that shows them itself (`segfn dev` puts them on its page).
pub fn build_captured(dir: &Path, method: &Method, options: &BuildOptions) -> CapturedBuild {
    let mut captured = CapturedBuild::default();
    captured.result = run_build(dir, method, options, Some(&mut captured));
    captured
}

/// The build itself; with `capture`, cargo's output is collected there instead of
/// printed.
fn run_build(
    dir: &Path,
    method: &Method,
    options: &BuildOptions,
    mut capture: Option<&mut CapturedBuild>,
) -> Result<PathBuf, BuildError> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(BuildError::NotACrate(dir.to_owned()));
    }
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let mut cmd = cargo(method);
    // Captured, the diagnostics come as JSON on stdout (uncoloured text included);
    // otherwise cargo renders them on stderr as usual.
    let format = if capture.is_some() {
        "--message-format=json"
    } else {
        "--message-format=json-render-diagnostics"
    };
    cmd.args(["build", "--release", "--target", TARGET, format])
        .arg("--manifest-path")
        .arg(&manifest);
    if let Some(target_dir) = &options.target_dir {
        cmd.arg("--target-dir").arg(target_dir);
    }
    if matches!(method, Method::BuildStd { .. }) {
        cmd.arg("-Zbuild-std=std,panic_abort");
    }
    let stderr = if capture.is_some() {
        Stdio::piped()
    } else {
        Stdio::inherit()
    };
    let output = cmd
        .stdout(Stdio::piped())
        .stderr(stderr)
        .output()
        .map_err(|source| BuildError::Spawn {
            program: "cargo".into(),
            source,
        })?;
    let mut wasm = None;
    for message in cargo_metadata::Message::parse_stream(&output.stdout[..]).flatten() {
        match message {
            cargo_metadata::Message::CompilerArtifact(artifact) => {
                let ours = artifact.manifest_path.as_std_path() == manifest;
                if let Some(file) = artifact
                    .filenames
                    .iter()
                    .find(|f| f.extension() == Some("wasm"))
                    && ours
                {
                    wasm = Some(file.clone().into_std_path_buf());
                }
            }
            cargo_metadata::Message::CompilerMessage(message) => {
                if let Some(captured) = capture.as_deref_mut() {
                    captured.push(&message.message);
                }
            }
            _ => {}
        }
    }
    if let Some(captured) = capture {
        captured.cargo_output = String::from_utf8_lossy(&output.stderr).into_owned();
    }
    if !output.status.success() {
        return Err(BuildError::Cargo(output.status));
    }
    let wasm = wasm.ok_or_else(|| BuildError::NoArtifact(dir.to_owned()))?;
    check::check_imports(&wasm, &manifest, method)?;
    Ok(wasm)
}

/// `cargo` with the outer build's variables cleared and, on the fallback path, Debian's
/// compiler and the wasm linker.
fn cargo(method: &Method) -> Command {
    let mut cmd = Command::new("cargo");
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    if let Method::BuildStd { linker } = method {
        cmd.env("RUSTC", DEBIAN_RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", linker);
    }
    cmd
}
