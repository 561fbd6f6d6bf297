//! End-to-end tests: the example functions built from source to WebAssembly, run
//! through the engine and through the `segfn` binary against a real partner HTTP server
//! on 127.0.0.1, and adversarial guests written in WAT.

mod adversarial;
mod cli;
mod deploy;
mod dev;
mod durable;
mod endpoint;
mod examples;
mod fetch_policy;
mod host_calls;
mod javascript;
mod map_host;
mod new;
mod pg;
mod replay;
mod schema;
mod serve;
mod sources;
mod store;
mod support;
mod traces;
mod webhooks;
