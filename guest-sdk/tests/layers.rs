//! The SDK's modules depend on each other one way only: each may use modules of lower
//! layers, never its own layer or a higher one. A cycle (say `abi` naming the guest
//! runtime, or `sys` calling into `testing`) makes a module impossible to read, test or
//! replace on its own; this test reads `src/` and names the offending line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each module's layer. `lib.rs` sits above all of them and is not checked.
const LAYERS: &[(&str, u8)] = &[
    // The contract: names, wire types, framing.
    ("abi", 0),
    // Plain types and helpers, and the platform (host imports or native stand-ins).
    ("error", 1),
    ("json", 1),
    ("sys", 1),
    // Encodings partner APIs use.
    ("encoding", 2),
    ("part", 2),
    ("time", 4),
    // What authors use.
    ("event", 3),
    ("env", 3),
    ("log", 3),
    ("fetch", 3),
    ("secret", 3),
    ("source", 3),
    // Dispatch from an envelope to the author's handlers.
    ("handler", 4),
    // Typed views of Segment's semantic events (Ecommerce, Mobile, ...) over `event`.
    ("spec", 4),
    // Settings schemas (feature `schema`), `Secret`'s among them.
    ("schema", 4),
    // Helpers over the handlers, and the two ways in: the wasm exports, and native tests.
    ("batch", 5),
    // Reading messages as Segment's JavaScript integrations did (events, errors, times).
    ("facade", 5),
    ("guest", 5),
    ("testing", 5),
];

/// Names `lib.rs` re-exports at the crate root, by the module that defines them.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("OutcomeKind", "abi"),
    ("FetchErrorKind", "abi"),
    ("Error", "error"),
    ("OrError", "error"),
    ("Event", "event"),
    ("EventType", "event"),
    ("Object", "event"),
    ("FetchError", "fetch"),
    ("Request", "fetch"),
    ("Response", "fetch"),
    ("Secret", "secret"),
    ("Timestamp", "time"),
    ("Function", "handler"),
    ("HandlerResult", "handler"),
    // Re-exported from schemars with the `schema` feature, beside the schema module.
    ("JsonSchema", "schema"),
    ("schemars", "schema"),
];

fn layer(module: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(m, _)| *m == module)
        .unwrap_or_else(|| panic!("module `{module}` has no layer: add it to LAYERS"))
        .1
}

/// The modules `crate::` paths in `source` name (comments ignored).
fn uses(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c == '$' || c == '_' || c.is_alphanumeric()) {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::{c, d}}`: the first segment of each top-level path.
            let mut depth = 0;
            let mut segment = String::new();
            let mut at_start = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !segment.is_empty() {
                            names.insert(std::mem::take(&mut segment));
                        }
                        at_start = true;
                    }
                    c if at_start && (c.is_alphanumeric() || c == '_') => segment.push(c),
                    _ if at_start && !segment.is_empty() => {
                        names.insert(std::mem::take(&mut segment));
                        at_start = false;
                    }
                    _ => {}
                }
            }
            if !segment.is_empty() {
                names.insert(segment);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

fn module_of(name: &str) -> &str {
    if LAYERS.iter().any(|(m, _)| *m == name) {
        return name;
    }
    ROOT_ITEMS
        .iter()
        .find(|(item, _)| *item == name)
        .unwrap_or_else(|| panic!("`crate::{name}`: add it to ROOT_ITEMS or LAYERS"))
        .1
}

/// The Rust files of a module: `src/name.rs`, or every file under `src/name/`.
fn module_files(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        files.extend(module_files(&entry.unwrap().path()));
    }
    files.retain(|f| f.extension().is_some_and(|x| x == "rs"));
    files
}

#[test]
fn modules_depend_on_lower_layers_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        if module == "lib" {
            continue;
        }
        // A directory module's files all sit in its layer, and may use each other.
        for file in module_files(&path) {
            let source = std::fs::read_to_string(&file).unwrap();
            for name in uses(&source) {
                let target = module_of(&name);
                if target == module {
                    continue;
                }
                assert!(
                    layer(target) < layer(&module),
                    "{} (layer {}) uses crate::{name}, which is in {target} (layer {}): \
                     dependencies must point to lower layers",
                    file.display(),
                    layer(&module),
                    layer(target)
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, LAYERS.len(), "every module in src/ has a layer");
}

#[test]
fn the_scanner_finds_grouped_and_plain_paths() {
    let found = uses(
        "use crate::{abi::{A, B}, fetch, error::Error};\n\
         // crate::testing in a comment\n\
         let x = crate::sys::now_ms(); $crate::log::write(); my_crate::x();",
    );
    let expected: BTreeSet<String> = ["abi", "fetch", "error", "sys"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, expected);
}
