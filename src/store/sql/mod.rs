//! The store both backends share: one generic `SqlStore` over a small
//! `Backend` trait, with one file per part of the `Store`. sqlx accepts `$n`
//! placeholders on SQLite too, and with its `chrono` and `json` features the
//! same Rust types map to TEXT on SQLite and to TIMESTAMPTZ / JSONB on
//! PostgreSQL, so one SQL text serves both. What differs — how a write
//! transaction begins, how a claim locks rows, connecting — is the backend's
//! (`sqlite.rs`, `postgres.rs`). Reads go to `pool`, every write to `writer`
//! (on SQLite a pool of one: writes queue in our process instead of sleeping
//! in SQLite's busy handler).
//!
//! Every generic `impl` here repeats one `where` clause, the same each time:
//! Rust does not carry such bounds along with `Backend`, so each block states
//! what it asks of the database (see `Backend`).

mod activity;
mod fresh;
mod inbox;
mod inbox_round;
mod installations;
mod outcomes;
pub(super) mod packed;
mod rate_limits;
mod register;
mod relisting;
mod rows;
mod runs;
mod sync;
mod users;

use sqlx::{Database, Pool, QueryBuilder};

use super::{GroupCommit, StoreResult};
use crate::domain::{NewDelivery, Settlement};

/// What one database engine brings to `SqlStore`.
///
/// A generic block also asks, in its `where` clause, that the engine's
/// connections execute queries and that it encodes and decodes the handful of
/// Rust types our columns use (`i64`, `i32`, `bool`, text, `DateTime<Utc>`,
/// JSON); sqlx's `Sqlite` and `Postgres` both do.
pub trait Backend: Database {
    /// Opens a write transaction. SQLite's `BEGIN IMMEDIATE` takes the write
    /// lock up front, so a read-then-write never deadlocks on the upgrade.
    const BEGIN_WRITE: &'static str;
    /// Follows the sub-select of a claim: PostgreSQL skips rows another
    /// replica holds (`FOR UPDATE SKIP LOCKED`); SQLite's single writer makes
    /// the `UPDATE … RETURNING` atomic without it.
    const LOCK_CLAIMED: &'static str;
    /// Follows the look-up of the rows a lease still holds, before a fenced
    /// write: PostgreSQL locks them (`FOR UPDATE`), so no claim takes one
    /// between the look-up and the write; SQLite's write lock already does.
    const LOCK_HELD: &'static str;
    /// The driver runs a script (several statements, binds and all) in one
    /// call: SQLite does, so a write transaction can reach its thread in one
    /// round trip instead of one per statement. PostgreSQL's protocol takes
    /// one statement per call; there one statement with data-modifying CTEs
    /// does the same.
    const SCRIPTS: bool;
    /// sqlx has no trait for this: each engine's result type has its own method.
    fn rows_affected(result: &Self::QueryResult) -> u64;
    /// How the request path commits its groups (`store/group_commit.rs`).
    fn group_commit(store: &SqlStore<Self>) -> StoreResult<GroupCommit>;
    /// A group of new deliveries (distinct GUIDs, ascending), their rows and
    /// packed payloads, as one call to the database. The query returns the
    /// GUIDs inserted, each with its state (`pending`, or `ignored` for one the
    /// worker would only ignore: `ignored_sql`); a GUID already stored is
    /// skipped, its payload unwritten.
    fn group_insert(group: &[&NewDelivery]) -> QueryBuilder<Self>;
    /// Pushes a query whose rows are the settlements, as
    /// `(guid, state, note, retry_at)`: the source of a round's settlement
    /// (`inbox_round.rs`).
    fn push_settlements(q: &mut QueryBuilder<Self>, settlements: &[Settlement]);
}

/// A user whose activity makes them due (`activity.rs`); activity by anyone
/// else is ignored. The one test, in every statement that asks.
pub(super) const SYNCED_USER: &str = "status = 'active' AND sync_enabled";

/// True for a delivery of a group insert that goes in settled as ignored
/// (`NewDelivery::ignore`): one with a note, unless its sender is a user we
/// sync. `sender` and `note` are the SQL for the two (`Ignore`'s fields).
pub(super) fn ignored_sql(sender: &str, note: &str) -> String {
    format!(
        "({note} IS NOT NULL AND ({sender} IS NULL OR NOT EXISTS \
         (SELECT 1 FROM users WHERE github_id = {sender} AND {SYNCED_USER})))"
    )
}

/// GUIDs bound in one statement at most (SQLite takes 32,766 binds, PostgreSQL 65,535).
const GUIDS_AT_ONCE: usize = 1000;

/// The `Store`, for any `Backend`.
pub struct SqlStore<DB: Database> {
    /// Readers.
    pub(super) pool: Pool<DB>,
    /// Writers: the same pool on PostgreSQL, a pool of one on SQLite.
    pub(super) writer: Pool<DB>,
    /// The webhook path's group insert (`insert_deliveries`): the writer, or a
    /// pool of the backend's own (PostgreSQL's, `store/postgres.rs`).
    pub(super) inbox: Pool<DB>,
    /// SQLite: this process's row among those with the file open (`store/processes.rs`).
    pub(super) _process: Option<super::processes::Registration>,
}

impl<DB: Database> SqlStore<DB> {
    pub(super) fn new(pool: Pool<DB>, writer: Pool<DB>) -> Self {
        Self { pool, inbox: writer.clone(), writer, _process: None }
    }

    pub(super) fn with_inbox(self, inbox: Pool<DB>) -> Self {
        Self { inbox, ..self }
    }
}

/// The columns of `UserRecord`, in `UserRecord`'s order, for a query `FROM users`
/// (the profile lives apart, in `user_profiles`: see its migration).
const USER_COLUMNS: &str = "github_id, node_id, login, name, avatar_url, bio, company, blog, location, email, \
     twitter_username, public_repos, public_gists, followers, following, github_created_at, github_updated_at, \
     (SELECT github_profile FROM user_profiles p WHERE p.github_id = users.github_id) AS github_profile, status, sync_enabled, installation_id, last_synced_at, \
     next_sync_at, failures, last_error";

/// The columns of `DueUser`.
const DUE_USER_COLUMNS: &str = "github_id, node_id, login, installation_id, profile_hash, observed_hash, failures";

/// The columns of `RunRecord` (its messages come from `sync_run_messages`).
const RUN_COLUMNS: &str = "id, trigger, state, started_at, finished_at, synced_before, users_due, fetched, changed, unchanged, \
     failed, gone, points_core, points_graphql, installations_added, installations_removed";
