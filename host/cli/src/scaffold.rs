//! `segfn new`: a function crate from a template (destination, insert, batch or source) that
//! builds, passes its tests and runs with `segfn run` straight away, standing alone or
//! added to the Cargo workspace it is created in.

use std::path::{Component, Path, PathBuf};

/// What kind of function to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// Sends `track` and `identify` to a partner's REST API, one request per event.
    Destination,
    /// Runs before a destination: drops or changes events and passes the rest on.
    Insert,
    /// Sends a batch's events to a partner's bulk API, many per request.
    Batch,
    /// Turns a third party's webhook into Segment calls (`on_request`).
    Source,
}

impl Template {
    /// The template's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Template::Destination => "destination",
            Template::Insert => "insert",
            Template::Batch => "batch",
            Template::Source => "source",
        }
    }

    /// What the README calls the function.
    fn kind(self) -> &'static str {
        match self {
            Template::Destination => "destination function",
            Template::Insert => "insert function",
            Template::Batch => "destination function with a batch handler",
            Template::Source => "source function",
        }
    }

    fn lib_rs(self) -> &'static str {
        match self {
            Template::Destination => include_str!("../templates/destination/lib.rs"),
            Template::Insert => include_str!("../templates/insert/lib.rs"),
            Template::Batch => include_str!("../templates/batch/lib.rs"),
            Template::Source => include_str!("../templates/source/lib.rs"),
        }
    }

    fn settings(self) -> &'static str {
        match self {
            Template::Destination => {
                "{\n  \"apiKey\": \"demo-key-4f2a9c\",\n  \"endpoint\": \"https://api.partner.example/v1\"\n}\n"
            }
            Template::Insert => {
                "{\n  \"dropEvents\": [\"Test Event\"],\n  \"addProperties\": {\"source\": \"segfn\"}\n}\n"
            }
            Template::Batch => {
                "{\n  \"apiKey\": \"demo-key-4f2a9c\",\n  \"endpoint\": \"https://api.partner.example/v1\",\n  \"maxEventsPerRequest\": 500\n}\n"
            }
            Template::Source => {
                "{\n  \"webhookToken\": \"wh-token-7f3a\",\n  \"eventName\": \"Form Submitted\"\n}\n"
            }
        }
    }

    /// The README's lines that run the function: for a function with a partner, first
    /// against the partner built into segfn (`api.partner.example` is a placeholder that
    /// does not exist), then against a fake of one's own.
    pub fn run_lines(self) -> &'static str {
        match self {
            Template::Insert => "segfn run . --event events/track.json --settings settings.json",
            Template::Destination | Template::Batch => concat!(
                "segfn demo .                                  # sample events, against a partner built into segfn\n",
                "segfn run . --event events/track.json --settings settings.json \\\n",
                "    --map-host 'api.partner.example=http://127.0.0.1:PORT'   # against a fake of yours"
            ),
            Template::Source => "segfn run . --request requests/form-response.json",
        }
    }

    /// The first thing to run after `segfn new`, which works as it is.
    pub fn first_run(self) -> &'static str {
        match self {
            Template::Destination | Template::Batch => "segfn demo .",
            _ => self.run_lines(),
        }
    }

    /// Sample inputs, by path in the crate: Segment's events, or a webhook.
    fn samples(self) -> Vec<(PathBuf, &'static str)> {
        match self {
            Template::Source => vec![(
                Path::new("requests").join("form-response.json"),
                include_str!("../templates/source/form-response.json"),
            )],
            _ => EVENTS
                .iter()
                .map(|(file, text)| (Path::new("events").join(file), *text))
                .collect(),
        }
    }
}

/// Sample events every crate gets, with their sources (Segment's documentation).
const EVENTS: &[(&str, &str)] = &[
    (
        "track.json",
        include_str!("../../../functions/forwarder/events/track-signed-up.json"),
    ),
    (
        "identify.json",
        include_str!("../../../functions/forwarder/events/identify-complete.json"),
    ),
    (
        "batch.json",
        include_str!("../../../functions/forwarder/events/batch-http-api-mixed.json"),
    ),
    ("SOURCES.md", include_str!("../templates/events-SOURCES.md")),
];

/// How to create the crate.
#[derive(Debug, Clone)]
pub struct NewOptions {
    /// The crate's directory; it must not exist or be empty.
    pub dir: PathBuf,
    /// The template.
    pub template: Template,
    /// The package name; by default the directory's name.
    pub name: Option<String>,
    /// The `segfn-sdk` crate's directory (the repository's `guest-sdk/`).
    pub sdk: PathBuf,
}

/// What [`create`] did.
#[derive(Debug, Clone)]
pub struct Created {
    /// The package name.
    pub name: String,
    /// The crate's directory.
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// The workspace manifest the crate was added to as a member, if any.
    pub workspace: Option<PathBuf>,
    /// Set when the workspace has no release profile: the recommended one to add to it
    /// (a member's own profile is ignored by Cargo).
    pub workspace_profile: Option<&'static str>,
}

/// Why a crate could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name is not a package name Cargo accepts.
    #[error(
        "{0:?} is not a usable crate name: {1} (use letters, digits, '-' and '_', starting with a letter, or pass --name)"
    )]
    BadName(String, &'static str),
    /// The directory holds files already.
    #[error("{} already exists and is not empty: choose another directory or remove it", .0.display())]
    Exists(PathBuf),
    /// The SDK was not where it was expected.
    #[error(
        "the segfn SDK is not at {}: pass --sdk PATH to the guest-sdk directory of a segfn checkout",
        .0.display()
    )]
    NoSdk(PathBuf),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The enclosing workspace's manifest could not be read or changed.
    #[error("{}: {message}", path.display())]
    Workspace {
        /// The workspace's `Cargo.toml`.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |source| ScaffoldError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates the crate: its files, and its membership of an enclosing workspace.
pub fn create(options: &NewOptions) -> Result<Created, ScaffoldError> {
    let cwd = std::env::current_dir().map_err(io(Path::new(".")))?;
    let dir = normalize(&cwd.join(&options.dir));
    let name = match &options.name {
        Some(name) => name.clone(),
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    check_name(&name)?;
    if dir.exists() {
        let mut entries = std::fs::read_dir(&dir).map_err(io(&dir))?;
        if entries.next().is_some() {
            return Err(ScaffoldError::Exists(dir));
        }
    }
    let sdk = normalize(&cwd.join(&options.sdk));
    if !sdk.join("Cargo.toml").is_file() {
        return Err(ScaffoldError::NoSdk(sdk));
    }
    let workspace = enclosing_workspace(&dir)?;
    let in_workspace = workspace.is_some();

    let type_name = type_name(&name);
    let fill = |text: &str| {
        text.replace("{{name}}", &name)
            .replace("{{Name}}", &type_name)
            .replace("{{kind}}", options.template.kind())
            .replace("{{run}}", options.template.run_lines())
    };
    // Relative when the two share more than the root (a checkout with its functions),
    // so the pair can move together; absolute otherwise.
    let shared = dir
        .components()
        .zip(sdk.components())
        .take_while(|(a, b)| a == b)
        .count();
    let sdk_path = if shared > 1 {
        relative(&dir, &sdk)
    } else {
        sdk.clone()
    };
    let profile = if in_workspace {
        String::new()
    } else {
        include_str!("../templates/profile.toml.in").to_owned()
    };
    let profile_note = if in_workspace {
        "; the release profile is the workspace's"
    } else {
        ", and the recommended release profile"
    };
    let manifest = fill(include_str!("../templates/Cargo.toml.in"))
        .replace(
            "{{sdk}}",
            // `schema`: the templates describe their settings (`export!(F, schema)`).
            &format!(
                "{{ path = {}, features = [\"schema\"] }}",
                toml_string(&sdk_path.to_string_lossy())
            ),
        )
        .replace("{{profile}}", &profile);
    let readme =
        fill(include_str!("../templates/README.md.in")).replace("{{profile_note}}", profile_note);

    let mut files: Vec<(PathBuf, String)> = vec![
        ("Cargo.toml".into(), manifest),
        ("src/lib.rs".into(), fill(options.template.lib_rs())),
        (
            "settings.json".into(),
            options.template.settings().to_owned(),
        ),
        ("README.md".into(), readme),
    ];
    if !in_workspace {
        files.push((
            ".gitignore".into(),
            include_str!("../templates/gitignore.in").to_owned(),
        ));
    }
    for (file, text) in options.template.samples() {
        files.push((file, text.to_owned()));
    }
    for (file, text) in &files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }

    // The template is formatted, but the type name's length may change line breaks.
    // rustfmt ships with every rustup toolchain; without it the code is merely unformatted.
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .arg(dir.join("src/lib.rs"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();

    let mut workspace_profile = None;
    if let Some(root) = &workspace {
        let has_profile = add_member(root, &dir)?;
        if !has_profile {
            workspace_profile = Some(include_str!("../templates/profile.toml.in").trim_start());
        }
    }
    Ok(Created {
        name,
        dir,
        files: files.into_iter().map(|(f, _)| f).collect(),
        workspace,
        workspace_profile,
    })
}

/// The SDK of the checkout this binary was built from, when it is still there.
pub fn default_sdk() -> PathBuf {
    normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk"))
}

fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let bad = |why| Err(ScaffoldError::BadName(name.to_owned(), why));
    if name.is_empty() {
        return bad("it is empty");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return bad("it must start with a letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad("it may hold only letters, digits, '-' and '_'");
    }
    // Names that would shadow the crates the function depends on, or that Cargo refuses.
    if [
        "segfn-sdk",
        "segfn_sdk",
        "serde",
        "serde_json",
        "std",
        "core",
        "alloc",
        "test",
    ]
    .contains(&name)
    {
        return bad("it is the name of a crate the function uses");
    }
    Ok(())
}

/// `my-destination` → `MyDestination`: the function's type.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// `path` with `.` and `..` resolved without touching the file system (the crate's
/// directory does not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `to` relative to `from`, both absolute and normalised.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part);
    }
    out
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    toml_edit::Value::from(text).to_string().trim().to_owned()
}

/// The nearest ancestor manifest with a `[workspace]` table: Cargo builds the new crate
/// only as one of its members.
fn enclosing_workspace(dir: &Path) -> Result<Option<PathBuf>, ScaffoldError> {
    for ancestor in dir.ancestors().skip(1) {
        let manifest = ancestor.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest).map_err(io(&manifest))?;
        let doc: toml_edit::DocumentMut = text.parse().map_err(|e| ScaffoldError::Workspace {
            path: manifest.clone(),
            message: format!("not valid TOML: {e}"),
        })?;
        if doc.contains_key("workspace") {
            return Ok(Some(manifest));
        }
    }
    Ok(None)
}

/// Adds `dir` to the workspace's `members` unless a pattern there covers it, keeping the
/// manifest's formatting. Returns whether the workspace has a release profile.
fn add_member(manifest: &Path, dir: &Path) -> Result<bool, ScaffoldError> {
    let fail = |message: String| ScaffoldError::Workspace {
        path: manifest.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(manifest).map_err(io(manifest))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| fail(format!("not valid TOML: {e}")))?;
    let root = manifest.parent().unwrap_or(Path::new("/"));
    let member = relative(root, dir).to_string_lossy().replace('\\', "/");
    let workspace = doc["workspace"]
        .as_table_like_mut()
        .ok_or_else(|| fail("`workspace` is not a table".into()))?;
    let members = workspace
        .entry("members")
        .or_insert(toml_edit::Item::Value(toml_edit::Array::new().into()))
        .as_array_mut()
        .ok_or_else(|| fail("`workspace.members` is not an array".into()))?;
    let covered = members
        .iter()
        .filter_map(|m| m.as_str())
        .any(|pattern| glob_match(pattern.trim_end_matches('/'), &member));
    if !covered {
        members.push(member.as_str());
        std::fs::write(manifest, doc.to_string()).map_err(io(manifest))?;
    }
    Ok(doc.get("profile").and_then(|p| p.get("release")).is_some())
}

/// Cargo's member patterns: `*` matches within one path segment.
fn glob_match(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    pattern.len() == path.len() && pattern.iter().zip(&path).all(|(p, s)| segment_match(p, s))
}

fn segment_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            let Some(tail) = text.strip_prefix(prefix) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| segment_match(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_type_names() {
        assert_eq!(type_name("my-destination"), "MyDestination");
        assert_eq!(type_name("acme_bulk2"), "AcmeBulk2");
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        for (name, why) in [
            ("", "empty"),
            ("1abc", "start with a letter"),
            ("a b", "only letters"),
            ("serde", "crate the function uses"),
        ] {
            let error = check_name(name).unwrap_err().to_string();
            assert!(error.contains(why), "{name:?}: {error}");
        }
        assert!(check_name("my-destination").is_ok());
    }

    #[test]
    fn relative_paths_climb_to_the_common_ancestor() {
        assert_eq!(
            relative(Path::new("/w/functions/new"), Path::new("/w/guest-sdk")),
            Path::new("../../guest-sdk")
        );
        assert_eq!(
            relative(Path::new("/tmp/x"), Path::new("/w/guest-sdk")),
            Path::new("../../w/guest-sdk")
        );
    }

    #[test]
    fn member_patterns_match_within_a_segment() {
        assert!(glob_match("functions/*", "functions/acme"));
        assert!(!glob_match("functions/*", "functions/acme/inner"));
        assert!(glob_match("fn-*-dest", "fn-acme-dest"));
        assert!(!glob_match("host", "functions/acme"));
    }

    #[test]
    fn a_member_is_added_once_keeping_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(&manifest, "[workspace]\n# ours\nmembers = [\"host\"]\n").unwrap();
        let crate_dir = dir.path().join("functions/acme");
        assert!(!add_member(&manifest, &crate_dir).unwrap());
        add_member(&manifest, &crate_dir).unwrap();
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(text.contains("# ours"), "{text}");
        assert_eq!(text.matches("functions/acme").count(), 1, "{text}");
    }
}
