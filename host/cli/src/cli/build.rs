//! `segfn build [DIR | SCRIPT.js]`: a function crate compiled to wasm, or a JavaScript
//! function pre-initialised into a module (`segfn::javascript`).

use anyhow::Context as _;
use segfn::javascript;
use segfn::toolchain::{self, BuildOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// The function crate's directory, or a JavaScript function's script (`handler.js`,
    /// or a directory holding one and no Cargo.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where a JavaScript function's module goes (default: the script's name with
    /// `.wasm`, beside it).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
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
    if let Some(script) = script_of(&args.dir) {
        let output = args
            .output
            .clone()
            .unwrap_or_else(|| script.with_extension("wasm"));
        let target = args.target.clone();
        return super::with_runtime(async move {
            build_script(&script, &target, &output).await?;
            super::write_stdout(&format!("{}\n", output.display()))?;
            Ok(ExitCode::SUCCESS)
        });
    }
    if args.output.is_some() {
        anyhow::bail!(
            "--output is for JavaScript functions; a crate's module is where cargo puts it"
        );
    }
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

/// The script when `path` names a JavaScript function: a `.js` file, or a directory
/// with a `handler.js` and no `Cargo.toml`.
pub(crate) fn script_of(path: &Path) -> Option<PathBuf> {
    if path.is_file() && path.extension().is_some_and(|e| e == "js") {
        return Some(path.to_owned());
    }
    let handler = path.join("handler.js");
    (path.is_dir() && !path.join("Cargo.toml").exists() && handler.is_file()).then_some(handler)
}

/// Pre-initialises `script` into `output`, saying on stderr what it took.
pub(crate) async fn build_script(
    script: &Path,
    target: &TargetDirArg,
    output: &Path,
) -> anyhow::Result<()> {
    let runtime = runtime_bytes(target).await?;
    let built = javascript::build_file(&runtime, script).await?;
    std::fs::write(output, &built.wasm).with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "segfn: {} pre-initialised into {} ({}; runtime {}) in {:.2} s",
        script.display(),
        output.display(),
        size(built.wasm.len()),
        size(built.runtime_bytes),
        built.elapsed.as_secs_f64()
    );
    Ok(())
}

/// The runtime guest's bytes: built into segfn, or built first when it is not.
async fn runtime_bytes(target: &TargetDirArg) -> anyhow::Result<std::borrow::Cow<'static, [u8]>> {
    let dir = target.target_dir.clone();
    Ok(tokio::task::spawn_blocking(move || javascript::runtime_bytes(dir.as_deref())).await??)
}

/// The module for `script` in segfn's cache ([`cache_dir`]), built
/// when the script or the runtime changed since: `segfn run`, `serve` and `demo` take
/// scripts through it.
pub(crate) async fn cached_script_module(
    script: &Path,
    target: &TargetDirArg,
) -> anyhow::Result<PathBuf> {
    use sha2::Digest as _;
    let Some(dir) = cache_dir() else {
        anyhow::bail!(
            "segfn keeps snapshots of scripts in $XDG_CACHE_HOME/segfn/js or ~/.cache/segfn/js, \
             and neither XDG_CACHE_HOME nor HOME is set: set one, or build the module first \
             (`segfn build {} -o handler.wasm`) and pass the .wasm",
            script.display()
        );
    };
    let runtime = runtime_bytes(target).await?;
    let source = std::fs::read_to_string(script)
        .with_context(|| format!("reading {} (a script is UTF-8 text)", script.display()))?;
    let mut hash = sha2::Sha256::new();
    // The snapshot is made by a segfn of this version from this runtime: a new version
    // or a changed runtime makes it again.
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    hash.update([0]);
    hash.update(&runtime);
    hash.update(script.file_name().unwrap_or_default().as_encoded_bytes());
    hash.update([0]);
    hash.update(&source);
    let key = hex::encode(&hash.finalize()[..12]);
    let stem = script.file_stem().unwrap_or_default().to_string_lossy();
    let output = dir.join(format!("{stem}-{key}.wasm"));
    if output.is_file() {
        return Ok(output);
    }
    let built = javascript::build(
        &runtime,
        &script.file_name().unwrap_or_default().to_string_lossy(),
        &source,
    )
    .await?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Written aside and renamed, so that a concurrent run never reads half a module.
    let partial = dir.join(format!("{stem}-{key}.{}.partial", std::process::id()));
    std::fs::write(&partial, &built.wasm)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &output).with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "segfn: {} pre-initialised ({}) in {:.2} s",
        script.display(),
        size(built.wasm.len()),
        built.elapsed.as_secs_f64()
    );
    Ok(output)
}

fn size(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Where snapshots of scripts are kept: the user's cache directory (`$XDG_CACHE_HOME`,
/// else `~/.cache`), not a shared temporary directory another user could write to; none
/// without either (the caller says so).
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("segfn").join("js"))
}
