//! Draining a pass: claiming due users in leased batches until none of the
//! pass is left, several batches at once, renewing each claim while GitHub
//! answers. A pass is over only when no other process holds any of its users
//! either: a live one records them, a dead one's leases run out and are
//! claimed here.

use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

use super::lease::{renew_every, renewing};
use super::pass::PassRunner;
use super::pass_report::counts_of;
use crate::domain::{DueKind, Lease, RunCounts, RunId};
use crate::github::{Meter, Priority};

/// Batches worked on at once by one process. An unchanged batch is one GraphQL
/// round trip and two writes (claim, outcomes): with 4, a 20,000-user pass
/// spent most of its time waiting on GitHub's latency; 32 keep SQLite's one
/// writer busy (100,000 unchanged users: 16 took 5.9–6.6 s, 32 took 5.1 s).
/// The transport caps requests in flight.
const DRAINERS: usize = 32;
/// A pass whose batches all wait (no token will take them) for longer than
/// this gives up as `failed` instead of holding the one-pass slot forever.
/// Longer than GitHub's hour-long rate-limit window, which a pass sits out.
const STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(75 * 60);
/// While others hold users of the pass, looked again at least this often.
const OTHERS_POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// A drainer adds its counts to the run row, and saves what it learned of
/// rate limits, at most this often (and when it stops or waits): per batch,
/// those two writes were a third of the single SQLite writer's commits.
const RECORD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl PassRunner {
    /// Claims and reconciles batches until none of the pass is due or held by another process.
    pub(super) async fn drain(&self, id: RunId, shutdown: &CancellationToken) -> anyhow::Result<RunCounts> {
        let (due_by, synced_before) = self.cutoffs(id).await?;
        let due = DueKind::All { due_by, synced_before };
        let mut total = RunCounts::default();
        loop {
            // Before the claims: a lease that runs out between a claim that found nothing
            // and the look below is still seen, and claimed on the next round, not missed.
            let claiming_from = Utc::now();
            let drainers = (0..DRAINERS).map(|_| self.drain_one(id, due, shutdown));
            for counts in futures_util::future::join_all(drainers).await {
                total.add(&counts?);
            }
            if shutdown.is_cancelled() {
                break;
            }
            // Nothing left to claim; are others still at work on users of the pass?
            let Some(until) = self.store.leased_due_until(due, claiming_from).await? else { break };
            let left = (until - Utc::now()).to_std().unwrap_or_default();
            let wait = left.min(OTHERS_POLL).min(renew_every(self.lease)) + std::time::Duration::from_millis(10);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        self.paused_until.store(0, Ordering::Relaxed);
        Ok(total)
    }

    async fn drain_one(&self, id: RunId, due: DueKind, shutdown: &CancellationToken) -> anyhow::Result<RunCounts> {
        let mut total = RunCounts::default();
        let mut unrecorded = RunCounts::default();
        let meter = Meter::default();
        let mut progressed_at = std::time::Instant::now();
        let mut recorded_at = std::time::Instant::now();
        while !shutdown.is_cancelled() {
            // Due as of the pass's start (`due`), leases judged against now.
            let claimed_at = Utc::now();
            let lease = Lease::new(claimed_at, self.lease_span());
            let batch = self.store.claim_due_users(due, self.batch_size, claimed_at, &lease).await?;
            if batch.is_empty() {
                break;
            }
            let work = self.reconciler.reconcile_batch(batch, Priority::Background, false, &meter);
            let renew = || self.store.renew_users(&lease.id, Utc::now() + self.lease_span());
            let mut result = renewing("users", self.lease, work, renew).await;
            let lost = self.store.record_outcomes(&result.outcomes, Some(&lease.id), claimed_at, Utc::now()).await?;
            if !lost.is_empty() {
                // This process stalled past its lease and another took the users over: its answers are older.
                tracing::warn!(lost = lost.len(), first = %lost[0], "lease lost: users taken over by another process");
                result.outcomes.retain(|o| !lost.contains(&o.user_id()));
            }
            let mut counts = counts_of(&result.outcomes);
            (counts.points_core, counts.points_graphql) = meter.take();
            self.note_batch(id, &counts, &result.notes, &result.errors).await?;
            total.add(&counts);
            unrecorded.add(&counts);
            if recorded_at.elapsed() >= RECORD_EVERY || result.blocked_until.is_some() {
                self.record_progress(id, &mut unrecorded).await?;
                recorded_at = std::time::Instant::now();
            }
            if counts.fetched + counts.unchanged + counts.gone + counts.failed > 0 {
                progressed_at = std::time::Instant::now();
            }
            if let Some(until) = result.blocked_until {
                if progressed_at.elapsed() > STALL_LIMIT {
                    anyhow::bail!(
                        "no user could be synced for {} min: every token is spent, paused or unavailable",
                        STALL_LIMIT.as_secs() / 60
                    );
                }
                self.wait_out(until, shutdown).await;
            }
        }
        self.record_progress(id, &mut unrecorded).await?;
        Ok(total)
    }

    /// Adds `unrecorded` to the run's counts (and empties it); saves the rate
    /// limits learned since the last time.
    async fn record_progress(&self, id: RunId, unrecorded: &mut RunCounts) -> anyhow::Result<()> {
        if *unrecorded != RunCounts::default() {
            self.store.add_to_run(id, unrecorded).await?;
            *unrecorded = RunCounts::default();
        }
        for record in self.github.governor().take_dirty(Utc::now()) {
            self.store.save_rate_limit(&record).await?;
        }
        Ok(())
    }

    /// A batch's notes and errors (rare, written at once) and its metrics.
    async fn note_batch(
        &self,
        id: RunId,
        counts: &RunCounts,
        notes: &[String],
        errors: &[String],
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        for note in notes {
            // Said once per run, not once per batch (every batch of a pass may fall back alike).
            if self.noted.lock().expect("notes poisoned").insert((id, note.clone())) {
                self.store.add_run_message(id, "note", note, now).await?;
            }
        }
        // A run keeps a sample of its errors, not thousands of them.
        for error in errors.iter().take(5) {
            self.store.add_run_message(id, "error", error, now).await?;
        }
        for (label, n) in [
            ("changed", counts.changed),
            ("unchanged", counts.unchanged),
            ("gone", counts.gone),
            ("failed", counts.failed),
        ] {
            self.metrics.profiles.with_label_values(&[label]).inc_by(n as u64);
        }
        Ok(())
    }

    /// Rate limits said "not before `until`": wait (the owner's heartbeat beats on meanwhile).
    async fn wait_out(&self, until: DateTime<Utc>, shutdown: &CancellationToken) {
        self.paused_until.fetch_max(until.timestamp_millis(), Ordering::Relaxed);
        tracing::info!(%until, "pass paused on rate limits");
        let left = (until - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(left) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}
