//! Retrying what the database may refuse only because another process wrote
//! at the same moment: PostgreSQL's deadlock (40P01) and serialization
//! failure (40001), SQLite's "database is locked" (SQLITE_BUSY, when another
//! process holds the write lock past the busy timeout). Such a refusal rolls
//! the whole transaction back, and every `Store` method is one transaction
//! (or one statement), so running the method again is safe and no caller
//! ever sees the refusal. `Retrying` wraps the store once, in `store::open`:
//! the pass, the inbox worker and the webhook writer all go through it.
//!
//! Retrying is the second line: the first is that writes lock rows in one
//! global order (installations before users, each by ascending id; see the
//! sorting in `sql/`), so two passes do not deadlock to begin with.
//!
//! Every call, reads too, is also run again when the server ended the
//! connection it ran on (`is_connection_ended`): a failover, a restart, an
//! operator's `pg_terminate_backend`. The pool does not test a connection
//! before lending it (`postgres.rs` says why), so its idle ones are found dead
//! only by their next statement. sqlx closes each as it comes back; the next
//! attempt, at once, takes another or opens a new one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::time::Duration;

use super::*;

/// Attempts in all before the refusal is passed on.
const ATTEMPTS: u32 = 8;
/// The first pause; it doubles each time, with jitter, up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Attempts on connections the server ended, before the error is passed on:
/// more than any of our pools holds (16 on PostgreSQL), so that every dead one
/// can be met and closed.
const ENDED_CONNECTIONS: u32 = 24;

/// Whether the server ended the connection `error` came from: PostgreSQL's
/// admin_shutdown (57P01: a restart, `pg_terminate_backend`) and
/// crash_shutdown (57P02: another backend crashed). Not a refusal of the
/// statement: it never ran, or its transaction was rolled back.
pub fn is_connection_ended(error: &StoreError) -> bool {
    let StoreError::Other(e) = error else { return false };
    let Some(sqlx::Error::Database(db)) = e.downcast_ref::<sqlx::Error>() else { return false };
    matches!(db.code().as_deref(), Some("57P01" | "57P02"))
}

/// Whether `error` is a refusal that a second attempt may not meet.
pub fn is_contention(error: &StoreError) -> bool {
    let StoreError::Other(e) = error else { return false };
    let Some(sqlx::Error::Database(db)) = e.downcast_ref::<sqlx::Error>() else { return false };
    match db.code() {
        // PostgreSQL: deadlock_detected, serialization_failure, and the server ending a
        // transaction this process left idle while frozen (`postgres.rs`): a new connection
        // runs it again.
        Some(code) if code == "40P01" || code == "40001" || code == "25P03" => true,
        // SQLite: SQLITE_BUSY and its extended codes (5 + 256·n).
        Some(code) => code.parse::<i32>().is_ok_and(|c| c & 0xff == 5),
        None => false,
    }
}

/// Runs `op` until it succeeds, fails for another reason, or `ATTEMPTS` are spent.
pub async fn retrying<T, F, Fut>(what: &'static str, mut op: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    let mut ended = 0;
    loop {
        match op().await {
            Err(e) if ended < ENDED_CONNECTIONS && is_connection_ended(&e) => {
                tracing::info!(store.op = what, error.message = %e, "the database ended a connection; running it again on another");
                ended += 1;
            }
            Err(e) if attempt < ATTEMPTS && is_contention(&e) => {
                // Full jitter: two processes that collided do not collide again in step.
                let sleep = pause.mul_f64(0.5 + rand::random::<f64>());
                tracing::debug!(store.op = what, attempt, error.message = %e, "write refused by contention; retrying");
                tokio::time::sleep(sleep).await;
                pause = (pause * 2).min(MAX_PAUSE);
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A `Store` whose writes are retried on contention, and every call when its
/// connection was ended by the server.
pub struct Retrying<S>(pub S);

#[async_trait]
impl<S: Store> InboxStore for Retrying<S> {
    async fn ping(&self) -> StoreResult<()> {
        retrying("ping", || self.0.ping()).await
    }
    async fn insert_deliveries(&self, d: &[NewDelivery]) -> StoreResult<Vec<InsertOutcome>> {
        retrying("insert_deliveries", || self.0.insert_deliveries(d)).await
    }
    fn group_commit(&self) -> StoreResult<GroupCommit> {
        self.0.group_commit()
    }
    async fn claim_deliveries(
        &self,
        limit: usize,
        now: DateTime<Utc>,
        lease: &Lease,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        retrying("claim_deliveries", || self.0.claim_deliveries(limit, now, lease)).await
    }
    async fn renew_deliveries(&self, lease: &LeaseId, ids: &[DeliveryId], until: DateTime<Utc>) -> StoreResult<u64> {
        retrying("renew_deliveries", || self.0.renew_deliveries(lease, ids, until)).await
    }
    async fn finish_delivery(
        &self,
        id: &DeliveryId,
        state: DeliveryState,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        retrying("finish_delivery", || self.0.finish_delivery(id, state, note, now)).await
    }
    async fn settle_deliveries(
        &self,
        s: &[Settlement],
        lease: &LeaseId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DeliveryId>> {
        retrying("settle_deliveries", || self.0.settle_deliveries(s, lease, now)).await
    }
    async fn delivery(&self, id: &DeliveryId) -> StoreResult<Option<DeliveryRecord>> {
        retrying("delivery", || self.0.delivery(id)).await
    }
    async fn retry_delivery(&self, id: &DeliveryId, now: DateTime<Utc>) -> StoreResult<bool> {
        retrying("retry_delivery", || self.0.retry_delivery(id, now)).await
    }
    async fn inbox_stats(&self) -> StoreResult<InboxStats> {
        retrying("inbox_stats", || self.0.inbox_stats()).await
    }
    async fn parked_deliveries(&self, limit: i64) -> StoreResult<Vec<DeliveryRecord>> {
        retrying("parked_deliveries", || self.0.parked_deliveries(limit)).await
    }
    async fn prune_deliveries(&self, before: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
        retrying("prune_deliveries", || self.0.prune_deliveries(before, limit)).await
    }
    async fn book_redelivery(
        &self,
        guid: &str,
        max: i32,
        not_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        retrying("book_redelivery", || self.0.book_redelivery(guid, max, not_since, now)).await
    }
    async fn sweep_mark(&self, name: &str) -> StoreResult<Option<i64>> {
        retrying("sweep_mark", || self.0.sweep_mark(name)).await
    }
    async fn set_sweep_mark(&self, name: &str, value: i64, now: DateTime<Utc>) -> StoreResult<()> {
        retrying("set_sweep_mark", || self.0.set_sweep_mark(name, value, now)).await
    }
}

#[async_trait]
impl<S: Store> InstallationStore for Retrying<S> {
    async fn upsert_installation(&self, i: &InstallationRecord, now: DateTime<Utc>) -> StoreResult<bool> {
        retrying("upsert_installation", || self.0.upsert_installation(i, now)).await
    }
    async fn upsert_installations(&self, i: &[InstallationRecord], now: DateTime<Utc>) -> StoreResult<u64> {
        retrying("upsert_installations", || self.0.upsert_installations(i, now)).await
    }
    async fn unseen_installations(
        &self,
        seen_before: DateTime<Utc>,
        after: Option<InstallationId>,
        limit: i64,
    ) -> StoreResult<Vec<InstallationId>> {
        retrying("unseen_installations", || self.0.unseen_installations(seen_before, after, limit)).await
    }
    async fn set_installation_state(
        &self,
        id: InstallationId,
        state: InstallationState,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        retrying("set_installation_state", || self.0.set_installation_state(id, state, now)).await
    }
    async fn active_installations(&self, limit: i64) -> StoreResult<Vec<InstallationId>> {
        retrying("active_installations", || self.0.active_installations(limit)).await
    }
    async fn retire_unseen_installations(&self, seen_before: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<u64> {
        retrying("retire_unseen_installations", || self.0.retire_unseen_installations(seen_before, now)).await
    }
}

#[async_trait]
impl<S: Store> UserStore for Retrying<S> {
    async fn user_by_id(&self, id: GitHubUserId) -> StoreResult<Option<UserRecord>> {
        retrying("user_by_id", || self.0.user_by_id(id)).await
    }
    async fn user_by_login(&self, login: &Login) -> StoreResult<Option<UserRecord>> {
        retrying("user_by_login", || self.0.user_by_login(login)).await
    }
    async fn register_users(&self, ids: &[GitHubUserId], now: DateTime<Utc>) -> StoreResult<Vec<GitHubUserId>> {
        retrying("register_users", || self.0.register_users(ids, now)).await
    }
    async fn track_user(&self, account: &Account, now: DateTime<Utc>) -> StoreResult<bool> {
        retrying("track_user", || self.0.track_user(account, now)).await
    }
    async fn rename_user(&self, id: GitHubUserId, login: &Login, now: DateTime<Utc>) -> StoreResult<()> {
        retrying("rename_user", || self.0.rename_user(id, login, now)).await
    }
    async fn revoke_user(&self, id: GitHubUserId, now: DateTime<Utc>) -> StoreResult<()> {
        retrying("revoke_user", || self.0.revoke_user(id, now)).await
    }
    async fn synced_among(&self, ids: &[GitHubUserId]) -> StoreResult<HashMap<GitHubUserId, Option<DateTime<Utc>>>> {
        retrying("synced_among", || self.0.synced_among(ids)).await
    }
    async fn note_activity(
        &self,
        noted: &[(Account, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<GitHubUserId>> {
        retrying("note_activity", || self.0.note_activity(noted, now)).await
    }
    async fn mark_due(&self, id: GitHubUserId, due: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<()> {
        retrying("mark_due", || self.0.mark_due(id, due, now)).await
    }
    async fn set_sync_enabled(&self, id: GitHubUserId, enabled: bool, now: DateTime<Utc>) -> StoreResult<bool> {
        retrying("set_sync_enabled", || self.0.set_sync_enabled(id, enabled, now)).await
    }
    async fn erase_user(&self, id: GitHubUserId) -> StoreResult<bool> {
        retrying("erase_user", || self.0.erase_user(id)).await
    }
    async fn user_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        retrying("user_counts", || self.0.user_counts()).await
    }
    async fn oldest_synced_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        retrying("oldest_synced_at", || self.0.oldest_synced_at()).await
    }
}

#[async_trait]
impl<S: Store> SyncStore for Retrying<S> {
    async fn claim_due_users(
        &self,
        which: DueKind,
        limit: usize,
        now: DateTime<Utc>,
        lease: &Lease,
    ) -> StoreResult<Vec<DueUser>> {
        retrying("claim_due_users", || self.0.claim_due_users(which, limit, now, lease)).await
    }
    async fn renew_users(&self, lease: &LeaseId, until: DateTime<Utc>) -> StoreResult<u64> {
        retrying("renew_users", || self.0.renew_users(lease, until)).await
    }
    async fn leased_due_until(&self, which: DueKind, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>> {
        retrying("leased_due_until", || self.0.leased_due_until(which, now)).await
    }
    async fn count_due_users(&self, now: DateTime<Utc>, synced_before: DateTime<Utc>) -> StoreResult<i64> {
        retrying("count_due_users", || self.0.count_due_users(now, synced_before)).await
    }
    async fn next_marked_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        retrying("next_marked_due", || self.0.next_marked_due()).await
    }
    async fn record_outcomes(
        &self,
        o: &[UserOutcome],
        lease: Option<&LeaseId>,
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<GitHubUserId>> {
        retrying("record_outcomes", || self.0.record_outcomes(o, lease, claimed_at, now)).await
    }
}

#[async_trait]
impl<S: Store> RateLimitStore for Retrying<S> {
    async fn save_rate_limit(&self, record: &RateLimitRecord) -> StoreResult<()> {
        retrying("save_rate_limit", || self.0.save_rate_limit(record)).await
    }
    async fn rate_limits(&self) -> StoreResult<Vec<RateLimitRecord>> {
        retrying("rate_limits", || self.0.rate_limits()).await
    }
    async fn rate_limits_least(&self, n: i64) -> StoreResult<Vec<RateLimitRecord>> {
        retrying("rate_limits_least", || self.0.rate_limits_least(n)).await
    }
    async fn rate_limit_summary(&self, now: DateTime<Utc>) -> StoreResult<Vec<RateSummary>> {
        retrying("rate_limit_summary", || self.0.rate_limit_summary(now)).await
    }
    async fn book_budget(&self, ask: &BudgetAsk) -> StoreResult<Booking> {
        retrying("book_budget", || self.0.book_budget(ask)).await
    }
}

#[async_trait]
impl<S: Store> RunStore for Retrying<S> {
    async fn start_run(
        &self,
        trigger: &str,
        synced_before: DateTime<Utc>,
        owner: &LeaseId,
        now: DateTime<Utc>,
        silent_before: DateTime<Utc>,
    ) -> StoreResult<RunStart> {
        retrying("start_run", || self.0.start_run(trigger, synced_before, owner, now, silent_before)).await
    }
    async fn take_over_run(
        &self,
        id: RunId,
        owner: &LeaseId,
        now: DateTime<Utc>,
        silent_before: DateTime<Utc>,
    ) -> StoreResult<bool> {
        retrying("take_over_run", || self.0.take_over_run(id, owner, now, silent_before)).await
    }
    async fn beat_run(&self, id: RunId, owner: &LeaseId, now: DateTime<Utc>) -> StoreResult<bool> {
        retrying("beat_run", || self.0.beat_run(id, owner, now)).await
    }
    async fn add_to_run(&self, id: RunId, counts: &RunCounts) -> StoreResult<()> {
        retrying("add_to_run", || self.0.add_to_run(id, counts)).await
    }
    async fn add_run_message(&self, id: RunId, kind: &str, message: &str, now: DateTime<Utc>) -> StoreResult<()> {
        retrying("add_run_message", || self.0.add_run_message(id, kind, message, now)).await
    }
    async fn finish_run(&self, id: RunId, owner: &LeaseId, now: DateTime<Utc>) -> StoreResult<bool> {
        retrying("finish_run", || self.0.finish_run(id, owner, now)).await
    }
    async fn fail_run(&self, id: RunId, owner: &LeaseId, reason: &str, now: DateTime<Utc>) -> StoreResult<()> {
        retrying("fail_run", || self.0.fail_run(id, owner, reason, now)).await
    }
    async fn running_run(&self) -> StoreResult<Option<RunId>> {
        retrying("running_run", || self.0.running_run()).await
    }
    async fn runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
        retrying("runs", || self.0.runs(limit)).await
    }
    async fn run(&self, id: RunId) -> StoreResult<Option<RunRecord>> {
        retrying("run", || self.0.run(id)).await
    }
    async fn last_finished_run(&self) -> StoreResult<Option<RunRecord>> {
        retrying("last_finished_run", || self.0.last_finished_run()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn another_process_holding_the_sqlite_write_lock_is_contention() {
        use sqlx::Connection as _;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/busy.db?mode=rwc", dir.path().display());
        let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut holder).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let mut other = sqlx::SqliteConnection::connect_with(&options.busy_timeout(Duration::ZERO)).await.unwrap();
        let refused = sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.unwrap_err();
        assert!(is_contention(&StoreError::from(refused)));
        assert!(!is_contention(&StoreError::NotFound));
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let outcome: StoreResult<()> = retrying("test", || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err(StoreError::Conflict("no".into()))
        })
        .await;
        assert!(outcome.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
