//! SQLite's committer for the request path (`group_commit.rs` says why it has
//! a thread of its own): a connection of its own to the file, its statements
//! prepared once, each group one `BEGIN IMMEDIATE … COMMIT` with `synchronous
//! = FULL`, as every connection of ours has.
//!
//! Its connection is a second writer beside the sqlx writer pool's one
//! connection. Two writers in one process would meet in SQLite's busy handler,
//! which sleeps in steps of milliseconds: a steady stream of webhooks would
//! starve the inbox worker. So the committer writes only while it holds the
//! process's write turn, the writer pool's connection itself, taken as every
//! other writer takes it, and given back as soon as no request waits or after
//! `TURN`. Other processes on the file still meet it in the busy handler.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqlitePool};
use tokio::runtime::Handle;

use super::group_commit::GroupCommitter;
use super::sql::ignored_sql;
use super::sql::packed::packed;
use super::{StoreError, StoreResult, sqlite_refuses};
use crate::domain::{InsertOutcome, NewDelivery};

/// How long the committer keeps the write turn while groups keep coming: a
/// few groups' worth, so the worker's claim waits that long at most.
const TURN: Duration = Duration::from_millis(10);

/// A delivery's row; one the worker would only ignore goes in settled
/// (`ignored_sql`), without the digest only the worker reads.
/// Returns its state, or nothing for a GUID already stored. (`WHERE true`:
/// SQLite's parser would take `ON` for a join's.)
fn insert_row() -> String {
    format!(
        "INSERT INTO webhook_deliveries (delivery_id, event, action, state, attempts, received_at, next_attempt_at, \
         digest, last_error, completed_at) SELECT ?1, ?2, ?3, CASE WHEN ignored THEN 'ignored' ELSE 'pending' END, \
         0, ?4, ?4, CASE WHEN ignored THEN NULL ELSE ?5 END, CASE WHEN ignored THEN ?7 END, \
         CASE WHEN ignored THEN ?4 END FROM (SELECT {} AS ignored) WHERE true \
         ON CONFLICT (delivery_id) DO NOTHING RETURNING state",
        ignored_sql("?6", "?7")
    )
}
/// The payload packed (`sql/packed.rs`).
const INSERT_PAYLOAD: &str = "INSERT INTO webhook_payloads (delivery_id, payload, packed) VALUES (?1, '', ?2)";
/// A row whose payload the database refused goes too: a delivery is stored whole or not at all.
const UNDO_ROW: &str = "DELETE FROM webhook_deliveries WHERE delivery_id = ?1";

pub(super) struct SqliteGroupCommit {
    conn: Connection,
    /// The sqlx writer pool: its one connection is the process's write turn.
    writers: SqlitePool,
    turn: Option<(PoolConnection<Sqlite>, Instant)>,
    /// `insert_row()`, made once.
    insert_row: String,
    /// The runtime the pool lives on (the committer's thread is not one of its own).
    rt: Handle,
}

impl SqliteGroupCommit {
    /// Opens the file the pool has open. Call it within the pool's runtime.
    pub(super) fn open(path: &Path, writers: SqlitePool, busy_timeout: Duration) -> rusqlite::Result<Self> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(busy_timeout)?;
        // WAL is the file's own setting, made when the pool opened it; these two are per connection.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        Ok(Self { conn, writers, turn: None, insert_row: insert_row(), rt: Handle::current() })
    }

    fn take_turn(&mut self) -> StoreResult<()> {
        if self.turn.as_ref().is_some_and(|(_, since)| since.elapsed() < TURN) {
            return Ok(());
        }
        // Held long enough: back to the queue, behind whoever is waiting.
        self.pause();
        let turn = self.rt.block_on(self.writers.acquire())?;
        self.turn = Some((turn, Instant::now()));
        Ok(())
    }

    fn write(&mut self, group: &[NewDelivery]) -> rusqlite::Result<Vec<StoreResult<InsertOutcome>>> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(group.len());
        {
            let (mut row, mut payload) = (tx.prepare_cached(&self.insert_row)?, tx.prepare_cached(INSERT_PAYLOAD)?);
            for d in group {
                let at = sqlx_text(d.received_at);
                let (sender, note) = d.ignore_columns();
                let inserted = row
                    .query_row(
                        params![
                            d.id.as_str(),
                            d.event.as_str(),
                            d.action.as_deref(),
                            at,
                            d.digest.as_deref(),
                            sender,
                            note
                        ],
                        |r| r.get::<_, String>(0),
                    )
                    .optional();
                let outcome = match inserted {
                    Ok(None) => Ok(InsertOutcome::Duplicate),
                    Ok(Some(state)) => match payload.execute(params![d.id.as_str(), packed(d).as_ref()]) {
                        Ok(_) if state == "ignored" => Ok(InsertOutcome::Ignored),
                        Ok(_) => Ok(InsertOutcome::Inserted),
                        Err(e) if refused(&e) => {
                            tx.prepare_cached(UNDO_ROW)?.execute(params![d.id.as_str()])?;
                            Err(StoreError::Refused(e.to_string()))
                        }
                        Err(e) => return Err(e),
                    },
                    Err(e) if refused(&e) => Err(StoreError::Refused(e.to_string())),
                    // Anything else is the database failing: the whole group is rolled back.
                    Err(e) => return Err(e),
                };
                outcomes.push(outcome);
            }
        }
        tx.commit()?;
        Ok(outcomes)
    }
}

impl GroupCommitter for SqliteGroupCommit {
    fn commit(&mut self, group: &[NewDelivery]) -> Vec<StoreResult<InsertOutcome>> {
        let written = self.take_turn().and_then(|()| self.write(group).map_err(outage));
        written.unwrap_or_else(|e| group.iter().map(|_| Err(e.shared())).collect())
    }

    fn pause(&mut self) {
        if let Some((turn, _)) = self.turn.take() {
            // sqlx hands a connection back to its pool from a task of the runtime's.
            let _runtime = self.rt.enter();
            drop(turn);
        }
    }
}

impl Drop for SqliteGroupCommit {
    fn drop(&mut self) {
        self.pause();
    }
}

/// A timestamp as sqlx writes `DateTime<Utc>` to SQLite, so that the text
/// compares and parses like every other timestamp in the file.
fn sqlx_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn refused(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|f| sqlite_refuses(f.extended_code))
}

fn outage(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}
