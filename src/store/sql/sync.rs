//! The sync queue (claims, outcomes) and the rate governor's memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, Row as _, Type};

use super::{Backend, DUE_USER_COLUMNS, SqlStore};
use crate::domain::{DueKind, DueUser, ProfileHash, RestProfile, Transition, UserEvent, UserOutcome};
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
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = &p.key;
        sqlx::query(
            "UPDATE users SET node_id = COALESCE($2, node_id), login = $3, name = $4, avatar_url = $5, bio = $6, \
             company = $7, blog = $8, location = $9, email = $10, twitter_username = $11, public_repos = $12, \
             public_gists = $13, followers = $14, following = $15, github_created_at = $16, \
             github_updated_at = $17, github_profile = $18, profile_hash = $19, \
             observed_hash = COALESCE($20, observed_hash), last_synced_at = $21, next_sync_at = NULL, \
             due_at = CASE WHEN due_at <= $22 THEN NULL ELSE due_at END, claimed_until = NULL, \
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
        .bind(claimed_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

// The kinds of due a claim takes, in this order ($1 now; `BY_AGE`'s $4 the pass's cutoff).
const MARKED: &str = "due_at <= $1 ORDER BY due_at";
const AT_A_TIME: &str = "next_sync_at <= $1 ORDER BY next_sync_at";
const NEVER_SYNCED: &str = "next_sync_at IS NULL AND last_synced_at IS NULL";
const BY_AGE: &str = "next_sync_at IS NULL AND last_synced_at <= $4 ORDER BY last_synced_at";

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
        // One statement per kind of due, each walking its own index in order (an `OR` of
        // them would scan every active user to find the first hundred): marked (`users_due`),
        // at an explicit time (`users_next_sync`), never synced, then by age (`users_stale`).
        let synced_before = match which {
            DueKind::Marked => None,
            DueKind::All { synced_before } => Some(synced_before),
        };
        let kinds: &[&str] = match which {
            DueKind::Marked => &[MARKED],
            DueKind::All { .. } => &[MARKED, AT_A_TIME, NEVER_SYNCED, BY_AGE],
        };
        let mut claimed = Vec::new();
        for due in kinds {
            let left = limit.saturating_sub(claimed.len());
            if left == 0 {
                break;
            }
            let sql = format!(
                "UPDATE users SET claimed_until = $3 WHERE github_id IN (SELECT github_id FROM users \
                 WHERE status = 'active' AND sync_enabled AND (claimed_until IS NULL OR claimed_until < $1) \
                 AND {due} LIMIT $2{lock}) RETURNING {DUE_USER_COLUMNS}",
                lock = DB::LOCK_CLAIMED
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(left as i64).bind(lease_until);
            if *due == BY_AGE {
                query = query.bind(synced_before);
            }
            for row in query.fetch_all(&self.writer).await? {
                claimed.push(Self::due_user_from_row(&row)?);
            }
        }
        Ok(claimed)
    }

    async fn count_due_users(&self, now: DateTime<Utc>, synced_before: DateTime<Utc>) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE status = 'active' AND sync_enabled AND (due_at <= $1 \
             OR next_sync_at <= $1 OR (next_sync_at IS NULL AND (last_synced_at IS NULL OR last_synced_at <= $2)))",
        )
        .bind(now)
        .bind(synced_before)
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
                UserOutcome::Fetched { profile, hash, observed, .. } => {
                    Self::store_profile(&mut tx, profile, hash, observed.as_ref(), claimed_at, now).await?
                }
                UserOutcome::Unchanged { id, observed } => {
                    sqlx::query(
                        "UPDATE users SET observed_hash = $2, last_synced_at = $3, next_sync_at = NULL, \
                         due_at = CASE WHEN due_at <= $4 THEN NULL ELSE due_at END, claimed_until = NULL, \
                         failures = 0, last_error = NULL WHERE github_id = $1",
                    )
                    .bind(id.get())
                    .bind(observed.as_str())
                    .bind(now)
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
}
