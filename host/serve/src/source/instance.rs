//! A source function as the server holds it: its settings, redactor, `fetch` client,
//! function, write key, Segment URLs, share of capacity and the way to its sender.

use super::config::ResolvedSource;
use super::parcel::{MAX_WAITING, Waiting};
use crate::reload::FunctionSlot;
use segfn_engine::{FetchClient, Redactor};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore, mpsc};

/// One source, as the handler uses it.
#[derive(Debug)]
pub struct Source {
    /// Name, for logs and metrics.
    pub name: String,
    /// The settings, as JSON text.
    pub settings_json: Arc<str>,
    /// Keeps the settings' secrets, the token and the write key out of reports.
    pub redactor: Arc<Redactor>,
    /// `fetch` under the source's allow-list.
    pub client: FetchClient,
    /// The function.
    pub function: Arc<FunctionSlot>,
    /// The write key.
    pub write_key: String,
    /// The Tracking API's base URL.
    pub tracking_api: String,
    /// The Objects API's base URL.
    pub objects_api: String,
    /// Requests running at once.
    pub permits: Arc<Semaphore>,
    /// Whether a webhook's calls are queued in the store before its 200.
    pub durable: bool,
    /// Direct mode: webhooks hand their calls to the sender here.
    pub outbox: mpsc::Sender<Waiting>,
    /// The sender's end, until its task takes it.
    inbox: Mutex<Option<mpsc::Receiver<Waiting>>>,
    /// Durable mode: tells the sender that something was queued.
    pub wake: Notify,
}

impl Source {
    /// The state for a resolved source.
    pub fn new(
        resolved: &ResolvedSource,
        function: Arc<FunctionSlot>,
        share: usize,
        durable: bool,
    ) -> Result<Source, String> {
        let policy = segfn_engine::FetchPolicy::parse(&resolved.allow_hosts)
            .map_err(|e| e.to_string())?
            .with_map(resolved.map_hosts.clone());
        let client = FetchClient::new(policy).map_err(|e| e.to_string())?;
        let redactor = Redactor::from_settings(&resolved.settings, &resolved.secret_settings)
            .map_err(|e| e.to_string())?
            .extended(&resolved.token)
            .extended(&resolved.write_key);
        let (sender, inbox) = mpsc::channel(MAX_WAITING);
        Ok(Source {
            name: resolved.name.clone(),
            settings_json: resolved.settings.to_string().into(),
            redactor: Arc::new(redactor),
            client,
            function,
            write_key: resolved.write_key.clone(),
            tracking_api: resolved.tracking_api.clone(),
            objects_api: resolved.objects_api.clone(),
            permits: Arc::new(Semaphore::new(share.max(1))),
            durable,
            outbox: sender,
            inbox: Mutex::new(Some(inbox)),
            wake: Notify::new(),
        })
    }

    /// The sender's end of the direct mode's channel: once.
    pub fn take_inbox(&self) -> Option<mpsc::Receiver<Waiting>> {
        self.inbox.lock().ok()?.take()
    }
}
