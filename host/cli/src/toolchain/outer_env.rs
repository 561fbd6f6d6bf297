//! The variables an outer cargo sets that must not reach a nested guest build: shared by
//! `segfn build` (functions) and segfn's own `build.rs` (the JavaScript runtime), which
//! takes this file in with `#[path]`.

/// Variables an outer Cargo sets that must not leak into the guest build.
pub const CLEARED_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_MAKEFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "__CARGO_FIX_PLZ",
];
