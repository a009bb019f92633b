//! Tracked users: the stored record the API shows, the slice of it a fetch
//! needs, and what one fetch found.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{GitHubUserId, InstallationId, Login, NodeId, ProfileHash, RestProfile, UserStatus};

/// A stored user, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    pub github_id: GitHubUserId,
    pub node_id: Option<NodeId>,
    /// Unknown (null) for a user registered by id until the first fetch.
    pub login: Option<Login>,
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
    pub installation_id: Option<InstallationId>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub github_profile: Option<serde_json::Value>,
    /// An explicit time the user is due at: a failure's backoff, or a mark.
    /// None once synced: then `GHSYNC_STALE_AFTER` and `last_synced_at` decide.
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
    pub login: Option<Login>,
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

/// Which due users a claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueKind {
    /// Only those a webhook or an admin marked due (the refresher).
    Marked,
    /// Everyone due (a pass) as of `due_by` (the pass's start: a user synced or
    /// failed during the pass waits for the next one): marked, past a failure's
    /// backoff, never synced, or last synced at or before `synced_before` (the
    /// pass's start less `GHSYNC_STALE_AFTER`; the start itself for `--all`).
    /// Leases are judged against the claim's own `now`, not `due_by`: one that
    /// ran out during the pass (its process died) is taken in the same pass.
    All { due_by: DateTime<Utc>, synced_before: DateTime<Utc> },
}

/// What one fetch found for one user (KUBE's `Action`, stored).
#[derive(Debug, Clone)]
pub enum UserOutcome {
    /// Fetched whole over REST (new, changed, or checked over REST): stored whole.
    /// `changed` says whether the key fields differ from what we had.
    Fetched { profile: Box<RestProfile>, hash: ProfileHash, observed: Option<ProfileHash>, changed: bool },
    /// GraphQL saw the same key fields as before.
    Unchanged { id: GitHubUserId, observed: ProfileHash },
    /// GitHub answered 404.
    Gone { id: GitHubUserId },
    /// Could not be fetched; try again at `retry_at` (the failure count grows).
    Failed { id: GitHubUserId, error: String, retry_at: DateTime<Utc> },
    /// Not attempted (rate limits said wait): back in the queue as it was.
    Released { id: GitHubUserId },
}

impl UserOutcome {
    /// Whose outcome this is.
    pub fn user_id(&self) -> GitHubUserId {
        match self {
            Self::Fetched { profile, .. } => profile.github_id,
            Self::Unchanged { id, .. } | Self::Gone { id } | Self::Failed { id, .. } | Self::Released { id } => *id,
        }
    }
}
