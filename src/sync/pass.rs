//! A reconcile pass, level-triggered like a Kubernetes controller: it trusts
//! no webhook. It brings the installations in line with GitHub's list, then
//! drains every due user in leased batches (constant memory, `drain.rs`),
//! then records itself. A second caller finds the pass running and helps
//! drain it instead.
//!
//! A pass has an owner, the process carrying it out, which beats a heartbeat
//! on the run row while it works. An owner silent for longer than a lease
//! died: a joiner that outlives it, or the next process to start a pass,
//! takes the pass over (compare-and-set on the row) and finishes it, so a
//! pass drained by others ends `finished`, not abandoned.

use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

use super::lease::renewing;
pub use super::pass_report::PassReport;
use super::reconcile::Reconciler;
use crate::config::SyncSettings;
use crate::domain::{LeaseId, RunCounts, RunId, RunStart};
use crate::github::GitHub;
use crate::metrics::Metrics;
use crate::store::{Store, StoreResult};

/// Runs passes: the one thing `ghsync reconcile`, `POST /admin/reconcile`,
/// the schedule and the tests all call. Cheap to clone; clones share the
/// pause gauge.
#[derive(Clone)]
pub struct PassRunner {
    pub(super) store: Arc<dyn Store>,
    /// Lists installations and hands out the governor's unsaved knowledge.
    pub(super) github: GitHub,
    pub(super) reconciler: Reconciler,
    pub(super) batch_size: usize,
    /// `GHSYNC_STALE_AFTER` as this process was started with: a pass it starts checks
    /// everyone last synced longer ago than this, whatever the setting was then.
    stale_after: Duration,
    /// `GHSYNC_LEASE`: claims are renewed within it, and an owner silent for longer died.
    pub(super) lease: std::time::Duration,
    /// This process's token as a pass's owner.
    owner: LeaseId,
    pub(super) metrics: Metrics,
    /// When the pass in this process waits on rate limits until (epoch ms; 0 = not waiting).
    pub(super) paused_until: Arc<AtomicI64>,
    /// Notes each run already recorded (cleared when a pass this process started ends).
    pub(super) noted: Arc<std::sync::Mutex<std::collections::HashSet<(RunId, String)>>>,
}

/// Whom a pass checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassScope {
    /// Users due: marked, failed and past their backoff, never synced, or stale.
    Due,
    /// Every active user whatever their age (`reconcile --all`, `{"all": true}`).
    Everyone,
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
        let stale_after = Duration::from_std(settings.stale_after).unwrap_or(Duration::MAX);
        let (paused_until, noted) = (Arc::new(AtomicI64::new(0)), Arc::default());
        let (lease, owner) = (settings.lease, LeaseId::new());
        Self { store, github, reconciler, batch_size, stale_after, lease, owner, metrics, paused_until, noted }
    }

    /// The lease as a `chrono` span; an owner silent for longer than this died.
    pub(super) fn lease_span(&self) -> Duration {
        Duration::from_std(self.lease).unwrap_or(Duration::MAX)
    }

    /// When this process's pass is waiting on rate limits, until when.
    pub fn pass_paused_until(&self) -> Option<DateTime<Utc>> {
        let ms = self.paused_until.load(Ordering::Relaxed);
        DateTime::from_timestamp_millis(ms).filter(|t| *t > Utc::now())
    }

    /// Starts a pass, or finds the running one.
    async fn begin(&self, trigger: &str, scope: PassScope) -> StoreResult<RunStart> {
        let now = Utc::now();
        let synced_before = match scope {
            PassScope::Due => now.checked_sub_signed(self.stale_after).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            PassScope::Everyone => now,
        };
        self.store.start_run(trigger, synced_before, &self.owner, now, now - self.lease_span()).await
    }

    /// A pass's cutoffs, as its starter recorded them (joiners use the same): due as of
    /// its start, and stale if last synced at or before `synced_before`.
    pub(super) async fn cutoffs(&self, id: RunId) -> StoreResult<(DateTime<Utc>, DateTime<Utc>)> {
        let run = self.store.run(id).await?;
        let started = run.as_ref().map_or_else(Utc::now, |run| run.started_at);
        let synced_before = run
            .and_then(|run| run.synced_before)
            .unwrap_or_else(|| started.checked_sub_signed(self.stale_after).unwrap_or(DateTime::<Utc>::UNIX_EPOCH));
        Ok((started, synced_before))
    }

    /// Starts a pass in the background and says which (`POST /admin/reconcile`);
    /// when one is running already, says so and starts nothing.
    pub async fn start(&self, trigger: &str, scope: PassScope, shutdown: CancellationToken) -> StoreResult<RunStart> {
        let start = self.begin(trigger, scope).await?;
        if let RunStart::Started(id) | RunStart::TakenOver(id) = start {
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
        self.run_pass_of(trigger, PassScope::Due, shutdown).await
    }

    /// One whole pass over `scope`; joining a running pass takes that pass's scope.
    pub async fn run_pass_of(
        &self,
        trigger: &str,
        scope: PassScope,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<PassReport> {
        match self.begin(trigger, scope).await? {
            RunStart::Started(id) => self.carry_out(id, shutdown).await,
            RunStart::TakenOver(id) => {
                tracing::warn!(run_id = %id, "the running pass's process fell silent; taking the pass over");
                self.carry_out(id, shutdown).await
            }
            RunStart::AlreadyRunning(id) => {
                tracing::info!(run_id = %id, "a pass is running; joining it");
                let counts = self.drain(id, shutdown).await?;
                if !shutdown.is_cancelled() {
                    self.finish_if_orphaned(id).await?;
                }
                Ok(PassReport { run_id: id, joined: true, counts, failure: None })
            }
        }
    }

    /// A joiner that drained the pass to its end finishes it if its owner died
    /// meanwhile (else the owner, alive, finishes it).
    async fn finish_if_orphaned(&self, id: RunId) -> StoreResult<()> {
        let now = Utc::now();
        if self.store.take_over_run(id, &self.owner, now, now - self.lease_span()).await? {
            tracing::warn!(run_id = %id, "the pass's owner fell silent; finishing the pass in its place");
            if self.store.finish_run(id, &self.owner, Utc::now()).await? {
                self.metrics.passes.with_label_values(&["finished"]).inc();
            }
        }
        Ok(())
    }

    /// The body of a pass this process started, and its outcome recorded:
    /// `finished`, or `failed` with the reason.
    #[tracing::instrument(name = "sync.pass", skip_all, fields(run_id = %id))]
    async fn carry_out(&self, id: RunId, shutdown: &CancellationToken) -> anyhow::Result<PassReport> {
        // The start as recorded: users this pass's listing discovers are due as of it, so the
        // drain (which takes users due at the pass's start) fetches them in this pass.
        let (started, synced_before) = self.cutoffs(id).await?;
        // The owner's heartbeat, for as long as the work lasts.
        let beat = || async {
            let ours = self.store.beat_run(id, &self.owner, Utc::now()).await?;
            if !ours {
                tracing::warn!("lease lost: this pass was taken over while this process was silent");
            }
            Ok(u64::from(ours))
        };
        let work = self.work(id, started, synced_before, shutdown);
        let (counts, failure) = match renewing("pass", self.lease, work, beat).await {
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
            self.store.fail_run(id, &self.owner, reason, finished).await?;
            self.metrics.passes.with_label_values(&["failed"]).inc();
            tracing::warn!(error.message = %reason, ?counts, "pass failed");
        } else if self.store.finish_run(id, &self.owner, finished).await? {
            self.metrics.passes.with_label_values(&["finished"]).inc();
            tracing::info!(took_ms = (finished - started).num_milliseconds(), ?counts, "pass finished");
        } else {
            tracing::warn!(?counts, "the pass was taken over by another process, which finishes it");
        }
        Ok(PassReport { run_id: id, joined: false, counts, failure })
    }

    /// Reconciles installations, then drains. `Some(reason)`: the pass failed
    /// (the listing, or no token at all), though it did what it could.
    async fn work(
        &self,
        id: RunId,
        started: DateTime<Utc>,
        synced_before: DateTime<Utc>,
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
        counts.users_due = self.store.count_due_users(Utc::now(), synced_before).await?;
        self.store.add_to_run(id, &counts).await?;
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
}
