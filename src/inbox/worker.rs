//! The inbox worker: claim pending deliveries under a lease, apply each, then
//! mark it done or ignored, schedule a retry with backoff, or park it as
//! failed after `MAX_ATTEMPTS`. Parking is for payloads that cannot be
//! applied: a delivery that failed on our side (the database) is retried,
//! however long the outage, every `OUR_SIDE_CAP` at most, and never parked.
//! A crashed process's leases expire and its deliveries are claimed again,
//! so nothing answered is lost.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::apply::{ApplyError, ApplyOutcome, apply};
use crate::domain::{ClaimedDelivery, DeliveryState, Lease, Settlement};
use crate::metrics::Metrics;
use crate::store::{Store, StoreResult};
use crate::sync::renewing;
use crate::webhook::Writer;

/// Tries before a delivery is parked as failed.
pub const MAX_ATTEMPTS: i32 = 5;
/// Deliveries claimed at once. A round costs two write transactions (claim,
/// settle) and a read or two whatever its size: at 128, a busy writer left the
/// worker behind ingest; at 512 it keeps up (a 60 s burst leaves ~200).
const CLAIM: usize = 512;
/// Looked for work at least this often, even without a wake-up.
const POLL: Duration = Duration::from_secs(1);
/// Under a burst, how long a round waits for the request path at most:
/// the inbox absorbs the burst, and is applied right after.
const YIELD_AT_MOST: Duration = Duration::from_millis(20);
/// Finished deliveries are kept this long: longer than GitHub keeps its own
/// (3 days), so the redelivery sweep always knows what we already hold.
pub const RETENTION: chrono::Duration = chrono::Duration::days(7);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const PRUNE_BATCH: i64 = 10_000;

/// After our own failure (the database), a delivery is tried again at least
/// this often: the outage is not its fault, so it is back soon after the database.
const OUR_SIDE_CAP: Duration = Duration::from_secs(10);

/// Backoff before attempt `attempts + 1`: 2 s, 4 s, 8 s, … capped at 5 minutes.
pub fn retry_delay(attempts: i32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempts.clamp(1, 20) as u32)).min(Duration::from_secs(300))
}

fn outcome_label(state: DeliveryState, retry_at: Option<DateTime<Utc>>) -> &'static str {
    match (state, retry_at) {
        (_, Some(_)) => "retried",
        (DeliveryState::Done, _) => "applied",
        (DeliveryState::Ignored, _) => "ignored",
        _ => "failed",
    }
}

#[derive(Clone)]
pub struct Worker {
    pub store: Arc<dyn Store>,
    /// The request path's writer: while it has deliveries waiting, we wait a little.
    pub writer: Option<Writer>,
    pub notify: Arc<Notify>,
    pub refresh: Arc<Notify>,
    pub metrics: Metrics,
    /// How long a claim holds unless renewed (`GHSYNC_LEASE`); renewed while a round works.
    pub lease: Duration,
}

impl Worker {
    /// Claims and handles one round; returns how many deliveries it handled.
    /// The round's outcomes are written together, in one transaction.
    pub async fn run_once(&self) -> StoreResult<usize> {
        if let Some(writer) = &self.writer {
            let deadline = tokio::time::Instant::now() + YIELD_AT_MOST;
            while writer.is_busy() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let now = Utc::now();
        let length = chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::MAX);
        let lease = Lease::new(now, length);
        let claimed = self.store.claim_deliveries(CLAIM, now, &lease).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let work = apply(&self.store, &self.refresh, &claimed);
        let ids: Vec<_> = claimed.iter().map(|d| d.id.clone()).collect();
        let renew = || self.store.renew_deliveries(&lease.id, &ids, Utc::now() + length);
        let applied = renewing("deliveries", self.lease, work, renew).await;
        let settlements: Vec<Settlement> =
            claimed.iter().zip(applied).map(|(delivery, outcome)| self.settlement(delivery, outcome)).collect();
        let lost = self.store.settle_deliveries(&settlements, &lease.id, Utc::now()).await?;
        if !lost.is_empty() {
            // This process stalled past its lease and another took the deliveries over: theirs counts.
            tracing::warn!(lost = lost.len(), first = %lost[0], "lease lost: deliveries taken over by another process");
        }
        Ok(claimed.len())
    }

    /// What becomes of a delivery after applying it.
    #[tracing::instrument(name = "inbox.apply", skip_all, fields(delivery_id = %delivery.id, event = %delivery.event))]
    fn settlement(&self, delivery: &ClaimedDelivery, outcome: Result<ApplyOutcome, ApplyError>) -> Settlement {
        let event = delivery.event.as_str();
        let settle = |state: DeliveryState, note: Option<String>, retry_at: Option<DateTime<Utc>>| {
            self.metrics.deliveries.with_label_values(&[event, outcome_label(state, retry_at)]).inc();
            Settlement { id: delivery.id.clone(), state, note, retry_at }
        };
        match outcome {
            Ok(ApplyOutcome::Applied(what)) => {
                tracing::debug!(%what, "applied");
                settle(DeliveryState::Done, None, None)
            }
            Ok(ApplyOutcome::Ignored(why)) => {
                tracing::debug!(%why, "ignored");
                settle(DeliveryState::Ignored, Some(why), None)
            }
            Err(ApplyError::Transient(e)) if e.is_ours() => {
                let delay = retry_delay(delivery.attempts).min(OUR_SIDE_CAP);
                let next = Utc::now() + chrono::Duration::from_std(delay).expect("bounded");
                tracing::warn!(error.message = %e, attempts = delivery.attempts, %next, "database failed; will retry");
                settle(DeliveryState::Pending, Some(format!("our side, will retry: {e}")), Some(next))
            }
            Err(ApplyError::Transient(e)) if delivery.attempts < MAX_ATTEMPTS => {
                let next = Utc::now() + chrono::Duration::from_std(retry_delay(delivery.attempts)).expect("bounded");
                tracing::warn!(error.message = %e, attempts = delivery.attempts, %next, "will retry");
                settle(DeliveryState::Pending, Some(e.to_string()), Some(next))
            }
            Err(e) => {
                tracing::error!(error.message = %e, attempts = delivery.attempts, "parked as failed");
                settle(DeliveryState::Failed, Some(e.to_string()), None)
            }
        }
    }

    /// Deletes finished deliveries past `RETENTION`, a batch at a time.
    pub async fn prune(&self) -> StoreResult<u64> {
        let before = Utc::now() - RETENTION;
        let mut total = 0;
        loop {
            let n = self.store.prune_deliveries(before, PRUNE_BATCH).await?;
            total += n;
            if n < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// Runs until `shutdown`; a round in progress finishes first.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut last_prune: Option<std::time::Instant> = None;
        while !shutdown.is_cancelled() {
            if last_prune.is_none_or(|t| t.elapsed() > PRUNE_EVERY) {
                last_prune = Some(std::time::Instant::now());
                match self.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "pruned finished deliveries"),
                    Err(e) => tracing::warn!(error.message = %e, "cannot prune finished deliveries"),
                }
            }
            // Armed before looking, so a delivery stored meanwhile is not missed.
            let woken = self.notify.notified();
            match self.run_once().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => tracing::error!(error.message = %e, "inbox round failed; will try again"),
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_and_are_capped() {
        assert_eq!(retry_delay(1), Duration::from_secs(2));
        assert_eq!(retry_delay(3), Duration::from_secs(8));
        assert_eq!(retry_delay(30), Duration::from_secs(300));
    }
}
