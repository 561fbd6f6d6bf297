//! `segfn serve`: the function as the HTTPS endpoint Segment delivers to, for many
//! tenants, with deduplication, backpressure, hot reload, metrics and graceful shutdown.

mod app;
pub mod auth;
pub mod config;
mod dedupe;
mod delivery;
mod metrics;
mod reload;

pub use app::{AppState, Tenant, router};
pub use config::{ConfigError, ResolvedTenant, ServeConfig};
pub use dedupe::{Dedupe, StoreError};
pub use metrics::Metrics;
pub use reload::FunctionSlot;

use crate::{FetchClient, FetchPolicy, Runtime, RuntimeOptions};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

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
    Load(PathBuf, crate::LoadError),
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
    let server = &options.config.server;
    let runtime = Runtime::new(&RuntimeOptions {
        pooling: true,
        max_instances: (server.max_in_flight as u32)
            .saturating_mul(2)
            .saturating_add(8),
        disk_cache: true,
    })
    .map_err(|e| ServeError::Engine(format!("{e:#}")))?;

    let mut slots: HashMap<PathBuf, Arc<FunctionSlot>> = HashMap::new();
    let paths = std::iter::once(options.function.clone())
        .chain(options.tenants.iter().filter_map(|t| t.function.clone()));
    for path in paths {
        if let std::collections::hash_map::Entry::Vacant(entry) = slots.entry(path) {
            let slot = FunctionSlot::load(&runtime, entry.key())
                .await
                .map_err(|e| ServeError::Load(entry.key().clone(), e))?;
            entry.insert(Arc::new(slot));
        }
    }

    let mut tenants = HashMap::new();
    for t in &options.tenants {
        let policy = FetchPolicy::parse(&t.allow_hosts)
            .map_err(|e| ServeError::Tenant(t.name.clone(), e.to_string()))?;
        let client = FetchClient::new(policy)
            .map_err(|e| ServeError::Tenant(t.name.clone(), e.to_string()))?;
        let function = slots[t.function.as_ref().unwrap_or(&options.function)].clone();
        tenants.insert(
            app::key_hash(&t.api_key),
            Arc::new(Tenant {
                name: t.name.clone(),
                settings: t.settings.clone(),
                secret_settings: t.secret_settings.clone(),
                redactor: Arc::new(crate::Redactor::from_settings(
                    &t.settings,
                    &t.secret_settings,
                )),
                client,
                shared_secret: t.shared_secret.clone(),
                function,
                debug_responses: t.debug_responses,
            }),
        );
    }

    let dedupe = Dedupe::open(
        &server.store,
        Duration::from_secs(server.dedupe_window_secs),
    )?;
    let limits = options.config.limits.limits();
    let permits = Arc::new(tokio::sync::Semaphore::new(server.max_in_flight.max(1)));
    let state = Arc::new(AppState {
        tenants,
        limits: limits.clone(),
        dedupe: dedupe.clone(),
        metrics: Metrics::default(),
        permits: permits.clone(),
        body_permits: Arc::new(tokio::sync::Semaphore::new(
            server.max_in_flight.max(1).saturating_mul(4),
        )),
        draining: Default::default(),
        max_body_bytes: server.max_body_bytes,
        in_progress: Default::default(),
    });

    let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
    let slots: Vec<Arc<FunctionSlot>> = slots.into_values().collect();
    tokio::spawn(watch_signals(
        state.clone(),
        handle.clone(),
        runtime.clone(),
        slots.clone(),
        limits.deadline,
    ));
    let reload_state = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RELOAD_POLL).await;
            for slot in &slots {
                if let Some(ok) = slot.reload(&runtime, false).await {
                    reload_state.metrics.reload(ok);
                }
            }
        }
    });
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PURGE_EVERY).await;
            match dedupe.purge().await {
                Ok(n) => tracing::debug!(removed = n, "purged expired messageIds"),
                Err(e) => tracing::error!(error = %e, "purging the deduplication store"),
            }
        }
    });

    let addr: SocketAddr = server.listen.parse().map_err(|e| {
        ServeError::Listen(
            server.listen.clone(),
            format!("{e} (expected e.g. 127.0.0.1:8080)"),
        )
    })?;
    let app = router(state).into_make_service();
    let tls = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| {
                    ServeError::Tls(format!(
                        "reading {} and {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?,
        ),
        (None, None) => None,
        _ => {
            return Err(ServeError::Tls(
                "give both tls_cert and tls_key (PEM files)".into(),
            ));
        }
    };
    let is_tls = tls.is_some();
    let server_task = match tls {
        Some(tls) => tokio::spawn(
            axum_server::bind_rustls(addr, tls)
                .handle(handle.clone())
                .serve(app),
        ),
        None => tokio::spawn(axum_server::bind(addr).handle(handle.clone()).serve(app)),
    };
    match handle.listening().await {
        Some(bound) => on_listening(bound, is_tls),
        None => {
            let reason = match server_task.await {
                Ok(Err(e)) => e.to_string(),
                _ => "the listener did not start".into(),
            };
            return Err(ServeError::Listen(server.listen.clone(), reason));
        }
    }
    let served = match server_task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServeError::Listen(server.listen.clone(), e.to_string())),
        Err(e) => Err(ServeError::Listen(server.listen.clone(), e.to_string())),
    };
    // Connections are closed, but deliveries whose callers hung up may still run in
    // their own tasks: let them finish and record their messageIds before exiting.
    let all = u32::try_from(server.max_in_flight.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(
        limits.deadline + Duration::from_secs(5),
        permits.acquire_many(all),
    )
    .await
    .is_err()
    {
        tracing::warn!("deliveries still running at exit; Segment will retry them");
    }
    served
}

/// SIGTERM/SIGINT: stop taking work (503), finish what is in flight, exit. SIGHUP:
/// reload every function now.
async fn watch_signals(
    state: Arc<AppState>,
    handle: axum_server::Handle<SocketAddr>,
    runtime: Runtime,
    slots: Vec<Arc<FunctionSlot>>,
    deadline: Duration,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading functions");
                for slot in &slots {
                    if let Some(ok) = slot.reload(&runtime, true).await {
                        state.metrics.reload(ok);
                    }
                }
            }
        }
    }
    tracing::info!("shutting down: finishing deliveries in flight, refusing new ones");
    state.draining.store(true, Ordering::Relaxed);
    // In-flight invocations end by their deadline; allow that plus a margin.
    handle.graceful_shutdown(Some(deadline + Duration::from_secs(5)));
}
