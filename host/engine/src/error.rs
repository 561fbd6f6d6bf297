//! The host library's errors: why a module cannot be loaded, and the faults a guest can
//! commit during a call (raised as traps from host functions).

use std::path::PathBuf;

/// Why a module cannot be a segfn function.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid WebAssembly, or uses features the host does not enable.
    #[error("not a valid WebAssembly module: {0} (build functions with `segfn build`)")]
    Compile(String),
    /// A required export is missing or has the wrong type.
    #[error(
        "the module does not export {name} as {expected}: is it a segfn function? (Rust functions get these exports from segfn_sdk::export!)"
    )]
    Export {
        /// The export's name.
        name: &'static str,
        /// Its required kind and signature.
        expected: &'static str,
    },
    /// The module imports something the host does not provide.
    #[error(
        "the module imports {module}::{name}, which the segfn host does not provide (it provides {provided}){hint}"
    )]
    Import {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// What the host provides.
        provided: String,
        /// A likely cause.
        hint: &'static str,
    },
    /// The guest speaks another ABI version.
    #[error(
        "the module speaks segfn ABI v{found}, this host speaks v{expected}: rebuild it with a segfn-sdk for ABI v{expected}"
    )]
    AbiVersion {
        /// What the module said.
        found: u32,
        /// What the host speaks.
        expected: u32,
    },
    /// Linking or the trial instantiation failed.
    #[error("the module cannot be instantiated: {0}")]
    Instantiate(String),
}

/// A guest broke the rules during a call; raised from host functions as a trap and
/// reported as a `bad_request` outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GuestFault {
    /// The guest reported a panic.
    #[error("the function panicked: {0}")]
    Panic(String),
    /// The guest passed an invalid pointer, length or frame.
    #[error("the function broke the segfn ABI: {0}")]
    Abi(String),
    /// The guest's result is larger than the output limit.
    #[error("the function broke the segfn ABI: {0}")]
    Output(String),
}
