//! The inbox's write that carries a whole round in one statement: a round's
//! settlements (the inbox worker). One statement instead of one per delivery:
//! each statement is a round trip to sqlx's SQLite thread or to the server.
//! (A group of new deliveries is the backend's: `Backend::group_insert`.)

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row as _, Type};

use super::{Backend, SqlStore};
use crate::domain::{LeaseId, Settlement};
use crate::store::StoreResult;

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
{
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
