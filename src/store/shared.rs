//! The SQL both backends share. sqlx accepts `$n` placeholders on SQLite too,
//! and with its `chrono` and `json` features the same Rust types map to TEXT on
//! SQLite and to TIMESTAMPTZ / JSONB on PostgreSQL, so one text serves both.
//! `portable_store!` implements `Store` for a backend given its pool type, how
//! it opens a write transaction, and how it locks rows it claims. Reads go to
//! `self.pool`, every write to `self.writer` (on SQLite a pool of one: writes
//! queue in our process instead of sleeping in SQLite's busy handler).

/// The columns of `UserRecord`, in `user_from_row`'s order.
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
            DeliveryId, EventName, GitHubUserId, InstallationId, InstallationState, Login, NodeId,
            ProfileHash, RestProfile, RunId, UserStatus,
        };
        use crate::store::{
            Account, ClaimedDelivery, DeliveryRecord, DeliveryState, DueKind, DueUser, InboxStats,
            InsertOutcome, InstallationRecord, NewDelivery, RateLimitRecord, RunCounts,
            RunRecord, RunStart, Settlement, Store, StoreError, StoreResult, UserOutcome, UserRecord,
        };

        type Row = <$db as sqlx::Database>::Row;

        fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
            StoreError::Other(anyhow::anyhow!("stored {what} is invalid: {e}"))
        }

        fn user_from_row(row: &Row) -> StoreResult<UserRecord> {
            let status: String = row.try_get("status")?;
            let profile: Option<Json<serde_json::Value>> = row.try_get("github_profile")?;
            Ok(UserRecord {
                github_id: GitHubUserId::new(row.try_get("github_id")?).map_err(|e| corrupt("github_id", e))?,
                node_id: row.try_get("node_id")?,
                login: row.try_get("login")?,
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
                installation_id: row.try_get("installation_id")?,
                last_synced_at: row.try_get("last_synced_at")?,
                github_profile: profile.map(|Json(v)| v),
                next_sync_at: row.try_get("next_sync_at")?,
                failures: row.try_get("failures")?,
                last_error: row.try_get("last_error")?,
            })
        }

        fn due_user_from_row(row: &Row) -> StoreResult<DueUser> {
            let installation: Option<i64> = row.try_get("installation_id")?;
            let node_id: Option<String> = row.try_get("node_id")?;
            Ok(DueUser {
                github_id: GitHubUserId::new(row.try_get("github_id")?).map_err(|e| corrupt("github_id", e))?,
                node_id: node_id.and_then(|n| NodeId::parse(n).ok()),
                login: row.try_get("login")?,
                installation_id: installation.and_then(|i| InstallationId::new(i).ok()),
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

        fn installation_from_row(row: &Row) -> StoreResult<InstallationRecord> {
            let state: String = row.try_get("state")?;
            let account_id: Option<i64> = row.try_get("account_id")?;
            let account_login: Option<String> = row.try_get("account_login")?;
            let id = InstallationId::new(row.try_get("id")?).map_err(|e| corrupt("installation id", e))?;
            let account = match (account_id.and_then(|a| GitHubUserId::new(a).ok()), account_login) {
                (Some(aid), Some(login)) => Some(Account {
                    id: aid,
                    login: Login::from_github(&login).map_err(|e| corrupt("account login", e))?,
                    node_id: None,
                    avatar_url: None,
                    kind: row.try_get::<Option<String>, _>("account_type")?.unwrap_or_default(),
                    installation_id: Some(id),
                }),
                _ => None,
            };
            Ok(InstallationRecord { id, account, state: state.parse().map_err(|e: String| corrupt("state", e))? })
        }

        impl $store {
            async fn attach_messages(&self, mut run: RunRecord) -> StoreResult<RunRecord> {
                let rows = sqlx::query(
                    "SELECT kind, message FROM sync_run_messages WHERE run_id = $1 ORDER BY id LIMIT 100",
                )
                .bind(run.id.get())
                .fetch_all(&self.pool)
                .await?;
                for row in rows {
                    let kind: String = row.try_get("kind")?;
                    let message: String = row.try_get("message")?;
                    if kind == "error" { run.errors.push(message) } else { run.notes.push(message) }
                }
                Ok(run)
            }

            /// A webhook that marked the user due while we fetched keeps its mark
            /// (`due_at` later than the fetch); an opted-out user is not written.
            async fn store_profile(
                tx: &mut sqlx::Transaction<'static, $db>,
                p: &RestProfile,
                hash: &ProfileHash,
                observed: Option<&ProfileHash>,
                next_sync_at: DateTime<Utc>,
                claimed_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                let k = &p.key;
                sqlx::query(
                    "UPDATE users SET node_id = COALESCE($2, node_id), login = $3, name = $4, avatar_url = $5, bio = $6, \
                     company = $7, blog = $8, location = $9, email = $10, twitter_username = $11, public_repos = $12, \
                     public_gists = $13, followers = $14, following = $15, github_created_at = $16, \
                     github_updated_at = $17, github_profile = $18, profile_hash = $19, \
                     observed_hash = COALESCE($20, observed_hash), last_synced_at = $21, next_sync_at = $22, \
                     due_at = CASE WHEN due_at <= $23 THEN NULL ELSE due_at END, claimed_until = NULL, \
                     failures = 0, last_error = NULL, updated_at = $21 \
                     WHERE github_id = $1 AND sync_enabled",
                )
                .bind(p.github_id.get())
                .bind(p.node_id.as_ref().map(|n| n.as_str()))
                .bind(p.login.as_str())
                .bind(k.name.as_deref())
                .bind(&k.avatar_url)
                .bind(k.bio.as_deref())
                .bind(k.company.as_deref())
                .bind(k.blog.as_deref())
                .bind(k.location.as_deref())
                .bind(k.email.as_deref())
                .bind(k.twitter_username.as_deref())
                .bind(k.public_repos)
                .bind(p.public_gists)
                .bind(k.followers)
                .bind(k.following)
                .bind(p.github_created_at)
                .bind(p.github_updated_at)
                .bind(Json(&p.raw))
                .bind(hash.as_str())
                .bind(observed.map(|h| h.as_str()))
                .bind(now)
                .bind(next_sync_at)
                .bind(claimed_at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// One installation in: its row, and its account's user if a user.
            async fn upsert_installation_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                inst: &InstallationRecord,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let before: Option<String> = sqlx::query_scalar("SELECT state FROM installations WHERE id = $1")
                    .bind(inst.id.get())
                    .fetch_optional(&mut **tx)
                    .await?;
                let newly_active = before.as_deref() != Some(InstallationState::Active.as_str());
                let account = inst.account.as_ref();
                sqlx::query(
                    "INSERT INTO installations (id, account_id, account_login, account_type, state, seen_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $6) ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, \
                     account_id = COALESCE(excluded.account_id, installations.account_id), \
                     account_login = COALESCE(excluded.account_login, installations.account_login), \
                     account_type = COALESCE(excluded.account_type, installations.account_type), \
                     state = excluded.state, updated_at = excluded.updated_at",
                )
                .bind(inst.id.get())
                .bind(account.map(|a| a.id.get()))
                .bind(account.map(|a| a.login.as_str()))
                .bind(account.map(|a| a.kind.as_str()))
                .bind(inst.state.as_str())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                if let Some(account) = account.filter(|a| a.is_user()) {
                    let current: Option<String> = sqlx::query_scalar("SELECT status FROM users WHERE github_id = $1")
                        .bind(account.id.get())
                        .fetch_optional(&mut **tx)
                        .await?;
                    let current: Option<UserStatus> =
                        current.map(|s| s.parse()).transpose().map_err(|e: String| corrupt("status", e))?;
                    let status = match inst.state {
                        // Re-listing an installation we already had active is no news: a user GitHub
                        // answered 404 for (`gone`) or who revoked us stays so until a real (re)install.
                        InstallationState::Active if !newly_active => current.unwrap_or(UserStatus::Active),
                        InstallationState::Active => current.map_or(UserStatus::Active, UserStatus::on_installed),
                        InstallationState::Suspended => current.unwrap_or(UserStatus::Active).on_suspended(),
                        InstallationState::Uninstalled => current.unwrap_or(UserStatus::Active).on_uninstalled(),
                    };
                    if current.is_none() {
                        // A disconnected user comes back with a new installation, not with a re-listing.
                        if newly_active {
                            sqlx::query("DELETE FROM erased_users WHERE github_id = $1")
                                .bind(account.id.get())
                                .execute(&mut **tx)
                                .await?;
                        } else {
                            let erased: Option<i64> = sqlx::query_scalar("SELECT github_id FROM erased_users WHERE github_id = $1")
                                .bind(account.id.get())
                                .fetch_optional(&mut **tx)
                                .await?;
                            if erased.is_some() {
                                return Ok(false);
                            }
                        }
                    }
                    // Due now only when this is news; a pass re-listing a known installation changes nothing.
                    let due = (newly_active || current.is_none()).then_some(now);
                    sqlx::query(
                        "INSERT INTO users (github_id, node_id, login, avatar_url, status, sync_enabled, installation_id, \
                         due_at, next_sync_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7, $8, $8, $8) ON CONFLICT (github_id) DO UPDATE SET \
                         node_id = COALESCE(excluded.node_id, users.node_id), login = excluded.login, \
                         avatar_url = COALESCE(users.avatar_url, excluded.avatar_url), status = excluded.status, \
                         installation_id = excluded.installation_id, \
                         due_at = COALESCE(excluded.due_at, users.due_at), \
                         next_sync_at = CASE WHEN excluded.due_at IS NOT NULL THEN excluded.due_at ELSE users.next_sync_at END, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(account.id.get())
                    .bind(account.node_id.as_ref().map(|n| n.as_str()))
                    .bind(account.login.as_str())
                    .bind(account.avatar_url.as_deref())
                    .bind(status.as_str())
                    .bind(inst.id.get())
                    .bind(due)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(newly_active)
            }

            /// Moves every user of an installation to the status `rule` gives.
            async fn move_users_of(
                tx: &mut sqlx::Transaction<'static, $db>,
                installation: InstallationId,
                rule: fn(UserStatus) -> UserStatus,
                make_due: bool,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                let rows = sqlx::query("SELECT github_id, status FROM users WHERE installation_id = $1")
                    .bind(installation.get())
                    .fetch_all(&mut **tx)
                    .await?;
                for row in rows {
                    let id: i64 = row.try_get("github_id")?;
                    let status: String = row.try_get("status")?;
                    let current: UserStatus = status.parse().map_err(|e: String| corrupt("status", e))?;
                    let next = rule(current);
                    let due = if make_due && next == UserStatus::Active { Some(now) } else { None };
                    sqlx::query(
                        "UPDATE users SET status = $2, updated_at = $3, \
                         due_at = COALESCE($4, due_at), next_sync_at = COALESCE($4, next_sync_at) \
                         WHERE github_id = $1",
                    )
                    .bind(id)
                    .bind(next.as_str())
                    .bind(now)
                    .bind(due)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
                Ok(())
            }

            async fn insert_deliveries(&self, deliveries: &[NewDelivery]) -> StoreResult<Vec<InsertOutcome>> {
                let mut tx = self.writer.begin_with($begin).await?;
                let mut outcomes = Vec::with_capacity(deliveries.len());
                for d in deliveries {
                    let done = sqlx::query(
                        "INSERT INTO webhook_deliveries \
                         (delivery_id, event, action, payload, state, attempts, received_at, next_attempt_at) \
                         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) ON CONFLICT (delivery_id) DO NOTHING",
                    )
                    .bind(d.id.as_str())
                    .bind(d.event.as_str())
                    .bind(d.action.as_deref())
                    .bind(&d.payload)
                    .bind(d.received_at)
                    .execute(&mut *tx)
                    .await?;
                    outcomes.push(if done.rows_affected() == 1 { InsertOutcome::Inserted } else { InsertOutcome::Duplicate });
                }
                tx.commit().await?;
                Ok(outcomes)
            }

            async fn claim_deliveries(
                &self,
                limit: usize,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
            ) -> StoreResult<Vec<ClaimedDelivery>> {
                let rows = sqlx::query(concat!(
                    "UPDATE webhook_deliveries SET lease_until = $3, attempts = attempts + 1 \
                     WHERE delivery_id IN (SELECT delivery_id FROM webhook_deliveries \
                       WHERE state = 'pending' AND next_attempt_at <= $1 \
                       AND (lease_until IS NULL OR lease_until < $1) \
                       ORDER BY next_attempt_at LIMIT $2",
                    $lock,
                    ") RETURNING delivery_id, event, payload, attempts"
                ))
                .bind(now)
                .bind(limit as i64)
                .bind(lease_until)
                .fetch_all(&self.writer)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(ClaimedDelivery {
                            id: DeliveryId::parse(row.try_get("delivery_id")?).map_err(|e| corrupt("delivery id", e))?,
                            event: EventName::parse(row.try_get("event")?).map_err(|e| corrupt("event", e))?,
                            payload: row.try_get("payload")?,
                            attempts: row.try_get("attempts")?,
                        })
                    })
                    .collect()
            }

            async fn finish_delivery(
                &self,
                id: &DeliveryId,
                state: DeliveryState,
                note: Option<&str>,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                let settlement = Settlement { id: id.clone(), state, note: note.map(str::to_owned), retry_at: None };
                self.settle_deliveries(&[settlement], now).await
            }

            async fn retry_delivery(&self, id: &DeliveryId, error: &str, next_attempt_at: DateTime<Utc>) -> StoreResult<()> {
                let settlement = Settlement {
                    id: id.clone(),
                    state: DeliveryState::Pending,
                    note: Some(error.to_owned()),
                    retry_at: Some(next_attempt_at),
                };
                self.settle_deliveries(&[settlement], Utc::now()).await
            }

            async fn settle_deliveries(&self, settlements: &[Settlement], now: DateTime<Utc>) -> StoreResult<()> {
                let mut tx = self.writer.begin_with($begin).await?;
                for s in settlements {
                    match s.retry_at {
                        Some(retry_at) => sqlx::query(
                            "UPDATE webhook_deliveries SET last_error = $2, next_attempt_at = $3, lease_until = NULL \
                             WHERE delivery_id = $1",
                        )
                        .bind(s.id.as_str())
                        .bind(s.note.as_deref())
                        .bind(retry_at),
                        None => sqlx::query(
                            "UPDATE webhook_deliveries SET state = $2, last_error = $3, completed_at = $4, lease_until = NULL \
                             WHERE delivery_id = $1",
                        )
                        .bind(s.id.as_str())
                        .bind(s.state.as_str())
                        .bind(s.note.as_deref())
                        .bind(now),
                    }
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn delivery(&self, id: &DeliveryId) -> StoreResult<Option<DeliveryRecord>> {
                let row = sqlx::query(
                    "SELECT delivery_id, event, action, state, attempts, last_error FROM webhook_deliveries \
                     WHERE delivery_id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| {
                    Ok(DeliveryRecord {
                        id: id.clone(),
                        event: row.try_get("event")?,
                        action: row.try_get("action")?,
                        state: DeliveryState::parse(&row.try_get::<String, _>("state")?),
                        attempts: row.try_get("attempts")?,
                        last_error: row.try_get("last_error")?,
                    })
                })
                .transpose()
            }

            async fn inbox_stats(&self) -> StoreResult<InboxStats> {
                let rows = sqlx::query(
                    "SELECT state, COUNT(*) AS n, MIN(received_at) AS oldest FROM webhook_deliveries \
                     WHERE state IN ('pending', 'failed') GROUP BY state",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut stats = InboxStats::default();
                for row in rows {
                    let state: String = row.try_get("state")?;
                    let n: i64 = row.try_get("n")?;
                    if state == "pending" {
                        stats.pending = n;
                        stats.oldest_pending_at = row.try_get("oldest")?;
                    } else {
                        stats.failed = n;
                    }
                }
                Ok(stats)
            }

            async fn prune_deliveries(&self, before: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
                let done = sqlx::query(
                    "DELETE FROM webhook_deliveries WHERE delivery_id IN (SELECT delivery_id FROM webhook_deliveries \
                     WHERE state IN ('done', 'ignored') AND completed_at < $1 LIMIT $2)",
                )
                .bind(before)
                .bind(limit)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected())
            }

            async fn upsert_installation(&self, inst: &InstallationRecord, now: DateTime<Utc>) -> StoreResult<bool> {
                Ok(self.upsert_installations(std::slice::from_ref(inst), now).await? == 1)
            }

            async fn upsert_installations(&self, installations: &[InstallationRecord], now: DateTime<Utc>) -> StoreResult<u64> {
                let mut tx = self.writer.begin_with($begin).await?;
                let mut newly_active = 0;
                for inst in installations {
                    if Self::upsert_installation_in(&mut tx, inst, now).await? {
                        newly_active += 1;
                    }
                }
                tx.commit().await?;
                Ok(newly_active)
            }

            async fn set_installation_state(
                &self,
                id: InstallationId,
                state: InstallationState,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                let mut tx = self.writer.begin_with($begin).await?;
                sqlx::query(
                    "INSERT INTO installations (id, state, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                     ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                )
                .bind(id.get())
                .bind(state.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let (rule, due): (fn(UserStatus) -> UserStatus, bool) = match state {
                    InstallationState::Active => (UserStatus::on_installed, true),
                    InstallationState::Suspended => (UserStatus::on_suspended, false),
                    InstallationState::Uninstalled => (UserStatus::on_uninstalled, false),
                };
                Self::move_users_of(&mut tx, id, rule, due, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn installations(&self) -> StoreResult<Vec<InstallationRecord>> {
                let rows = sqlx::query(
                    "SELECT id, account_id, account_login, account_type, state FROM installations ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(installation_from_row).collect()
            }

            async fn active_installations(&self, limit: i64) -> StoreResult<Vec<InstallationId>> {
                let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM installations WHERE state = 'active' ORDER BY id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(ids.into_iter().filter_map(|id| InstallationId::new(id).ok()).collect())
            }

            async fn retire_unseen_installations(&self, seen_before: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<u64> {
                let mut tx = self.writer.begin_with($begin).await?;
                let ids: Vec<i64> = sqlx::query_scalar(
                    "UPDATE installations SET state = 'uninstalled', updated_at = $2 \
                     WHERE state <> 'uninstalled' AND (seen_at IS NULL OR seen_at < $1) RETURNING id",
                )
                .bind(seen_before)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                for id in &ids {
                    let id = InstallationId::new(*id).map_err(|e| corrupt("installation id", e))?;
                    Self::move_users_of(&mut tx, id, UserStatus::on_uninstalled, false, now).await?;
                }
                tx.commit().await?;
                Ok(ids.len() as u64)
            }

            async fn user_by_id(&self, id: GitHubUserId) -> StoreResult<Option<UserRecord>> {
                let row = sqlx::query(concat!("SELECT ", crate::store::shared::user_columns!(), " FROM users WHERE github_id = $1"))
                    .bind(id.get())
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn user_by_login(&self, login: &Login) -> StoreResult<Option<UserRecord>> {
                // Logins are reused after renames: the most recently confirmed holder wins.
                let row = sqlx::query(concat!(
                    "SELECT ", crate::store::shared::user_columns!(),
                    " FROM users WHERE lower(login) = lower($1) ORDER BY updated_at DESC LIMIT 1"
                ))
                .bind(login.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn track_user(&self, account: &Account, now: DateTime<Utc>) -> StoreResult<bool> {
                sqlx::query("DELETE FROM erased_users WHERE github_id = $1").bind(account.id.get()).execute(&self.writer).await?;
                let done = sqlx::query(
                    "INSERT INTO users (github_id, node_id, login, avatar_url, status, sync_enabled, installation_id, \
                     due_at, next_sync_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'active', TRUE, $5, $6, $6, $6, $6) ON CONFLICT (github_id) DO NOTHING",
                )
                .bind(account.id.get())
                .bind(account.node_id.as_ref().map(|n| n.as_str()))
                .bind(account.login.as_str())
                .bind(account.avatar_url.as_deref())
                .bind(account.installation_id.map(|i| i.get()))
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn rename_user(&self, id: GitHubUserId, login: &Login, now: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query("UPDATE users SET login = $2, updated_at = $3 WHERE github_id = $1")
                    .bind(id.get())
                    .bind(login.as_str())
                    .bind(now)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn revoke_user(&self, id: GitHubUserId, now: DateTime<Utc>) -> StoreResult<()> {
                let mut tx = self.writer.begin_with($begin).await?;
                let current: Option<String> = sqlx::query_scalar("SELECT status FROM users WHERE github_id = $1")
                    .bind(id.get())
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(current) = current {
                    let current: UserStatus = current.parse().map_err(|e: String| corrupt("status", e))?;
                    sqlx::query("UPDATE users SET status = $2, due_at = NULL, updated_at = $3 WHERE github_id = $1")
                        .bind(id.get())
                        .bind(current.on_revoked().as_str())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn note_activity(&self, account: &Account, due: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE users SET login = $2, avatar_url = COALESCE($3, avatar_url), \
                     due_at = CASE WHEN due_at IS NULL OR due_at > $4 \
                       OR (claimed_until > $5 AND due_at <= $5) THEN $4 ELSE due_at END, \
                     next_sync_at = CASE WHEN next_sync_at IS NULL OR next_sync_at > $4 THEN $4 ELSE next_sync_at END, \
                     updated_at = $5 \
                     WHERE github_id = $1 AND status = 'active' AND sync_enabled",
                )
                .bind(account.id.get())
                .bind(account.login.as_str())
                .bind(account.avatar_url.as_deref())
                .bind(due)
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            // In both `note_activity` and `mark_due`, "earlier wins" except against a mark that a
            // fetch in flight (a live lease) is consuming: that mark is cleared when the fetch is
            // recorded, so the new one must replace it or it is lost with it.
            async fn mark_due(&self, id: GitHubUserId, due: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE users SET \
                     due_at = CASE WHEN due_at IS NULL OR due_at > $2 \
                       OR (claimed_until > $3 AND due_at <= $3) THEN $2 ELSE due_at END, \
                     next_sync_at = CASE WHEN next_sync_at IS NULL OR next_sync_at > $2 THEN $2 ELSE next_sync_at END, \
                     updated_at = $3 WHERE github_id = $1",
                )
                .bind(id.get())
                .bind(due)
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn set_sync_enabled(&self, id: GitHubUserId, enabled: bool, now: DateTime<Utc>) -> StoreResult<bool> {
                let mut tx = self.writer.begin_with($begin).await?;
                let installation: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT i.state FROM users u LEFT JOIN installations i ON i.id = u.installation_id \
                     WHERE u.github_id = $1",
                )
                .bind(id.get())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(installation) = installation else { return Ok(false) };
                let status = if enabled {
                    let state: Option<InstallationState> =
                        installation.map(|s| s.parse()).transpose().map_err(|e: String| corrupt("state", e))?;
                    UserStatus::on_opted_in(state)
                } else {
                    UserStatus::OptedOut
                };
                // Opting back in makes the user due now, so the profile catches up at once.
                let due = (enabled && status == UserStatus::Active).then_some(now);
                sqlx::query(
                    "UPDATE users SET sync_enabled = $2, status = $3, updated_at = $4, \
                     due_at = $5, next_sync_at = COALESCE($5, next_sync_at) WHERE github_id = $1",
                )
                .bind(id.get())
                .bind(enabled)
                .bind(status.as_str())
                .bind(now)
                .bind(due)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn erase_user(&self, id: GitHubUserId) -> StoreResult<bool> {
                let mut tx = self.writer.begin_with($begin).await?;
                let done = sqlx::query("DELETE FROM users WHERE github_id = $1").bind(id.get()).execute(&mut *tx).await?;
                if done.rows_affected() == 1 {
                    sqlx::query(
                        "INSERT INTO erased_users (github_id, erased_at) VALUES ($1, $2) \
                         ON CONFLICT (github_id) DO UPDATE SET erased_at = excluded.erased_at",
                    )
                    .bind(id.get())
                    .bind(Utc::now())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn user_counts(&self) -> StoreResult<Vec<(String, i64)>> {
                let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM users GROUP BY status ORDER BY status")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|row| Ok((row.try_get("status")?, row.try_get("n")?))).collect()
            }

            async fn claim_due_users(
                &self,
                which: DueKind,
                limit: usize,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
            ) -> StoreResult<Vec<DueUser>> {
                let query = match which {
                    DueKind::Marked => sqlx::query(concat!(
                        "UPDATE users SET claimed_until = $3 WHERE github_id IN (SELECT github_id FROM users \
                         WHERE due_at <= $1 AND status = 'active' AND sync_enabled \
                         AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY due_at LIMIT $2",
                        $lock,
                        ") RETURNING ", crate::store::shared::due_user_columns!()
                    )),
                    DueKind::All => sqlx::query(concat!(
                        "UPDATE users SET claimed_until = $3 WHERE github_id IN (SELECT github_id FROM users \
                         WHERE status = 'active' AND sync_enabled AND next_sync_at <= $1 \
                         AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY next_sync_at LIMIT $2",
                        $lock,
                        ") RETURNING ", crate::store::shared::due_user_columns!()
                    )),
                };
                let rows = query.bind(now).bind(limit as i64).bind(lease_until).fetch_all(&self.writer).await?;
                rows.iter().map(due_user_from_row).collect()
            }

            async fn count_due_users(&self, now: DateTime<Utc>) -> StoreResult<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM users WHERE status = 'active' AND sync_enabled AND next_sync_at <= $1",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn next_marked_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
                let row = sqlx::query(
                    "SELECT due_at FROM users WHERE due_at IS NOT NULL AND status = 'active' AND sync_enabled \
                     ORDER BY due_at LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                Ok(match row {
                    Some(row) => row.try_get("due_at")?,
                    None => None,
                })
            }

            async fn record_outcomes(
                &self,
                outcomes: &[UserOutcome],
                claimed_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                let mut tx = self.writer.begin_with($begin).await?;
                for outcome in outcomes {
                    match outcome {
                        UserOutcome::Changed { profile, hash, observed, next_sync_at } => {
                            Self::store_profile(&mut tx, profile, hash, observed.as_ref(), *next_sync_at, claimed_at, now).await?
                        }
                        UserOutcome::Unchanged { id, observed, next_sync_at } => {
                            sqlx::query(
                                "UPDATE users SET observed_hash = $2, last_synced_at = $3, next_sync_at = $4, \
                                 due_at = CASE WHEN due_at <= $5 THEN NULL ELSE due_at END, claimed_until = NULL, \
                                 failures = 0, last_error = NULL WHERE github_id = $1",
                            )
                            .bind(id.get())
                            .bind(observed.as_str())
                            .bind(now)
                            .bind(*next_sync_at)
                            .bind(claimed_at)
                            .execute(&mut *tx)
                            .await?;
                        }
                        UserOutcome::Gone { id } => {
                            sqlx::query(
                                "UPDATE users SET status = CASE WHEN status = 'opted_out' THEN status ELSE 'gone' END, \
                                 due_at = NULL, claimed_until = NULL, last_synced_at = $2, updated_at = $2 \
                                 WHERE github_id = $1",
                            )
                            .bind(id.get())
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                        UserOutcome::Failed { id, error, retry_at } => {
                            sqlx::query(
                                "UPDATE users SET failures = failures + 1, last_error = $2, next_sync_at = $3, \
                                 due_at = CASE WHEN due_at IS NULL THEN NULL ELSE $3 END, claimed_until = NULL, \
                                 updated_at = $4 WHERE github_id = $1",
                            )
                            .bind(id.get())
                            .bind(error)
                            .bind(*retry_at)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                        UserOutcome::Released { id } => {
                            sqlx::query("UPDATE users SET claimed_until = NULL WHERE github_id = $1")
                                .bind(id.get())
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn start_run(
                &self,
                trigger: &str,
                now: DateTime<Utc>,
                abandoned_before: DateTime<Utc>,
            ) -> StoreResult<RunStart> {
                sqlx::query(
                    "UPDATE sync_runs SET state = 'abandoned', finished_at = $1 \
                     WHERE state = 'running' AND heartbeat_at < $2",
                )
                .bind(now)
                .bind(abandoned_before)
                .execute(&self.writer)
                .await?;
                let inserted = sqlx::query_scalar::<_, i64>(
                    "INSERT INTO sync_runs (trigger, state, started_at, heartbeat_at) VALUES ($1, 'running', $2, $2) \
                     RETURNING id",
                )
                .bind(trigger)
                .bind(now)
                .fetch_one(&self.writer)
                .await;
                match inserted {
                    Ok(id) => Ok(RunStart::Started(RunId::new(id).map_err(|e| corrupt("run id", e))?)),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => match self.running_run().await? {
                        Some(id) => Ok(RunStart::AlreadyRunning(id)),
                        None => Err(StoreError::Conflict("a pass ended while this one started; try again".into())),
                    },
                    Err(e) => Err(e.into()),
                }
            }

            async fn add_to_run(&self, id: RunId, c: &RunCounts, now: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE sync_runs SET users_due = users_due + $2, fetched = fetched + $3, changed = changed + $4, \
                     unchanged = unchanged + $5, failed = failed + $6, gone = gone + $7, \
                     points_core = points_core + $8, points_graphql = points_graphql + $9, \
                     installations_added = installations_added + $10, \
                     installations_removed = installations_removed + $11, heartbeat_at = $12 WHERE id = $1",
                )
                .bind(id.get())
                .bind(c.users_due)
                .bind(c.fetched)
                .bind(c.changed)
                .bind(c.unchanged)
                .bind(c.failed)
                .bind(c.gone)
                .bind(c.points_core)
                .bind(c.points_graphql)
                .bind(c.installations_added)
                .bind(c.installations_removed)
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn add_run_message(&self, id: RunId, kind: &str, message: &str, now: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query("INSERT INTO sync_run_messages (run_id, kind, at, message) VALUES ($1, $2, $3, $4)")
                    .bind(id.get())
                    .bind(kind)
                    .bind(now)
                    .bind(message)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn finish_run(&self, id: RunId, now: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE sync_runs SET state = 'finished', finished_at = $2, heartbeat_at = $2 \
                     WHERE id = $1 AND state = 'running'",
                )
                .bind(id.get())
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn running_run(&self) -> StoreResult<Option<RunId>> {
                let id: Option<i64> = sqlx::query_scalar("SELECT id FROM sync_runs WHERE state = 'running'")
                    .fetch_optional(&self.pool)
                    .await?;
                id.map(|id| RunId::new(id).map_err(|e| corrupt("run id", e))).transpose()
            }

            async fn runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
                let rows = sqlx::query(concat!("SELECT ", crate::store::shared::run_columns!(), " FROM sync_runs ORDER BY id DESC LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                let mut runs = Vec::with_capacity(rows.len());
                for row in &rows {
                    runs.push(self.attach_messages(run_from_row(row)?).await?);
                }
                Ok(runs)
            }

            async fn run(&self, id: RunId) -> StoreResult<Option<RunRecord>> {
                let row = sqlx::query(concat!("SELECT ", crate::store::shared::run_columns!(), " FROM sync_runs WHERE id = $1"))
                    .bind(id.get())
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(row) => Ok(Some(self.attach_messages(run_from_row(&row)?).await?)),
                    None => Ok(None),
                }
            }

            async fn last_finished_run(&self) -> StoreResult<Option<RunRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ", crate::store::shared::run_columns!(),
                    " FROM sync_runs WHERE state = 'finished' ORDER BY finished_at DESC LIMIT 1"
                ))
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(row) => Ok(Some(self.attach_messages(run_from_row(&row)?).await?)),
                    None => Ok(None),
                }
            }

            async fn book_redelivery(
                &self,
                guid: &str,
                max: i32,
                not_since: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO redelivery_requests (guid, requests, last_requested_at) VALUES ($1, 1, $4) \
                     ON CONFLICT (guid) DO UPDATE SET requests = redelivery_requests.requests + 1, \
                     last_requested_at = excluded.last_requested_at \
                     WHERE redelivery_requests.requests < $2 AND redelivery_requests.last_requested_at < $3",
                )
                .bind(guid)
                .bind(max)
                .bind(not_since)
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn sweep_mark(&self, name: &str) -> StoreResult<Option<i64>> {
                Ok(sqlx::query_scalar("SELECT value FROM sweep_marks WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn set_sweep_mark(&self, name: &str, value: i64, now: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sweep_marks (name, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(name)
                .bind(value)
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn save_rate_limit(&self, r: &RateLimitRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO rate_limits (installation_id, resource, \"limit\", remaining, reset_at, paused_until, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (installation_id, resource) DO UPDATE SET \
                     \"limit\" = excluded.\"limit\", remaining = excluded.remaining, reset_at = excluded.reset_at, \
                     paused_until = excluded.paused_until, updated_at = excluded.updated_at",
                )
                .bind(r.installation_id.get())
                .bind(&r.resource)
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
                let rows = sqlx::query(
                    "SELECT installation_id, resource, \"limit\", remaining, reset_at, paused_until, updated_at \
                     FROM rate_limits ORDER BY installation_id, resource",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(RateLimitRecord {
                            installation_id: InstallationId::new(row.try_get("installation_id")?)
                                .map_err(|e| corrupt("installation id", e))?,
                            resource: row.try_get("resource")?,
                            limit: row.try_get("limit")?,
                            remaining: row.try_get("remaining")?,
                            reset_at: row.try_get("reset_at")?,
                            paused_until: row.try_get("paused_until")?,
                            updated_at: row.try_get("updated_at")?,
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use {due_user_columns, portable_store, run_columns, user_columns};
