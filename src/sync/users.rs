//! What the users API does, one function per endpoint that does more than a
//! lookup: track a user (fetch, then store), refresh one now, opt out or in.
//! The HTTP handlers parse and answer; the sequencing of store and GitHub
//! calls lives here.

use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

use super::reconcile::Reconciler;
use crate::domain::{Account, AccountKind, DueUser, GitHubUserId, Login, UserOutcome, UserRecord, UserStatus};
use crate::github::GitHubError;
use crate::store::{Store, StoreError};

/// Why a users-API call did not do what was asked; `http` maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("GitHub is not configured")]
    NotConfigured,
    #[error("no tracked user with id {0}")]
    NotTracked(GitHubUserId),
    #[error("no such GitHub user")]
    NoSuchGitHubUser,
    /// Opted out, or not active: nothing to sync.
    #[error("user {id} is {status}: not synced")]
    NotSynced { id: GitHubUserId, status: UserStatus },
    /// GitHub answered, but the fetch failed (the user's error is stored too).
    #[error("{0}")]
    FetchFailed(String),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whom `POST /api/users` asks for.
pub enum TrackBy {
    Login(Login),
    Id(GitHubUserId),
}

/// The users API's service: the store, the reconciler to fetch with (absent
/// when GitHub is not configured), and the refresher's wake-up.
#[derive(Clone)]
pub struct UserService {
    store: Arc<dyn Store>,
    reconciler: Option<Reconciler>,
    refresh_wake: Arc<Notify>,
    stale_after: Duration,
}

impl UserService {
    pub fn new(
        store: Arc<dyn Store>,
        reconciler: Option<Reconciler>,
        refresh_wake: Arc<Notify>,
        stale_after: Duration,
    ) -> Self {
        Self { store, reconciler, refresh_wake, stale_after }
    }

    fn reconciler(&self) -> Result<&Reconciler, UserError> {
        self.reconciler.as_ref().ok_or(UserError::NotConfigured)
    }

    async fn existing(&self, id: GitHubUserId) -> Result<UserRecord, UserError> {
        self.store.user_by_id(id).await?.ok_or(UserError::NotTracked(id))
    }

    /// Tracks a user who linked GitHub without installing the App: fetched
    /// right away with any active installation's token, never anonymously.
    /// Returns the stored user and whether it is new.
    pub async fn track(&self, whom: TrackBy) -> Result<(UserRecord, bool), UserError> {
        let reconciler = self.reconciler()?;
        let profile = match whom {
            TrackBy::Login(login) => reconciler.fetch_by_login(&login).await,
            TrackBy::Id(id) => {
                if let Some(user) = self.store.user_by_id(id).await? {
                    return Ok((user, false));
                }
                reconciler.fetch_by_id(id).await
            }
        };
        let profile = match profile {
            Err(GitHubError::NotFound) => return Err(UserError::NoSuchGitHubUser),
            other => other?,
        };
        if let Some(user) = self.store.user_by_id(profile.github_id).await? {
            return Ok((user, false));
        }
        let now = Utc::now();
        let account = Account {
            id: profile.github_id,
            login: profile.login.clone(),
            node_id: profile.node_id.clone(),
            avatar_url: Some(profile.key.avatar_url.clone()),
            kind: AccountKind::User,
            installation_id: None,
        };
        let created = self.store.track_user(&account, now).await?;
        let next_sync_at = now + chrono::Duration::from_std(self.stale_after).unwrap_or_default();
        let outcome = UserOutcome::Fetched {
            hash: profile.key.hash(),
            observed: None,
            next_sync_at,
            changed: true,
            profile: Box::new(profile),
        };
        self.store.record_outcomes(&[outcome], now, Utc::now()).await?;
        Ok((self.existing(account.id).await?, created))
    }

    /// Refreshes one user now, over REST; returns what is stored after.
    pub async fn sync_now(&self, id: GitHubUserId) -> Result<UserRecord, UserError> {
        let reconciler = self.reconciler()?;
        let user = self.existing(id).await?;
        if !user.sync_enabled || user.status != UserStatus::Active {
            return Err(UserError::NotSynced { id: user.github_id, status: user.status });
        }
        let due = DueUser {
            github_id: user.github_id,
            node_id: None,
            login: user.login.clone(),
            installation_id: user.installation_id,
            profile_hash: None,
            observed_hash: None,
            failures: user.failures,
        };
        let started = Utc::now();
        let outcome = reconciler.refresh_one(due).await?;
        self.store.record_outcomes(std::slice::from_ref(&outcome), started, Utc::now()).await?;
        if let UserOutcome::Failed { error, .. } = outcome {
            return Err(UserError::FetchFailed(error));
        }
        self.existing(user.github_id).await
    }

    /// Opts a user out or back in; opting in wakes the refresher (the user is due).
    pub async fn set_sync_enabled(&self, id: GitHubUserId, enabled: bool) -> Result<UserRecord, UserError> {
        if !self.store.set_sync_enabled(id, enabled, Utc::now()).await? {
            return Err(UserError::NotTracked(id));
        }
        if enabled {
            self.refresh_wake.notify_one();
        }
        self.existing(id).await
    }
}
