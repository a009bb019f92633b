//! The SQL both backends share, one file per part of the `Store`. sqlx accepts `$n` placeholders on SQLite too,
//! and with its `chrono` and `json` features the same Rust types map to TEXT on
//! SQLite and to TIMESTAMPTZ / JSONB on PostgreSQL, so one text serves both.
//! `portable_store!` implements `Store` for a backend given its pool type, how
//! it opens a write transaction, and how it locks rows it claims. Reads go to
//! `self.pool`, every write to `self.writer` (on SQLite a pool of one: writes
//! queue in our process instead of sleeping in SQLite's busy handler).

/// The columns of `UserRecord`, in `user_from_row`'s order.
pub(crate) mod inbox;
pub(crate) mod installations;
pub(crate) mod runs;
pub(crate) mod sync;
pub(crate) mod users;

macro_rules! user_columns {
    () => {
        "github_id, node_id, login, name, avatar_url, bio, company, blog, location, email, \
         twitter_username, public_repos, public_gists, followers, following, github_created_at, \
         github_updated_at, github_profile, status, sync_enabled, installation_id, last_synced_at, \
         next_sync_at, failures, last_error"
    };
}

macro_rules! due_user_columns {
    () => {
        "github_id, node_id, login, installation_id, profile_hash, observed_hash, failures"
    };
}

macro_rules! run_columns {
    () => {
        "id, trigger, state, started_at, finished_at, users_due, fetched, changed, unchanged, failed, gone, \
         points_core, points_graphql, installations_added, installations_removed"
    };
}

macro_rules! portable_store {
    ($store:ty, $db:ty, begin_write = $begin:literal, skip_locked = $lock:literal) => {
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Row as _;
        use sqlx::types::Json;

        use crate::domain::{
            Account, ClaimedDelivery, DeliveryId, DeliveryRecord, DeliveryState, DueKind, DueUser, EventName,
            GitHubUserId, InboxStats, InsertOutcome, InstallationId, InstallationRecord, InstallationState, Login,
            NewDelivery, NodeId, ProfileHash, RateLimitRecord, Resource, RestProfile, RunCounts, RunId, RunRecord,
            RunStart, Settlement, Standing, Transition, UserEvent, UserOutcome, UserRecord, UserStatus,
        };
        use crate::store::{InboxStore, InstallationStore, RunStore, SyncStore, UserStore};
        use crate::store::{StoreError, StoreResult};

        type Row = <$db as sqlx::Database>::Row;

        fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
            StoreError::Other(anyhow::anyhow!("stored {what} is invalid: {e}"))
        }

        fn node_id_from(stored: Option<String>) -> Option<NodeId> {
            stored.and_then(|n| NodeId::parse(n).ok())
        }

        fn installation_from(stored: Option<i64>) -> Option<InstallationId> {
            stored.and_then(|i| InstallationId::new(i).ok())
        }

        fn login_from(stored: String) -> StoreResult<Login> {
            Login::from_github(&stored).map_err(|e| corrupt("login", e))
        }

        /// What we hold for a user: a row with a status, a tombstone, or nothing.
        async fn standing_of(tx: &mut sqlx::Transaction<'static, $db>, id: GitHubUserId) -> StoreResult<Standing> {
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

        async fn forget_erasure(tx: &mut sqlx::Transaction<'static, $db>, id: GitHubUserId) -> StoreResult<()> {
            sqlx::query("DELETE FROM erased_users WHERE github_id = $1").bind(id.get()).execute(&mut **tx).await?;
            Ok(())
        }

        fn user_from_row(row: &Row) -> StoreResult<UserRecord> {
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

        fn due_user_from_row(row: &Row) -> StoreResult<DueUser> {
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

        fn run_from_row(row: &Row) -> StoreResult<RunRecord> {
            Ok(RunRecord {
                id: RunId::new(row.try_get("id")?).map_err(|e| corrupt("run id", e))?,
                trigger: row.try_get("trigger")?,
                state: row.try_get("state")?,
                started_at: row.try_get("started_at")?,
                finished_at: row.try_get("finished_at")?,
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

        super::sql::inbox::inbox_sql!($store, $db, $begin, $lock);
        super::sql::installations::installations_sql!($store, $db, $begin, $lock);
        super::sql::users::users_sql!($store, $db, $begin, $lock);
        super::sql::sync::sync_sql!($store, $db, $begin, $lock);
        super::sql::runs::runs_sql!($store, $db, $begin, $lock);
    };
}

pub(crate) use {due_user_columns, portable_store, run_columns, user_columns};
