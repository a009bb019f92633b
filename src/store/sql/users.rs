//! Users: lookups and lifecycle (track, rename, revoke, mark due, opt out, erase).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, Row as _, Type};

use super::rows::corrupt;
use super::{Backend, SqlStore, USER_COLUMNS};
use crate::domain::{
    Account, GitHubUserId, InstallationState, Login, Standing, Transition, UserEvent, UserRecord, UserStatus,
};
use crate::store::{StoreResult, UserStore};

#[async_trait]
impl<DB> UserStore for SqlStore<DB>
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
    async fn user_by_id(&self, id: GitHubUserId) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE github_id = $1")))
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::user_from_row).transpose()
    }

    async fn user_by_login(&self, login: &Login) -> StoreResult<Option<UserRecord>> {
        // Logins are reused after renames: the most recently confirmed holder wins.
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE lower(login) = lower($1) ORDER BY updated_at DESC LIMIT 1"
        )))
        .bind(login.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::user_from_row).transpose()
    }

    async fn track_user(&self, account: &Account, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        let Transition::To { status, forget_erasure: forget, .. } =
            UserEvent::Linked.decide(Self::standing_of(&mut tx, account.id).await?)
        else {
            return Ok(false);
        };
        if forget {
            Self::forget_erasure(&mut tx, account.id).await?;
        }
        // A linked user is due at once: `due_at` and `next_sync_at` are `now`.
        let done = sqlx::query(
            "INSERT INTO users (github_id, node_id, login, avatar_url, status, sync_enabled, installation_id, \
             due_at, next_sync_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7, $7, $7, $7) ON CONFLICT (github_id) DO NOTHING",
        )
        .bind(account.id.get())
        .bind(account.node_id.as_ref().map(|n| n.as_str()))
        .bind(account.login.as_str())
        .bind(account.avatar_url.as_deref())
        .bind(status.as_str())
        .bind(account.installation_id.map(|i| i.get()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn register_users(&self, ids: &[GitHubUserId], now: DateTime<Utc>) -> StoreResult<Vec<GitHubUserId>> {
        self.insert_registered(ids, now).await
    }

    async fn rename_user(&self, id: GitHubUserId, login: &Login, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE users SET login = $2, updated_at = $3 WHERE github_id = $1")
            .bind(id.get())
            .bind(login.as_str())
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn revoke_user(&self, id: GitHubUserId, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        if let Transition::To { status, .. } = UserEvent::Revoked.decide(Self::standing_of(&mut tx, id).await?) {
            sqlx::query("UPDATE users SET status = $2, due_at = NULL, updated_at = $3 WHERE github_id = $1")
                .bind(id.get())
                .bind(status.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn synced_among(&self, ids: &[GitHubUserId]) -> StoreResult<HashMap<GitHubUserId, Option<DateTime<Utc>>>> {
        self.select_synced_among(ids).await
    }

    async fn note_activity(
        &self,
        noted: &[(Account, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<GitHubUserId>> {
        self.update_activity(noted, now).await
    }

    // In both `note_activity` and `mark_due`, "earlier wins" except against a mark that a
    // fetch in flight (a live lease) is consuming: that mark is cleared when the fetch is
    // recorded, so the new one must replace it or it is lost with it.

    async fn mark_due(&self, id: GitHubUserId, due: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE users SET \
             due_at = CASE WHEN due_at IS NULL OR due_at > $2 \
               OR (claimed_until > $3 AND due_at <= $3) THEN $2 ELSE due_at END, \
             next_sync_at = CASE WHEN next_sync_at IS NULL OR next_sync_at > $2 THEN $2 ELSE next_sync_at END, \
             updated_at = $3 WHERE github_id = $1",
        )
        .bind(id.get())
        .bind(due)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn set_sync_enabled(&self, id: GitHubUserId, enabled: bool, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        let row = sqlx::query(
            "SELECT u.status, i.state FROM users u LEFT JOIN installations i ON i.id = u.installation_id \
             WHERE u.github_id = $1",
        )
        .bind(id.get())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let current: UserStatus =
            row.try_get::<String, _>("status")?.parse().map_err(|e: String| corrupt("status", e))?;
        let event = if enabled {
            let state: Option<InstallationState> = row
                .try_get::<Option<String>, _>("state")?
                .map(|s| s.parse())
                .transpose()
                .map_err(|e: String| corrupt("state", e))?;
            UserEvent::OptedIn(state)
        } else {
            UserEvent::OptedOut
        };
        let Transition::To { status, due, .. } = event.decide(Standing::Tracked(current)) else {
            return Ok(false);
        };
        // Opting back in makes the user due now, so the profile catches up at once.
        let due = due.then_some(now);
        sqlx::query(
            "UPDATE users SET sync_enabled = $2, status = $3, updated_at = $4, \
             due_at = $5, next_sync_at = COALESCE($5, next_sync_at) WHERE github_id = $1",
        )
        .bind(id.get())
        .bind(enabled)
        .bind(status.as_str())
        .bind(now)
        .bind(due)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn erase_user(&self, id: GitHubUserId) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        let done = sqlx::query("DELETE FROM users WHERE github_id = $1").bind(id.get()).execute(&mut *tx).await?;
        if DB::rows_affected(&done) == 1 {
            sqlx::query(
                "INSERT INTO erased_users (github_id, erased_at) VALUES ($1, $2) \
                 ON CONFLICT (github_id) DO UPDATE SET erased_at = excluded.erased_at",
            )
            .bind(id.get())
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn user_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM users GROUP BY status ORDER BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok((row.try_get("status")?, row.try_get("n")?))).collect()
    }

    async fn oldest_synced_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query(
            "SELECT MIN(last_synced_at) AS oldest FROM users WHERE status = 'active' AND last_synced_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("oldest")?)
    }
}
