//! Durable mode's workers: a dispatcher claims due events from the store, a round per
//! tenant each time, within the same in-flight limits as synchronous deliveries (the
//! server's `max_in_flight` and each tenant's share), and runs each claimed event in
//! its own task; the task records the outcome (final, retry later, or dead letter).
//!
//! Fairness: each round asks every tenant with free capacity for at most
//! [`CLAIM_BATCH`] events, so a tenant with a deep backlog cannot take the turns of the
//! others, and its share of permits caps it as it does synchronous deliveries.

use super::app::{AppState, Tenant};
use super::delivery::{invoke, per_event};
use super::retry::{Next, Verdict, classify, random_jitter};
use super::store::{Attempt, Claimed};
use segfn_engine::Redactor;
use segfn_engine::outcome::{OutcomeKind, row};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tracing::Instrument as _;

/// Events claimed per tenant per round.
const CLAIM_BATCH: usize = 16;
/// The longest the dispatcher sleeps without looking (due retries, expired leases).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// After a store failure, the dispatcher waits this long before claiming again.
const STORE_BACKOFF: Duration = Duration::from_secs(1);

/// Runs the dispatcher until `stop`; running events finish on their own (shutdown
/// waits for their permits).
pub(crate) async fn dispatch(app: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let mut tenants: Vec<Arc<Tenant>> = app.tenants.values().cloned().collect();
    tenants.sort_by(|a, b| a.name.cmp(&b.name));
    if tenants.is_empty() {
        return;
    }
    let lease = app.limits.deadline + app.lease_margin;
    let mut start = 0;
    let mut last_reap = Instant::now();
    loop {
        if *stop.borrow() {
            return;
        }
        if last_reap.elapsed() > lease {
            last_reap = Instant::now();
            if let Err(e) = app.store.reap().await {
                tracing::error!(error = %e, "returning expired leases to the queue");
            }
        }
        // One round: every tenant with free capacity, starting after last round's first.
        start = (start + 1) % tenants.len();
        let mut wants = Vec::new();
        let free_total = app.permits.available_permits();
        let mut budget = free_total;
        for i in 0..tenants.len() {
            let t = &tenants[(start + i) % tenants.len()];
            let n = t.permits.available_permits().min(CLAIM_BATCH).min(budget);
            if n > 0 {
                wants.push((t.name.clone(), n));
                budget -= n;
            }
        }
        let mut claimed_any = false;
        if !wants.is_empty() {
            match app.store.claim(wants, lease).await {
                Ok(claimed) => {
                    claimed_any = !claimed.is_empty();
                    for c in claimed {
                        start_one(&app, &tenants, c);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming queued events");
                    tokio::time::sleep(STORE_BACKOFF).await;
                    continue;
                }
            }
        }
        if claimed_any {
            // More may be due: look again at once (capacity permitting).
            tokio::task::yield_now().await;
            if app.permits.available_permits() > 0 {
                continue;
            }
        }
        let wait = if claimed_any || free_total == 0 {
            IDLE_POLL
        } else {
            match app
                .store
                .next_due(tenants.iter().map(|t| t.name.clone()).collect())
                .await
            {
                Ok(Some(at)) => {
                    Duration::from_millis(at.saturating_sub(super::store::now_ms())).min(IDLE_POLL)
                }
                Ok(None) => IDLE_POLL,
                Err(_) => STORE_BACKOFF,
            }
        };
        tokio::select! {
            _ = app.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = super::listener::stopped(&mut stop) => return,
        }
    }
}

/// Takes the permits for a claimed event and runs it in its own task.
fn start_one(app: &Arc<AppState>, tenants: &[Arc<Tenant>], claimed: Claimed) {
    let Some(tenant) = tenants
        .iter()
        .find(|t| t.name == claimed.job.tenant)
        .cloned()
    else {
        return;
    };
    // The dispatcher asked for no more than the free permits, and only it takes them
    // for durable work; a synchronous delivery may have taken one meanwhile, and then
    // the event goes back to the queue unrun.
    let (Ok(tenant_permit), Ok(permit)) = (
        tenant.permits.clone().try_acquire_owned(),
        app.permits.clone().try_acquire_owned(),
    ) else {
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = app.store.release(claimed.lease).await {
                tracing::error!(error = %e, "giving back a claimed event; it runs when its lease expires");
            }
        });
        return;
    };
    let app = app.clone();
    // A queued event's run has its own trace (`[server.traces]`): the delivery that
    // queued it was answered long before, maybe by another replica.
    let span = tracing::info_span!(
        "queued event",
        segfn.tenant = tenant.name.as_str(),
        segfn.message_id = claimed.job.message_id.as_str(),
        segfn.attempt = i64::from(claimed.job.attempts) + 1,
    );
    tokio::spawn(
        async move {
            run_one(&app, &tenant, claimed, (tenant_permit, permit)).await;
            app.wake.notify_one();
        }
        .instrument(span),
    );
}

/// The redactor for settings sent with a delivery (`X-Segment-Settings` merged in).
fn custom_redactor(settings: &str, declared: &[String]) -> Result<Redactor, String> {
    let value = serde_json::from_str(settings).map_err(|e| e.to_string())?;
    Redactor::from_settings(&value, declared).map_err(|e| e.to_string())
}

/// [`custom_redactor`] on the blocking pool.
async fn custom_redactor_off_workers(settings: &str, tenant: &Tenant) -> Result<Redactor, String> {
    let (text, declared) = (settings.to_owned(), tenant.secret_settings.clone());
    tokio::task::spawn_blocking(move || custom_redactor(&text, &declared))
        .await
        .unwrap_or_else(|e| Err(format!("reading them failed: {e}")))
}

/// Runs one claimed event and records what became of it.
async fn run_one(
    app: &AppState,
    tenant: &Tenant,
    claimed: Claimed,
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
) {
    let Claimed { lease, job } = claimed;
    let started = Instant::now();
    let (settings, redactor): (Arc<str>, Arc<Redactor>) = match &job.settings {
        None => (tenant.settings_json.clone(), tenant.redactor.clone()),
        // Off the async workers, as the endpoint reads a new `X-Segment-Settings`.
        Some(custom) => match custom_redactor_off_workers(custom.get(), tenant).await {
            Ok(redactor) => (custom.get().into(), Arc::new(redactor)),
            Err(problem) => {
                // Without its redactor the function's report could show the customer's
                // secrets: the event is not run and goes to the dead letters at once.
                let attempt = Attempt {
                    at_ms: super::store::now_ms(),
                    outcome: segfn_engine::OutcomeKind::InvalidSettings
                        .as_str()
                        .to_owned(),
                    message: Some(format!("the delivery's settings cannot be used: {problem}")),
                    partner_status: None,
                    reason: "settings unusable; not run".to_owned(),
                };
                let recorded = app
                    .store
                    .dead_letter(lease, attempt, serde_json::Value::Null)
                    .await;
                if matches!(recorded, Ok(true)) {
                    app.metrics.attempt(&tenant.name, "dead_letter");
                }
                tracing::warn!(
                    tenant = %tenant.name,
                    message_id = job.message_id.as_str(),
                    "event not run: the settings sent with it cannot be used ({problem}); dead-lettered"
                );
                return;
            }
        },
    };
    let report = {
        let events = [job.event.get()];
        invoke(
            app,
            tenant,
            &events,
            false,
            &settings,
            redactor,
            app.limits.deadline,
        )
        .await
    };
    let result =
        per_event(&report, 1, false)
            .pop()
            .unwrap_or_else(|| segfn_sdk::abi::EventResult {
                kind: segfn_engine::OutcomeKind::Retry,
                message: Some("no result".into()),
                output: None,
            });
    if report.fault == Some(segfn_engine::Fault::Host) {
        app.metrics.host_fault();
    }
    let verdict = classify(result.kind, &report.requests);
    let attempts = job.attempts + 1;
    let now = super::store::now_ms();
    let attempt = |reason: String| Attempt {
        at_ms: now,
        outcome: result.kind.as_str().to_owned(),
        message: result.message.clone(),
        partner_status: report.requests.last().and_then(|r| r.status),
        reason,
    };
    let (recorded, outcome) = match verdict {
        Verdict::Final => (app.store.complete(lease).await, result.kind.as_str()),
        Verdict::Retry(reason) => {
            match app
                .backoff
                .next(attempts, job.window_start_ms, now, random_jitter())
            {
                Next::At(due) => (
                    app.store.reschedule(lease, due, attempt(reason)).await,
                    "retry_scheduled",
                ),
                Next::GiveUp => {
                    let report = serde_json::to_value(&report).unwrap_or_default();
                    (
                        app.store
                            .dead_letter(
                                lease,
                                attempt(format!("{reason}; retries exhausted")),
                                report,
                            )
                            .await,
                        "dead_letter",
                    )
                }
            }
        }
    };
    let counts = matches!(recorded, Ok(true));
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            tenant = %tenant.name,
            message_id = job.message_id.as_str(),
            "the event's lease expired while it ran; the next holder's outcome counts"
        ),
        Err(e) => tracing::error!(
            tenant = %tenant.name,
            message_id = job.message_id.as_str(),
            error = %e,
            "recording an attempt failed; the event runs again when its lease expires"
        ),
    }
    // Only the holder of the lease counts the attempt: a lost lease means it runs again
    // (or ran elsewhere), and that run counts.
    if counts {
        app.metrics.attempt(&tenant.name, outcome);
        if outcome != "retry_scheduled" {
            app.metrics.event(&tenant.name, &job.event_type, outcome);
        }
    }
    tracing::info!(
        tenant = %tenant.name,
        message_id = job.message_id.as_str(),
        r#type = %job.event_type,
        outcome,
        status = row(result.kind).http_status,
        reason = result
            .message
            .as_deref()
            .filter(|_| result.kind != OutcomeKind::Success),
        attempt = attempts,
        invocation_ms = report.stats.duration_ms.round() as u64,
        duration_ms = started.elapsed().as_millis() as u64,
        "event"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_whose_secrets_cannot_be_bounded_give_no_redactor() {
        let tokens: serde_json::Map<String, serde_json::Value> = (0..300)
            .map(|i| (format!("token{i}"), format!("secret-value-{i}").into()))
            .collect();
        let settings = serde_json::Value::Object(tokens).to_string();
        let problem = custom_redactor(&settings, &[]).unwrap_err();
        assert!(problem.contains("256"), "{problem}");
        assert!(custom_redactor("{not json", &[]).is_err());
        let redactor = custom_redactor(r#"{"apiKey": "sk_live_12345"}"#, &[]).unwrap();
        assert_eq!(redactor.redact("key sk_live_12345"), "key [redacted]");
    }
}
