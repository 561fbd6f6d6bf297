//! Prometheus metrics of the endpoint: deliveries and events by tenant, type and
//! outcome, invocation latency, outbound fetches by host and status, instructions,
//! in-flight invocations and deduplication hits; in durable mode, attempts by result
//! and the queue's figures per tenant (read from the store at each scrape).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use segfn_engine::Report;
use std::collections::HashSet;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    tenant: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    /// The tenant, or `-` before the key named one.
    tenant: String,
    /// [`super::refusal::Refusal::reason`].
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    tenant: String,
    r#type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    tenant: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    tenant: String,
    host: String,
    status: String,
}

/// The endpoint's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    refused: Family<RefusalLabels, Counter>,
    source_requests: Family<SourceLabels, Counter>,
    source_events: Family<TenantLabels, Counter>,
    dead_dropped: Family<TenantLabels, Counter>,
    events: Family<EventLabels, Counter>,
    latency: Family<TenantLabels, Histogram>,
    fetches: Family<FetchLabels, Counter>,
    instructions: Family<TenantLabels, Counter>,
    dedupe_hits: Family<TenantLabels, Counter>,
    /// Invocations running now.
    pub in_flight: Gauge,
    /// Connections open now.
    pub connections: Gauge,
    /// Idle connections closed to make room at the connection cap.
    pub connections_evicted: Counter,
    /// Connections refused at the cap (every open one had a request in progress).
    pub connections_refused: Counter,
    dedupe_entries: Family<TenantLabels, Gauge>,
    dedupe_evicted: Family<TenantLabels, Counter>,
    host_faults: Counter,
    reloads: Family<ReloadLabels, Counter>,
    hosts: Mutex<HashSet<String>>,
    attempts: Family<AttemptLabels, Counter>,
    queue: QueueGauges,
}

/// The durable queue's figures per tenant, as the store holds them: gauges of what is
/// there now, and counters of what happened in all time (the store's own totals, so a
/// restarted server goes on where it left off, and replicas on one PostgreSQL store
/// report the same totals).
#[derive(Debug, Default)]
struct QueueGauges {
    pending: Family<TenantLabels, Gauge>,
    retrying: Family<TenantLabels, Gauge>,
    running: Family<TenantLabels, Gauge>,
    oldest: Family<TenantLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    dead: Family<TenantLabels, Gauge>,
    redelivered: Family<TenantLabels, Counter>,
    completed: Family<TenantLabels, Counter>,
}

/// Distinct partner hosts given their own label.
const MAX_HOST_LABELS: usize = 64;

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("segfn");
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let refused = Family::<RefusalLabels, Counter>::default();
        let source_requests = Family::<SourceLabels, Counter>::default();
        let source_events = Family::<TenantLabels, Counter>::default();
        let dead_dropped = Family::<TenantLabels, Counter>::default();
        let events = Family::<EventLabels, Counter>::default();
        let latency = Family::<TenantLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 15))
        });
        let fetches = Family::<FetchLabels, Counter>::default();
        let instructions = Family::<TenantLabels, Counter>::default();
        let dedupe_hits = Family::<TenantLabels, Counter>::default();
        let in_flight = Gauge::default();
        let reloads = Family::<ReloadLabels, Counter>::default();
        let connections = Gauge::default();
        let connections_evicted = Counter::default();
        let connections_refused = Counter::default();
        let dedupe_entries = Family::<TenantLabels, Gauge>::default();
        let dedupe_evicted = Family::<TenantLabels, Counter>::default();
        let host_faults = Counter::default();
        registry.register("connections", "Connections open now", connections.clone());
        registry.register(
            "connections_evicted",
            "Idle connections closed to make room at max_connections",
            connections_evicted.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused at max_connections (none was idle)",
            connections_refused.clone(),
        );
        registry.register(
            "dedupe_entries",
            "messageIds remembered, by tenant",
            dedupe_entries.clone(),
        );
        registry.register(
            "dedupe_evicted",
            "messageIds forgotten before the window ended, to stay under max_dedupe_entries",
            dedupe_evicted.clone(),
        );
        registry.register(
            "host_faults",
            "Invocations that failed through no fault of the function",
            host_faults.clone(),
        );
        registry.register(
            "deliveries",
            "HTTP deliveries answered, by tenant and status",
            deliveries.clone(),
        );
        registry.register(
            "refused",
            "Requests refused without running the function, by tenant (- before a key named one) and reason",
            refused.clone(),
        );
        registry.register(
            "source_requests",
            "Webhooks run by source functions, by source and what became of them",
            source_requests.clone(),
        );
        registry.register(
            "source_events_sent",
            "Events source functions sent to Segment's Tracking API, by source (label tenant)",
            source_events.clone(),
        );
        registry.register(
            "dead_letters_dropped",
            "Dead letters deleted to keep each tenant's list within max_dead_letters (the oldest first)",
            dead_dropped.clone(),
        );
        registry.register(
            "events",
            "Events handled, by tenant, type and outcome",
            events.clone(),
        );
        registry.register(
            "invocation_seconds",
            "Time of one invocation (one event or batch)",
            latency.clone(),
        );
        registry.register(
            "fetches",
            "Outbound fetches, by tenant, host and status",
            fetches.clone(),
        );
        registry.register(
            "instructions",
            "Wasm instructions executed",
            instructions.clone(),
        );
        registry.register(
            "dedupe_hits",
            "Deliveries of already processed messageIds",
            dedupe_hits.clone(),
        );
        registry.register("in_flight", "Invocations running now", in_flight.clone());
        registry.register("reloads", "Function reloads, by result", reloads.clone());
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "durable_attempts",
            "Durable mode: attempts by tenant and result (success and the other final outcomes, retry_scheduled, dead_letter)",
            attempts.clone(),
        );
        let queue = QueueGauges::default();
        registry.register(
            "queue_pending",
            "Durable mode: events queued and not yet final, by tenant",
            queue.pending.clone(),
        );
        registry.register(
            "queue_retrying",
            "Durable mode: pending events that failed at least once, by tenant",
            queue.retrying.clone(),
        );
        registry.register(
            "queue_running",
            "Durable mode: events being run now (leased), by tenant",
            queue.running.clone(),
        );
        registry.register(
            "queue_oldest_pending_seconds",
            "Durable mode: age of the oldest pending event, by tenant",
            queue.oldest.clone(),
        );
        registry.register(
            "dead_letters",
            "Durable mode: events in the dead-letter list, by tenant",
            queue.dead.clone(),
        );
        registry.register(
            "queue_completed",
            "Durable mode: events that reached a final outcome, all time, by tenant",
            queue.completed.clone(),
        );
        registry.register(
            "queue_redelivered",
            "Durable mode: events run again after a crash interrupted an attempt (the partner may have seen them twice), all time, by tenant",
            queue.redelivered.clone(),
        );
        Metrics {
            registry,
            deliveries,
            refused,
            source_requests,
            source_events,
            dead_dropped,
            events,
            latency,
            fetches,
            instructions,
            dedupe_hits,
            in_flight,
            connections,
            connections_evicted,
            connections_refused,
            dedupe_entries,
            dedupe_evicted,
            host_faults,
            reloads,
            hosts: Mutex::default(),
            attempts,
            queue,
        }
    }
}

impl Metrics {
    /// Counts an answered delivery.
    pub fn delivery(&self, tenant: &str, status: u16) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                tenant: tenant.to_owned(),
                status,
            })
            .inc();
    }

    /// Counts a source function's webhook, by what became of it.
    pub fn source_request(&self, source: &str, outcome: &str) {
        self.source_requests
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts events a source function sent to Segment.
    pub fn source_sent(&self, source: &str, events: u64) {
        self.source_events
            .get_or_create(&TenantLabels {
                tenant: source.to_owned(),
            })
            .inc_by(events);
    }

    /// Counts dead letters deleted to keep `tenant`'s list within its cap.
    pub fn dead_dropped(&self, tenant: &str, n: u64) {
        self.dead_dropped
            .get_or_create(&TenantLabels {
                tenant: tenant.to_owned(),
            })
            .inc_by(n);
    }

    /// Counts a refused request, by [`super::refusal::Refusal::reason`].
    pub fn refused(&self, tenant: Option<&str>, reason: &'static str) {
        self.refused
            .get_or_create(&RefusalLabels {
                tenant: tenant.unwrap_or("-").to_owned(),
                reason,
            })
            .inc();
    }

    /// Counts a handled event.
    pub fn event(&self, tenant: &str, event_type: &str, outcome: &str) {
        self.events
            .get_or_create(&EventLabels {
                tenant: tenant.to_owned(),
                r#type: event_type.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Records an invocation's latency, instructions and fetches.
    pub fn invocation(&self, tenant: &str, report: &Report) {
        let labels = TenantLabels {
            tenant: tenant.to_owned(),
        };
        self.latency
            .get_or_create(&labels)
            .observe(report.stats.duration_ms / 1000.0);
        self.instructions
            .get_or_create(&labels)
            .inc_by(report.stats.instructions);
        for request in &report.requests {
            // Labels stay bounded: a host only once it answered, and at most
            // MAX_HOST_LABELS of them; failures by their kind alone.
            let (host, status) = match request.status {
                Some(status) => (self.host_label(&request.url), status.to_string()),
                None => {
                    let kind = request
                        .error
                        .as_deref()
                        .and_then(|e| e.split(':').next())
                        .unwrap_or("error");
                    ("-".to_owned(), kind.to_owned())
                }
            };
            self.fetches
                .get_or_create(&FetchLabels {
                    tenant: tenant.to_owned(),
                    host,
                    status,
                })
                .inc();
        }
    }

    fn host_label(&self, url: &str) -> String {
        let Some(host) = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
        else {
            return "invalid".into();
        };
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if hosts.contains(&host) || hosts.len() < MAX_HOST_LABELS {
            hosts.insert(host.clone());
            host
        } else {
            "other".into()
        }
    }

    /// Counts a function reload, successful or not.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                result: if ok { "ok" } else { "failed" }.to_owned(),
            })
            .inc();
    }

    /// Counts messages delivered again after they were processed.
    pub fn dedupe_hits(&self, tenant: &str, n: u64) {
        if n > 0 {
            self.dedupe_hits
                .get_or_create(&TenantLabels {
                    tenant: tenant.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// Records the size of a tenant's deduplication window after a write.
    pub fn dedupe_stored(&self, tenant: &str, marked: super::store::Marked) {
        let labels = TenantLabels {
            tenant: tenant.to_owned(),
        };
        self.dedupe_entries
            .get_or_create(&labels)
            .set(i64::try_from(marked.entries).unwrap_or(i64::MAX));
        if marked.evicted > 0 {
            self.dedupe_evicted
                .get_or_create(&labels)
                .inc_by(marked.evicted);
        }
    }

    /// Counts an invocation that failed in the host.
    pub fn host_fault(&self) {
        self.host_faults.inc();
    }

    /// Counts a durable attempt by its result.
    pub fn attempt(&self, tenant: &str, result: &str) {
        self.attempts
            .get_or_create(&AttemptLabels {
                tenant: tenant.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Sets the queue's figures from the store's.
    pub fn queue(&self, stats: &[super::store::TenantStats]) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for s in stats {
            let labels = TenantLabels {
                tenant: s.tenant.clone(),
            };
            let q = &self.queue;
            q.pending.get_or_create(&labels).set(gauge(s.pending));
            q.retrying.get_or_create(&labels).set(gauge(s.retrying));
            q.running.get_or_create(&labels).set(gauge(s.running));
            q.dead.get_or_create(&labels).set(gauge(s.dead_letters));
            advance(&q.completed.get_or_create(&labels), s.completed);
            advance(&q.redelivered.get_or_create(&labels), s.redelivered);
            q.oldest
                .get_or_create(&labels)
                .set(s.oldest_pending_ms.unwrap_or(0) as f64 / 1000.0);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Brings a counter up to the store's all-time `total` (it never goes down: the store's
/// totals only grow, and a counter that went down would read as a reset).
fn advance(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}
