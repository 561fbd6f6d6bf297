//! Link settings for the runtime guest's Wasm module.

fn main() {
    // The Wasm shadow stack (C locals whose address is taken, QuickJS's frames) sits at
    // the bottom of linear memory, and each fresh instance's memory is reset by copying
    // the snapshot back over it (host/engine/src/runtime.rs `KEEP_RESIDENT`): Rust's 1 MiB
    // default is copied on every event, while QuickJS stops JavaScript recursion at
    // 128 KiB of it (`MAX_STACK` in src/lib.rs). 256 KiB leaves the rest for the C and
    // Rust frames around it; overflowing it traps, as the stack comes first in memory.
    if std::env::var("CARGO_CFG_TARGET_FAMILY").as_deref() == Ok("wasm") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=262144");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
