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
use crate::domain::{InboxStats, RateLimitRecord, RateSummary, Resource, RunId, RunRecord, UserStatus};
use crate::github::GitHub;
use crate::store::{Store, StoreResult};

/// Pending deliveries older than this make the service "degraded".
const STUCK_INBOX_SECONDS: i64 = 300;
/// `/admin/health` lists this many installations' budgets, the least left first.
pub const RATE_LIMITS_SHOWN: usize = 50;
/// A scrape reuses figures this young: counting 1,000,000 users by status on
/// every scrape (every 15 s by default) would be the database's busiest query.
const SCRAPE_CACHE: std::time::Duration = std::time::Duration::from_secs(30);

/// The aggregates `/metrics` shows; bounded whatever the number of users.
#[derive(Debug, Clone, Default)]
pub struct ScrapeFigures {
    pub users: Vec<(String, i64)>,
    pub rate: Vec<RateSummary>,
}

/// The database's aggregates (every replica's saved knowledge), and this
/// process's live figures where they say more: its governor saves as it goes,
/// so the two differ only by what it learnt in the last moments.
fn summarize(saved: &[RateSummary], live: &[RateLimitRecord], now: DateTime<Utc>) -> Vec<RateSummary> {
    [Resource::Core, Resource::Graphql]
        .into_iter()
        .map(|resource| {
            let saved = saved.iter().find(|s| s.resource == resource);
            let live: Vec<&RateLimitRecord> = live.iter().filter(|r| r.resource == resource).collect();
            let live_paused = live.iter().filter(|r| r.paused_until.is_some_and(|t| t > now)).count() as i64;
            let least = [saved.and_then(|s| s.least_remaining), live.iter().map(|r| r.remaining).min()];
            RateSummary {
                resource,
                tracked: saved.map_or(0, |s| s.tracked).max(live.len() as i64),
                paused: saved.map_or(0, |s| s.paused).max(live_paused),
                least_remaining: least.into_iter().flatten().min(),
            }
        })
        .collect()
}

/// The `n` budgets with the least left: the database's least (with some
/// slack, as this process may know some of them to be higher now) overlaid
/// with what this process knows, lowest first.
fn least_of(saved: Vec<RateLimitRecord>, live: Vec<RateLimitRecord>, n: usize) -> Vec<RateLimitRecord> {
    let mut merged: BTreeMap<(i64, Resource), RateLimitRecord> = BTreeMap::new();
    for r in saved.into_iter().chain(live) {
        let key = (r.installation_id.get(), r.resource);
        match merged.get_mut(&key) {
            None => {
                merged.insert(key, r);
            }
            // As the ledger merges (`domain::book`): a later window replaces, within one the
            // lowest figure stands (the database's counts points other processes booked).
            Some(kept) => {
                let paused_until = kept.paused_until.max(r.paused_until);
                if r.reset_at > kept.reset_at || (r.reset_at == kept.reset_at && r.remaining < kept.remaining) {
                    *kept = r;
                }
                kept.paused_until = paused_until;
            }
        }
    }
    let mut least: Vec<RateLimitRecord> = merged.into_values().collect();
    least.sort_by_key(|r| (r.remaining, r.installation_id, r.resource));
    least.truncate(n);
    least
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
    pub rate_limits_tracked: i64,
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
        let now = Utc::now();
        let figures = ScrapeFigures {
            users: self.store.user_counts().await?,
            rate: summarize(&self.store.rate_limit_summary(now).await?, &self.live_rate_limits(now), now),
        };
        *self.scrape_cache.lock().expect("scrape cache poisoned") = Some((Instant::now(), figures.clone()));
        Ok(figures)
    }

    /// What this process's governor knows now (idle installations evicted).
    fn live_rate_limits(&self, now: DateTime<Utc>) -> Vec<RateLimitRecord> {
        self.github.as_ref().map(|g| g.governor().snapshot(now)).unwrap_or_default()
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
        let live = self.live_rate_limits(now);
        // Counting 2,000,000 budgets takes a second: the count `/metrics` caches serves here.
        let rate_limits_tracked = self.scrape_figures().await?.rate.iter().map(|s| s.tracked).sum::<i64>();
        let saved = self.store.rate_limits_least(2 * RATE_LIMITS_SHOWN as i64).await?;
        let rate_limits = least_of(saved, live, RATE_LIMITS_SHOWN);
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
