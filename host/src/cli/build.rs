//! `segfn build [DIR]`.

use anyhow::Context as _;
use segfn_host::toolchain::{self, BuildOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// The function crate's directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    target: TargetDirArg,
}

/// `--target-dir`, shared by the commands that may build.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TargetDirArg {
    /// Cargo target directory for the wasm build (default: the crate's own).
    #[arg(long, value_name = "DIR")]
    pub(crate) target_dir: Option<PathBuf>,
}

pub(crate) fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let wasm = build_function(&args.dir, &args.target)?;
    super::write_stdout(&format!("{}\n", wasm.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Builds a function crate, saying how on stderr; returns the `.wasm` path.
pub(crate) fn build_function(dir: &Path, target: &TargetDirArg) -> anyhow::Result<PathBuf> {
    let method = toolchain::detect()?;
    eprintln!("segfn: building {} ({})", dir.display(), method.describe());
    let options = BuildOptions {
        target_dir: target.target_dir.clone(),
    };
    toolchain::build(dir, &method, &options).with_context(|| format!("building {}", dir.display()))
}
