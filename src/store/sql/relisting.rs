//! A pass lists every installation again, and almost all of them are exactly
//! as we hold them. Those are marked seen together, in two statements per
//! page, instead of four per installation: on 20,000 installations that was
//! most of an unchanged pass's writes. The first listing is the other common
//! case: installations never seen, of accounts we hold no user for, go in
//! together too (`fresh.rs`). Anything else (a changed or reactivated
//! installation, a renamed account, a user we already hold) goes the long
//! way, through `upsert_installation_in`.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row as _, Type};
use std::collections::{HashMap, HashSet};

use super::{Backend, SqlStore};
use crate::domain::{InstallationRecord, InstallationState};
use crate::store::StoreResult;

/// A page of the listing, sorted by how much writing each installation needs.
#[derive(Default)]
pub(super) struct SortedPage<'a> {
    pub quiet: Vec<&'a InstallationRecord>,
    pub fresh: Vec<&'a InstallationRecord>,
    pub other: Vec<&'a InstallationRecord>,
}

/// An installation's row and its account's user row, as stored.
struct Held {
    state: String,
    account: Option<(i64, String, String)>,
    user: Option<HeldUser>,
}

struct HeldUser {
    login: String,
    installation_id: Option<i64>,
    node_id: Option<String>,
    has_avatar: bool,
}

impl Held {
    /// Listing `inst` again would write nothing but `seen_at`: every column the
    /// long way sets already holds what it would set, and the user's status
    /// stays (`installation_seen`: an active installation re-listed is no news).
    fn is_quiet(&self, inst: &InstallationRecord) -> bool {
        let active = InstallationState::Active.as_str();
        if inst.state != InstallationState::Active || self.state != active {
            return false;
        }
        let Some(account) = &inst.account else { return true };
        let same_account = self.account.as_ref().is_some_and(|(id, login, kind)| {
            *id == account.id.get() && login == account.login.as_str() && kind == account.kind.as_str()
        });
        if !same_account {
            return false;
        }
        if !account.is_user() {
            return true;
        }
        self.user.as_ref().is_some_and(|u| {
            u.login == account.login.as_str()
                && u.installation_id == Some(inst.id.get())
                && account.node_id.as_ref().is_none_or(|n| u.node_id.as_deref() == Some(n.as_str()))
                && (u.has_avatar || account.avatar_url.is_none())
        })
    }
}

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
    /// Sorts a page: listed exactly as stored (`quiet`), never seen before with
    /// no user row for its account (`fresh`), and the rest (the long way).
    pub(super) async fn sort_page<'a>(
        tx: &mut sqlx::Transaction<'static, DB>,
        page: Vec<&'a InstallationRecord>,
    ) -> StoreResult<SortedPage<'a>> {
        let mut sorted = SortedPage::default();
        if page.is_empty() {
            return Ok(sorted);
        }
        let held = Self::held_installations(tx, &page).await?;
        let mut unheld = Vec::new();
        for inst in page {
            match held.get(&inst.id.get()) {
                Some(h) if h.is_quiet(inst) => sorted.quiet.push(inst),
                Some(_) => sorted.other.push(inst),
                None => unheld.push(inst),
            }
        }
        let accounts: Vec<i64> = unheld.iter().filter_map(|i| i.account.as_ref()).map(|a| a.id.get()).collect();
        let tracked = Self::tracked_among(tx, &accounts).await?;
        // One row per statement: a second copy of an id in the page goes the long way, after.
        let mut taken = HashSet::new();
        for inst in unheld {
            let account = inst.account.as_ref().map(|a| a.id.get());
            let repeated = !taken.insert(("installation", inst.id.get()))
                || account.is_some_and(|a| !taken.insert(("account", a)));
            match account {
                Some(a) if tracked.contains(&a) => sorted.other.push(inst),
                _ if repeated => sorted.other.push(inst),
                _ => sorted.fresh.push(inst),
            }
        }
        Ok(sorted)
    }

    /// Marks installations seen now, and nothing else.
    pub(super) async fn mark_seen(
        tx: &mut sqlx::Transaction<'static, DB>,
        quiet: &[&InstallationRecord],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if quiet.is_empty() {
            return Ok(());
        }
        // Locked by ascending id on PostgreSQL, as every other multi-row write locks.
        let mut update = QueryBuilder::<DB>::new("UPDATE installations SET seen_at = ");
        update.push_bind(now).push(", updated_at = ").push_bind(now);
        update.push(" WHERE id IN (SELECT id FROM installations WHERE id IN (");
        let mut ids = update.separated(", ");
        for inst in quiet {
            ids.push_bind(inst.id.get());
        }
        update.push(format!(") ORDER BY id{})", DB::LOCK_HELD));
        update.build().execute(&mut **tx).await?;
        Ok(())
    }

    /// Which of these accounts have a user row.
    async fn tracked_among(tx: &mut sqlx::Transaction<'static, DB>, accounts: &[i64]) -> StoreResult<HashSet<i64>> {
        if accounts.is_empty() {
            return Ok(HashSet::new());
        }
        let mut select = QueryBuilder::<DB>::new("SELECT github_id FROM users WHERE github_id IN (");
        let mut ids = select.separated(", ");
        for id in accounts {
            ids.push_bind(*id);
        }
        select.push(")");
        let rows = select.build().fetch_all(&mut **tx).await?;
        rows.iter().map(|row| Ok(row.try_get::<i64, _>(0)?)).collect()
    }

    async fn held_installations(
        tx: &mut sqlx::Transaction<'static, DB>,
        page: &[&InstallationRecord],
    ) -> StoreResult<HashMap<i64, Held>> {
        let mut select = QueryBuilder::<DB>::new(
            "SELECT i.id, i.state, i.account_id, i.account_login, i.account_type, u.github_id AS user_id, \
             u.login, u.installation_id, u.node_id, u.avatar_url IS NOT NULL AS has_avatar \
             FROM installations i LEFT JOIN users u ON u.github_id = i.account_id WHERE i.id IN (",
        );
        let mut ids = select.separated(", ");
        for inst in page {
            ids.push_bind(inst.id.get());
        }
        select.push(")");
        let mut held = HashMap::with_capacity(page.len());
        for row in select.build().fetch_all(&mut **tx).await? {
            let account_id: Option<i64> = row.try_get("account_id")?;
            let login: Option<String> = row.try_get("account_login")?;
            let kind: Option<String> = row.try_get("account_type")?;
            let user_id: Option<i64> = row.try_get("user_id")?;
            let user = match user_id {
                Some(_) => Some(HeldUser {
                    login: row.try_get("login")?,
                    installation_id: row.try_get("installation_id")?,
                    node_id: row.try_get("node_id")?,
                    has_avatar: row.try_get("has_avatar")?,
                }),
                None => None,
            };
            let account = match (account_id, login, kind) {
                (Some(id), Some(login), Some(kind)) => Some((id, login, kind)),
                _ => None,
            };
            held.insert(row.try_get("id")?, Held { state: row.try_get("state")?, account, user });
        }
        Ok(held)
    }
}
