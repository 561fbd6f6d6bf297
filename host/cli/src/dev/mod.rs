//! `segfn dev`: the function author's loop. Watches a function crate, rebuilds it on
//! save, and serves a local page like the tester in Segment's function editor, which
//! runs the last good module on sample or pasted events and keeps the last runs.
//!
//! The parts: `builder` (one build at a time, the last good module kept), `watch` (file
//! changes into rebuilds and reloads), `state` (what the page shows, shared), `samples`
//! (embedded Segment spec events and the crate's own), `history` (the last runs), `api`
//! (the HTTP routes) and `page.html` (the page).

mod api;
mod builder;
mod history;
mod samples;
mod session;
mod watch;

pub use builder::{BuildState, BuildStatus, ModuleInfo};
pub use history::{RunRecord, RunSummary};
pub use samples::Sample;

use crate::toolchain::BuildOptions;
use segfn_engine::{FetchClient, Limits};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// Largest request the page's API reads: an event as large as `segfn serve` takes
/// (4 MiB) plus room for settings.
pub const MAX_REQUEST_BYTES: usize = 5 << 20;

/// Everything `segfn dev` runs with.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The function crate's directory.
    pub dir: PathBuf,
    /// The port on 127.0.0.1 (0: any free port). Only loopback is ever bound: the page
    /// runs code and shows settings.
    pub port: u16,
    /// The settings the page starts from, reloaded when the file changes (usually
    /// `DIR/settings.json`; it may be missing).
    pub settings_file: PathBuf,
    /// The client every run fetches through, bound to the fetch policy of the command
    /// line (allow-list and whatever else the fetch flags set), as `segfn run` builds it.
    pub client: FetchClient,
    /// Settings to treat as secret beyond those named like credentials.
    pub secrets: Vec<String>,
    /// Limits of each run.
    pub limits: Limits,
    /// How to build (cargo's target directory).
    pub build: BuildOptions,
    /// How many runs the page keeps.
    pub keep_runs: usize,
}

/// Why `segfn dev` could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// DIR is not a crate.
    #[error("{0} has no Cargo.toml: pass the directory of a function crate")]
    NotACrate(PathBuf),
    /// The port is taken, or binding failed otherwise.
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The engine could not start.
    #[error("starting the engine: {0}")]
    Engine(String),
    /// The crate could not be watched.
    #[error("cannot watch {path}: {source}")]
    Watch {
        /// What was to be watched.
        path: PathBuf,
        /// The cause.
        source: notify_debouncer_full::notify::Error,
    },
    /// Serving failed.
    #[error("serving the page: {0}")]
    Serve(std::io::Error),
}

/// Binds 127.0.0.1, starts watching and the first build, calls `on_listening` with the
/// address (the page is up while the first build runs) and serves until `shutdown`
/// completes. Connections still open then (the page's event stream) are dropped.
pub async fn serve(
    options: DevOptions,
    shutdown: impl Future<Output = ()>,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), DevError> {
    if !options.dir.join("Cargo.toml").is_file() {
        return Err(DevError::NotACrate(options.dir.clone()));
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DevError::Bind {
            addr,
            hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                ": pass another --port, or --port 0 for any free one"
            } else {
                ""
            },
            source,
        })?;
    let addr = listener.local_addr().map_err(DevError::Serve)?;

    let dev = Arc::new(session::Dev::new(options)?);
    let (changes, watcher) = watch::start(&dev.options.dir, &dev.options.settings_file)?;
    let builds = builder::start(dev.clone());
    tokio::spawn(session::follow_changes(
        dev.clone(),
        changes,
        builds.clone(),
    ));

    let app = api::router(dev, builds.clone(), addr);
    on_listening(addr);
    builds.request("start");
    let server = axum::serve(listener, app);
    let result = tokio::select! {
        result = server => result.map_err(DevError::Serve),
        () = shutdown => Ok(()),
    };
    drop(watcher);
    result
}
