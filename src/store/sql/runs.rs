//! Reconcile passes and their messages.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, Row as _, Type};

use super::rows::corrupt;
use super::{Backend, RUN_COLUMNS, SqlStore};
use crate::domain::{LeaseId, RunCounts, RunId, RunRecord, RunStart};
use crate::store::{RunStore, StoreError, StoreResult};

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Json<serde_json::Value>: Decode<'q, DB> + Type<DB>,
    for<'q> Json<&'q serde_json::Value>: Encode<'q, DB> + Type<DB>,
{
    async fn attach_messages(&self, mut run: RunRecord) -> StoreResult<RunRecord> {
        let rows = sqlx::query("SELECT kind, message FROM sync_run_messages WHERE run_id = $1 ORDER BY id LIMIT 100")
            .bind(run.id.get())
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let kind: String = row.try_get("kind")?;
            let message: String = row.try_get("message")?;
            if kind == "error" { run.errors.push(message) } else { run.notes.push(message) }
        }
        Ok(run)
    }
}

#[async_trait]
impl<DB> RunStore for SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Json<serde_json::Value>: Decode<'q, DB> + Type<DB>,
    for<'q> Json<&'q serde_json::Value>: Encode<'q, DB> + Type<DB>,
{
    async fn start_run(
        &self,
        trigger: &str,
        synced_before: DateTime<Utc>,
        owner: &LeaseId,
        now: DateTime<Utc>,
        silent_before: DateTime<Utc>,
    ) -> StoreResult<RunStart> {
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        // A pass whose owner died is ours to finish, not a second one to start beside it. Two
        // starters racing for it: PostgreSQL re-checks the heartbeat after the first one's
        // update, so only one gets the row (the other then finds it running).
        let taken: Option<i64> = sqlx::query_scalar(
            "UPDATE sync_runs SET owner = $1, heartbeat_at = $2 \
             WHERE state = 'running' AND heartbeat_at < $3 RETURNING id",
        )
        .bind(owner.as_str())
        .bind(now)
        .bind(silent_before)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = taken {
            tx.commit().await?;
            return Ok(RunStart::TakenOver(RunId::new(id).map_err(|e| corrupt("run id", e))?));
        }
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO sync_runs (trigger, state, started_at, heartbeat_at, synced_before, owner) \
             VALUES ($1, 'running', $2, $2, $3, $4) RETURNING id",
        )
        .bind(trigger)
        .bind(now)
        .bind(synced_before)
        .bind(owner.as_str())
        .fetch_one(&mut *tx)
        .await;
        match inserted {
            Ok(id) => {
                tx.commit().await?;
                Ok(RunStart::Started(RunId::new(id).map_err(|e| corrupt("run id", e))?))
            }
            // Another pass runs (one running row at most, by a unique index). PostgreSQL has
            // aborted our transaction, so it ends before we look for that pass.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                match self.running_run().await? {
                    Some(id) => Ok(RunStart::AlreadyRunning(id)),
                    None => Err(StoreError::Conflict("a pass ended while this one started; try again".into())),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn take_over_run(
        &self,
        id: RunId,
        owner: &LeaseId,
        now: DateTime<Utc>,
        silent_before: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sync_runs SET owner = $2, heartbeat_at = $3 \
             WHERE id = $1 AND state = 'running' AND heartbeat_at < $4",
        )
        .bind(id.get())
        .bind(owner.as_str())
        .bind(now)
        .bind(silent_before)
        .execute(&self.writer)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn beat_run(&self, id: RunId, owner: &LeaseId, now: DateTime<Utc>) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE sync_runs SET heartbeat_at = $3 WHERE id = $1 AND owner = $2 AND state = 'running'")
                .bind(id.get())
                .bind(owner.as_str())
                .bind(now)
                .execute(&self.writer)
                .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    // Counts only: the heartbeat is the owner's alone (`beat_run`), so joiners still at work
    // do not hide an owner that died, and one of them can take the pass over.
    async fn add_to_run(&self, id: RunId, c: &RunCounts) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sync_runs SET users_due = users_due + $2, fetched = fetched + $3, changed = changed + $4, \
             unchanged = unchanged + $5, failed = failed + $6, gone = gone + $7, \
             points_core = points_core + $8, points_graphql = points_graphql + $9, \
             installations_added = installations_added + $10, \
             installations_removed = installations_removed + $11 WHERE id = $1",
        )
        .bind(id.get())
        .bind(c.users_due)
        .bind(c.fetched)
        .bind(c.changed)
        .bind(c.unchanged)
        .bind(c.failed)
        .bind(c.gone)
        .bind(c.points_core)
        .bind(c.points_graphql)
        .bind(c.installations_added)
        .bind(c.installations_removed)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn add_run_message(&self, id: RunId, kind: &str, message: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("INSERT INTO sync_run_messages (run_id, kind, at, message) VALUES ($1, $2, $3, $4)")
            .bind(id.get())
            .bind(kind)
            .bind(now)
            .bind(message)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn finish_run(&self, id: RunId, owner: &LeaseId, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sync_runs SET state = 'finished', finished_at = $2, heartbeat_at = $2 \
             WHERE id = $1 AND state = 'running' AND owner = $3",
        )
        .bind(id.get())
        .bind(now)
        .bind(owner.as_str())
        .execute(&self.writer)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn fail_run(&self, id: RunId, owner: &LeaseId, reason: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        let done = sqlx::query(
            "UPDATE sync_runs SET state = 'failed', finished_at = $2, heartbeat_at = $2 \
             WHERE id = $1 AND state = 'running' AND owner = $3",
        )
        .bind(id.get())
        .bind(now)
        .bind(owner.as_str())
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&done) == 0 {
            // Not ours (taken over meanwhile) or over: its record is another's to write.
            return Ok(());
        }
        sqlx::query("INSERT INTO sync_run_messages (run_id, kind, at, message) VALUES ($1, 'error', $2, $3)")
            .bind(id.get())
            .bind(now)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn running_run(&self) -> StoreResult<Option<RunId>> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM sync_runs WHERE state = 'running'").fetch_optional(&self.pool).await?;
        id.map(|id| RunId::new(id).map_err(|e| corrupt("run id", e))).transpose()
    }

    async fn runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {RUN_COLUMNS} FROM sync_runs ORDER BY id DESC LIMIT $1")))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in &rows {
            runs.push(self.attach_messages(Self::run_from_row(row)?).await?);
        }
        Ok(runs)
    }

    async fn run(&self, id: RunId) -> StoreResult<Option<RunRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1")))
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(self.attach_messages(Self::run_from_row(&row)?).await?)),
            None => Ok(None),
        }
    }

    async fn last_finished_run(&self) -> StoreResult<Option<RunRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE state = 'finished' ORDER BY finished_at DESC LIMIT 1"
        )))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(self.attach_messages(Self::run_from_row(&row)?).await?)),
            None => Ok(None),
        }
    }
}
