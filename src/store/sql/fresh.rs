//! The first listing of installations: each is new, and so is its account's
//! user. They go in three statements a page (installations, erasures
//! forgotten, users) instead of five per installation; on 20,000 new
//! installations the long way took 13 s of a first pass. What they do to the
//! user is what `upsert_installation_in` does for one, decided by the same rule.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::installations::{ACCOUNT_USER_CONFLICT, INSERT_ACCOUNT_USERS, INSERT_INSTALLATIONS, INSTALLATION_CONFLICT};
use super::{Backend, SqlStore};
use crate::domain::{InstallationRecord, Standing, Transition, UserEvent};
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
    /// Inserts installations we hold no row for, with their accounts' users
    /// (none held either; `sort_page` checked both). Returns how many are news.
    pub(super) async fn insert_fresh(
        tx: &mut sqlx::Transaction<'static, DB>,
        fresh: &[&InstallationRecord],
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        if fresh.is_empty() {
            return Ok(0);
        }
        // The same upsert as the long way's: a webhook may have inserted one since `sort_page`.
        let mut insert = QueryBuilder::<DB>::new(INSERT_INSTALLATIONS);
        insert.push_values(fresh, |mut row, inst| {
            let account = inst.account.as_ref();
            row.push_bind(inst.id.get())
                .push_bind(account.map(|a| a.id.get()))
                .push_bind(account.map(|a| a.login.as_str()))
                .push_bind(account.map(|a| a.kind.as_str()))
                .push_bind(inst.state.as_str())
                .push_bind(now)
                .push_bind(now)
                .push_bind(now);
        });
        insert.push(INSTALLATION_CONFLICT);
        insert.build().execute(&mut **tx).await?;
        // An account with no user row: untracked or erased, and to either a new installation
        // is news (`installation_seen`): tracked from now, due at once, tombstone gone.
        let mut users = Vec::new();
        for inst in fresh {
            let Some(account) = inst.account.as_ref().filter(|a| a.is_user()) else { continue };
            let event = UserEvent::InstallationSeen { state: inst.state, was_active: false };
            if let Transition::To { status, due, .. } = event.decide(Standing::Untracked) {
                users.push((inst, account, status, due.then_some(now)));
            }
        }
        if !users.is_empty() {
            let mut forget = QueryBuilder::<DB>::new("DELETE FROM erased_users WHERE github_id IN (");
            let mut ids = forget.separated(", ");
            for (_, account, _, _) in &users {
                ids.push_bind(account.id.get());
            }
            forget.push(")");
            forget.build().execute(&mut **tx).await?;
            let mut insert = QueryBuilder::<DB>::new(INSERT_ACCOUNT_USERS);
            insert.push_values(&users, |mut row, (inst, account, status, due)| {
                row.push_bind(account.id.get())
                    .push_bind(account.node_id.as_ref().map(|n| n.as_str()))
                    .push_bind(account.login.as_str())
                    .push_bind(account.avatar_url.as_deref())
                    .push_bind(status.as_str())
                    .push("TRUE")
                    .push_bind(inst.id.get())
                    .push_bind(*due)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(now);
            });
            // As the long way's, for a user a webhook tracked since `sort_page`.
            insert.push(ACCOUNT_USER_CONFLICT);
            insert.build().execute(&mut **tx).await?;
        }
        Ok(fresh.len() as u64)
    }
}
