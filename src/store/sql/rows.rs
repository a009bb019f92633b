//! Turning stored rows into domain values, and the reads and writes every
//! part of the store shares (what we hold for a user, forgetting an erasure).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row as _, Type};

use super::{Backend, SqlStore};
use crate::domain::{
    DueUser, GitHubUserId, InstallationId, Login, NodeId, ProfileHash, RunCounts, RunId, RunRecord, Standing,
    UserRecord,
};
use crate::store::{StoreError, StoreResult};

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("stored {what} is invalid: {e}"))
}

fn node_id_from(stored: Option<String>) -> Option<NodeId> {
    stored.and_then(|n| NodeId::parse(n).ok())
}

fn installation_from(stored: Option<i64>) -> Option<InstallationId> {
    stored.and_then(|i| InstallationId::new(i).ok())
}

/// A user registered by id has no login until the first fetch: the column
/// (NOT NULL) holds `UNKNOWN_LOGIN` until then.
fn login_from(stored: String) -> StoreResult<Option<Login>> {
    if stored == UNKNOWN_LOGIN {
        return Ok(None);
    }
    Login::from_github(&stored).map(Some).map_err(|e| corrupt("login", e))
}

/// What the `login` column holds while the login is unknown: no login is empty.
pub(super) const UNKNOWN_LOGIN: &str = "";

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
    /// What we hold for a user: a row with a status, a tombstone, or nothing.
    pub(super) async fn standing_of(
        tx: &mut sqlx::Transaction<'static, DB>,
        id: GitHubUserId,
    ) -> StoreResult<Standing> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM users WHERE github_id = $1")
            .bind(id.get())
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(status) = status {
            return Ok(Standing::Tracked(status.parse().map_err(|e: String| corrupt("status", e))?));
        }
        let erased: Option<i64> = sqlx::query_scalar("SELECT github_id FROM erased_users WHERE github_id = $1")
            .bind(id.get())
            .fetch_optional(&mut **tx)
            .await?;
        Ok(if erased.is_some() { Standing::Erased } else { Standing::Untracked })
    }

    pub(super) async fn forget_erasure(tx: &mut sqlx::Transaction<'static, DB>, id: GitHubUserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM erased_users WHERE github_id = $1").bind(id.get()).execute(&mut **tx).await?;
        Ok(())
    }

    pub(super) fn user_from_row(row: &DB::Row) -> StoreResult<UserRecord> {
        let status: String = row.try_get("status")?;
        let profile: Option<Json<serde_json::Value>> = row.try_get("github_profile")?;
        Ok(UserRecord {
            github_id: GitHubUserId::new(row.try_get("github_id")?).map_err(|e| corrupt("github_id", e))?,
            node_id: node_id_from(row.try_get("node_id")?),
            login: login_from(row.try_get("login")?)?,
            name: row.try_get("name")?,
            avatar_url: row.try_get("avatar_url")?,
            bio: row.try_get("bio")?,
            company: row.try_get("company")?,
            blog: row.try_get("blog")?,
            location: row.try_get("location")?,
            email: row.try_get("email")?,
            twitter_username: row.try_get("twitter_username")?,
            public_repos: row.try_get("public_repos")?,
            public_gists: row.try_get("public_gists")?,
            followers: row.try_get("followers")?,
            following: row.try_get("following")?,
            github_created_at: row.try_get("github_created_at")?,
            github_updated_at: row.try_get("github_updated_at")?,
            status: status.parse().map_err(|e: String| corrupt("status", e))?,
            sync_enabled: row.try_get("sync_enabled")?,
            installation_id: installation_from(row.try_get("installation_id")?),
            last_synced_at: row.try_get("last_synced_at")?,
            github_profile: profile.map(|Json(v)| v),
            next_sync_at: row.try_get("next_sync_at")?,
            failures: row.try_get("failures")?,
            last_error: row.try_get("last_error")?,
        })
    }

    pub(super) fn due_user_from_row(row: &DB::Row) -> StoreResult<DueUser> {
        Ok(DueUser {
            github_id: GitHubUserId::new(row.try_get("github_id")?).map_err(|e| corrupt("github_id", e))?,
            node_id: node_id_from(row.try_get("node_id")?),
            login: login_from(row.try_get("login")?)?,
            installation_id: installation_from(row.try_get("installation_id")?),
            profile_hash: row.try_get::<Option<String>, _>("profile_hash")?.map(ProfileHash::from_stored),
            observed_hash: row.try_get::<Option<String>, _>("observed_hash")?.map(ProfileHash::from_stored),
            failures: row.try_get("failures")?,
        })
    }

    pub(super) fn run_from_row(row: &DB::Row) -> StoreResult<RunRecord> {
        Ok(RunRecord {
            id: RunId::new(row.try_get("id")?).map_err(|e| corrupt("run id", e))?,
            trigger: row.try_get("trigger")?,
            state: row.try_get("state")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            synced_before: row.try_get("synced_before")?,
            counts: RunCounts {
                users_due: row.try_get("users_due")?,
                fetched: row.try_get("fetched")?,
                changed: row.try_get("changed")?,
                unchanged: row.try_get("unchanged")?,
                failed: row.try_get("failed")?,
                gone: row.try_get("gone")?,
                points_core: row.try_get("points_core")?,
                points_graphql: row.try_get("points_graphql")?,
                installations_added: row.try_get("installations_added")?,
                installations_removed: row.try_get("installations_removed")?,
            },
            errors: Vec::new(),
            notes: Vec::new(),
        })
    }
}
