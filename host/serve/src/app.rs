//! What the endpoint's handlers share: the tenants (each with its settings, secrets,
//! allow-list and host mappings, function and share of capacity), the store, metrics and limits; and
//! building it all from the configuration.

use super::ServeError;
use super::config::{BatchSignature, ResolvedTenant, ServerConfig};
use super::metrics::Metrics;
use super::reload::FunctionSlot;
use super::retry::Backoff;
use super::source::config::ResolvedSource;
use super::source::instance::Source;
use super::store::MessageKey;
use super::store::Store;
use segfn_engine::{FetchClient, FetchPolicy, Limits, Redactor, Runtime};
use serde_json::Value;
use sha1::Digest as _;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// One mutual customer: its settings, allow-list, secrets, function and capacity.
#[derive(Debug)]
pub struct Tenant {
    /// Name, for logs and metrics.
    pub name: String,
    /// The tenant's settings.
    pub settings: Value,
    /// The same, as the JSON text handed to the function.
    pub settings_json: Arc<str>,
    /// Declared secret setting names.
    pub secret_settings: Vec<String>,
    /// The redactor for the tenant's own settings, built once.
    pub redactor: Arc<Redactor>,
    /// The `fetch` client bound to the tenant's allow-list.
    pub client: FetchClient,
    /// Shared secret for `X-Signature`.
    pub shared_secret: Option<String>,
    /// What the signature must cover in a batch.
    pub batch_signature: BatchSignature,
    /// Settings `X-Segment-Settings` may change (`None`: all of them).
    pub overridable_settings: Option<HashSet<String>>,
    /// The function that handles this tenant's deliveries.
    pub function: Arc<FunctionSlot>,
    /// Answer with the report (outcome, logs, trace) for Segment's Event Tester.
    pub debug_responses: bool,
    /// Durable mode: deliveries are queued and answered 202, workers run them.
    pub durable: bool,
    /// The tenant's share of invocations running at once.
    pub permits: Arc<Semaphore>,
    /// The tenant's share of bodies being read at once.
    pub body_permits: Arc<Semaphore>,
    /// The last few `X-Segment-Settings` seen, most recent first, with the settings
    /// and redactor made from each: Segment sends the same header with every delivery,
    /// so it is read once.
    pub header_settings: Mutex<Vec<Arc<HeaderSettings>>>,
}

/// Settings merged from one `X-Segment-Settings` value.
#[derive(Debug, Clone)]
pub struct HeaderSettings {
    /// The header as received.
    pub header: String,
    /// The tenant's settings with the header's merged over them.
    pub settings: Value,
    /// The same, as JSON text.
    pub settings_json: Arc<str>,
    /// Keeps the merged settings' secrets out of reports.
    pub redactor: Arc<Redactor>,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Tenants by SHA-1 of their API key: the lookup never compares raw keys.
    pub tenants: HashMap<[u8; 20], Arc<Tenant>>,
    /// Source functions by SHA-1 of their webhook token, likewise.
    pub sources: HashMap<[u8; 20], Arc<Source>>,
    /// The client for Segment's Tracking and Objects APIs.
    pub segment_client: reqwest::Client,
    /// Per-invocation limits.
    pub limits: Limits,
    /// The store: deduplication window, durable queue, dead letters.
    pub store: Arc<dyn Store>,
    /// The durable mode's retry schedule.
    pub backoff: Backoff,
    /// Poked when work is queued or a worker finishes: the dispatcher looks again.
    pub wake: tokio::sync::Notify,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Invocations allowed at once, all tenants together.
    pub permits: Arc<Semaphore>,
    /// Bodies being read at once (each up to `max_body_bytes`), all tenants together.
    pub body_permits: Arc<Semaphore>,
    /// Set on shutdown: new deliveries get 503.
    pub draining: AtomicBool,
    /// Largest body accepted, compressed or not.
    pub max_body_bytes: usize,
    /// Time a body has to arrive.
    pub body_timeout: Duration,
    /// Messages running now.
    pub in_progress: Mutex<HashSet<MessageKey>>,
    /// Durable mode: events one tenant may have pending.
    pub max_queued: u64,
    /// Bearer token of the admin API (`None`: it is off).
    pub admin_token: Option<String>,
    /// Added to the invocation deadline for a durable event's lease: recording the
    /// outcome takes a commit, and the store may be remote.
    pub lease_margin: Duration,
}

/// The key under which a tenant is found.
pub fn key_hash(api_key: &str) -> [u8; 20] {
    sha1::Sha1::digest(api_key.as_bytes()).into()
}

/// Invocations one tenant may run at once: its own setting, the server's, or (by
/// default) everything with one tenant and half with several.
fn tenant_share(server: &ServerConfig, tenant: &ResolvedTenant, tenants: usize) -> usize {
    let total = server.max_in_flight.max(1);
    tenant
        .max_in_flight
        .or(server.tenant_max_in_flight)
        .unwrap_or(if tenants > 1 {
            total.div_ceil(2)
        } else {
            total
        })
        .clamp(1, total)
}

impl AppState {
    /// Builds the shared state: loads each function once, binds each tenant's fetch
    /// client, opens the store.
    pub async fn build(
        runtime: &Runtime,
        server: &ServerConfig,
        limits: Limits,
        (tenants, sources): (&[ResolvedTenant], &[ResolvedSource]),
        default_function: &std::path::Path,
    ) -> Result<(Arc<AppState>, Vec<Arc<FunctionSlot>>), ServeError> {
        let mut slots: HashMap<PathBuf, Arc<FunctionSlot>> = HashMap::new();
        let paths = std::iter::once(default_function.to_owned())
            .chain(tenants.iter().filter_map(|t| t.function.clone()))
            .chain(sources.iter().filter_map(|s| s.function.clone()));
        for path in paths {
            if let std::collections::hash_map::Entry::Vacant(entry) = slots.entry(path) {
                let slot = FunctionSlot::load(runtime, entry.key())
                    .await
                    .map_err(|e| ServeError::Load(entry.key().clone(), e))?;
                entry.insert(Arc::new(slot));
            }
        }

        let mut by_key = HashMap::new();
        for t in tenants {
            let problem = |e: String| ServeError::Tenant(t.name.clone(), e);
            let policy = FetchPolicy::parse(&t.allow_hosts)
                .map_err(|e| problem(e.to_string()))?
                .with_map(t.map_hosts.clone());
            let client = FetchClient::new(policy).map_err(|e| problem(e.to_string()))?;
            let redactor = Redactor::from_settings(&t.settings, &t.secret_settings)
                .map_err(|e| problem(e.to_string()))?;
            if t.overridable_settings.is_none() && t.allow_hosts.iter().any(|h| h == "*") {
                tracing::warn!(
                    tenant = %t.name,
                    "X-Segment-Settings may change any setting of this tenant and fetch may reach any host: \
                     the header is not signed, so a replayed request could point the function (and its API key) \
                     elsewhere; list the settings the header may change in overridable_settings"
                );
            }
            if !t.map_hosts.is_empty() {
                tracing::warn!(
                    tenant = %t.name,
                    map_hosts = %t.map_hosts,
                    "this tenant's fetch requests to mapped hosts go to servers on this machine instead \
                     (map_hosts / --map-host): meant for tests and development; a production endpoint normally has none"
                );
            }
            let share = tenant_share(server, t, tenants.len());
            let function = slots[t.function.as_deref().unwrap_or(default_function)].clone();
            by_key.insert(
                key_hash(&t.api_key),
                Arc::new(Tenant {
                    name: t.name.clone(),
                    settings: t.settings.clone(),
                    settings_json: t.settings.to_string().into(),
                    secret_settings: t.secret_settings.clone(),
                    redactor: Arc::new(redactor),
                    client,
                    shared_secret: t.shared_secret.clone(),
                    batch_signature: t.batch_signature,
                    overridable_settings: t
                        .overridable_settings
                        .as_ref()
                        .map(|names| names.iter().cloned().collect()),
                    function,
                    debug_responses: t.debug_responses,
                    durable: t.durable.unwrap_or(server.durable),
                    permits: Arc::new(Semaphore::new(share)),
                    body_permits: Arc::new(Semaphore::new(share.saturating_mul(2))),
                    header_settings: Mutex::default(),
                }),
            );
        }

        let mut by_token = HashMap::new();
        for s in sources {
            let function = slots[s.function.as_deref().unwrap_or(default_function)].clone();
            let share = s
                .max_in_flight
                .or(server.tenant_max_in_flight)
                .unwrap_or(server.max_in_flight.max(1).div_ceil(2));
            let source = Source::new(s, function, share, s.durable.unwrap_or(server.durable))
                .map_err(|e| ServeError::Tenant(s.name.clone(), e))?;
            by_token.insert(key_hash(&s.token), Arc::new(source));
        }

        let store = server
            .store
            .open(
                Duration::from_secs(server.dedupe_window_secs),
                server.max_dedupe_entries,
                server.store_connections,
            )
            .await?;
        tracing::info!(store = %server.store.describe(), "store ready");
        let in_flight = server.max_in_flight.max(1);
        let state = Arc::new(AppState {
            tenants: by_key,
            sources: by_token,
            segment_client: reqwest::Client::builder()
                .no_proxy()
                .user_agent(concat!("segfn/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ServeError::Engine(format!("the Segment API client: {e}")))?,
            limits,
            store,
            backoff: Backoff::new(server.retry.clone()),
            wake: tokio::sync::Notify::new(),
            metrics: Arc::new(Metrics::default()),
            permits: Arc::new(Semaphore::new(in_flight)),
            body_permits: Arc::new(Semaphore::new(in_flight.saturating_mul(4))),
            draining: AtomicBool::new(false),
            max_body_bytes: server.max_body_bytes,
            body_timeout: Duration::from_millis(server.body_timeout_ms),
            in_progress: Mutex::default(),
            max_queued: server.max_queued.max(1),
            admin_token: server.admin_token.clone().filter(|t| !t.is_empty()),
            lease_margin: Duration::from_millis(server.lease_margin_ms),
        });
        Ok((state, slots.into_values().collect()))
    }
}
