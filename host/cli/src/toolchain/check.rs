//! After a build: the module may import only the segfn host functions. Anything else
//! would make `segfn run` refuse it, so the build fails instead and names the cause
//! (for wasm-bindgen, the dependency path that pulls it in).

use super::{BuildError, Method, TARGET, cargo};
use segfn_sdk::abi;
use std::path::Path;
use std::process::Stdio;

/// One import of a module: `module::name`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Import {
    module: String,
    name: String,
}

/// The imports of `wasm` that the segfn host does not provide, in module order.
fn foreign_imports(wasm: &[u8]) -> Result<Vec<Import>, wasmparser::BinaryReaderError> {
    let mut foreign = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::ImportSection(reader) = payload? {
            for import in reader.into_imports() {
                let import = import?;
                if import.module != abi::IMPORT_MODULE || !abi::IMPORTS.contains(&import.name) {
                    foreign.push(Import {
                        module: import.module.to_owned(),
                        name: import.name.to_owned(),
                    });
                }
            }
        }
    }
    Ok(foreign)
}

/// Fails with [`BuildError::ForeignImport`] when the built module imports anything but
/// the segfn host functions: the host would refuse to load it, and the build is where
/// the dependency responsible can still be named.
pub(super) fn check_imports(
    wasm: &Path,
    manifest: &Path,
    method: &Method,
) -> Result<(), BuildError> {
    let artifact_error = |reason: String| BuildError::Artifact {
        path: wasm.to_owned(),
        reason,
    };
    let bytes = std::fs::read(wasm).map_err(|e| artifact_error(e.to_string()))?;
    let foreign = foreign_imports(&bytes).map_err(|e| artifact_error(e.to_string()))?;
    let Some(first) = foreign.first() else {
        return Ok(());
    };
    let chain = if first.module.starts_with(WASM_BINDGEN_MODULE_PREFIX) {
        wasm_bindgen_chain(manifest, method)
    } else {
        None
    };
    Err(BuildError::ForeignImport {
        wasm: wasm.to_owned(),
        import: format!("{}::{}", first.module, first.name),
        more: match foreign.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        },
        advice: advice(first, chain.as_deref()),
    })
}

/// The imports the host provides, `segfn::log, segfn::fetch, ...`.
pub(super) fn provided() -> String {
    abi::IMPORTS
        .iter()
        .map(|n| format!("{}::{n}", abi::IMPORT_MODULE))
        .collect::<Vec<_>>()
        .join(", ")
}

/// wasm-bindgen's import modules (`__wbindgen_placeholder__`,
/// `__wbindgen_externref_xform__`) start with this; its CLI, which segfn does not run,
/// would replace them with JavaScript glue.
const WASM_BINDGEN_MODULE_PREFIX: &str = "__wbindgen";

/// The cause and fix of a foreign import; `chain` is the dependency path from the
/// function crate to wasm-bindgen, when `cargo tree` found one.
fn advice(import: &Import, chain: Option<&[String]>) -> String {
    if import.module.starts_with(WASM_BINDGEN_MODULE_PREFIX) {
        let find = format!("cargo tree -i wasm-bindgen --target {TARGET}");
        let example =
            "chrono = { version = \"0.4\", default-features = false, features = [\"serde\"] }";
        let mut advice = String::from(
            ": a dependency uses wasm-bindgen, which needs a JavaScript host; segfn runs no JavaScript",
        );
        match chain {
            // The function itself depends on wasm-bindgen.
            Some([_, bindgen]) => advice.push_str(&format!(
                "\n  the function crate depends on {bindgen} directly\n  fix: remove that dependency"
            )),
            Some(chain @ [_, culprit, ..]) => advice.push_str(&format!(
                "\n  it comes in through: {}\n  (every path: {find})\n  fix: turn off default features along that path, starting with {culprit} in Cargo.toml and keeping the features you use, as for chrono: {example}",
                chain.join(" -> "),
            )),
            _ => advice.push_str(&format!(
                "\n  find the dependency: {find}\n  fix: turn off that crate's default features, keeping the features you use, as for chrono: {example}"
            )),
        }
        advice
    } else if import.module.starts_with("wasi") {
        ": segfn functions are built for wasm32-unknown-unknown, not WASI".into()
    } else if import.module == "env" && import.name.starts_with("__segfn") {
        ": did the function call segfn_sdk::export!(YourFunction)?".into()
    } else {
        ": an undefined symbol, usually from a dependency with C code or its own `extern` block"
            .into()
    }
}

/// The first dependency path from the function crate to wasm-bindgen, as crate names
/// (`["my-fn", "chrono", "js-sys", "wasm-bindgen"]`), from `cargo tree -i`; `None` when
/// cargo cannot say (e.g. two wasm-bindgen versions make `-i wasm-bindgen` ambiguous).
fn wasm_bindgen_chain(manifest: &Path, method: &Method) -> Option<Vec<String>> {
    let output = cargo(method)
        .args(["tree", "-i", "wasm-bindgen", "--target", TARGET])
        .args(["--edges", "normal", "--prefix", "depth", "--offline"])
        .arg("--manifest-path")
        .arg(manifest)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let chain = first_chain(&String::from_utf8_lossy(&output.stdout));
    (chain.len() >= 2).then_some(chain)
}

/// Reads `cargo tree -i X --prefix depth` output (`0X v1`, `1parent v2`, ...) and
/// returns its first path from the root crate down to X, root first.
fn first_chain(tree: &str) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    for line in tree.lines() {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(depth) = line[..digits].parse::<usize>() else {
            continue;
        };
        // The first line deeper than the chain extends it; any other ends the path.
        if depth != chain.len() {
            break;
        }
        let name = line[digits..].split_whitespace().next().unwrap_or_default();
        chain.push(name.to_owned());
    }
    chain.reverse();
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_segfn_imports_pass() {
        let ok = wat::parse_str(format!(
            r#"(module (import "{}" "{}" (func (param i32 i32 i32))))"#,
            abi::IMPORT_MODULE,
            abi::IMPORT_LOG
        ))
        .unwrap();
        assert_eq!(foreign_imports(&ok).unwrap(), vec![]);
        let bad = wat::parse_str(
            r#"(module
                (import "segfn" "log" (func (param i32 i32 i32)))
                (import "__wbindgen_placeholder__" "__wbindgen_describe" (func (param i32)))
                (import "segfn" "sleep" (func)))"#,
        )
        .unwrap();
        let foreign = foreign_imports(&bad).unwrap();
        assert_eq!(
            foreign,
            vec![
                Import {
                    module: "__wbindgen_placeholder__".into(),
                    name: "__wbindgen_describe".into()
                },
                Import {
                    module: "segfn".into(),
                    name: "sleep".into()
                },
            ]
        );
    }

    #[test]
    fn wasm_bindgen_advice_names_the_crate_and_the_fix() {
        let import = Import {
            module: "__wbindgen_placeholder__".into(),
            name: "__wbindgen_describe".into(),
        };
        let chain: Vec<String> = ["my-fn", "chrono", "js-sys", "wasm-bindgen"]
            .map(String::from)
            .into();
        let advice = advice(&import, Some(&chain));
        for needle in [
            "a dependency uses wasm-bindgen",
            "my-fn -> chrono -> js-sys -> wasm-bindgen",
            "cargo tree -i wasm-bindgen --target wasm32-unknown-unknown",
            "starting with chrono in Cargo.toml",
            "default-features = false",
        ] {
            assert!(advice.contains(needle), "{needle:?} in {advice}");
        }
        let unknown = super::advice(&import, None);
        assert!(unknown.contains("find the dependency: cargo tree -i wasm-bindgen"));
    }

    #[test]
    fn the_first_path_is_read_from_cargo_tree() {
        let tree = "0wasm-bindgen v0.2.100\n1js-sys v0.3.77\n2chrono v0.4.41\n3my-fn v0.1.0 (/x/my-fn)\n1chrono v0.4.41 (*)\n";
        assert_eq!(
            first_chain(tree),
            ["my-fn", "chrono", "js-sys", "wasm-bindgen"]
        );
        assert!(first_chain("").is_empty());
    }
}
