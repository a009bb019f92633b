//! The webhook-driven refresher: users a webhook (or an admin) marked due are
//! fetched over REST within seconds, spending the reserve a pass leaves alone.

use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::lease::renewing;
use super::reconcile::Reconciler;
use crate::domain::{DueKind, Lease};
use crate::github::{Meter, Priority};
use crate::store::Store;

const CLAIM: usize = 16;
/// Looked at least this often, in case a wake-up was missed.
const POLL: Duration = Duration::from_secs(5);

/// The refresher task: its store, the reconciler it fetches with, and the
/// `Notify` that the inbox worker and the users API ring when they mark a user due.
#[derive(Clone)]
pub struct Refresher {
    store: Arc<dyn Store>,
    reconciler: Reconciler,
    wake: Arc<Notify>,
    /// How long a claim holds unless renewed (`GHSYNC_LEASE`).
    lease: Duration,
}

impl Refresher {
    pub fn new(store: Arc<dyn Store>, reconciler: Reconciler, wake: Arc<Notify>, lease: Duration) -> Self {
        Self { store, reconciler, wake, lease }
    }

    /// One round: claims marked users that are due and refreshes them. Returns how many.
    pub async fn refresh_marked(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let length = chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::MAX);
        let lease = Lease::new(now, length);
        let users = self.store.claim_due_users(DueKind::Marked, CLAIM, now, &lease).await?;
        if users.is_empty() {
            return Ok(0);
        }
        let count = users.len();
        let meter = Meter::default();
        let work = self.reconciler.reconcile_batch(users, Priority::Webhook, true, &meter);
        let renew = || self.store.renew_users(&lease.id, Utc::now() + length);
        let result = renewing("users", self.lease, work, renew).await;
        let lost = self.store.record_outcomes(&result.outcomes, Some(&lease.id), now, Utc::now()).await?;
        if !lost.is_empty() {
            tracing::warn!(lost = lost.len(), first = %lost[0], "lease lost: users taken over by another process");
        }
        for error in &result.errors {
            tracing::warn!(%error, "webhook-driven refresh failed");
        }
        if let Some(until) = result.blocked_until {
            // Everything is spent or paused: don't spin on the same users.
            tokio::time::sleep((until - Utc::now()).to_std().unwrap_or_default().min(POLL)).await;
        }
        Ok(count)
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        while !shutdown.is_cancelled() {
            let woken = self.wake.notified();
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
