//! What the page shows, gathered through the services the JSON endpoints use
//! (`StatusService::health`, the store's run and inbox reads): no queries of
//! its own.

use chrono::{DateTime, Utc};

use super::super::{ApiError, AppState};
use crate::domain::{DeliveryRecord, RateLimitRecord, RunRecord};
use crate::sync::Health;

/// The chart's window.
pub const PASSES: i64 = 30;
/// Parked deliveries listed (the count above the list is the full one).
const PARKED: i64 = 50;
/// Rate-limit budgets listed: those with the least left.
const BUDGETS: usize = 10;

pub struct AdminView {
    pub now: DateTime<Utc>,
    pub degraded: bool,
    /// Every status with its count, zero included.
    pub users: Vec<(String, i64)>,
    /// Newest first.
    pub runs: Vec<RunRecord>,
    pub running: Option<i64>,
    pub budgets: Vec<RateLimitRecord>,
    pub budgets_tracked: usize,
    pub inbox_pending: i64,
    pub oldest_pending_seconds: Option<i64>,
    pub parked_total: i64,
    pub parked: Vec<DeliveryRecord>,
    pub oldest_profile: Option<DateTime<Utc>>,
    pub next_run_at: DateTime<Utc>,
    pub pass_paused_until: Option<DateTime<Utc>>,
}

pub async fn gather(state: &AppState) -> Result<AdminView, ApiError> {
    let health = match state.status.health().await? {
        Health::Up(h) => h,
        Health::DatabaseDown(e) => return Err(ApiError::Unavailable(format!("the database does not answer: {e}"))),
    };
    let mut budgets = health.rate_limits.clone();
    let budgets_tracked = budgets.len();
    // Least left first, as a share of the limit so core and GraphQL compare.
    budgets.sort_by(|a, b| share(a).total_cmp(&share(b)).then(a.remaining.cmp(&b.remaining)));
    budgets.truncate(BUDGETS);
    Ok(AdminView {
        now: Utc::now(),
        degraded: health.degraded,
        users: health.users.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        runs: state.store.runs(PASSES).await?,
        running: health.running_run_id.map(|id| id.get()),
        budgets,
        budgets_tracked,
        inbox_pending: health.inbox.pending,
        oldest_pending_seconds: health.oldest_pending_seconds,
        parked_total: health.inbox.failed,
        parked: state.store.parked_deliveries(PARKED).await?,
        oldest_profile: state.store.oldest_synced_at().await?,
        next_run_at: health.next_run_at,
        pass_paused_until: health.pass_paused_until,
    })
}

fn share(r: &RateLimitRecord) -> f64 {
    if r.limit > 0 { r.remaining as f64 / r.limit as f64 } else { 0.0 }
}
