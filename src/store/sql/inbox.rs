//! The webhook inbox and the missed-delivery sweep's memory.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row as _, Type};

use super::rows::corrupt;
use super::{Backend, GUIDS_AT_ONCE, SqlStore};
use crate::domain::{
    ClaimedDelivery, DeliveryId, DeliveryRecord, DeliveryState, InboxStats, InsertOutcome, Lease, LeaseId, NewDelivery,
    Settlement,
};
use crate::store::{GroupCommit, InboxStore, StoreError, StoreResult};

#[async_trait]
impl<DB> InboxStore for SqlStore<DB>
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
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
{
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn insert_deliveries(&self, deliveries: &[NewDelivery]) -> StoreResult<Vec<InsertOutcome>> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        // The whole group goes to the database in one round trip (see `Backend::group_insert`): a round
        // trip per statement, to sqlx's SQLite thread or to the PostgreSQL server, was most of
        // the request path's time. Rows go in by ascending GUID (one lock order for every
        // replica); a GUID twice in a group goes in once, and RETURNING names exactly the rows
        // that did.
        let mut order: Vec<usize> = (0..deliveries.len()).collect();
        order.sort_by(|&a, &b| deliveries[a].id.as_str().cmp(deliveries[b].id.as_str()));
        let mut group: Vec<&NewDelivery> = order.iter().map(|&i| &deliveries[i]).collect();
        group.dedup_by(|later, first| later.id == first.id);
        let mut insert = DB::group_insert(&group);
        let mut conn = self.inbox.acquire().await?;
        let returned = match insert.build().fetch_all(&mut *conn).await {
            Ok(rows) => rows,
            Err(e) => {
                if DB::SCRIPTS {
                    // The script stopped inside its transaction: end it before the connection
                    // serves anyone else (an error here means none was open).
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                }
                return Err(e.into());
            }
        };
        let mut inserted = HashMap::with_capacity(returned.len());
        for row in &returned {
            let state = match row.try_get::<String, _>(1)?.as_str() {
                "ignored" => InsertOutcome::Ignored,
                _ => InsertOutcome::Inserted,
            };
            inserted.insert(row.try_get::<String, _>(0)?, state);
        }
        // The first of a GUID's copies is the one that went in; any other is its duplicate.
        let mut outcomes = vec![InsertOutcome::Duplicate; deliveries.len()];
        for i in order {
            if let Some(outcome) = inserted.remove(deliveries[i].id.as_str()) {
                outcomes[i] = outcome;
            }
        }
        Ok(outcomes)
    }

    fn group_commit(&self) -> StoreResult<GroupCommit> {
        DB::group_commit(self)
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
        now: DateTime<Utc>,
        lease: &Lease,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        self.claim(limit, now, lease).await
    }

    async fn renew_deliveries(&self, lease: &LeaseId, ids: &[DeliveryId], until: DateTime<Utc>) -> StoreResult<u64> {
        self.renew(lease, ids, until).await
    }

    async fn finish_delivery(
        &self,
        id: &DeliveryId,
        state: DeliveryState,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let settlement = Settlement { id: id.clone(), state, note: note.map(str::to_owned), retry_at: None };
        self.settle(std::slice::from_ref(&settlement), None, now).await?;
        Ok(())
    }

    async fn retry_delivery(&self, id: &DeliveryId, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $2, \
             lease_until = NULL, lease_id = NULL, completed_at = NULL WHERE delivery_id = $1 AND state = 'failed'",
        )
        .bind(id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn settle_deliveries(
        &self,
        settlements: &[Settlement],
        lease: &LeaseId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DeliveryId>> {
        let settled = self.settle(settlements, Some(lease), now).await?;
        Ok(settlements.iter().filter(|s| !settled.contains(s.id.as_str())).map(|s| s.id.clone()).collect())
    }

    async fn delivery(&self, id: &DeliveryId) -> StoreResult<Option<DeliveryRecord>> {
        let row = sqlx::query(
            "SELECT delivery_id, event, action, state, attempts, last_error FROM webhook_deliveries \
             WHERE delivery_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(DeliveryRecord {
                id: id.clone(),
                event: row.try_get("event")?,
                action: row.try_get("action")?,
                state: DeliveryState::parse(&row.try_get::<String, _>("state")?),
                attempts: row.try_get("attempts")?,
                last_error: row.try_get("last_error")?,
            })
        })
        .transpose()
    }

    async fn inbox_stats(&self) -> StoreResult<InboxStats> {
        // One query per state, so that each is answered from its own index.
        let rows = sqlx::query(
            "SELECT 'pending' AS state, COUNT(*) AS n, MIN(received_at) AS oldest FROM webhook_deliveries \
             WHERE state = 'pending' UNION ALL \
             SELECT 'failed', COUNT(*), MIN(received_at) FROM webhook_deliveries WHERE state = 'failed'",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut stats = InboxStats::default();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            if state == "pending" {
                stats.pending = n;
                stats.oldest_pending_at = row.try_get("oldest")?;
            } else {
                stats.failed = n;
            }
        }
        Ok(stats)
    }

    async fn parked_deliveries(&self, limit: i64) -> StoreResult<Vec<DeliveryRecord>> {
        let rows = sqlx::query(
            "SELECT delivery_id, event, action, state, attempts, last_error FROM webhook_deliveries \
             WHERE state = 'failed' ORDER BY received_at DESC, delivery_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("delivery_id")?;
                Ok(DeliveryRecord {
                    id: DeliveryId::parse(&id).map_err(|e| corrupt("delivery_id", e))?,
                    event: row.try_get("event")?,
                    action: row.try_get("action")?,
                    state: DeliveryState::parse(&row.try_get::<String, _>("state")?),
                    attempts: row.try_get("attempts")?,
                    last_error: row.try_get("last_error")?,
                })
            })
            .collect()
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
        // The payloads go with their rows, in the same transaction (on PostgreSQL no foreign
        // key cascades: see its migration `payloads_without_foreign_key`).
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        let gone: Vec<String> = sqlx::query_scalar(
            "DELETE FROM webhook_deliveries WHERE delivery_id IN (SELECT delivery_id FROM webhook_deliveries \
             WHERE state IN ('done', 'ignored') AND completed_at < $1 LIMIT $2) RETURNING delivery_id",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        for chunk in gone.chunks(GUIDS_AT_ONCE) {
            let mut payloads = QueryBuilder::<DB>::new("DELETE FROM webhook_payloads WHERE delivery_id IN (");
            let mut ids = payloads.separated(", ");
            for id in chunk {
                ids.push_bind(id.as_str());
            }
            payloads.push(")");
            payloads.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(gone.len() as u64)
    }

    async fn book_redelivery(
        &self,
        guid: &str,
        max: i32,
        not_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO redelivery_requests (guid, requests, last_requested_at) VALUES ($1, 1, $4) \
             ON CONFLICT (guid) DO UPDATE SET requests = redelivery_requests.requests + 1, \
             last_requested_at = excluded.last_requested_at \
             WHERE redelivery_requests.requests < $2 AND redelivery_requests.last_requested_at < $3",
        )
        .bind(guid)
        .bind(max)
        .bind(not_since)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn sweep_mark(&self, name: &str) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT value FROM sweep_marks WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_sweep_mark(&self, name: &str, value: i64, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sweep_marks (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
