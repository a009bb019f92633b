//! Rows and values that cross the `Store` boundary.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{
    DeliveryId, EventName, GitHubUserId, InstallationId, InstallationState, Login, NodeId, ProfileHash, RunId,
    UserStatus,
};

/// A verified delivery, as it goes into the inbox.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub event: EventName,
    pub action: Option<String>,
    /// The raw body, exactly as signed.
    pub payload: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    Duplicate,
}

#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: DeliveryId,
    pub event: EventName,
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

/// A GitHub account as a webhook payload or a list shows it (a simple-user):
/// enough to track it, not a full profile.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: GitHubUserId,
    pub login: Login,
    pub node_id: Option<NodeId>,
    pub avatar_url: Option<String>,
    /// `User`, `Organization`, `Bot`, … as GitHub says.
    pub kind: String,
    pub installation_id: Option<InstallationId>,
}

impl Account {
    pub fn is_user(&self) -> bool {
        self.kind == "User"
    }
}

#[derive(Debug, Clone)]
pub struct InstallationRecord {
    pub id: InstallationId,
    pub account: Option<Account>,
    pub state: InstallationState,
}

/// A stored user, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    pub github_id: GitHubUserId,
    pub node_id: Option<String>,
    pub login: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub company: Option<String>,
    pub blog: Option<String>,
    pub location: Option<String>,
    pub email: Option<String>,
    pub twitter_username: Option<String>,
    pub public_repos: Option<i64>,
    pub public_gists: Option<i64>,
    pub followers: Option<i64>,
    pub following: Option<i64>,
    pub github_created_at: Option<DateTime<Utc>>,
    pub github_updated_at: Option<DateTime<Utc>>,
    pub status: UserStatus,
    pub sync_enabled: bool,
    pub installation_id: Option<i64>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub github_profile: Option<serde_json::Value>,
    #[serde(skip)]
    pub next_sync_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub failures: i32,
    #[serde(skip)]
    pub last_error: Option<String>,
}

/// A user leased for a fetch: what the reconciler needs to decide, no more.
#[derive(Debug, Clone)]
pub struct DueUser {
    pub github_id: GitHubUserId,
    pub node_id: Option<NodeId>,
    pub login: String,
    pub installation_id: Option<InstallationId>,
    pub profile_hash: Option<ProfileHash>,
    pub observed_hash: Option<ProfileHash>,
    pub failures: i32,
}

impl DueUser {
    /// Never fetched over REST: no stored profile to compare with.
    pub fn is_new(&self) -> bool {
        self.profile_hash.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStart {
    Started(RunId),
    AlreadyRunning(RunId),
}

/// Counts a batch adds to its pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub users_due: i64,
    pub fetched: i64,
    pub changed: i64,
    pub unchanged: i64,
    pub failed: i64,
    pub gone: i64,
    pub points_core: i64,
    pub points_graphql: i64,
    pub installations_added: i64,
    pub installations_removed: i64,
}

impl RunCounts {
    pub fn add(&mut self, other: &RunCounts) {
        self.users_due += other.users_due;
        self.fetched += other.fetched;
        self.changed += other.changed;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.gone += other.gone;
        self.points_core += other.points_core;
        self.points_graphql += other.points_graphql;
        self.installations_added += other.installations_added;
        self.installations_removed += other.installations_removed;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: RunId,
    pub trigger: String,
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub counts: RunCounts,
    pub errors: Vec<String>,
    pub notes: Vec<String>,
}

/// What the rate governor knows of one installation's bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitRecord {
    pub installation_id: InstallationId,
    pub resource: String,
    pub limit: i64,
    pub remaining: i64,
    pub reset_at: DateTime<Utc>,
    pub paused_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}
