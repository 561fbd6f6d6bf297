//! Interpreter snapshots: the custom section that marks a module as one (the JavaScript
//! runtime after it evaluated a script), which the runtime reads to pick how an
//! instance's memory is reset between events.

/// The custom section that marks a module as an interpreter's snapshot: its memory is
/// a large image written a little everywhere by each event, which the host resets
/// differently (`runtime::MemoryReset`).
pub const SNAPSHOT_SECTION: &str = "segfn:interpreter-snapshot";

/// `wasm` with the [`SNAPSHOT_SECTION`] appended (an empty custom section): what
/// `segfn build` does to a JavaScript function's snapshot.
pub fn mark_snapshot(mut wasm: Vec<u8>) -> Vec<u8> {
    // A custom section: id 0, its size, then the name (length-prefixed) and no payload.
    // Both lengths are below 128, so each is one LEB128 byte.
    const { assert!(SNAPSHOT_SECTION.len() < 127) };
    let name = SNAPSHOT_SECTION.as_bytes();
    wasm.extend_from_slice(&[0, name.len() as u8 + 1, name.len() as u8]);
    wasm.extend_from_slice(name);
    wasm
}

/// Whether `wasm` carries the [`SNAPSHOT_SECTION`] (a module that does not parse has
/// not, and fails to compile later with the parser's reason).
pub fn is_snapshot(wasm: &[u8]) -> bool {
    wasmparser::Parser::new(0).parse_all(wasm).any(|payload| {
        matches!(payload, Ok(wasmparser::Payload::CustomSection(section)) if section.name() == SNAPSHOT_SECTION)
    })
}
