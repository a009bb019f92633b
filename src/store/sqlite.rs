//! The embedded backend: one SQLite file in WAL mode, for one ghsync process
//! (and a `reconcile` or `migrate` beside it: see `processes.rs`).
//! SQLite has a single writer, so a claim (`UPDATE … RETURNING`) is atomic
//! without `SKIP LOCKED`; write transactions start `IMMEDIATE` so that a
//! read-then-write never deadlocks on the lock upgrade.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite};

use super::sql::packed::packed;
use super::sql::{Backend, SqlStore, ignored_sql};
use super::sqlite_group::SqliteGroupCommit;
use super::{GroupCommit, StoreError, StoreResult};
use crate::domain::{NewDelivery, Settlement};

/// Waiting for the write lock beats failing: writes are short.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Readers share a pool (WAL lets them run beside the writer). The writer is
/// a pool of one: SQLite takes one write transaction at a time, and with one
/// connection for all of them they wait their turn in order here rather than
/// in SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and
/// made webhook answers wait behind the inbox worker.
pub type SqliteStore = SqlStore<Sqlite>;

impl Backend for Sqlite {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const LOCK_CLAIMED: &'static str = "";
    const LOCK_HELD: &'static str = "";
    const SCRIPTS: bool = true;
    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
    /// A thread of its own with a connection of its own, for a file; through
    /// the writer pool for an in-memory database (`sqlite::memory:`), which a
    /// second connection would not see.
    fn group_commit(store: &SqliteStore) -> StoreResult<GroupCommit> {
        let options = store.writer.connect_options();
        let path = options.get_filename();
        if !path.is_file() {
            return Ok(GroupCommit::Overlapping(1));
        }
        let committer = SqliteGroupCommit::open(path, store.writer.clone(), BUSY_TIMEOUT).map_err(|e| {
            StoreError::Unavailable(format!("cannot open {} for the webhook writer: {e}", path.display()))
        })?;
        Ok(GroupCommit::Dedicated(Box::new(committer)))
    }
    /// A script from `BEGIN` to `COMMIT`: one round trip to sqlx's thread. Only an
    /// in-memory database takes this path; a file's groups go to its committer.
    fn group_insert(group: &[&NewDelivery]) -> QueryBuilder<Sqlite> {
        // `VALUES` names its columns column1, column2, …; an ignored delivery goes in
        // settled, without the digest only the worker reads. (`WHERE true`: SQLite's
        // parser would take `ON` for a join's.)
        let mut q = QueryBuilder::new(format!(
            "{}; INSERT INTO webhook_deliveries (delivery_id, event, action, state, attempts, received_at, \
             next_attempt_at, digest, last_error, completed_at) \
             SELECT column1, column2, column3, CASE WHEN ignored THEN 'ignored' ELSE 'pending' END, 0, column4, \
             column4, CASE WHEN ignored THEN NULL ELSE column5 END, CASE WHEN ignored THEN column7 END, \
             CASE WHEN ignored THEN column4 END FROM (SELECT *, {} AS ignored FROM (",
            Self::BEGIN_WRITE,
            ignored_sql("column6", "column7")
        ));
        q.push_values(group, |mut row, d| {
            let (sender, note) = d.ignore_columns();
            row.push_bind(d.id.as_str())
                .push_bind(d.event.as_str())
                .push_bind(d.action.as_deref())
                .push_bind(d.received_at)
                .push_bind(d.digest.as_deref())
                .push_bind(sender)
                .push_bind(note);
        });
        q.push(")) WHERE true ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id, state");
        q.push("; INSERT INTO webhook_payloads (delivery_id, payload, packed) ");
        q.push_values(group, |mut row, d| {
            row.push_bind(d.id.as_str()).push("''").push_bind(packed(d).into_owned());
        });
        q.push(" ON CONFLICT (delivery_id) DO NOTHING; COMMIT");
        q
    }
    fn push_settlements(q: &mut QueryBuilder<Sqlite>, settlements: &[Settlement]) {
        q.push_values(settlements, |mut row, s| {
            row.push_bind(s.id.as_str()).push_bind(s.state.as_str()).push_bind(s.note.as_deref()).push_bind(s.retry_at);
        });
    }
}

impl SqlStore<Sqlite> {
    /// Opens (creating if missing) and migrates.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| "DATABASE_URL is not a valid sqlite:// URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a delivery we answered 202 for survives power loss, not only kill -9.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .context("cannot open the SQLite database")?;
        super::migrations::migrator(super::migrations::SQLITE)
            .run(&pool)
            .await
            .map_err(super::migrations::explain)
            .context("cannot migrate the SQLite database")?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // A connection to a file does not go stale: no ping (a round trip) before each use.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .context("cannot open the SQLite database")?;
        let process = super::processes::register(&writer)
            .await
            .context("cannot register this process (or take back leases a dead one left)")?;
        Ok(Self { _process: Some(process), ..Self::new(pool, writer) })
    }
}
