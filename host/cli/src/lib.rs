//! `segfn`: the tools around the engine that the `segfn` command line drives. Building
//! functions ([`toolchain`], [`javascript`] for scripts), scaffolding them
//! ([`scaffold`]), what a function says about itself as Segment's settings format
//! ([`schema`]) and as its partner documentation page ([`docs`]), the author's loop
//! ([`dev`]: watch, rebuild, run, with its local page) and archived events replayed
//! through a function ([`replay`]).
//!
//! Running a function is `segfn-engine`'s; serving Segment is `segfn-serve`'s. This
//! crate uses both and neither uses it.

pub mod dev;
pub mod docs;
pub mod javascript;
pub mod replay;
pub mod scaffold;
pub mod schema;
pub mod toolchain;
