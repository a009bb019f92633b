//! Webhook deliveries as the inbox keeps them: what goes in, what a worker
//! claims, and how each one leaves.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Account, DeliveryId, EventName, GitHubUserId};

/// A verified delivery, as it goes into the inbox.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub event: EventName,
    pub action: Option<String>,
    /// The raw body, exactly as signed.
    pub payload: String,
    /// The body as the store keeps it (`store::pack`), when it was packed
    /// before it reached the group's committer (`webhook/writer.rs` packs on
    /// each request's own thread); `None`: the store packs it.
    pub packed: Option<Vec<u8>>,
    /// The body cut down to the fields the inbox worker reads (`read_body` in `webhook/event.rs`);
    /// `None` when the worker must read the body itself.
    pub digest: Option<String>,
    /// Set when the worker would only ignore it: the store then settles it as
    /// ignored as it inserts it, in the same statement, and no worker claims it.
    pub ignore: Option<Ignore>,
    pub received_at: DateTime<Utc>,
}

/// A delivery the worker would ignore: an event ghsync does not act on, or
/// activity by a sender who is not a user we sync (known only to the
/// database, which the insert asks).
#[derive(Debug, Clone)]
pub struct Ignore {
    /// Why, as the worker would have said it.
    pub note: String,
    /// Activity's sender: ignored unless they are a user we sync.
    pub unless_synced: Option<GitHubUserId>,
}

impl NewDelivery {
    /// `ignore`'s sender id and note, as the group insert binds them (each NULL when unset).
    pub fn ignore_columns(&self) -> (Option<i64>, Option<&str>) {
        match &self.ignore {
            Some(ignore) => (ignore.unless_synced.map(GitHubUserId::get), Some(ignore.note.as_str())),
            None => (None, None),
        }
    }
}

/// Why activity by `sender` was ignored: the one wording, at ingest and in the worker.
pub fn not_synced(sender: &Account) -> String {
    format!("sender {} is not a user we sync", sender.login)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored, pending: the worker applies it.
    Inserted,
    /// Stored and settled as ignored at once (`NewDelivery::ignore`).
    Ignored,
    Duplicate,
}

#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: DeliveryId,
    pub event: EventName,
    /// What the worker parses: the digest stored with the delivery, or the
    /// body for one stored without (before digests, or a body of odd shape).
    pub payload: String,
    /// Attempts including this one.
    pub attempts: i32,
}

/// How a delivery left the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Done,
    Ignored,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "done" => Self::Done,
            "ignored" => Self::Ignored,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// How one claimed delivery leaves its round: finished, or back to pending
/// until `retry_at`.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub id: DeliveryId,
    pub state: DeliveryState,
    pub note: Option<String>,
    /// Only for `Pending`: when to try again.
    pub retry_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub event: String,
    pub action: Option<String>,
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InboxStats {
    pub pending: i64,
    pub failed: i64,
    #[serde(skip)]
    pub oldest_pending_at: Option<DateTime<Utc>>,
}
