//! Webhook activity by tracked users, a round of deliveries at a time: the
//! inbox worker asks which senders we sync in one read, then marks them due
//! in one statement, instead of a read and a write per delivery (a round trip
//! each to the database, most of a round's time).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row as _, Type};

use super::{Backend, SYNCED_USER, SqlStore};
use crate::domain::{Account, GitHubUserId};
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
    pub(super) async fn select_synced_among(
        &self,
        ids: &[GitHubUserId],
    ) -> StoreResult<HashMap<GitHubUserId, Option<DateTime<Utc>>>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut select = QueryBuilder::<DB>::new(format!(
            "SELECT github_id, last_synced_at FROM users WHERE {SYNCED_USER} AND github_id IN ("
        ));
        // A round's senders repeat (one user's pushes, comments, stars): each is asked once.
        let mut distinct: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut list = select.separated(", ");
        for id in distinct {
            list.push_bind(id);
        }
        select.push(")");
        let mut synced = HashMap::with_capacity(ids.len());
        for row in select.build().fetch_all(&self.pool).await? {
            let id = GitHubUserId::new(row.try_get("github_id")?).map_err(|e| super::rows::corrupt("github_id", e))?;
            synced.insert(id, row.try_get("last_synced_at")?);
        }
        Ok(synced)
    }

    /// One `UPDATE` for the whole round. On PostgreSQL the rows are locked by
    /// ascending id first (the store's one lock order), so two replicas'
    /// rounds never deadlock.
    pub(super) async fn update_activity(
        &self,
        noted: &[(Account, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<GitHubUserId>> {
        if noted.is_empty() {
            return Ok(Vec::new());
        }
        // One row per user: the last payload's login and avatar, the earliest time.
        let mut by_user: HashMap<GitHubUserId, (&Account, DateTime<Utc>)> = HashMap::with_capacity(noted.len());
        for (account, due) in noted {
            let entry = by_user.entry(account.id).or_insert((account, *due));
            *entry = (account, entry.1.min(*due));
        }
        let mut rows: Vec<_> = by_user.into_values().collect();
        rows.sort_by_key(|(account, _)| account.id);

        let mut update = QueryBuilder::<DB>::new("WITH v (uid, login, avatar_url, due) AS (");
        update.push_values(&rows, |mut row, (account, due)| {
            row.push_bind(account.id.get())
                .push_bind(account.login.as_str())
                .push_bind(account.avatar_url.as_deref())
                .push_bind(*due);
        });
        // "Earlier wins", except against a mark that a fetch in flight (a live lease) is
        // consuming: that mark is cleared when the fetch is recorded, so the new one must
        // replace it or it is lost with it (as in `mark_due`).
        update.push(format!(
            "), locked AS (SELECT github_id FROM users WHERE github_id IN (SELECT uid FROM v) \
             ORDER BY github_id{lock}) \
             UPDATE users SET login = v.login, avatar_url = COALESCE(v.avatar_url, users.avatar_url), \
             due_at = CASE WHEN users.due_at IS NULL OR users.due_at > v.due \
               OR (users.claimed_until > ",
            lock = DB::LOCK_HELD
        ));
        update.push_bind(now).push(" AND users.due_at <= ").push_bind(now);
        update.push(
            ") THEN v.due ELSE users.due_at END, \
             next_sync_at = CASE WHEN users.next_sync_at IS NULL OR users.next_sync_at > v.due \
               THEN v.due ELSE users.next_sync_at END, \
             updated_at = ",
        );
        update.push_bind(now);
        // `SYNCED_USER`'s columns unqualified: `v` has none of their names.
        update.push(format!(
            " FROM v WHERE users.github_id = v.uid AND users.github_id IN (SELECT github_id FROM locked) \
             AND {SYNCED_USER} RETURNING github_id"
        ));
        let mut noted = Vec::with_capacity(rows.len());
        for row in update.build().fetch_all(&self.writer).await? {
            noted.push(GitHubUserId::new(row.try_get(0)?).map_err(|e| super::rows::corrupt("github_id", e))?);
        }
        Ok(noted)
    }
}
