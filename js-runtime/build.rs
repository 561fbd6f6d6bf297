//! Link settings for the runtime guest's Wasm module.

fn main() {
    // The Wasm shadow stack (C locals whose address is taken, QuickJS's frames) sits at
    // the bottom of linear memory. QuickJS stops JavaScript recursion at 1.75 MiB of it
    // (`MAX_STACK` in src/lib.rs, about 5,000 nested calls, half of Node's default);
    // 2 MiB leaves the rest for the C and Rust frames around it, and overflowing it
    // traps, as the stack comes first in memory. Each fresh instance's memory is reset
    // by copying the snapshot back over the stack and the image
    // (host/engine/src/runtime.rs `SNAPSHOT_KEEP_RESIDENT`, sized to cover both).
    if std::env::var("CARGO_CFG_TARGET_FAMILY").as_deref() == Ok("wasm") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=2097152");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
