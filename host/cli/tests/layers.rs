//! The host crates' modules depend on each other one way only: no cycle between two
//! modules (a file each; a directory's `mod.rs` is its own module), and no module
//! reaches a sibling through its crate root's re-exports. A cycle (the store's trait
//! naming the engines that implement it, a builder and the state that holds it) makes
//! a module impossible to read, test or replace on its own; this test reads each
//! crate's `src/` and names the cycle. A parent's use of its own children is what
//! declaring them means and is not counted; a child's use of an item its parent
//! defines is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates checked, by their directory under `host/`.
const CRATES: &[&str] = &["engine", "serve", "cli"];

/// A module path: `["dev", "builder"]`; the crate root is empty.
type ModPath = Vec<String>;

/// The files of one crate under `src/` with their module paths: the library's
/// (`lib.rs` and the modules it declares) or the binary's (`main.rs` and `cli/`).
fn modules(src: &Path, root: &str) -> BTreeMap<ModPath, PathBuf> {
    let mut out = BTreeMap::new();
    out.insert(Vec::new(), src.join(root));
    walk(src, src, &mut out);
    let binary = root == "main.rs";
    out.retain(|module, _| module.is_empty() || (module[0] == "cli") == binary);
    out
}

fn walk(src: &Path, dir: &Path, out: &mut BTreeMap<ModPath, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(src, &path, out);
            continue;
        }
        if path.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).unwrap().with_extension("");
        let mut module: ModPath = relative
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        if module.len() == 1 && (module[0] == "lib" || module[0] == "main") {
            continue;
        }
        out.insert(module, path);
    }
}

/// Code without comments, string literals' contents or `#[cfg(test)]` modules (tests
/// may use anything).
fn code(source: &str) -> String {
    let source = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let mut in_string = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if in_string => {
                    chars.next();
                }
                '"' => in_string = !in_string,
                '/' if !in_string && chars.peek() == Some(&'/') => break,
                _ if in_string => {}
                _ => out.push(c),
            }
        }
        out.push('\n');
    }
    out
}

/// The paths `code` names from `crate::`, `super::` and `self::`, as segments from
/// the crate root (`use x::{a, b::c}` gives both). A file `a/b.rs` is module `a::b`,
/// whose `super` is `a`; `a/mod.rs` is module `a`, whose `super` is the root.
fn paths(code: &str, module: &ModPath) -> Vec<ModPath> {
    let mut found = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut rest = code;
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + start.len()..];
            if before.is_some_and(|c| c == '$' || c == '_' || c == ':' || c.is_alphanumeric()) {
                continue;
            }
            let mut base: ModPath = match start {
                "crate::" => Vec::new(),
                _ => module.clone(),
            };
            if start == "super::" {
                base.pop();
            }
            for tail in expand(rest) {
                let mut full = base.clone();
                for segment in tail {
                    match segment.as_str() {
                        "super" => {
                            full.pop();
                        }
                        "self" | "" => {}
                        _ => full.push(segment),
                    }
                }
                found.push(full);
            }
        }
    }
    found
}

/// `a::b::{c, d::e}` after the prefix: every path it names, as segments.
fn expand(text: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut segment = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            prefix.push(std::mem::take(&mut segment));
        } else if c == '{' {
            let group: String = {
                let mut depth = 0;
                let mut g = String::new();
                for c in chars.by_ref() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    g.push(c);
                }
                g
            };
            let mut out = Vec::new();
            for part in split_top(&group) {
                for tail in expand(part.trim()) {
                    let mut full = prefix.clone();
                    full.extend(tail);
                    out.push(full);
                }
            }
            return out;
        } else {
            break;
        }
    }
    if !segment.is_empty() {
        prefix.push(segment);
    }
    vec![prefix]
}

/// `a, b::{c, d}` split at its top-level commas.
fn split_top(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&group[start..]);
    parts
}

/// The longest known module that `path` starts with.
fn resolve<'a>(path: &ModPath, known: &'a BTreeMap<ModPath, PathBuf>) -> &'a ModPath {
    (0..=path.len())
        .rev()
        .find_map(|n| known.get_key_value(&path[..n]).map(|(k, _)| k))
        .expect("the root is known")
}

/// Names the crate root re-exports (`pub use a::B;` and `pub use a::{B, C};`).
fn re_exports(root: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in code(root).lines() {
        if let Some(rest) = line.trim().strip_prefix("pub use ") {
            for path in expand(rest.trim_end_matches(';')) {
                if let Some(last) = path.last() {
                    names.insert(last.clone());
                }
            }
        }
    }
    names
}

/// Each module's edges to the modules it uses (its own descendants left out).
fn graph(src: &Path, root: &str) -> (BTreeMap<ModPath, BTreeSet<ModPath>>, Vec<String>) {
    let known = modules(src, root);
    let exported = re_exports(&std::fs::read_to_string(src.join(root)).unwrap());
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    let mut through_root = Vec::new();
    for (module, file) in &known {
        let source = code(&std::fs::read_to_string(file).unwrap());
        let mine = edges.entry(module.clone()).or_default();
        for path in paths(&source, module) {
            let target = resolve(&path, &known);
            if target.is_empty()
                && !module.is_empty()
                && path.first().is_some_and(|name| exported.contains(name))
            {
                through_root.push(format!(
                    "{} names `{}` through the crate root's re-export; use the module that defines it",
                    file.display(),
                    path.join("::")
                ));
            }
            if target == module || target.starts_with(module) {
                continue;
            }
            mine.insert(target.clone());
        }
    }
    (edges, through_root)
}

/// A cycle in `edges`, as the modules along it, if there is one.
fn find_cycle(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<ModPath>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &ModPath,
        edges: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        marks: &mut BTreeMap<ModPath, Mark>,
        stack: &mut Vec<ModPath>,
    ) -> Option<Vec<ModPath>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let at = stack.iter().position(|n| n == node).unwrap();
                let mut cycle = stack[at..].to_vec();
                cycle.push(node.clone());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut marks, &mut Vec::new()))
}

fn name(module: &ModPath) -> String {
    if module.is_empty() {
        "(crate root)".into()
    } else {
        module.join("::")
    }
}

#[test]
fn host_crates_have_no_module_cycles_and_no_root_detours() {
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for krate in CRATES {
        let src = host.join(krate).join("src");
        let roots: &[&str] = if *krate == "cli" {
            &["lib.rs", "main.rs"]
        } else {
            &["lib.rs"]
        };
        for root in roots {
            let (edges, through_root) = graph(&src, root);
            checked += edges.len();
            problems.extend(through_root);
            if let Some(cycle) = find_cycle(&edges) {
                problems.push(format!(
                    "host/{krate} ({root}): a cycle: {}",
                    cycle.iter().map(name).collect::<Vec<_>>().join(" -> ")
                ));
            }
        }
    }
    assert!(checked > 60, "only {checked} modules found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_finds_a_cycle_and_a_root_detour() {
    let dir = std::env::temp_dir().join(format!("segfn-layers-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod a;\nmod store;\npub use a::Thing;\n",
    )
    .unwrap();
    std::fs::write(src.join("a.rs"), "pub struct Thing;\n").unwrap();
    std::fs::write(
        src.join("store/mod.rs"),
        "mod location;\nmod redb;\npub trait Trait {}\n// crate::a in a comment\n",
    )
    .unwrap();
    std::fs::write(
        src.join("store/redb.rs"),
        "use super::{Trait, location, super::Thing};\nlet s = \"crate::a\";\n",
    )
    .unwrap();
    std::fs::write(src.join("store/location.rs"), "use super::redb::Engine;\n").unwrap();
    let (edges, through_root) = graph(&src, "lib.rs");
    std::fs::remove_dir_all(&dir).unwrap();
    let module = |p: &str| p.split("::").map(String::from).collect::<ModPath>();
    // A child's use of its parent's item is an edge; the parent's of its child is not.
    assert!(edges[&module("store::redb")].contains(&module("store")));
    assert!(edges[&module("store")].is_empty(), "{edges:?}");
    // `a` is named only in a comment and a string.
    assert!(!edges[&module("store::redb")].contains(&module("a")));
    let cycle = find_cycle(&edges).expect("store::location -> store::redb -> store::location");
    assert!(cycle.contains(&module("store::location")), "{cycle:?}");
    assert!(cycle.contains(&module("store::redb")), "{cycle:?}");
    assert_eq!(through_root.len(), 1, "{through_root:?}");
    assert!(through_root[0].contains("`Thing`"), "{through_root:?}");
}
