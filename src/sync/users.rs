//! What the users API does, one function per endpoint that does more than a
//! lookup: track a user (by id: stored at once; by login: resolved, then
//! stored), refresh one now, opt out or in. Batches are in `register.rs`.
//! The HTTP handlers parse and answer; the sequencing of store and GitHub
//! calls lives here.

use chrono::Utc;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

use super::reconcile::Reconciler;
use crate::domain::{DueUser, GitHubUserId, Login, RestProfile, UserOutcome, UserRecord, UserStatus};
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
    /// GitHub could not say now who a login is (rate limits, an outage): ask again later.
    #[error("cannot resolve login {login} now ({reason}); try again later")]
    Unresolved { login: Login, reason: String, retry_after: Duration },
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
    pub(super) store: Arc<dyn Store>,
    pub(super) reconciler: Option<Reconciler>,
    pub(super) refresh_wake: Arc<Notify>,
}

impl UserService {
    pub fn new(store: Arc<dyn Store>, reconciler: Option<Reconciler>, refresh_wake: Arc<Notify>) -> Self {
        Self { store, reconciler, refresh_wake }
    }

    fn reconciler(&self) -> Result<&Reconciler, UserError> {
        self.reconciler.as_ref().ok_or(UserError::NotConfigured)
    }

    async fn existing(&self, id: GitHubUserId) -> Result<UserRecord, UserError> {
        self.store.user_by_id(id).await?.ok_or(UserError::NotTracked(id))
    }

    /// Tracks a user who linked GitHub without installing the App. Returns
    /// the stored user and whether it is new. By id, the user is stored at
    /// once and fetched when the budget allows (marked due: the refresher or
    /// the next pass), so no rate limit or GitHub error loses a registration.
    /// By login, GitHub must first say whose it is.
    pub async fn track(&self, whom: TrackBy) -> Result<(UserRecord, bool), UserError> {
        match whom {
            TrackBy::Id(id) => {
                let created = !self.store.register_users(&[id], Utc::now()).await?.is_empty();
                if created {
                    self.refresh_wake.notify_one();
                }
                Ok((self.existing(id).await?, created))
            }
            TrackBy::Login(login) => {
                let profile = self.resolve(&login).await?;
                if let Some(user) = self.store.user_by_id(profile.github_id).await? {
                    return Ok((user, false));
                }
                let id = profile.github_id;
                let created = self.track_resolved(vec![profile]).await? == 1;
                Ok((self.existing(id).await?, created))
            }
        }
    }

    /// Who a login is, asked of GitHub now with any active installation's token.
    pub(super) async fn resolve(&self, login: &Login) -> Result<RestProfile, UserError> {
        match self.reconciler()?.fetch_by_login(login).await {
            Ok(profile) => Ok(profile),
            Err(GitHubError::NotFound { .. }) => Err(UserError::NoSuchGitHubUser),
            Err(e) => {
                Err(UserError::Unresolved { login: login.clone(), reason: e.to_string(), retry_after: retry_after(&e) })
            }
        }
    }

    /// Tracks users whose profile a login lookup just fetched, and stores
    /// those profiles (no second fetch): two store calls however many.
    /// Returns how many were new; a user tracked already is left as it is.
    pub(super) async fn track_resolved(&self, profiles: Vec<RestProfile>) -> Result<usize, UserError> {
        let ids: Vec<GitHubUserId> = profiles.iter().map(|p| p.github_id).collect();
        let now = Utc::now();
        let created: HashSet<GitHubUserId> = self.store.register_users(&ids, now).await?.into_iter().collect();
        let outcomes: Vec<UserOutcome> = profiles
            .into_iter()
            .filter(|p| created.contains(&p.github_id))
            .map(|profile| UserOutcome::Fetched {
                hash: profile.key.hash(),
                observed: None,
                changed: true,
                profile: Box::new(profile),
            })
            .collect();
        self.store.record_outcomes(&outcomes, None, now, Utc::now()).await?;
        Ok(outcomes.len())
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
        self.store.record_outcomes(std::slice::from_ref(&outcome), None, started, Utc::now()).await?;
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

/// When to ask again about a login GitHub could not resolve: when the limit
/// that stopped us lifts, or shortly for an outage.
fn retry_after(e: &GitHubError) -> Duration {
    /// After a GitHub error with no time of its own.
    const DEFAULT: Duration = Duration::from_secs(30);
    let until = match e {
        GitHubError::Blocked { until, .. } | GitHubError::RateLimited { reset_at: until } => *until,
        GitHubError::SecondaryLimit { retry_after: Some(after) } => return (*after).max(Duration::from_secs(1)),
        _ => return DEFAULT,
    };
    (until - Utc::now()).to_std().unwrap_or_default().max(Duration::from_secs(1))
}
