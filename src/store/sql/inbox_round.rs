//! A round of the inbox worker, each step one statement for the whole round:
//! its claim, its renewals while it works, its settlement. One statement
//! instead of one per delivery: each is a round trip to sqlx's SQLite thread
//! or to the server. (A group of new deliveries is the backend's:
//! `Backend::group_insert`.)

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row as _, Type};

use super::rows::corrupt;
use super::{Backend, GUIDS_AT_ONCE, SqlStore};
use crate::domain::{ClaimedDelivery, DeliveryId, EventName, Lease, LeaseId, Settlement};
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
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
{
    /// Claims up to `limit` pending deliveries due by `now` under `lease`, oldest first,
    /// skipping rows another process holds; each with what the worker parses.
    pub(super) async fn claim(
        &self,
        limit: usize,
        now: DateTime<Utc>,
        lease: &Lease,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_until = $3, lease_id = $4, attempts = attempts + 1 \
             WHERE delivery_id IN (SELECT delivery_id FROM webhook_deliveries \
               WHERE state = 'pending' AND next_attempt_at <= $1 \
               AND (lease_until IS NULL OR lease_until < $1) \
               ORDER BY next_attempt_at LIMIT $2{lock}) RETURNING delivery_id, event, attempts, digest",
            lock = DB::LOCK_CLAIMED
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(limit as i64)
            .bind(lease.until)
            .bind(lease.id.as_str())
            .fetch_all(&self.writer)
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // A delivery stored with its digest is applied from it; the others' payloads are
        // read, after the claim (they never change), from a reader: the writer is not held.
        let mut payloads: HashMap<String, String> = HashMap::new();
        let mut missing = Vec::new();
        for row in &rows {
            let id: String = row.try_get("delivery_id")?;
            match row.try_get::<Option<String>, _>("digest")? {
                Some(digest) => {
                    payloads.insert(id, digest);
                }
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            let mut select = QueryBuilder::<DB>::new(
                "SELECT delivery_id, payload, packed FROM webhook_payloads WHERE delivery_id IN (",
            );
            let mut ids = select.separated(", ");
            for id in missing {
                ids.push_bind(id);
            }
            select.push(")");
            for row in select.build().fetch_all(&self.pool).await? {
                let payload = match row.try_get::<Option<Vec<u8>>, _>("packed")? {
                    Some(packed) => super::packed::unpack(&packed)?,
                    None => row.try_get("payload")?,
                };
                payloads.insert(row.try_get("delivery_id")?, payload);
            }
        }
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("delivery_id")?;
                let payload = payloads.remove(&id).ok_or_else(|| corrupt("payload", format!("none for {id}")))?;
                Ok(ClaimedDelivery {
                    id: DeliveryId::parse(&id).map_err(|e| corrupt("delivery id", e))?,
                    event: EventName::parse(&row.try_get::<String, _>("event")?).map_err(|e| corrupt("event", e))?,
                    payload,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Extends those of `ids` that `lease` still holds to `until`; how many.
    pub(super) async fn renew(&self, lease: &LeaseId, ids: &[DeliveryId], until: DateTime<Utc>) -> StoreResult<u64> {
        // By GUID, fenced by the lease: no index on `lease_id` is kept up for this (see the
        // migration `claims_in_place`). Not locked first in GUID order: only the lease's
        // holder writes its rows, and claims skip locked rows instead of waiting.
        let mut renewed = 0;
        for chunk in ids.chunks(GUIDS_AT_ONCE) {
            let mut update = QueryBuilder::<DB>::new("UPDATE webhook_deliveries SET lease_until = ");
            update.push_bind(until).push(" WHERE lease_id = ").push_bind(lease.as_str()).push(" AND delivery_id IN (");
            let mut list = update.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            update.push(")");
            renewed += DB::rows_affected(&update.build().execute(&self.writer).await?);
        }
        Ok(renewed)
    }

    /// Settles deliveries, in one statement: each finished, or pending again
    /// until its retry. Under a lease (fenced) only those the lease still
    /// holds. Returns the GUIDs settled.
    pub(super) async fn settle(
        &self,
        settlements: &[Settlement],
        lease: Option<&LeaseId>,
        now: DateTime<Utc>,
    ) -> StoreResult<HashSet<String>> {
        if settlements.is_empty() {
            return Ok(HashSet::new());
        }
        let mut update = QueryBuilder::<DB>::new("WITH s (sid, sstate, snote, sretry) AS (");
        DB::push_settlements(&mut update, settlements);
        // A retry stays pending with its next attempt, a finished delivery is stamped complete.
        // The rows are not locked first in GUID order (the store's lock order elsewhere): no
        // two writers can wait on each other here. A fenced row is written only by the one
        // lease that holds it, and claims skip locked rows instead of waiting.
        update.push(
            ") UPDATE webhook_deliveries SET state = s.sstate, last_error = s.snote, \
             next_attempt_at = COALESCE(s.sretry, webhook_deliveries.next_attempt_at), \
             completed_at = CASE WHEN s.sretry IS NULL THEN ",
        );
        update.push_bind(now);
        update.push(
            " ELSE webhook_deliveries.completed_at END, lease_until = NULL, lease_id = NULL \
             FROM s WHERE webhook_deliveries.delivery_id = s.sid",
        );
        // Fenced, the row must still be held by the lease (only a pending row is: every
        // write that ends or retries a delivery clears its lease); unfenced, any row. Not
        // `state = 'pending'` as well: PostgreSQL's planner, without statistics on a young
        // table, then read the whole pending index (dead entries and all) for each round.
        if let Some(lease) = lease {
            update.push(" AND webhook_deliveries.lease_id = ");
            update.push_bind(lease.as_str());
        }
        update.push(" RETURNING delivery_id");
        let mut settled = HashSet::with_capacity(settlements.len());
        for row in update.build().fetch_all(&self.writer).await? {
            settled.insert(row.try_get::<String, _>(0)?);
        }
        Ok(settled)
    }
}
