//! What the operator sees (`/admin/health`, `/metrics`): the service's health
//! gathered from the store, this process's pass and rate governor, and the
//! rate limits — what every replica saved, overlaid with what this process
//! knows now.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::pass::PassRunner;
use super::schedule::next_run_at;
use crate::domain::{InboxStats, RateLimitRecord, Resource, RunId, RunRecord, UserStatus};
use crate::github::GitHub;
use crate::store::{Store, StoreResult};

/// Pending deliveries older than this make the service "degraded".
const STUCK_INBOX_SECONDS: i64 = 300;

/// The health page's figures; `http` renders them.
pub enum Health {
    /// The database does not answer: nothing else can be said.
    DatabaseDown(String),
    Up(Box<HealthReport>),
}

pub struct HealthReport {
    pub degraded: bool,
    pub inbox: InboxStats,
    pub oldest_pending_seconds: Option<i64>,
    /// Every status, zero included.
    pub users: BTreeMap<String, i64>,
    pub last_run: Option<RunRecord>,
    pub running_run_id: Option<RunId>,
    pub last_finished_at: Option<DateTime<Utc>>,
    pub pass_paused_until: Option<DateTime<Utc>>,
    pub next_run_at: DateTime<Utc>,
    pub rate_limits: Vec<RateLimitRecord>,
}

/// Reads only: the store, the GitHub facade (its governor) and the pass
/// runner (its pause), both absent when GitHub is not configured.
#[derive(Clone)]
pub struct StatusService {
    store: Arc<dyn Store>,
    github: Option<GitHub>,
    passes: Option<PassRunner>,
    interval: std::time::Duration,
}

impl StatusService {
    pub fn new(
        store: Arc<dyn Store>,
        github: Option<GitHub>,
        passes: Option<PassRunner>,
        interval: std::time::Duration,
    ) -> Self {
        Self { store, github, passes, interval }
    }

    /// Per installation and resource, the freshest figures we have.
    pub async fn rate_limits(&self) -> StoreResult<Vec<RateLimitRecord>> {
        let mut merged: BTreeMap<(i64, Resource), RateLimitRecord> = BTreeMap::new();
        for r in self.store.rate_limits().await? {
            merged.insert((r.installation_id.get(), r.resource), r);
        }
        if let Some(github) = &self.github {
            for r in github.governor().snapshot(Utc::now()) {
                merged.insert((r.installation_id.get(), r.resource), r);
            }
        }
        Ok(merged.into_values().collect())
    }

    pub async fn health(&self) -> StoreResult<Health> {
        let now = Utc::now();
        if let Err(e) = self.store.ping().await {
            return Ok(Health::DatabaseDown(e.to_string()));
        }
        let inbox = self.store.inbox_stats().await?;
        let oldest = inbox.oldest_pending_at.map(|t| (now - t).num_seconds().max(0));
        let mut users: BTreeMap<String, i64> = UserStatus::ALL.iter().map(|s| (s.as_str().to_string(), 0)).collect();
        users.extend(self.store.user_counts().await?);
        let last_run = self.store.runs(1).await?.into_iter().next();
        let running_run_id = self.store.running_run().await?;
        let rate_limits = self.rate_limits().await?;
        // Passes stopped finishing: two intervals without one means something is stuck.
        let last_finished_at = self.store.last_finished_run().await?.and_then(|r| r.finished_at);
        let interval = chrono::Duration::from_std(self.interval).unwrap_or(chrono::Duration::MAX);
        let overdue = last_finished_at.is_some_and(|t| now - t > interval * 2);
        let degraded = inbox.failed > 0 || oldest.is_some_and(|s| s > STUCK_INBOX_SECONDS) || overdue;
        Ok(Health::Up(Box::new(HealthReport {
            degraded,
            inbox,
            oldest_pending_seconds: oldest,
            users,
            last_run,
            running_run_id,
            last_finished_at,
            pass_paused_until: self.passes.as_ref().and_then(|p| p.pass_paused_until()),
            next_run_at: next_run_at(self.interval, now),
            rate_limits,
        })))
    }
}
