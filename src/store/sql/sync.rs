//! The sync queue (claims, outcomes) and the rate governor's memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, Row as _, Type};

use super::rows::corrupt;
use super::{Backend, DUE_USER_COLUMNS, SqlStore};
use crate::domain::{
    DueKind, DueUser, InstallationId, ProfileHash, RateLimitRecord, Resource, RestProfile, Transition, UserEvent,
    UserOutcome,
};
use crate::store::{StoreResult, SyncStore};

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
        next_sync_at: DateTime<Utc>,
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = &p.key;
        sqlx::query(
            "UPDATE users SET node_id = COALESCE($2, node_id), login = $3, name = $4, avatar_url = $5, bio = $6, \
             company = $7, blog = $8, location = $9, email = $10, twitter_username = $11, public_repos = $12, \
             public_gists = $13, followers = $14, following = $15, github_created_at = $16, \
             github_updated_at = $17, github_profile = $18, profile_hash = $19, \
             observed_hash = COALESCE($20, observed_hash), last_synced_at = $21, next_sync_at = $22, \
             due_at = CASE WHEN due_at <= $23 THEN NULL ELSE due_at END, claimed_until = NULL, \
             failures = 0, last_error = NULL, updated_at = $21 \
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
        .bind(Json(&p.raw))
        .bind(hash.as_str())
        .bind(observed.map(|h| h.as_str()))
        .bind(now)
        .bind(next_sync_at)
        .bind(claimed_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<DB> SyncStore for SqlStore<DB>
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
    async fn claim_due_users(
        &self,
        which: DueKind,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<DueUser>> {
        let due = match which {
            DueKind::Marked => {
                "due_at <= $1 AND status = 'active' AND sync_enabled \
                 AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY due_at"
            }
            DueKind::All => {
                "status = 'active' AND sync_enabled AND next_sync_at <= $1 \
                 AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY next_sync_at"
            }
        };
        let sql = format!(
            "UPDATE users SET claimed_until = $3 WHERE github_id IN (SELECT github_id FROM users \
             WHERE {due} LIMIT $2{lock}) RETURNING {DUE_USER_COLUMNS}",
            lock = DB::LOCK_CLAIMED
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(limit as i64)
            .bind(lease_until)
            .fetch_all(&self.writer)
            .await?;
        rows.iter().map(Self::due_user_from_row).collect()
    }

    async fn count_due_users(&self, now: DateTime<Utc>) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE status = 'active' AND sync_enabled AND next_sync_at <= $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn next_marked_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query(
            "SELECT due_at FROM users WHERE due_at IS NOT NULL AND status = 'active' AND sync_enabled \
             ORDER BY due_at LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => row.try_get("due_at")?,
            None => None,
        })
    }

    async fn record_outcomes(
        &self,
        outcomes: &[UserOutcome],
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        // Rows are locked by ascending id, the order every write takes (see `store/retry.rs`):
        // in fetch order, this batch and a listing updating the same users deadlocked.
        let mut outcomes: Vec<&UserOutcome> = outcomes.iter().collect();
        outcomes.sort_by_key(|o| o.user_id());
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        for outcome in outcomes {
            match outcome {
                UserOutcome::Fetched { profile, hash, observed, next_sync_at, .. } => {
                    Self::store_profile(&mut tx, profile, hash, observed.as_ref(), *next_sync_at, claimed_at, now)
                        .await?
                }
                UserOutcome::Unchanged { id, observed, next_sync_at } => {
                    sqlx::query(
                        "UPDATE users SET observed_hash = $2, last_synced_at = $3, next_sync_at = $4, \
                         due_at = CASE WHEN due_at <= $5 THEN NULL ELSE due_at END, claimed_until = NULL, \
                         failures = 0, last_error = NULL WHERE github_id = $1",
                    )
                    .bind(id.get())
                    .bind(observed.as_str())
                    .bind(now)
                    .bind(*next_sync_at)
                    .bind(claimed_at)
                    .execute(&mut *tx)
                    .await?;
                }
                UserOutcome::Gone { id } => {
                    let Transition::To { status, .. } =
                        UserEvent::NotFound.decide(Self::standing_of(&mut tx, *id).await?)
                    else {
                        continue;
                    };
                    sqlx::query(
                        "UPDATE users SET status = $2, due_at = NULL, claimed_until = NULL, last_synced_at = $3, \
                         updated_at = $3 WHERE github_id = $1",
                    )
                    .bind(id.get())
                    .bind(status.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                UserOutcome::Failed { id, error, retry_at } => {
                    sqlx::query(
                        "UPDATE users SET failures = failures + 1, last_error = $2, next_sync_at = $3, \
                         due_at = CASE WHEN due_at IS NULL THEN NULL ELSE $3 END, claimed_until = NULL, \
                         updated_at = $4 WHERE github_id = $1",
                    )
                    .bind(id.get())
                    .bind(error)
                    .bind(*retry_at)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                UserOutcome::Released { id } => {
                    sqlx::query("UPDATE users SET claimed_until = NULL WHERE github_id = $1")
                        .bind(id.get())
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn save_rate_limit(&self, r: &RateLimitRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO rate_limits (installation_id, resource, \"limit\", remaining, reset_at, paused_until, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (installation_id, resource) DO UPDATE SET \
             \"limit\" = excluded.\"limit\", remaining = excluded.remaining, reset_at = excluded.reset_at, \
             paused_until = excluded.paused_until, updated_at = excluded.updated_at",
        )
        .bind(r.installation_id.get())
        .bind(r.resource.as_str())
        .bind(r.limit)
        .bind(r.remaining)
        .bind(r.reset_at)
        .bind(r.paused_until)
        .bind(r.updated_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn rate_limits(&self) -> StoreResult<Vec<RateLimitRecord>> {
        let rows = sqlx::query(
            "SELECT installation_id, resource, \"limit\", remaining, reset_at, paused_until, updated_at \
             FROM rate_limits ORDER BY installation_id, resource",
        )
        .fetch_all(&self.pool)
        .await?;
        // A resource this version does not know (written by a newer one) is skipped, not an error.
        rows.iter()
            .filter(|row| row.try_get::<String, _>("resource").is_ok_and(|r| Resource::parse(&r).is_some()))
            .map(|row| {
                Ok(RateLimitRecord {
                    installation_id: InstallationId::new(row.try_get("installation_id")?)
                        .map_err(|e| corrupt("installation id", e))?,
                    resource: Resource::parse(&row.try_get::<String, _>("resource")?)
                        .ok_or_else(|| corrupt("resource", "unknown"))?,
                    limit: row.try_get("limit")?,
                    remaining: row.try_get("remaining")?,
                    reset_at: row.try_get("reset_at")?,
                    paused_until: row.try_get("paused_until")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }
}
