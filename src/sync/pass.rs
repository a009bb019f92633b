//! A reconcile pass, level-triggered like a Kubernetes controller: it trusts
//! no webhook. It brings the installations in line with GitHub's list, then
//! drains every due user in leased batches (constant memory), then records
//! itself. A second caller finds the pass running and helps drain it instead.

use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

pub use super::pass_report::PassReport;
use super::pass_report::counts_of;
use super::reconcile::Reconciler;
use crate::config::SyncSettings;
use crate::domain::{DueKind, RunCounts, RunId, RunStart};
use crate::github::{GitHub, Meter, Priority};
use crate::metrics::Metrics;
use crate::store::{Store, StoreResult};

/// A pass whose heartbeat is older than this died with its process.
pub const ABANDON_AFTER: Duration = Duration::minutes(10);
/// How long claimed users stay ours.
const LEASE: Duration = Duration::minutes(5);
/// Batches worked on at once by one process.
const DRAINERS: usize = 4;
/// A paused pass still says it is alive this often.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);
/// A pass whose batches all wait (no token will take them) for longer than
/// this gives up as `failed` instead of holding the one-pass slot forever.
/// Longer than GitHub's hour-long rate-limit window, which a pass sits out.
const STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(75 * 60);

/// Runs passes: the one thing `ghsync reconcile`, `POST /admin/reconcile`,
/// the schedule and the tests all call. Cheap to clone; clones share the
/// pause gauge.
#[derive(Clone)]
pub struct PassRunner {
    store: Arc<dyn Store>,
    /// Lists installations and hands out the governor's unsaved knowledge.
    github: GitHub,
    reconciler: Reconciler,
    batch_size: usize,
    metrics: Metrics,
    /// When the pass in this process waits on rate limits until (epoch ms; 0 = not waiting).
    paused_until: Arc<AtomicI64>,
    /// Notes each run already recorded (cleared when a pass this process started ends).
    noted: Arc<std::sync::Mutex<std::collections::HashSet<(RunId, String)>>>,
}

impl PassRunner {
    pub fn new(
        store: Arc<dyn Store>,
        github: GitHub,
        reconciler: Reconciler,
        settings: &SyncSettings,
        metrics: Metrics,
    ) -> Self {
        let batch_size = settings.batch_size;
        let noted = Arc::default();
        Self { store, github, reconciler, batch_size, metrics, paused_until: Arc::new(AtomicI64::new(0)), noted }
    }

    /// When this process's pass is waiting on rate limits, until when.
    pub fn pass_paused_until(&self) -> Option<DateTime<Utc>> {
        let ms = self.paused_until.load(Ordering::Relaxed);
        DateTime::from_timestamp_millis(ms).filter(|t| *t > Utc::now())
    }

    /// Starts a pass, or finds the running one.
    async fn begin(&self, trigger: &str) -> StoreResult<RunStart> {
        let now = Utc::now();
        self.store.start_run(trigger, now, now - ABANDON_AFTER).await
    }

    /// Starts a pass in the background and says which (`POST /admin/reconcile`);
    /// when one is running already, says so and starts nothing.
    pub async fn start(&self, trigger: &str, shutdown: CancellationToken) -> StoreResult<RunStart> {
        let start = self.begin(trigger).await?;
        if let RunStart::Started(id) = start {
            let runner = self.clone();
            tokio::spawn(async move {
                match runner.carry_out(id, &shutdown).await {
                    Err(e) => tracing::error!(error.cause_chain = ?e, run_id = %id, "reconcile pass failed"),
                    Ok(PassReport { failure: Some(reason), .. }) => {
                        tracing::error!(error.message = %reason, run_id = %id, "reconcile pass failed")
                    }
                    Ok(_) => {}
                }
            });
        }
        Ok(start)
    }

    /// Runs one pass now in the background, joining the running one if any (the schedule).
    pub fn spawn_pass(&self, trigger: &'static str, shutdown: CancellationToken) {
        let runner = self.clone();
        tokio::spawn(async move {
            match runner.run_pass(trigger, &shutdown).await {
                Err(e) => {
                    runner.metrics.passes.with_label_values(&["error"]).inc();
                    tracing::error!(error.message = %e, error.cause_chain = ?e, "reconcile pass failed");
                }
                Ok(PassReport { failure: Some(reason), .. }) => {
                    tracing::error!(error.message = %reason, "reconcile pass failed")
                }
                Ok(_) => {}
            }
        });
    }

    /// One whole pass: start (or join), reconcile installations, drain, record.
    pub async fn run_pass(&self, trigger: &str, shutdown: &CancellationToken) -> anyhow::Result<PassReport> {
        match self.begin(trigger).await? {
            RunStart::Started(id) => self.carry_out(id, shutdown).await,
            RunStart::AlreadyRunning(id) => {
                tracing::info!(run_id = %id, "a pass is running; joining it");
                let counts = self.drain(id, shutdown).await?;
                Ok(PassReport { run_id: id, joined: true, counts, failure: None })
            }
        }
    }

    /// The body of a pass this process started, and its outcome recorded:
    /// `finished`, or `failed` with the reason.
    #[tracing::instrument(name = "sync.pass", skip_all, fields(run_id = %id))]
    async fn carry_out(&self, id: RunId, shutdown: &CancellationToken) -> anyhow::Result<PassReport> {
        // The start as recorded: users this pass's listing discovers are due as of it, so the
        // drain (which takes users due at the pass's start) fetches them in this pass.
        let started = self.store.run(id).await?.map_or_else(Utc::now, |run| run.started_at);
        let (counts, failure) = match self.work(id, started, shutdown).await {
            Ok(done) => done,
            // A database error: the counts so far are in the run row already.
            Err(e) => (RunCounts::default(), Some(format!("{e:#}"))),
        };
        let finished = Utc::now();
        // The run's once-only notes are done with, whatever its outcome.
        self.noted.lock().expect("notes poisoned").retain(|(run, _)| *run != id);
        if shutdown.is_cancelled() {
            // Leave it running: its heartbeat stops, a later pass or replica takes over.
            tracing::info!("shutting down in the middle of a pass");
        } else if let Some(reason) = &failure {
            self.store.fail_run(id, reason, finished).await?;
            self.metrics.passes.with_label_values(&["failed"]).inc();
            tracing::warn!(error.message = %reason, ?counts, "pass failed");
        } else {
            self.store.finish_run(id, finished).await?;
            self.metrics.passes.with_label_values(&["finished"]).inc();
            tracing::info!(took_ms = (finished - started).num_milliseconds(), ?counts, "pass finished");
        }
        Ok(PassReport { run_id: id, joined: false, counts, failure })
    }

    /// Reconciles installations, then drains. `Some(reason)`: the pass failed
    /// (the listing, or no token at all), though it did what it could.
    async fn work(
        &self,
        id: RunId,
        started: DateTime<Utc>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<(RunCounts, Option<String>)> {
        let mut counts = RunCounts::default();
        let mut failure = None;
        match self.reconcile_installations(started).await {
            Ok((added, removed)) => {
                counts.installations_added = added as i64;
                counts.installations_removed = removed as i64;
            }
            Err(e) => {
                tracing::warn!(error.message = %e, "cannot list installations; syncing the users we know");
                failure = Some(format!("listing installations failed: {e:#}"));
            }
        }
        counts.users_due = self.store.count_due_users(Utc::now()).await?;
        self.store.add_to_run(id, &counts, Utc::now()).await?;
        if counts.users_due > 0 && self.store.active_installations(1).await?.is_empty() {
            // Waiting would not help: only an installation (a webhook, a later listing) brings a token.
            let reason = "no active installation: no token to read the due users' profiles with";
            return Ok((counts, Some(failure.map_or_else(|| reason.to_owned(), |f| format!("{f}; {reason}")))));
        }
        counts.add(&self.drain(id, shutdown).await?);
        Ok((counts, failure))
    }

    /// Lists GitHub's installations (every page) and brings ours in line.
    async fn reconcile_installations(&self, started: DateTime<Utc>) -> anyhow::Result<(u64, u64)> {
        let added = AtomicU64::new(0);
        self.github
            .for_each_installation_page(|page| {
                let (store, added) = (self.store.clone(), &added);
                async move {
                    added.fetch_add(store.upsert_installations(&page, started).await?, Ordering::Relaxed);
                    Ok(())
                }
            })
            .await?;
        let added = added.into_inner();
        // Only after a complete listing, and only once GitHub confirms each one is gone.
        let retired = super::retire::retire_confirmed(&self.store, &self.github, started).await?;
        for error in retired.errors.iter().take(5) {
            tracing::warn!(error.message = %error, "cannot confirm a missing installation");
        }
        self.reconciler.installations_changed();
        Ok((added, retired.removed))
    }

    /// Claims and reconciles batches until none are due; several at once.
    async fn drain(&self, id: RunId, shutdown: &CancellationToken) -> anyhow::Result<RunCounts> {
        let cutoff = match self.store.run(id).await? {
            Some(run) => run.started_at,
            None => Utc::now(),
        };
        let drainers = (0..DRAINERS).map(|_| self.drain_one(id, cutoff, shutdown));
        let mut total = RunCounts::default();
        for counts in futures_util::future::join_all(drainers).await {
            total.add(&counts?);
        }
        self.paused_until.store(0, Ordering::Relaxed);
        Ok(total)
    }

    async fn drain_one(
        &self,
        id: RunId,
        cutoff: DateTime<Utc>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<RunCounts> {
        let mut total = RunCounts::default();
        let meter = Meter::default();
        let mut progressed_at = std::time::Instant::now();
        while !shutdown.is_cancelled() {
            // Due as of the pass's start: a user synced (or failed) during the pass waits for the next one.
            let claimed_at = Utc::now();
            let batch = self.store.claim_due_users(DueKind::All, self.batch_size, cutoff, claimed_at + LEASE).await?;
            if batch.is_empty() {
                break;
            }
            let result = self.reconciler.reconcile_batch(batch, Priority::Background, false, &meter).await;
            self.store.record_outcomes(&result.outcomes, claimed_at, Utc::now()).await?;
            let mut counts = counts_of(&result.outcomes);
            (counts.points_core, counts.points_graphql) = meter.take();
            self.record_batch(id, &counts, &result.notes, &result.errors).await?;
            total.add(&counts);
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
                self.wait_out(id, until, shutdown).await?;
            }
        }
        Ok(total)
    }

    async fn record_batch(
        &self,
        id: RunId,
        counts: &RunCounts,
        notes: &[String],
        errors: &[String],
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        self.store.add_to_run(id, counts, now).await?;
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
        for record in self.github.governor().take_dirty(now) {
            self.store.save_rate_limit(&record).await?;
        }
        Ok(())
    }

    /// Rate limits said "not before `until`": wait, keeping the pass's heartbeat.
    async fn wait_out(&self, id: RunId, until: DateTime<Utc>, shutdown: &CancellationToken) -> anyhow::Result<()> {
        self.paused_until.fetch_max(until.timestamp_millis(), Ordering::Relaxed);
        tracing::info!(%until, "pass paused on rate limits");
        loop {
            let left = (until - Utc::now()).to_std().unwrap_or_default();
            if left.is_zero() || shutdown.is_cancelled() {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(left.min(HEARTBEAT)) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
            self.store.add_to_run(id, &RunCounts::default(), Utc::now()).await?;
        }
    }
}
