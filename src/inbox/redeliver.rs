//! The missed-delivery sweep. GitHub does not redeliver failed deliveries and
//! keeps them for 3 days. At start and every `GHSYNC_REDELIVER_INTERVAL`, we
//! walk the App's deliveries (newest first) back to the newest one the last
//! sweep saw, and ask GitHub to redeliver each GUID whose attempts failed and
//! that our inbox does not hold — at most 3 times in all per GUID, and not
//! again while a request of ours may still be in flight.

use chrono::{Duration, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::domain::DeliveryId;
use crate::github::GitHub;
use crate::store::Store;

/// GitHub keeps deliveries this long (github.com).
const RETENTION: Duration = Duration::days(3);
/// Redelivery requests per GUID, in all.
pub const MAX_REQUESTS: i32 = 3;
/// A redelivery we asked for may take this long to show up as an attempt.
const IN_FLIGHT: Duration = Duration::minutes(5);
const MARK: &str = "hook_deliveries_newest_id";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub attempts_seen: u64,
    pub requested: u64,
}

/// The sweep task: the inbox it compares against, GitHub's deliveries API,
/// and how often to look.
#[derive(Clone)]
pub struct RedeliverySweep {
    store: Arc<dyn Store>,
    github: GitHub,
    interval: std::time::Duration,
}

impl RedeliverySweep {
    pub fn new(store: Arc<dyn Store>, github: GitHub, interval: std::time::Duration) -> Self {
        Self { store, github, interval }
    }

    /// One sweep. A sweep that fails part-way leaves the mark where it was.
    pub async fn sweep(&self) -> anyhow::Result<SweepReport> {
        let now = Utc::now();
        let mark = self.store.sweep_mark(MARK).await?;
        let mut report = SweepReport::default();
        let mut newest: Option<i64> = None;
        let mut decided: HashSet<String> = HashSet::new();
        let mut cursor: Option<String> = None;
        'pages: loop {
            let (attempts, next) = self.github.hook_deliveries(cursor.as_deref()).await?;
            for attempt in attempts {
                newest = Some(newest.map_or(attempt.id, |n| n.max(attempt.id)));
                if attempt.delivered_at < now - RETENTION || mark.is_some_and(|m| attempt.id <= m) {
                    break 'pages;
                }
                report.attempts_seen += 1;
                // Newest first: a GUID's later success is seen before its older failures.
                if !decided.insert(attempt.guid.clone()) || attempt.status == "OK" {
                    continue;
                }
                let Ok(guid) = DeliveryId::parse(&attempt.guid) else { continue };
                if self.store.delivery(&guid).await?.is_some() {
                    continue;
                }
                if self.store.book_redelivery(guid.as_str(), MAX_REQUESTS, now - IN_FLIGHT, now).await? {
                    tracing::info!(delivery_id = %guid, event = %attempt.event, "asking GitHub to redeliver a missed delivery");
                    self.github.redeliver(attempt.id).await?;
                    report.requested += 1;
                }
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if let Some(newest) = newest {
            self.store.set_sweep_mark(MARK, newest, now).await?;
        }
        Ok(report)
    }

    /// Sweeps at start and then every `GHSYNC_REDELIVER_INTERVAL`, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut every = tokio::time::interval(self.interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
            match self.sweep().await {
                Ok(report) if report.requested > 0 => tracing::info!(?report, "redelivery sweep"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error.message = %e, "redelivery sweep failed; will try again"),
            }
        }
    }
}
