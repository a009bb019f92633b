//! Installations, and what they do to their accounts' users.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, Row as _, Type};

use super::rows::corrupt;
use super::{Backend, SqlStore};
use crate::domain::{
    InstallationId, InstallationRecord, InstallationState, Standing, Transition, UserEvent, UserStatus,
};
use crate::store::{InstallationStore, StoreResult};

/// An installation as a listing or webhook shows it, upserted: the columns
/// (values follow) and what a row already there keeps. `fresh.rs` writes many
/// at once with the same two halves.
pub(super) const INSERT_INSTALLATIONS: &str =
    "INSERT INTO installations (id, account_id, account_login, account_type, state, seen_at, created_at, updated_at) ";
pub(super) const INSTALLATION_CONFLICT: &str = " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, \
     account_id = COALESCE(excluded.account_id, installations.account_id), \
     account_login = COALESCE(excluded.account_login, installations.account_login), \
     account_type = COALESCE(excluded.account_type, installations.account_type), \
     state = excluded.state, updated_at = excluded.updated_at";
/// An installation's account user, tracked (values follow), and what a user
/// row already there (a webhook may have tracked it first) keeps.
pub(super) const INSERT_ACCOUNT_USERS: &str = "INSERT INTO users (github_id, node_id, login, avatar_url, status, \
     sync_enabled, installation_id, due_at, next_sync_at, created_at, updated_at) ";
pub(super) const ACCOUNT_USER_CONFLICT: &str = " ON CONFLICT (github_id) DO UPDATE SET \
     node_id = COALESCE(excluded.node_id, users.node_id), login = excluded.login, \
     avatar_url = COALESCE(users.avatar_url, excluded.avatar_url), status = excluded.status, \
     installation_id = excluded.installation_id, due_at = COALESCE(excluded.due_at, users.due_at), \
     next_sync_at = CASE WHEN excluded.due_at IS NOT NULL THEN excluded.due_at ELSE users.next_sync_at END, \
     updated_at = excluded.updated_at";

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
    /// One installation in: its row, and its account's user if a user.
    async fn upsert_installation_in(
        tx: &mut sqlx::Transaction<'static, DB>,
        inst: &InstallationRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let before: Option<String> = sqlx::query_scalar("SELECT state FROM installations WHERE id = $1")
            .bind(inst.id.get())
            .fetch_optional(&mut **tx)
            .await?;
        let newly_active = before.as_deref() != Some(InstallationState::Active.as_str());
        let account = inst.account.as_ref();
        sqlx::query(AssertSqlSafe(format!(
            "{INSERT_INSTALLATIONS}VALUES ($1, $2, $3, $4, $5, $6, $6, $6){INSTALLATION_CONFLICT}"
        )))
        .bind(inst.id.get())
        .bind(account.map(|a| a.id.get()))
        .bind(account.map(|a| a.login.as_str()))
        .bind(account.map(|a| a.kind.as_str()))
        .bind(inst.state.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if let Some(account) = account.filter(|a| a.is_user()) {
            let event = UserEvent::InstallationSeen { state: inst.state, was_active: !newly_active };
            let Transition::To { status, due, forget_erasure: forget } =
                event.decide(Self::standing_of(tx, account.id).await?)
            else {
                return Ok(false);
            };
            if forget {
                Self::forget_erasure(tx, account.id).await?;
            }
            let due = due.then_some(now);
            sqlx::query(AssertSqlSafe(format!(
                "{INSERT_ACCOUNT_USERS}VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7, $8, $8, $8){ACCOUNT_USER_CONFLICT}"
            )))
            .bind(account.id.get())
            .bind(account.node_id.as_ref().map(|n| n.as_str()))
            .bind(account.login.as_str())
            .bind(account.avatar_url.as_deref())
            .bind(status.as_str())
            .bind(inst.id.get())
            .bind(due)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(newly_active)
    }

    /// Moves every user of an installation to where its new `state` puts them.
    async fn move_users_of(
        tx: &mut sqlx::Transaction<'static, DB>,
        installation: InstallationId,
        state: InstallationState,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let rows = sqlx::query("SELECT github_id, status FROM users WHERE installation_id = $1 ORDER BY github_id")
            .bind(installation.get())
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let id: i64 = row.try_get("github_id")?;
            let status: String = row.try_get("status")?;
            let current: UserStatus = status.parse().map_err(|e: String| corrupt("status", e))?;
            let Transition::To { status: next, due, .. } =
                UserEvent::InstallationChanged(state).decide(Standing::Tracked(current))
            else {
                continue;
            };
            let due = due.then_some(now);
            sqlx::query(
                "UPDATE users SET status = $2, updated_at = $3, \
                 due_at = COALESCE($4, due_at), next_sync_at = COALESCE($4, next_sync_at) \
                 WHERE github_id = $1",
            )
            .bind(id)
            .bind(next.as_str())
            .bind(now)
            .bind(due)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<DB> InstallationStore for SqlStore<DB>
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
    async fn upsert_installation(&self, inst: &InstallationRecord, now: DateTime<Utc>) -> StoreResult<bool> {
        Ok(self.upsert_installations(std::slice::from_ref(inst), now).await? == 1)
    }

    async fn upsert_installations(&self, installations: &[InstallationRecord], now: DateTime<Utc>) -> StoreResult<u64> {
        // Ascending account id: each installation locks its user right after itself, and a
        // batch of outcomes locks users by ascending id; in page order the two deadlocked.
        let mut installations: Vec<&InstallationRecord> = installations.iter().collect();
        installations.sort_by_key(|i| (i.account.as_ref().map(|a| a.id.get()), i.id.get()));
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        // Most of a page needs little writing (`relisting.rs`); the rest goes one by one.
        let page = Self::sort_page(&mut tx, installations).await?;
        Self::mark_seen(&mut tx, &page.quiet, now).await?;
        let mut newly_active = Self::insert_fresh(&mut tx, &page.fresh, now).await?;
        for inst in page.other {
            if Self::upsert_installation_in(&mut tx, inst, now).await? {
                newly_active += 1;
            }
        }
        tx.commit().await?;
        Ok(newly_active)
    }

    async fn set_installation_state(
        &self,
        id: InstallationId,
        state: InstallationState,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        sqlx::query(
            "INSERT INTO installations (id, state, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(id.get())
        .bind(state.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Self::move_users_of(&mut tx, id, state, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn active_installations(&self, limit: i64) -> StoreResult<Vec<InstallationId>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM installations WHERE state = 'active' ORDER BY id LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(ids.into_iter().filter_map(|id| InstallationId::new(id).ok()).collect())
    }

    async fn unseen_installations(
        &self,
        seen_before: DateTime<Utc>,
        after: Option<InstallationId>,
        limit: i64,
    ) -> StoreResult<Vec<InstallationId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM installations WHERE state <> 'uninstalled' AND (seen_at IS NULL OR seen_at < $1) \
             AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(seen_before)
        .bind(after.map_or(0, |id| id.get()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        ids.into_iter().map(|id| InstallationId::new(id).map_err(|e| corrupt("installation id", e))).collect()
    }

    async fn retire_unseen_installations(&self, seen_before: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE installations SET state = 'uninstalled', updated_at = $2 \
             WHERE state <> 'uninstalled' AND (seen_at IS NULL OR seen_at < $1) RETURNING id",
        )
        .bind(seen_before)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        ids.sort_unstable();
        for id in &ids {
            let id = InstallationId::new(*id).map_err(|e| corrupt("installation id", e))?;
            Self::move_users_of(&mut tx, id, InstallationState::Uninstalled, now).await?;
        }
        tx.commit().await?;
        Ok(ids.len() as u64)
    }
}
