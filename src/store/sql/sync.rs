//! The sync queue (claims, outcomes) and the rate governor's memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, Row as _, Type};

use super::{Backend, DUE_USER_COLUMNS, SqlStore};
use crate::domain::{DueKind, DueUser, GitHubUserId, Lease, LeaseId, UserOutcome};
use crate::store::{StoreResult, SyncStore};

// The kinds of due a claim takes, in this order ($1 due by; `BY_AGE`'s $6 the pass's cutoff).
const MARKED: &str = "due_at <= $1 ORDER BY due_at";
const AT_A_TIME: &str = "next_sync_at <= $1 ORDER BY next_sync_at";
const NEVER_SYNCED: &str = "next_sync_at IS NULL AND last_synced_at IS NULL";
const BY_AGE: &str = "next_sync_at IS NULL AND last_synced_at <= $6 ORDER BY last_synced_at";

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
        lease: &Lease,
    ) -> StoreResult<Vec<DueUser>> {
        // One statement per kind of due, each walking its own index in order (an `OR` of
        // them would scan every active user to find the first hundred): marked (`users_due`),
        // at an explicit time (`users_next_sync`), never synced, then by age (`users_stale`).
        let (due_by, synced_before) = match which {
            DueKind::Marked => (now, None),
            DueKind::All { due_by, synced_before } => (due_by, Some(synced_before)),
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
                "UPDATE users SET claimed_until = $3, lease_id = $5 WHERE github_id IN (SELECT github_id FROM users \
                 WHERE status = 'active' AND sync_enabled AND (claimed_until IS NULL OR claimed_until < $4) \
                 AND {due} LIMIT $2{lock}) RETURNING {DUE_USER_COLUMNS}",
                lock = DB::LOCK_CLAIMED
            );
            let mut query = sqlx::query(AssertSqlSafe(sql))
                .bind(due_by)
                .bind(left as i64)
                .bind(lease.until)
                .bind(now)
                .bind(lease.id.as_str());
            if *due == BY_AGE {
                query = query.bind(synced_before);
            }
            for row in query.fetch_all(&self.writer).await? {
                claimed.push(Self::due_user_from_row(&row)?);
            }
        }
        Ok(claimed)
    }

    async fn renew_users(&self, lease: &LeaseId, until: DateTime<Utc>) -> StoreResult<u64> {
        // Rows locked by ascending id, as every other write to users locks them (store/sql/mod.rs):
        // a renewal beside its own batch's outcomes must not lock them in another order.
        let sql = format!(
            "UPDATE users SET claimed_until = $2 WHERE github_id IN \
             (SELECT github_id FROM users WHERE lease_id = $1 ORDER BY github_id{})",
            DB::LOCK_HELD
        );
        let done = sqlx::query(AssertSqlSafe(sql)).bind(lease.as_str()).bind(until).execute(&self.writer).await?;
        Ok(DB::rows_affected(&done))
    }

    async fn leased_due_until(&self, which: DueKind, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>> {
        // Few rows carry a lease (`users_lease`), so this reads those, whatever the users' number.
        let (due_by, synced_before) = match which {
            DueKind::Marked => (now, DateTime::<Utc>::UNIX_EPOCH),
            DueKind::All { due_by, synced_before } => (due_by, synced_before),
        };
        let marked_only = matches!(which, DueKind::Marked);
        let row = sqlx::query(
            "SELECT claimed_until FROM users WHERE lease_id IS NOT NULL AND claimed_until >= $1 \
             AND status = 'active' AND sync_enabled AND (due_at <= $2 OR ($4 = FALSE AND (next_sync_at <= $2 \
             OR (next_sync_at IS NULL AND (last_synced_at IS NULL OR last_synced_at <= $3))))) \
             ORDER BY claimed_until DESC LIMIT 1",
        )
        .bind(now)
        .bind(due_by)
        .bind(synced_before)
        .bind(marked_only)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => row.try_get("claimed_until")?,
            None => None,
        })
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
        lease: Option<&LeaseId>,
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<GitHubUserId>> {
        // Rows are locked by ascending id, the order every write takes (see `store/retry.rs`):
        // in fetch order, this batch and a listing updating the same users deadlocked.
        let mut outcomes: Vec<&UserOutcome> = outcomes.iter().collect();
        outcomes.sort_by_key(|o| o.user_id());
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        let held = match lease {
            Some(lease) => Some(Self::held_by(&mut tx, lease).await?),
            None => None,
        };
        let mut lost = Vec::new();
        let mut unchanged = Vec::new();
        for outcome in outcomes {
            if held.as_ref().is_some_and(|held| !held.contains(&outcome.user_id())) {
                lost.push(outcome.user_id());
                continue;
            }
            match outcome {
                // Most of a pass: one statement for all of them. Only under a lease, whose
                // rows `held_by` has just locked in id order, so the join's order cannot deadlock.
                UserOutcome::Unchanged { id, observed } if held.is_some() => unchanged.push((*id, observed)),
                _ => Self::write_outcome(&mut tx, outcome, claimed_at, now).await?,
            }
        }
        Self::write_unchanged(&mut tx, &unchanged, claimed_at, now).await?;
        tx.commit().await?;
        Ok(lost)
    }
}
