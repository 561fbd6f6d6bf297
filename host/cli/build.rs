//! Builds the JavaScript runtime guest (`js-runtime/`: QuickJS for wasm32) into segfn, so
//! that a first `segfn build handler.js` pre-initialises it at once instead of compiling
//! it for minutes. The nested cargo uses a target directory of its own (`js-runtime`
//! beside the outer one), so it takes no lock the outer build holds, and its artifacts
//! serve the debug and the release build alike.
//!
//! Where it cannot be built (no `wasm32-unknown-unknown` target or no clang: `scripts/
//! bootstrap` installs both), segfn still builds, with a warning, and builds the runtime
//! on first use as before. `SEGFN_EMBED_JS_RUNTIME=0` skips it.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/toolchain/outer_env.rs"]
mod outer_env;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set"));
    let root = manifest_dir.join("../..");
    println!("cargo:rerun-if-env-changed=SEGFN_EMBED_JS_RUNTIME");
    for input in [
        "js-runtime",
        "guest-sdk/src",
        "guest-sdk/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    let embedded = out.join("segfn_js.wasm");
    let built = if std::env::var("SEGFN_EMBED_JS_RUNTIME").as_deref() == Ok("0") {
        Err("SEGFN_EMBED_JS_RUNTIME=0".to_owned())
    } else {
        build(&root, &out)
    };
    match built.and_then(|wasm| std::fs::copy(&wasm, &embedded).map_err(|e| e.to_string())) {
        Ok(_) => {}
        Err(problem) => {
            // An empty file: segfn builds the runtime on first use instead.
            std::fs::write(&embedded, b"").expect("writing into OUT_DIR");
            println!(
                "cargo:warning=the JavaScript runtime is not built into this segfn ({problem}); \
                 `segfn build handler.js` will build it on first use (scripts/bootstrap installs what it needs)"
            );
        }
    }
}

/// `cargo build --release --target wasm32-unknown-unknown` of `js-runtime`; the module.
fn build(root: &Path, out: &Path) -> Result<PathBuf, String> {
    // OUT_DIR is TARGET/PROFILE/build/segfn-HASH/out: the runtime goes beside PROFILE.
    let target_dir = out
        .ancestors()
        .nth(4)
        .map(|t| t.join("js-runtime"))
        .ok_or("OUT_DIR is not inside a target directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // As for function builds, and the outer build's target directory too: the runtime
    // has its own.
    for var in outer_env::CLEARED_ENV.iter().chain(&["CARGO_TARGET_DIR"]) {
        cmd.env_remove(var);
    }
    let status = cmd
        .args(["build", "--release", "--locked", "--quiet"])
        .args(["--target", "wasm32-unknown-unknown", "-p", "segfn-js"])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's output is cargo's; the nested one's errors go to its log.
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of js-runtime/ failed ({status})"));
    }
    let wasm = target_dir.join("wasm32-unknown-unknown/release/segfn_js.wasm");
    if wasm.is_file() {
        Ok(wasm)
    } else {
        Err(format!("{} is missing after the build", wasm.display()))
    }
}
