//! Accepting connections for the endpoint: HTTP/1.1 only (Segment delivers with it;
//! no cleartext HTTP/2), over TLS when configured, with a deadline for each request's
//! headers (which also ends idle keep-alive connections) and a cap on open
//! connections. At the cap, the connection idle the longest (no request in progress,
//! and the longest since its last answer or its opening: a half-sent request or an idle
//! keep-alive) is closed to make room, so a flood of
//! slow or half-open connections cannot lock out Segment or `/healthz`.

use super::metrics::Metrics;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// File descriptors kept back from connections for the store, function files, the
/// listener and such; outbound fetches get more (see [`fit_to_fd_limit`]).
const RESERVED_FDS: u64 = 256;

/// How connections are accepted and bounded.
#[derive(Clone)]
pub(crate) struct ListenOptions {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time for a request's headers (and for a TLS handshake).
    pub header_timeout: Duration,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// TLS, if served directly.
    pub tls: Option<TlsAcceptor>,
}

/// One open connection, as the cap sees it.
struct Slot {
    /// When it last finished a request (or opened), in ms since the listener started.
    idle_since: Arc<AtomicU64>,
    /// Requests in progress on it (headers read, answer not yet written).
    busy: Arc<AtomicUsize>,
    /// Told to close when evicted.
    close: Arc<Notify>,
}

/// The open connections.
struct Connections {
    slots: Mutex<HashMap<u64, Slot>>,
    next: AtomicU64,
    max: usize,
    started: Instant,
}

/// A connection's place under the cap, given back when dropped.
struct Admitted {
    id: u64,
    busy: Arc<AtomicUsize>,
    idle_since: Arc<AtomicU64>,
    started: Instant,
    close: Arc<Notify>,
    connections: Arc<Connections>,
    metrics: Arc<Metrics>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut slots = self
            .connections
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        slots.remove(&self.id);
        self.metrics.connections.set(slots.len() as i64);
    }
}

impl Connections {
    /// A place for a new connection: free, or made by evicting the longest-idle one;
    /// `None` when every connection has a request in progress.
    fn admit(self: &Arc<Self>, metrics: &Arc<Metrics>) -> Option<Admitted> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= self.max {
            let idle = slots
                .iter()
                .filter(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, s)| s.idle_since.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(evicted) = slots.remove(&idle) {
                evicted.close.notify_one();
                metrics.connections_evicted.inc();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (busy, close) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let idle_since = Arc::new(AtomicU64::new(self.started.elapsed().as_millis() as u64));
        slots.insert(
            id,
            Slot {
                idle_since: idle_since.clone(),
                busy: busy.clone(),
                close: close.clone(),
            },
        );
        metrics.connections.set(slots.len() as i64);
        Some(Admitted {
            id,
            busy,
            idle_since,
            started: self.started,
            close,
            connections: self.clone(),
            metrics: metrics.clone(),
        })
    }
}

/// Counts a request in progress on its connection while it lives; when it ends, the
/// connection's idle time starts again.
struct Busy {
    busy: Arc<AtomicUsize>,
    idle_since: Arc<AtomicU64>,
    started: Instant,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.idle_since.store(now, Ordering::Relaxed);
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Lowers `wanted` to what the process's file descriptor limit allows (raising the
/// soft limit to the hard one first), keeping `outbound` descriptors for fetches, with
/// a warning when it had to.
pub(crate) fn fit_to_fd_limit(wanted: usize, outbound: usize) -> usize {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return wanted;
    }
    let reserved = RESERVED_FDS + outbound as u64;
    let needed = wanted as u64 + reserved;
    if limit.rlim_cur < needed && limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: needed.min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = raised.rlim_cur;
        }
    }
    let fits = limit.rlim_cur.saturating_sub(reserved).max(16) as usize;
    if fits < wanted {
        tracing::warn!(
            max_connections = wanted,
            allowed = fits,
            "the file descriptor limit (ulimit -n) allows fewer connections than max_connections; capping at {fits}"
        );
        fits
    } else {
        wanted
    }
}

/// Threads that serve connections, each a current-thread runtime of its own
/// (`[server] connection_threads`): the listener hands each new connection to the next
/// one in turn, and the connection, its deliveries and their partner calls stay on that
/// thread, with no work stealing and no cross-thread wake-ups between them
/// (docs/PERFORMANCE.md, "The runtime's thread model"). The threads run until
/// [`ConnectionThreads::stop`], so deliveries still running after their connection
/// closed are finished, not dropped.
pub(crate) struct ConnectionThreads {
    handles: Vec<tokio::runtime::Handle>,
    next: AtomicUsize,
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ConnectionThreads {
    /// Starts `count` threads (at least one).
    pub(crate) fn start(count: usize) -> std::io::Result<ConnectionThreads> {
        let mut threads = ConnectionThreads {
            handles: Vec::new(),
            next: AtomicUsize::new(0),
            stop: Vec::new(),
            threads: Vec::new(),
        };
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            threads.handles.push(runtime.handle().clone());
            threads.stop.push(stop);
            threads.threads.push(
                std::thread::Builder::new()
                    .name(format!("segfn-conn-{i}"))
                    .spawn(move || {
                        let _ = runtime.block_on(stopped);
                    })?,
            );
        }
        Ok(threads)
    }

    /// The runtime of the thread whose turn it is.
    fn next(&self) -> &tokio::runtime::Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }

    /// Ends the threads; tasks still on them are dropped, so call it once every
    /// delivery has finished.
    pub(crate) fn stop(self) {
        drop(self.stop);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Accepts and serves connections until `shutdown` turns true; then stops accepting,
/// lets each connection finish its request in progress, and returns when all are
/// closed or `grace` has passed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    options: ListenOptions,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
    threads: Option<&ConnectionThreads>,
) {
    let connections = Arc::new(Connections {
        slots: Mutex::default(),
        next: Default::default(),
        max: options.max_connections.max(1),
        started: Instant::now(),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_buf_size(options.max_header_bytes.max(8192))
        .max_header_size(options.max_header_bytes)
        .keep_alive(true);
    let http = Arc::new(http);
    let tasks = Arc::new(Tasks::default());
    loop {
        let (stream, _peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or the peer gave up before accept:
                    // pause briefly rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let Some(admitted) = connections.admit(&metrics) else {
            metrics.connections_refused.inc();
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, http, options, shutdown) =
            (app.clone(), http.clone(), options.clone(), shutdown.clone());
        let running = tasks.start();
        let Some(threads) = threads else {
            tokio::spawn(serve_accepted(
                stream, app, http, options, admitted, shutdown, running,
            ));
            continue;
        };
        // Moved to the thread's own reactor: its readiness must wake that thread.
        match stream.into_std() {
            Ok(stream) => {
                threads.next().spawn(async move {
                    match TcpStream::from_std(stream) {
                        Ok(stream) => {
                            serve_accepted(stream, app, http, options, admitted, shutdown, running)
                                .await
                        }
                        Err(e) => tracing::warn!(error = %e, "handing a connection over failed"),
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "handing a connection over failed"),
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, tasks.all_done()).await.is_err() {
        tracing::warn!("connections still open at shutdown; closing them");
    }
}

/// Serves one accepted connection: the TLS handshake when configured, then HTTP.
async fn serve_accepted(
    stream: TcpStream,
    app: Router,
    http: Arc<hyper::server::conn::http1::Builder>,
    options: ListenOptions,
    admitted: Admitted,
    shutdown: watch::Receiver<bool>,
    _running: Running,
) {
    match &options.tls {
        None => connection(stream, app, &http, admitted, shutdown).await,
        Some(tls) => {
            // Evictable during the handshake too: a client that never sends its
            // ClientHello must not keep its descriptor past its eviction.
            let handshake = tokio::time::timeout(options.header_timeout, tls.accept(stream));
            tokio::select! {
                done = handshake => match done {
                    Ok(Ok(stream)) => connection(stream, app, &http, admitted, shutdown).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
                _ = admitted.close.notified() => {}
            }
        }
    }
}

/// The connection tasks running, and a wake-up when the last one ends.
#[derive(Default)]
struct Tasks {
    running: AtomicUsize,
    none_left: Notify,
}

/// One running connection task, counted until dropped.
struct Running(Arc<Tasks>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

impl Tasks {
    fn start(self: &Arc<Self>) -> Running {
        self.running.fetch_add(1, Ordering::AcqRel);
        Running(self.clone())
    }

    async fn all_done(&self) {
        loop {
            let notified = self.none_left.notified();
            if self.running.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Serves one connection until it closes, is evicted, or the server shuts down.
async fn connection<S>(
    stream: S,
    app: Router,
    http: &hyper::server::conn::http1::Builder,
    admitted: Admitted,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (busy, idle_since, started) = (
        admitted.busy.clone(),
        admitted.idle_since.clone(),
        admitted.started,
    );
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        busy.fetch_add(1, Ordering::AcqRel);
        let guard = Busy {
            busy: busy.clone(),
            idle_since: idle_since.clone(),
            started,
        };
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(axum::body::Body::new)).await;
            drop(guard);
            response
        }
    });
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            // Evicted while idle: nothing is lost by dropping it.
            _ = admitted.close.notified() => {
                if admitted.busy.load(Ordering::Acquire) == 0 {
                    break;
                }
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = stopped(&mut shutdown), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone). The guard `wait_for`
/// returns is not `Send`, so it is dropped here rather than held in a `select!`.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
