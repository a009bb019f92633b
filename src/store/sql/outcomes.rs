//! Storing what fetching found, one outcome at a time (the unchanged ones
//! together, in one statement), inside the transaction `record_outcomes` (in
//! `sync.rs`) opens, after it has looked up which users its lease still holds.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Type};
use std::collections::HashSet;

use super::rows::corrupt;
use super::{Backend, SqlStore};
use crate::domain::{GitHubUserId, LeaseId, ProfileHash, RestProfile, Transition, UserEvent, UserOutcome};
use crate::store::StoreResult;

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
    /// A webhook that marked the user due while we fetched keeps its mark
    /// (`due_at` later than the fetch); an opted-out user is not written.
    async fn store_profile(
        tx: &mut sqlx::Transaction<'static, DB>,
        p: &RestProfile,
        hash: &ProfileHash,
        observed: Option<&ProfileHash>,
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = &p.key;
        let updated = sqlx::query(
            "UPDATE users SET node_id = COALESCE($2, node_id), login = $3, name = $4, avatar_url = $5, bio = $6, \
             company = $7, blog = $8, location = $9, email = $10, twitter_username = $11, public_repos = $12, \
             public_gists = $13, followers = $14, following = $15, github_created_at = $16, \
             github_updated_at = $17, profile_hash = $18, \
             observed_hash = COALESCE($19, observed_hash), last_synced_at = $20, next_sync_at = NULL, \
             due_at = CASE WHEN due_at <= $21 THEN NULL ELSE due_at END, claimed_until = NULL, lease_id = NULL, \
             failures = 0, last_error = NULL, updated_at = $20 \
             WHERE github_id = $1 AND sync_enabled",
        )
        .bind(p.github_id.get())
        .bind(p.node_id.as_ref().map(|n| n.as_str()))
        .bind(p.login.as_str())
        .bind(k.name.as_deref())
        .bind(&k.avatar_url)
        .bind(k.bio.as_deref())
        .bind(k.company.as_deref())
        .bind(k.blog.as_deref())
        .bind(k.location.as_deref())
        .bind(k.email.as_deref())
        .bind(k.twitter_username.as_deref())
        .bind(k.public_repos)
        .bind(p.public_gists)
        .bind(k.followers)
        .bind(k.following)
        .bind(p.github_created_at)
        .bind(p.github_updated_at)
        .bind(hash.as_str())
        .bind(observed.map(|h| h.as_str()))
        .bind(now)
        .bind(claimed_at)
        .execute(&mut **tx)
        .await?;
        if DB::rows_affected(&updated) == 1 {
            sqlx::query(
                "INSERT INTO user_profiles (github_id, github_profile) VALUES ($1, $2) \
                 ON CONFLICT (github_id) DO UPDATE SET github_profile = excluded.github_profile",
            )
            .bind(p.github_id.get())
            .bind(Json(&p.raw))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// The users `lease` still holds, locked for the fenced write that follows.
    pub(super) async fn held_by(
        tx: &mut sqlx::Transaction<'static, DB>,
        lease: &LeaseId,
    ) -> StoreResult<HashSet<GitHubUserId>> {
        let sql = format!("SELECT github_id FROM users WHERE lease_id = $1 ORDER BY github_id{}", DB::LOCK_HELD);
        let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(sql)).bind(lease.as_str()).fetch_all(&mut **tx).await?;
        ids.into_iter().map(|id| GitHubUserId::new(id).map_err(|e| corrupt("github id", e))).collect()
    }

    /// Writes the outcome of users found unchanged, all in one statement, and
    /// releases their leases: what `write_outcome` does for one.
    pub(super) async fn write_unchanged(
        tx: &mut sqlx::Transaction<'static, DB>,
        users: &[(GitHubUserId, &ProfileHash)],
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if users.is_empty() {
            return Ok(());
        }
        // Placeholders from the builder only: SQLite numbers `?` and `$n` apart.
        let mut update = QueryBuilder::<DB>::new("UPDATE users SET observed_hash = v.column2, last_synced_at = ");
        update.push_bind(now);
        update.push(", next_sync_at = NULL, due_at = CASE WHEN due_at <= ");
        update.push_bind(claimed_at);
        update.push(
            " THEN NULL ELSE due_at END, claimed_until = NULL, lease_id = NULL, failures = 0, last_error = NULL FROM (",
        );
        // `column1`, `column2`: what both engines name a VALUES list's columns.
        update.push_values(users, |mut row, (id, hash)| {
            row.push_bind(id.get()).push_bind(hash.as_str());
        });
        update.push(") AS v WHERE users.github_id = v.column1");
        update.build().execute(&mut **tx).await?;
        Ok(())
    }

    /// Writes one user's outcome and releases the user's lease.
    pub(super) async fn write_outcome(
        tx: &mut sqlx::Transaction<'static, DB>,
        outcome: &UserOutcome,
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        match outcome {
            UserOutcome::Fetched { profile, hash, observed, .. } => {
                Self::store_profile(tx, profile, hash, observed.as_ref(), claimed_at, now).await?
            }
            UserOutcome::Unchanged { id, observed } => {
                sqlx::query(
                    "UPDATE users SET observed_hash = $2, last_synced_at = $3, next_sync_at = NULL, \
                     due_at = CASE WHEN due_at <= $4 THEN NULL ELSE due_at END, claimed_until = NULL, lease_id = NULL, \
                     failures = 0, last_error = NULL WHERE github_id = $1",
                )
                .bind(id.get())
                .bind(observed.as_str())
                .bind(now)
                .bind(claimed_at)
                .execute(&mut **tx)
                .await?;
            }
            UserOutcome::Gone { id } => {
                let Transition::To { status, .. } = UserEvent::NotFound.decide(Self::standing_of(tx, *id).await?)
                else {
                    return Ok(());
                };
                sqlx::query(
                    "UPDATE users SET status = $2, due_at = NULL, claimed_until = NULL, lease_id = NULL, last_synced_at = $3, \
                     updated_at = $3 WHERE github_id = $1",
                )
                .bind(id.get())
                .bind(status.as_str())
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            UserOutcome::Failed { id, error, retry_at } => {
                sqlx::query(
                    "UPDATE users SET failures = failures + 1, last_error = $2, next_sync_at = $3, \
                     due_at = CASE WHEN due_at IS NULL THEN NULL ELSE $3 END, claimed_until = NULL, lease_id = NULL, \
                     updated_at = $4 WHERE github_id = $1",
                )
                .bind(id.get())
                .bind(error)
                .bind(*retry_at)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            UserOutcome::Released { id } => {
                sqlx::query("UPDATE users SET claimed_until = NULL, lease_id = NULL WHERE github_id = $1")
                    .bind(id.get())
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }
}
