//! The webhook-driven refresher: users a webhook (or an admin) marked due are
//! fetched over REST within seconds, spending the reserve a pass leaves alone.

use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::pass::Syncer;
use crate::domain::{DueKind, DueUser, GitHubUserId, Login, Resource, RestProfile, UserOutcome};
use crate::github::{GitHubError, Meter, Priority};

const CLAIM: usize = 16;
const LEASE: chrono::Duration = chrono::Duration::minutes(2);
/// Looked at least this often, in case a wake-up was missed.
const POLL: Duration = Duration::from_secs(5);

impl Syncer {
    /// One round: claims marked users that are due and refreshes them. Returns how many.
    pub async fn refresh_marked(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let users = self.store.claim_due_users(DueKind::Marked, CLAIM, now, now + LEASE).await?;
        if users.is_empty() {
            return Ok(0);
        }
        let count = users.len();
        let meter = Meter::default();
        let result = self.reconcile_batch(users, Priority::Webhook, true, &meter).await;
        self.store.record_outcomes(&result.outcomes, now, Utc::now()).await?;
        for error in &result.errors {
            tracing::warn!(%error, "webhook-driven refresh failed");
        }
        if let Some(until) = result.blocked_until {
            // Everything is spent or paused: don't spin on the same users.
            tokio::time::sleep((until - Utc::now()).to_std().unwrap_or_default().min(POLL)).await;
        }
        Ok(count)
    }

    pub async fn run_refresher(self, wake: Arc<Notify>, shutdown: CancellationToken) -> anyhow::Result<()> {
        while !shutdown.is_cancelled() {
            let woken = wake.notified();
            match self.refresh_marked().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => tracing::error!(error.message = %e, "refresh round failed; will try again"),
            }
            let next = self.store.next_marked_due().await.ok().flatten();
            let wait = next.map_or(POLL, |t| (t - Utc::now()).to_std().unwrap_or_default().min(POLL));
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        Ok(())
    }
}

impl Syncer {
    /// Fetches one user now (admin "sync"), spending the reserve if need be.
    pub async fn refresh_one(&self, user: DueUser) -> Result<UserOutcome, GitHubError> {
        let meter = Meter::default();
        let mut result = self.reconcile_batch(vec![user], Priority::Webhook, true, &meter).await;
        match (result.outcomes.pop(), result.blocked_until) {
            (Some(UserOutcome::Released { .. }), Some(until)) => {
                Err(GitHubError::Blocked { until, reason: "rate limits".into() })
            }
            (Some(outcome), _) => Ok(outcome),
            (None, _) => Err(GitHubError::Decode("no outcome for the user".into())),
        }
    }

    /// Reads a user by login with any active installation's token (`POST /api/users`).
    pub async fn fetch_by_login(&self, login: &Login) -> Result<RestProfile, GitHubError> {
        self.picker
            .call(None, Resource::Core, Priority::Webhook, None, |installation, opts| {
                self.github.user_by_login(installation, login, Priority::Webhook, opts)
            })
            .await
    }

    /// Reads a user by id with any active installation's token.
    pub async fn fetch_by_id(&self, id: GitHubUserId) -> Result<RestProfile, GitHubError> {
        self.picker
            .call(None, Resource::Core, Priority::Webhook, None, |installation, opts| {
                self.github.user_by_id(installation, id, Priority::Webhook, opts)
            })
            .await
    }
}
