//! The inbox's writes that carry a whole group or round in one statement:
//! a group of new deliveries (the request path's group commit) and a round's
//! settlements (the inbox worker). One statement instead of one per delivery:
//! each statement is a round trip to sqlx's SQLite thread or to the server.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row as _, Type};

use super::packed::pack;
use super::{Backend, SqlStore};
use crate::domain::{LeaseId, NewDelivery, Settlement};
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
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
{
    /// A group of new deliveries, their rows and their payloads, in one
    /// transaction sent at once: on SQLite a script from `BEGIN` to `COMMIT`;
    /// on PostgreSQL one statement (its own transaction) whose CTE inserts the
    /// rows and whose payloads follow only the rows that went in. The query
    /// returns the GUIDs inserted; a payload of a GUID already stored is not
    /// written.
    pub(super) fn group_insert(group: &[&NewDelivery]) -> QueryBuilder<DB> {
        let mut q = QueryBuilder::<DB>::new(if DB::SCRIPTS {
            format!("{}; INSERT INTO webhook_deliveries ", DB::BEGIN_WRITE)
        } else {
            "WITH fresh AS (INSERT INTO webhook_deliveries ".to_owned()
        });
        q.push("(delivery_id, event, action, state, attempts, received_at, next_attempt_at) ");
        q.push_values(group, |mut row, d| {
            row.push_bind(d.id.as_str())
                .push_bind(d.event.as_str())
                .push_bind(d.action.as_deref())
                .push("'pending'")
                .push("0")
                .push_bind(d.received_at)
                .push_bind(d.received_at);
        });
        q.push(" ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id");
        if DB::SCRIPTS {
            q.push("; INSERT INTO webhook_payloads (delivery_id, payload, packed) ");
            q.push_values(group, |mut row, d| {
                row.push_bind(d.id.as_str()).push("''").push_bind(pack(&d.payload));
            });
            q.push(" ON CONFLICT (delivery_id) DO NOTHING; COMMIT");
        } else {
            q.push("), payloads AS (INSERT INTO webhook_payloads (delivery_id, payload, packed) SELECT v.id, '', v.packed FROM (");
            q.push_values(group, |mut row, d| {
                row.push_bind(d.id.as_str()).push_bind(pack(&d.payload));
            });
            q.push(") AS v (id, packed) WHERE v.id IN (SELECT delivery_id FROM fresh)) SELECT delivery_id FROM fresh");
        }
        q
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
        update.push_values(settlements, |mut row, s| {
            row.push_bind(s.id.as_str()).push_bind(s.state.as_str()).push_bind(s.note.as_deref()).push_bind(s.retry_at);
        });
        // Rows locked by GUID, as renewals lock them; a retry stays pending with its next
        // attempt, a finished delivery is stamped complete.
        update.push(format!(
            "), locked AS (SELECT delivery_id FROM webhook_deliveries \
             WHERE delivery_id IN (SELECT sid FROM s) ORDER BY delivery_id{lock}) \
             UPDATE webhook_deliveries SET state = s.sstate, last_error = s.snote, \
             next_attempt_at = COALESCE(s.sretry, webhook_deliveries.next_attempt_at), \
             completed_at = CASE WHEN s.sretry IS NULL THEN ",
            lock = DB::LOCK_HELD
        ));
        update.push_bind(now);
        update.push(
            " ELSE webhook_deliveries.completed_at END, lease_until = NULL, lease_id = NULL \
             FROM s WHERE webhook_deliveries.delivery_id = s.sid \
             AND webhook_deliveries.delivery_id IN (SELECT delivery_id FROM locked)",
        );
        // Fenced, the row must still be pending under the lease; unfenced, any row.
        if let Some(lease) = lease {
            update.push(" AND webhook_deliveries.state = 'pending' AND webhook_deliveries.lease_id = ");
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
