//! The rate governor's memory: one row per installation and resource.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row as _, Type};

use super::rows::corrupt;
use super::{Backend, SqlStore};
use crate::domain::{Booking, BudgetAsk, BudgetRow, InstallationId, RateLimitRecord, RateSummary, Resource, book};
use crate::store::{RateLimitStore, StoreResult};

const COLUMNS: &str = "installation_id, resource, \"limit\", remaining, reset_at, paused_until, updated_at";

/// A row as a record; `None` for a resource this version does not know
/// (written by a newer one): skipped, not an error.
fn record<R: sqlx::Row>(row: &R) -> Option<StoreResult<RateLimitRecord>>
where
    for<'n> &'n str: ColumnIndex<R>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> DateTime<Utc>: Decode<'q, R::Database> + Type<R::Database>,
{
    let resource = Resource::parse(&row.try_get::<String, _>("resource").ok()?)?;
    let read = || {
        Ok(RateLimitRecord {
            installation_id: InstallationId::new(row.try_get("installation_id")?)
                .map_err(|e| corrupt("installation id", e))?,
            resource,
            limit: row.try_get("limit")?,
            remaining: row.try_get("remaining")?,
            reset_at: row.try_get("reset_at")?,
            paused_until: row.try_get("paused_until")?,
            updated_at: row.try_get("updated_at")?,
        })
    };
    Some(read())
}

#[async_trait]
impl<DB> RateLimitStore for SqlStore<DB>
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
    /// Merged with what other processes wrote: within a window only the
    /// lowest figure stands (their bookings are out of it), a later window
    /// replaces it, and the later pause wins.
    async fn save_rate_limit(&self, r: &RateLimitRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO rate_limits (installation_id, resource, \"limit\", remaining, reset_at, paused_until, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (installation_id, resource) DO UPDATE SET \
             \"limit\" = excluded.\"limit\", \
             remaining = CASE WHEN excluded.reset_at > rate_limits.reset_at THEN excluded.remaining \
                 WHEN excluded.reset_at = rate_limits.reset_at AND excluded.remaining < rate_limits.remaining \
                 THEN excluded.remaining ELSE rate_limits.remaining END, \
             reset_at = CASE WHEN excluded.reset_at > rate_limits.reset_at THEN excluded.reset_at \
                 ELSE rate_limits.reset_at END, \
             paused_until = CASE WHEN rate_limits.paused_until IS NULL OR excluded.paused_until > rate_limits.paused_until \
                 THEN excluded.paused_until ELSE rate_limits.paused_until END, \
             updated_at = excluded.updated_at",
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
        let sql = format!("SELECT {COLUMNS} FROM rate_limits ORDER BY installation_id, resource");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().filter_map(record).collect()
    }

    async fn rate_limits_least(&self, n: i64) -> StoreResult<Vec<RateLimitRecord>> {
        // On `rate_limits_least` (remaining, installation_id, resource): reads n rows, sorts none.
        // Budgets of a window that is over (or never known) say nothing of now: skipped.
        let sql = format!(
            "SELECT {COLUMNS} FROM rate_limits WHERE reset_at > $2 ORDER BY remaining, installation_id, resource LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(n).bind(Utc::now()).fetch_all(&self.pool).await?;
        rows.iter().filter_map(record).collect()
    }

    async fn rate_limit_summary(&self, now: DateTime<Utc>) -> StoreResult<Vec<RateSummary>> {
        let rows = sqlx::query(
            "SELECT resource, COUNT(*) AS tracked, \
             COALESCE(SUM(CASE WHEN paused_until > $1 THEN 1 ELSE 0 END), 0) AS paused, \
             MIN(CASE WHEN reset_at > $1 THEN remaining END) AS least FROM rate_limits GROUP BY resource ORDER BY resource",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let Some(resource) = Resource::parse(&row.try_get::<String, _>("resource")?) else { continue };
            out.push(RateSummary {
                resource,
                tracked: row.try_get("tracked")?,
                paused: row.try_get("paused")?,
                least_remaining: row.try_get("least")?,
            });
        }
        Ok(out)
    }

    async fn book_budget(&self, ask: &BudgetAsk) -> StoreResult<Booking> {
        // Two processes that both find no row both insert: the loser asks again.
        loop {
            let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
            let sql = format!(
                "SELECT \"limit\", remaining, reset_at, paused_until, minute_start, minute_used \
                 FROM rate_limits WHERE installation_id = $1 AND resource = $2{}",
                DB::LOCK_HELD
            );
            let found = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ask.installation_id.get())
                .bind(ask.resource.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let row = match &found {
                Some(r) => Some(BudgetRow {
                    limit: r.try_get("limit")?,
                    remaining: r.try_get("remaining")?,
                    reset_at: r.try_get("reset_at")?,
                    paused_until: r.try_get("paused_until")?,
                    minute_start: r
                        .try_get::<Option<DateTime<Utc>>, _>("minute_start")?
                        .unwrap_or(DateTime::UNIX_EPOCH),
                    minute_used: r.try_get("minute_used")?,
                }),
                None => None,
            };
            let existed = row.is_some();
            let (row, booking) = book(row, ask);
            let written = sqlx::query(
                "INSERT INTO rate_limits (installation_id, resource, \"limit\", remaining, reset_at, paused_until, \
                 updated_at, minute_start, minute_used) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (installation_id, resource) DO UPDATE SET \"limit\" = excluded.\"limit\", \
                 remaining = excluded.remaining, reset_at = excluded.reset_at, paused_until = excluded.paused_until, \
                 updated_at = excluded.updated_at, minute_start = excluded.minute_start, \
                 minute_used = excluded.minute_used WHERE $10",
            )
            .bind(ask.installation_id.get())
            .bind(ask.resource.as_str())
            .bind(row.limit)
            .bind(row.remaining)
            .bind(row.reset_at)
            .bind(row.paused_until)
            .bind(ask.now)
            .bind(row.minute_start)
            .bind(row.minute_used)
            .bind(existed)
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&written) == 0 {
                // Inserted by another process since our look: book against its row.
                tx.rollback().await?;
                continue;
            }
            tx.commit().await?;
            return Ok(booking);
        }
    }
}
