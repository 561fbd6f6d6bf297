//! What a webhook hands its source's sender: the calls its function made, and (direct
//! mode) where to say how sending them went. Apart from the sender so that the source's
//! state can hold the channel without depending on the server's.

use super::tracking::SendError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

/// Webhooks waiting for the direct sender at most; more are asked to retry.
pub const MAX_WAITING: usize = 1024;

/// The calls one webhook made.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Parcel {
    /// Events for the Tracking API, `messageId`s set.
    pub events: Vec<Value>,
    /// Objects for the Objects API.
    pub objects: Vec<Value>,
}

/// A parcel waiting for the direct sender, with where to say how it went.
pub type Waiting = (Parcel, oneshot::Sender<Result<(), SendError>>);
