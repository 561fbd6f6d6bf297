//! `segfn serve`: the function as the HTTPS endpoint Segment delivers to, for many
//! tenants, with deduplication, backpressure, hot reload, metrics and graceful shutdown.
//!
//! One delivery's path: [`listener`] accepts the connection and bounds it; [`http`]
//! checks the request (key, headers, body via [`body`], signature via [`auth`]) and
//! refuses what it must ([`refusal`], one table of reasons); [`delivery`] plans each
//! message ([`plan`]), consults the [`store`]'s deduplication window, invokes the
//! function and records the outcome; [`answer`] builds what Segment gets back. In
//! durable mode [`delivery`] commits the events to the [`store`] (on redb:
//! [`store::redb`]; shared by replicas: [`store::postgres`]) and answers 202;
//! [`worker`]s run them and [`retry`] decides what is tried again, and when; [`admin`]
//! answers operators (`segfn status`, `segfn dlq`). [`app`] holds what they share.

pub mod admin;
mod answer;
mod app;
pub mod auth;
mod body;
pub mod config;
mod delivery;
mod http;
mod listener;
mod metrics;
mod plan;
mod refusal;
mod reload;
mod resolve;
pub mod retry;
pub mod source;
pub mod store;
mod worker;

pub use app::{AppState, Tenant};
pub use config::{ConfigError, ResolvedTenant, ServeConfig};
pub use http::{ADMIN_PATH, router};
pub use metrics::Metrics;
pub use refusal::Refusal;
pub use reload::FunctionSlot;
pub use store::location::StoreLocation;
pub use store::postgres::PgStore;
pub use store::redb::{Dedupe, RedbStore};
pub use store::{Marked, MessageKey, Store, StoreError};

use segfn_engine::{Runtime, RuntimeOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// How often function files are checked for changes.
const RELOAD_POLL: Duration = Duration::from_secs(1);
/// How often expired `messageId`s are purged from the store.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The engine.
    #[error("starting the engine: {0}")]
    Engine(String),
    /// A function.
    #[error("loading {0}: {1}")]
    Load(PathBuf, segfn_engine::LoadError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A tenant's allow-list or client.
    #[error("tenant {0:?}: {1}")]
    Tenant(String, String),
    /// The listen address.
    #[error("cannot listen on {0}: {1}")]
    Listen(String, String),
    /// TLS files.
    #[error("TLS: {0}")]
    Tls(String),
    /// The configuration (a source's, read when serving starts).
    #[error(transparent)]
    Config(#[from] config::ConfigError),
}

/// What to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Server settings and limits.
    pub config: ServeConfig,
    /// The tenants, resolved.
    pub tenants: Vec<ResolvedTenant>,
    /// The function for tenants without their own.
    pub function: PathBuf,
}

/// Serves until SIGTERM or SIGINT, then finishes in-flight deliveries. `on_listening`
/// is called with the bound address once the server accepts connections.
pub async fn serve(
    options: ServeOptions,
    on_listening: impl FnOnce(SocketAddr, bool),
) -> Result<(), ServeError> {
    let (stop, stopped) = watch::channel(false);
    let signals = tokio::spawn(watch_signals(stop));
    let result = serve_until(options, stopped, on_listening).await;
    signals.abort();
    result
}

/// Serves until `stop` turns true: the endpoint without the process's signals (tests
/// run it in-process). SIGHUP-style reloads happen on file change.
pub async fn serve_until(
    options: ServeOptions,
    stop: watch::Receiver<bool>,
    on_listening: impl FnOnce(SocketAddr, bool),
) -> Result<(), ServeError> {
    let server = &options.config.server;
    let limits = options.config.limits.limits();
    let runtime = Runtime::new(&RuntimeOptions {
        pooling: true,
        max_instances: (server.max_in_flight as u32)
            .saturating_mul(2)
            .saturating_add(8),
        disk_cache: true,
        load_deadline: limits.deadline,
        max_memory_bytes: limits.memory_bytes,
    })
    .map_err(|e| ServeError::Engine(format!("{e:#}")))?;
    tracing::info!(allocation = ?runtime.allocation(), "engine ready");
    let sources = options
        .config
        .resolve_sources(|var| std::env::var(var).ok())?;
    let (state, slots) = AppState::build(
        &runtime,
        server,
        limits.clone(),
        (&options.tenants, &sources),
        &options.function,
    )
    .await?;
    tracing::info!(store = %server.store.describe(), "store open");

    let reload_state = state.clone();
    let reload_slots = slots.clone();
    let reload_runtime = runtime.clone();
    let mut hup = stop.clone();
    let reloads = tokio::spawn(async move {
        let mut sighup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let force = tokio::select! {
                _ = tokio::time::sleep(RELOAD_POLL) => false,
                Some(()) = async { match &mut sighup { Some(s) => s.recv().await, None => None } } => {
                    tracing::info!("SIGHUP: reloading functions");
                    true
                }
                _ = listener::stopped(&mut hup) => break,
            };
            for slot in &reload_slots {
                if let Some(ok) = slot.reload(&reload_runtime, force).await {
                    reload_state.metrics.reload(ok);
                }
            }
        }
    });
    let store = state.store.clone();
    let metrics = state.metrics.clone();
    let keep_dead = server.max_dead_letters.max(1);
    let purges = tokio::spawn(async move {
        loop {
            tokio::time::sleep(PURGE_EVERY).await;
            match store.purge_expired().await {
                Ok(n) => tracing::debug!(removed = n, "purged expired messageIds"),
                Err(e) => tracing::error!(error = %e, "purging the deduplication store"),
            }
            match store.trim_dead(keep_dead).await {
                Ok(dropped) => {
                    for (tenant, n) in dropped {
                        tracing::warn!(
                            tenant,
                            deleted = n,
                            max_dead_letters = keep_dead,
                            "dead-letter list full: the oldest deleted"
                        );
                        metrics.dead_dropped(&tenant, n);
                    }
                }
                Err(e) => tracing::error!(error = %e, "trimming the dead-letter lists"),
            }
        }
    });

    let addr: SocketAddr = server.listen.parse().map_err(|e| {
        ServeError::Listen(
            server.listen.clone(),
            format!("{e} (expected e.g. 127.0.0.1:8080)"),
        )
    })?;
    let tls = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(ServeError::Tls(
                "give both tls_cert and tls_key (PEM files)".into(),
            ));
        }
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Listen(server.listen.clone(), e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ServeError::Listen(server.listen.clone(), e.to_string()))?;
    let listen = listener::ListenOptions {
        // Each invocation may have `FETCH_CONCURRENCY` requests open at once.
        max_connections: listener::fit_to_fd_limit(
            server.max_connections,
            server
                .max_in_flight
                .saturating_mul(segfn_engine::FETCH_CONCURRENCY),
        ),
        header_timeout: Duration::from_millis(server.header_timeout_ms),
        max_header_bytes: server.max_header_bytes,
        tls: tls.clone(),
    };
    let workers = tokio::spawn(worker::dispatch(state.clone(), stop.clone()));
    let senders: Vec<_> = state
        .sources
        .values()
        .map(|s| {
            let run = source::outbox::run(state.clone(), s.clone(), stop.clone());
            (s.durable, tokio::spawn(run))
        })
        .collect();
    let per_core = || std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match server.connection_threads.unwrap_or_else(per_core) {
        0 => None,
        n => Some(listener::ConnectionThreads::start(n).map_err(|e| {
            ServeError::Listen(
                server.listen.clone(),
                format!("starting {n} connection threads: {e}"),
            )
        })?),
    };
    let grace = limits.deadline + Duration::from_secs(5);
    on_listening(bound, tls.is_some());

    // On stop: new deliveries get 503 and /readyz fails at once; connections finish
    // the request they are on.
    let draining = state.clone();
    let mut stopping = stop.clone();
    tokio::spawn(async move {
        listener::stopped(&mut stopping).await;
        tracing::info!("shutting down: finishing deliveries in flight, refusing new ones");
        draining.draining.store(true, Ordering::Relaxed);
    });
    listener::serve(
        listener,
        router(state.clone()),
        listen,
        state.metrics.clone(),
        stop,
        grace,
        threads.as_ref(),
    )
    .await;
    reloads.abort();
    purges.abort();
    let _ = workers.await;
    // Durable senders stop between rounds: let the round on its way be recorded (an
    // unrecorded one is sent again after the restart). Direct senders have no webhook
    // left waiting once the connections are closed.
    let (durable, direct): (Vec<_>, Vec<_>) = senders.into_iter().partition(|(d, _)| *d);
    direct.iter().for_each(|(_, sender)| sender.abort());
    let rounds = futures_util::future::join_all(durable.into_iter().map(|(_, s)| s));
    let _ = tokio::time::timeout(source::outbox::SEND_WITHIN, rounds).await;

    // Connections are closed, but deliveries whose callers hung up may still run in
    // their own tasks: let them finish and record their messageIds before exiting.
    let all = u32::try_from(server.max_in_flight.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, state.permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("deliveries still running at exit; Segment will retry them");
    }
    if let Some(threads) = threads {
        threads.stop();
    }
    Ok(())
}

/// A TLS acceptor for the PEM files, offering HTTP/1.1 only.
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let problem = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        ServeError::Tls(format!("reading {}: {e}", what.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| problem(cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| problem(key, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ServeError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| ServeError::Tls(format!("{} and {}: {e}", cert.display(), key.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// SIGTERM or SIGINT: turns `stop` true.
async fn watch_signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let _ = stop.send(true);
}
