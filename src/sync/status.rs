//! What the operator sees (`/admin/health`, `/metrics`): the service's health
//! gathered from the store, this process's pass and rate governor, and the
//! rate limits — what every replica saved, overlaid with what this process
//! knows now.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::pass::PassRunner;
use super::schedule::next_run_at;
use crate::domain::{InboxStats, RateLimitRecord, Resource, RunId, RunRecord, UserStatus};
use crate::github::GitHub;
use crate::store::{Store, StoreResult};

/// Pending deliveries older than this make the service "degraded".
const STUCK_INBOX_SECONDS: i64 = 300;
/// `/admin/health` lists this many installations' budgets, the least left first.
pub const RATE_LIMITS_SHOWN: usize = 50;
/// A scrape reuses figures this young: counting 1,000,000 users by status on
/// every scrape (every 15 s by default) would be the database's busiest query.
const SCRAPE_CACHE: std::time::Duration = std::time::Duration::from_secs(30);

/// Per resource, what `/metrics` says about every installation's budget at once.
#[derive(Debug, Clone, Default)]
pub struct RateSummary {
    pub resource: &'static str,
    pub tracked: i64,
    pub paused: i64,
    /// `None` when no budget of this resource is known.
    pub least_remaining: Option<i64>,
}

/// The aggregates `/metrics` shows; bounded whatever the number of users.
#[derive(Debug, Clone, Default)]
pub struct ScrapeFigures {
    pub users: Vec<(String, i64)>,
    pub rate: Vec<RateSummary>,
}

fn summarize(limits: &[RateLimitRecord], now: DateTime<Utc>) -> Vec<RateSummary> {
    [Resource::Core, Resource::Graphql]
        .into_iter()
        .map(|resource| {
            let of: Vec<&RateLimitRecord> = limits.iter().filter(|r| r.resource == resource).collect();
            RateSummary {
                resource: resource.as_str(),
                tracked: of.len() as i64,
                paused: of.iter().filter(|r| r.paused_until.is_some_and(|t| t > now)).count() as i64,
                least_remaining: of.iter().map(|r| r.remaining).min(),
            }
        })
        .collect()
}

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
    /// The `RATE_LIMITS_SHOWN` with the least left, lowest first…
    pub rate_limits: Vec<RateLimitRecord>,
    /// …out of this many (installation, resource) budgets known.
    pub rate_limits_tracked: usize,
    /// Our clock against GitHub's `Date`, when minutes apart.
    pub clock_skew: Option<crate::github::ClockSkew>,
}

/// Reads only: the store, the GitHub facade (its governor) and the pass
/// runner (its pause), both absent when GitHub is not configured.
#[derive(Clone)]
pub struct StatusService {
    store: Arc<dyn Store>,
    github: Option<GitHub>,
    passes: Option<PassRunner>,
    interval: std::time::Duration,
    scrape_cache: Arc<Mutex<Option<(Instant, ScrapeFigures)>>>,
}

impl StatusService {
    pub fn new(
        store: Arc<dyn Store>,
        github: Option<GitHub>,
        passes: Option<PassRunner>,
        interval: std::time::Duration,
    ) -> Self {
        Self { store, github, passes, interval, scrape_cache: Arc::default() }
    }

    /// The figures `/metrics` shows, computed at most once per `SCRAPE_CACHE`.
    pub async fn scrape_figures(&self) -> StoreResult<ScrapeFigures> {
        let cached = self.scrape_cache.lock().expect("scrape cache poisoned").clone();
        if let Some((at, figures)) = cached.filter(|(at, _)| at.elapsed() < SCRAPE_CACHE) {
            tracing::trace!(age_ms = at.elapsed().as_millis() as u64, "metrics from cache");
            return Ok(figures);
        }
        let figures = ScrapeFigures {
            users: self.store.user_counts().await?,
            rate: summarize(&self.rate_limits().await?, Utc::now()),
        };
        *self.scrape_cache.lock().expect("scrape cache poisoned") = Some((Instant::now(), figures.clone()));
        Ok(figures)
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
        let mut rate_limits = self.rate_limits().await?;
        let rate_limits_tracked = rate_limits.len();
        rate_limits.sort_by_key(|r| (r.remaining, r.installation_id, r.resource));
        rate_limits.truncate(RATE_LIMITS_SHOWN);
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
            rate_limits_tracked,
            clock_skew: self.github.as_ref().and_then(GitHub::clock_skew),
        })))
    }
}
