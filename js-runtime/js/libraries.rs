//! Segment's preloaded libraries that a JavaScript function gets only when its script
//! names them: which, and their sources (js/SOURCES.md). Shared through `#[path]` by
//! `segfn build` (host/cli/src/javascript.rs), which hands the named ones to the runtime's
//! init export with the script, and by the runtime's own tests.
//!
//! They are not in the runtime module: text compiled into it sits in every instance's
//! memory image, and a snapshot's image is copied back on every event (about 10% per event
//! for a megabyte, measured on functions/forwarder-js). Passed at build time, a library is
//! in the snapshot of a function that uses it and costs nothing to one that does not.

/// One library: the global it defines, and its files in evaluation order.
pub struct Library {
    /// The global a script uses it by.
    pub global: &'static str,
    /// `(file name for error messages, source)`, evaluated in order.
    pub files: &'static [(&'static str, &'static str)],
}

/// Every library given on demand.
pub const LIBRARIES: &[Library] = &[
    Library {
        global: "moment",
        files: &[
            ("segfn:moment.js", include_str!("moment.min.js")),
            (
                "segfn:moment-timezone.js",
                include_str!("moment-timezone-with-data-1970-2030.min.js"),
            ),
        ],
    },
    Library {
        global: "jsonwebtoken",
        files: &[("segfn:jsonwebtoken.js", include_str!("jsonwebtoken.js"))],
    },
    Library {
        global: "AWS",
        files: &[("segfn:aws.js", include_str!("aws.js"))],
    },
    Library {
        global: "FormData",
        files: &[("segfn:form-data.js", include_str!("form-data.js"))],
    },
    Library {
        global: "OAuth",
        files: &[("segfn:oauth.js", include_str!("oauth.js"))],
    },
    Library {
        global: "libphonenumberjslib",
        files: &[
            (
                "segfn:libphonenumber-js.js",
                include_str!("libphonenumber-min.js"),
            ),
            (
                "segfn:libphonenumberjslib.js",
                // Segment's name for it; the bundle defines `libphonenumber`.
                "globalThis.libphonenumberjslib = { libphonenumberjs: libphonenumber }; delete globalThis.libphonenumber;",
            ),
        ],
    },
    Library {
        global: "xml",
        files: &[("segfn:xml.js", include_str!("xml.js"))],
    },
    Library {
        global: "xml2js",
        files: &[("segfn:xml2js.js", include_str!("xml2js.js"))],
    },
];

/// The libraries `source` names (their global as a whole word, anywhere in the text).
pub fn named_in(source: &str) -> impl Iterator<Item = &'static Library> + '_ {
    LIBRARIES
        .iter()
        .filter(|library| names(source, library.global))
}

/// Whether `source` has `name` as a whole word (not inside a longer identifier).
pub fn names(source: &str, name: &str) -> bool {
    let is_ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
    source.match_indices(name).any(|(at, _)| {
        !is_ident(source[..at].chars().next_back())
            && !is_ident(source[at + name.len()..].chars().next())
    })
}
