//! When passes start: at start-up if the last one is older than the interval,
//! then on clokwerk's schedule (in UTC: `every(12h)` fires at 00:00 and 12:00,
//! on every replica at once). Whether a pass may start is decided by the
//! store's one-running-pass claim, never by a flag in memory, so replicas that
//! fire together start one pass and the others join it.

use chrono::{DateTime, Duration, Timelike, Utc};
use clokwerk::{AsyncScheduler, Interval};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::pass::PassRunner;
use crate::metrics::Metrics;
use crate::store::Store;

/// A pass is due at start-up when none ever finished, or the last finished
/// longer ago than the interval.
pub fn pass_due_at_start(
    last_finished: Option<DateTime<Utc>>,
    interval: std::time::Duration,
    now: DateTime<Utc>,
) -> bool {
    match last_finished {
        None => true,
        Some(at) => now - at >= Duration::from_std(interval).unwrap_or(Duration::MAX),
    }
}

/// clokwerk's interval for a duration: whole hours, minutes or seconds.
fn clokwerk_interval(every: std::time::Duration) -> Interval {
    let secs = every.as_secs().max(1) as u32;
    if secs.is_multiple_of(3600) {
        Interval::Hours(secs / 3600)
    } else if secs.is_multiple_of(60) {
        Interval::Minutes(secs / 60)
    } else {
        Interval::Seconds(secs)
    }
}

/// When clokwerk will next fire, for `/admin/health`: the next multiple of the
/// interval counted from midnight UTC (clokwerk aligns to the wall clock).
pub fn next_run_at(every: std::time::Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    let step = every.as_secs().max(1) as i64;
    let midnight = now
        .with_hour(0)
        .and_then(|t| t.with_minute(0))
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);
    let since = (now - midnight).num_seconds();
    midnight + Duration::seconds((since / step + 1) * step)
}

/// The schedule task: when to start passes. Whether one may start is the
/// pass runner's (the store's) decision.
pub struct Scheduler {
    store: Arc<dyn Store>,
    passes: PassRunner,
    interval: std::time::Duration,
    metrics: Metrics,
}

impl Scheduler {
    pub fn new(store: Arc<dyn Store>, passes: PassRunner, interval: std::time::Duration, metrics: Metrics) -> Self {
        Self { store, passes, interval, metrics }
    }

    /// Starts a pass at start-up if one is due, then on the schedule, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { store, passes, interval, metrics } = self;
        let last = store.last_finished_run().await?.and_then(|r| r.finished_at);
        let now = Utc::now();
        if pass_due_at_start(last, interval, now) {
            tracing::info!(last_finished = ?last, "the last pass is older than the interval: starting one");
            metrics.next_pass.set(now.timestamp());
            passes.spawn_pass("startup", shutdown.clone());
        } else {
            tracing::info!(last_finished = ?last, "the last pass is recent: no pass at start-up");
            metrics.next_pass.set(next_run_at(interval, now).timestamp());
        }
        let mut scheduler = AsyncScheduler::with_tz(chrono::Utc);
        {
            let (passes, shutdown) = (passes.clone(), shutdown.clone());
            scheduler.every(clokwerk_interval(interval)).run(move || {
                let (passes, shutdown, next) = (passes.clone(), shutdown.clone(), metrics.next_pass.clone());
                async move {
                    passes.spawn_pass("schedule", shutdown);
                    next.set(next_run_at(interval, Utc::now()).timestamp());
                }
            });
        }
        loop {
            tokio::select! {
                _ = scheduler.run_pending() => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWELVE_HOURS: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

    #[test]
    fn a_pass_runs_at_start_only_when_the_last_one_is_stale() {
        let now = Utc::now();
        assert!(pass_due_at_start(None, TWELVE_HOURS, now));
        assert!(pass_due_at_start(Some(now - Duration::hours(13)), TWELVE_HOURS, now));
        assert!(!pass_due_at_start(Some(now - Duration::hours(1)), TWELVE_HOURS, now));
    }

    #[test]
    fn the_next_run_is_aligned_to_the_utc_clock() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T13:40:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(next_run_at(TWELVE_HOURS, now).to_rfc3339(), "2026-11-30T00:00:00+00:00");
        let thirty = std::time::Duration::from_secs(1800);
        assert_eq!(next_run_at(thirty, now).to_rfc3339(), "2026-11-29T14:00:00+00:00");
    }

    #[test]
    fn intervals_map_to_clokwerks_units() {
        assert!(matches!(clokwerk_interval(TWELVE_HOURS), Interval::Hours(12)));
        assert!(matches!(clokwerk_interval(std::time::Duration::from_secs(1800)), Interval::Minutes(30)));
    }
}
