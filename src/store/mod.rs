//! Storage: one trait named after what ghsync does, in five parts. Both
//! backends are one generic `SqlStore` (`sql/`: plain code, the same SQL text
//! for both, since sqlx maps `$n` placeholders on SQLite too); what differs —
//! connection set-up, migrations, the write `BEGIN`, `SKIP LOCKED` — is each
//! backend's `Backend` impl in its own file. The values it stores and returns
//! are `domain/` types; status changes are decided there, and written here.

mod group_commit;
mod migrations;
mod nodelay;
mod pg_tls;
mod postgres;
mod processes;
mod retry;
mod sql;
mod sqlite;
mod sqlite_group;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

use crate::config::DatabaseSettings;
use crate::domain::{
    Account, Booking, BudgetAsk, ClaimedDelivery, DeliveryId, DeliveryRecord, DeliveryState, DueKind, DueUser,
    GitHubUserId, InboxStats, InsertOutcome, InstallationId, InstallationRecord, InstallationState, Lease, LeaseId,
    Login, NewDelivery, RateLimitRecord, RateSummary, RunCounts, RunId, RunRecord, RunStart, Settlement, UserOutcome,
    UserRecord,
};

pub use group_commit::{GroupCommit, GroupCommitter};
pub use postgres::PgStore;
pub use retry::{Retrying, is_contention};
pub use sql::packed::pack;
pub use sqlite::SqliteStore;

/// What can go wrong in storage, as callers need to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused what was written (a constraint, a value it cannot
    /// hold): the data's fault, and writing it again will not help.
    #[error("the database refused the data: {0}")]
    Refused(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StoreError {
    /// The database failed (down, timed out, refused the write): our outage,
    /// not a fault of what was being stored. `NotFound`, `Conflict` and
    /// `Refused` are answers about the data.
    pub fn is_ours(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Other(_))
    }

    /// The same failure, for each of the several callers one statement served
    /// (a round's deliveries): same kind, same message.
    pub fn shared(&self) -> Self {
        match self {
            Self::NotFound => Self::NotFound,
            Self::Conflict(m) => Self::Conflict(m.clone()),
            Self::Unavailable(m) => Self::Unavailable(m.clone()),
            Self::Refused(m) => Self::Refused(m.clone()),
            Self::Other(e) => Self::Other(anyhow::anyhow!("{e:#}")),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) if refuses_the_data(db.as_ref()) => StoreError::Refused(db.message().to_owned()),
            other => StoreError::Other(other.into()),
        }
    }
}

/// Whether the database refused a statement for the data in it, as opposed
/// to failing (locks, connections, disk), which another try may get past.
fn refuses_the_data(db: &dyn sqlx::error::DatabaseError) -> bool {
    use sqlx::error::ErrorKind;
    if !matches!(db.kind(), ErrorKind::Other) {
        return true; // unique, foreign key, not-null or check violations
    }
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // Class 22, data exception: a NUL in text, a string too long, a number out of range.
        return pg.code().starts_with("22");
    }
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(sqlite_refuses);
    }
    false
}

/// Whether a SQLite result code (extended, or primary) says the data was
/// refused: SQLITE_TOOBIG (18), SQLITE_MISMATCH (20), or a check, foreign key,
/// not-null, primary key or unique constraint (the kinds sqlx names). Not any
/// SQLITE_CONSTRAINT: a trigger's `RAISE` is one too, and says nothing of the data.
fn sqlite_refuses(code: i32) -> bool {
    matches!(code & 0xff, 18 | 20) || matches!(code, 275 | 787 | 1299 | 1555 | 2067)
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the database named by the settings (creating a SQLite file if
/// missing) and applies migrations, so a store that exists is ready to use.
pub async fn open(settings: &DatabaseSettings) -> anyhow::Result<Arc<dyn Store>> {
    use secrecy::ExposeSecret;
    let url = settings.url.expose_secret();
    if settings.is_postgres() {
        Ok(Arc::new(retry::Retrying(PgStore::connect(url).await?)))
    } else {
        Ok(Arc::new(retry::Retrying(SqliteStore::connect(url).await?)))
    }
}

/// Everything ghsync keeps, named after what the app does, in five parts.
/// Each method is one unit of work and runs in one transaction where it
/// touches more than one row. Callers hold an `Arc<dyn Store>` and call any
/// part's methods on it.
pub trait Store:
    InboxStore + InstallationStore + UserStore + SyncStore + RateLimitStore + RunStore + Send + Sync + 'static
{
}

impl<T> Store for T where
    T: InboxStore + InstallationStore + UserStore + SyncStore + RateLimitStore + RunStore + Send + Sync + 'static
{
}

/// The webhook inbox, and what the missed-delivery sweep remembers.
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Answers when the database does (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Stores deliveries in one transaction: committed before this returns.
    /// Each outcome says whether that GUID was new.
    async fn insert_deliveries(&self, deliveries: &[NewDelivery]) -> StoreResult<Vec<InsertOutcome>>;
    /// How the request path should commit its groups: through
    /// `insert_deliveries`, or with a committer of the backend's own. Call it
    /// within the runtime the store was opened on.
    fn group_commit(&self) -> StoreResult<GroupCommit>;
    /// Leases up to `limit` pending deliveries whose time has come (and whose
    /// lease, if any, ran out by `now`) to `lease`.
    async fn claim_deliveries(
        &self,
        limit: usize,
        now: DateTime<Utc>,
        lease: &Lease,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Extends those of `ids` that `lease` still holds to `until`; how many.
    async fn renew_deliveries(&self, lease: &LeaseId, ids: &[DeliveryId], until: DateTime<Utc>) -> StoreResult<u64>;
    /// Settles one delivery whatever holds it (an operator's or a test's write).
    async fn finish_delivery(
        &self,
        id: &DeliveryId,
        state: DeliveryState,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Settles a round of deliveries claimed under `lease` in one transaction
    /// (one disk flush, not one each). A delivery the lease no longer holds
    /// (it ran out and another process claimed it) is left alone: its id is
    /// returned among the lost.
    async fn settle_deliveries(
        &self,
        settlements: &[Settlement],
        lease: &LeaseId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DeliveryId>>;
    async fn delivery(&self, id: &DeliveryId) -> StoreResult<Option<DeliveryRecord>>;
    /// A parked (failed) delivery becomes pending again, due now, its tries
    /// counted from zero. False when it is not parked (or unknown).
    async fn retry_delivery(&self, id: &DeliveryId, now: DateTime<Utc>) -> StoreResult<bool>;
    async fn inbox_stats(&self) -> StoreResult<InboxStats>;
    /// Up to `limit` parked (failed) deliveries, most recently received first.
    async fn parked_deliveries(&self, limit: i64) -> StoreResult<Vec<DeliveryRecord>>;
    /// Deletes up to `limit` finished (done or ignored) deliveries completed before `before`.
    /// Parked ones stay until an operator looks at them.
    async fn prune_deliveries(&self, before: DateTime<Utc>, limit: i64) -> StoreResult<u64>;

    /// Books one redelivery request for `guid` unless it already had `max`, or
    /// one since `not_since`. `true`: go ahead and ask GitHub.
    async fn book_redelivery(
        &self,
        guid: &str,
        max: i32,
        not_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn sweep_mark(&self, name: &str) -> StoreResult<Option<i64>>;
    async fn set_sweep_mark(&self, name: &str, value: i64, now: DateTime<Utc>) -> StoreResult<()>;
}

/// The App's installations; their accounts' users follow them.
#[async_trait]
pub trait InstallationStore: Send + Sync {
    /// An installation exists and is active (created, unsuspended, or seen in
    /// GitHub's list); its account, if a user, is tracked and made due.
    async fn upsert_installation(&self, installation: &InstallationRecord, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Many at once, in one transaction (a page of GitHub's list); returns how many became active.
    async fn upsert_installations(&self, installations: &[InstallationRecord], now: DateTime<Utc>) -> StoreResult<u64>;
    /// Suspend or uninstall; the account's user follows.
    async fn set_installation_state(
        &self,
        id: InstallationId,
        state: InstallationState,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Up to `limit` active installations, by id: tokens to read public profiles with.
    async fn active_installations(&self, limit: i64) -> StoreResult<Vec<InstallationId>>;
    /// Up to `limit` installations not uninstalled that no listing has shown since
    /// `seen_before`, with ids above `after`, by id: each is asked about before retiring.
    async fn unseen_installations(
        &self,
        seen_before: DateTime<Utc>,
        after: Option<InstallationId>,
        limit: i64,
    ) -> StoreResult<Vec<InstallationId>>;
    /// Installations GitHub's list no longer shows (not seen since `seen_before`)
    /// become uninstalled, with their users. Returns how many.
    async fn retire_unseen_installations(&self, seen_before: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// Tracked users: lookups and lifecycle.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn user_by_id(&self, id: GitHubUserId) -> StoreResult<Option<UserRecord>>;
    async fn user_by_login(&self, login: &Login) -> StoreResult<Option<UserRecord>>;
    /// Tracks a user who linked GitHub without installing; `true` if new.
    async fn track_user(&self, account: &Account, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Tracks users known only by id (registered through the API), due at once, in one
    /// transaction: nothing about them is fetched yet. Returns the ids that were new.
    async fn register_users(&self, ids: &[GitHubUserId], now: DateTime<Utc>) -> StoreResult<Vec<GitHubUserId>>;
    async fn rename_user(&self, id: GitHubUserId, login: &Login, now: DateTime<Utc>) -> StoreResult<()>;
    async fn revoke_user(&self, id: GitHubUserId, now: DateTime<Utc>) -> StoreResult<()>;
    /// Of `ids`, the users we sync (active, syncing on), each with when it was last synced.
    async fn synced_among(&self, ids: &[GitHubUserId]) -> StoreResult<HashMap<GitHubUserId, Option<DateTime<Utc>>>>;
    /// Tracked users did something: for each, refresh what the payload says and
    /// make them due at its time unless they already are earlier, all in one
    /// statement. Returns the ids of the users we sync; the others were left alone.
    async fn note_activity(
        &self,
        noted: &[(Account, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<GitHubUserId>>;
    /// Makes a user due at `due` (earlier wins).
    async fn mark_due(&self, id: GitHubUserId, due: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<()>;
    async fn set_sync_enabled(&self, id: GitHubUserId, enabled: bool, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Disconnect: the row and the stored profile are gone.
    async fn erase_user(&self, id: GitHubUserId) -> StoreResult<bool>;
    async fn user_counts(&self) -> StoreResult<Vec<(String, i64)>>;
    /// The stalest stored profile: the earliest `last_synced_at` of a user still synced.
    async fn oldest_synced_at(&self) -> StoreResult<Option<DateTime<Utc>>>;
}

/// The sync queue and what fetching found, and the rate governor's memory.
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// Leases due users to `lease`: `Marked` only those a webhook or admin asked
    /// for, `All` also the stale ones, stalest first; a user whose lease ran out
    /// by `now` is claimable again. Each kind is claimed by its own index, so a
    /// claim costs the same at 1,000,000 users as at 1,000.
    async fn claim_due_users(
        &self,
        which: DueKind,
        limit: usize,
        now: DateTime<Utc>,
        lease: &Lease,
    ) -> StoreResult<Vec<DueUser>>;
    /// Extends the users `lease` still holds to `until`; how many.
    async fn renew_users(&self, lease: &LeaseId, until: DateTime<Utc>) -> StoreResult<u64>;
    /// When the last live lease on a user due in a pass (`DueKind::All`) runs
    /// out: a pass is not over while another process still works on its users.
    async fn leased_due_until(&self, which: DueKind, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>>;
    /// How many `claim_due_users(DueKind::All { synced_before }, …)` would find at `now`.
    async fn count_due_users(&self, now: DateTime<Utc>, synced_before: DateTime<Utc>) -> StoreResult<i64>;
    /// When the next marked user falls due, if any.
    async fn next_marked_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// Stores what fetching a batch of users found, in one transaction, and
    /// releases their leases. A mark due after `claimed_at` (a webhook that
    /// came while we fetched) is kept: what we fetched may predate it.
    /// Under a `lease`, a user it no longer holds (it ran out and another
    /// process claimed the user) is left alone and returned among the lost:
    /// an older answer never overwrites a newer one. Without one (a fetch no
    /// claim preceded: an admin's refresh, a registration) the write wins and
    /// any claim on the user is void from then on.
    async fn record_outcomes(
        &self,
        outcomes: &[UserOutcome],
        lease: Option<&LeaseId>,
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<GitHubUserId>>;
}

/// The rate governor's memory, shared by replicas and restarts. Read in
/// bounded pieces: at 1,000,000 users this is 2,000,000 rows.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    async fn save_rate_limit(&self, record: &RateLimitRecord) -> StoreResult<()>;
    /// Every budget known (a starting process loads them into its governor).
    async fn rate_limits(&self) -> StoreResult<Vec<RateLimitRecord>>;
    /// The `n` budgets with the least left, lowest first (on an index).
    async fn rate_limits_least(&self, n: i64) -> StoreResult<Vec<RateLimitRecord>>;
    /// Per resource: budgets known, paused at `now`, and the least left.
    async fn rate_limit_summary(&self, now: DateTime<Utc>) -> StoreResult<Vec<RateSummary>>;
    /// Books points of one budget for this process against every process on
    /// the database, in one transaction that holds the row (`domain::book`).
    async fn book_budget(&self, ask: &BudgetAsk) -> StoreResult<Booking>;
}

/// Reconcile passes.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Starts a pass owned by `owner` unless one runs. A running pass whose
    /// owner's heartbeat is older than `silent_before` (its process died) is
    /// taken over instead: `owner` carries it out and finishes it. Users last
    /// synced at or before `synced_before` are due in a new pass.
    async fn start_run(
        &self,
        trigger: &str,
        synced_before: DateTime<Utc>,
        owner: &LeaseId,
        now: DateTime<Utc>,
        silent_before: DateTime<Utc>,
    ) -> StoreResult<RunStart>;
    /// A joiner that outlived the pass's owner takes the pass over, if the
    /// owner's heartbeat is older than `silent_before`. True: it is `owner`'s now.
    async fn take_over_run(
        &self,
        id: RunId,
        owner: &LeaseId,
        now: DateTime<Utc>,
        silent_before: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// The owner's heartbeat. False: the pass is no longer `owner`'s (taken
    /// over while this process was silent, or over).
    async fn beat_run(&self, id: RunId, owner: &LeaseId, now: DateTime<Utc>) -> StoreResult<bool>;
    async fn add_to_run(&self, id: RunId, counts: &RunCounts) -> StoreResult<()>;
    async fn add_run_message(&self, id: RunId, kind: &str, message: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Ends a running pass as `finished`, if `owner` owns it; false if not (taken over, or over).
    async fn finish_run(&self, id: RunId, owner: &LeaseId, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Ends a running pass `owner` owns as `failed`, with `reason` among its
    /// errors (it does not count as finished).
    async fn fail_run(&self, id: RunId, owner: &LeaseId, reason: &str, now: DateTime<Utc>) -> StoreResult<()>;
    async fn running_run(&self) -> StoreResult<Option<RunId>>;
    async fn runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>>;
    async fn run(&self, id: RunId) -> StoreResult<Option<RunRecord>>;
    async fn last_finished_run(&self) -> StoreResult<Option<RunRecord>>;
}
