//! Registering users by id (`POST /api/users`, `/api/users/batch`): stored at
//! once, before anything is known about them but the id, and marked due so
//! the refresher or the next pass fetches them when the budget allows.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::rows::UNKNOWN_LOGIN;
use super::{Backend, SqlStore};
use crate::domain::{GitHubUserId, Standing, Transition, UserEvent};
use crate::store::StoreResult;

/// Ids per `INSERT` (one parameter each, well under either engine's limit).
const CHUNK: usize = 1000;

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
    /// Tracks every id not tracked yet, in one transaction and one `INSERT`
    /// per thousand ids (not a round trip each); returns the ids that are new.
    /// A user an admin erased comes back: linking again is consent again.
    pub(super) async fn insert_registered(
        &self,
        ids: &[GitHubUserId],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<GitHubUserId>> {
        // Linking takes an untracked or an erased user to the same status; a tracked one is left
        // alone (the insert's conflict).
        let (Transition::To { status, .. }, Transition::To { forget_erasure, .. }) =
            (UserEvent::Linked.decide(Standing::Untracked), UserEvent::Linked.decide(Standing::Erased))
        else {
            return Ok(Vec::new());
        };
        let mut tx = self.writer.begin_with(DB::BEGIN_WRITE).await?;
        let mut created = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            // $1 login, $2 status, $3 now; then one id each. Due at once: marked (`due_at`) and
            // never synced, so the refresher or the next pass fetches it.
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("(${}, $1, $2, TRUE, $3, $3, $3, $3)", i + 4)).collect();
            let sql = format!(
                "INSERT INTO users (github_id, login, status, sync_enabled, due_at, next_sync_at, created_at, \
                 updated_at) VALUES {} ON CONFLICT (github_id) DO NOTHING RETURNING github_id",
                values.join(", ")
            );
            let mut query =
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(UNKNOWN_LOGIN).bind(status.as_str()).bind(now);
            for id in chunk {
                query = query.bind(id.get());
            }
            let new: Vec<i64> = query.fetch_all(&mut *tx).await?;
            if forget_erasure && !new.is_empty() {
                let list: Vec<String> = (1..=new.len()).map(|i| format!("${i}")).collect();
                let sql = format!("DELETE FROM erased_users WHERE github_id IN ({})", list.join(", "));
                let mut delete = sqlx::query(AssertSqlSafe(sql));
                for id in &new {
                    delete = delete.bind(*id);
                }
                delete.execute(&mut *tx).await?;
            }
            created.extend(new.into_iter().filter_map(|id| GitHubUserId::new(id).ok()));
        }
        tx.commit().await?;
        Ok(created)
    }
}
