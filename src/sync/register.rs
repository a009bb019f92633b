//! `POST /api/users/batch`: backfilling an existing user base. Ids are stored
//! in one store call, due at once; logins are resolved with GitHub a few at a
//! time, and a login GitHub cannot resolve now (or at all) is handed back.

use chrono::Utc;
use futures_util::{StreamExt, stream};
use serde::Serialize;
use std::collections::BTreeSet;

use super::users::{TrackBy, UserError, UserService};
use crate::domain::{GitHubUserId, Login};

/// The most users one batch may name: a request stays a few seconds of work.
pub const MAX_BATCH: usize = 1000;
/// Login lookups in flight at once (the governor caps each token further).
const RESOLVE_CONCURRENCY: usize = 8;

/// What a batch did, as `POST /api/users/batch` answers it.
#[derive(Debug, Default, Serialize)]
pub struct BatchOutcome {
    pub tracked: usize,
    pub already_tracked: usize,
    /// Logins GitHub does not know, or could not resolve now: ask again for these.
    pub unresolved: Vec<Login>,
}

impl UserService {
    /// Tracks every user named (at most `MAX_BATCH`; the caller checks), as
    /// `track` does one: ids stored at once and fetched when the budget allows.
    pub async fn track_batch(&self, users: Vec<TrackBy>) -> Result<BatchOutcome, UserError> {
        let mut ids = BTreeSet::new();
        let mut logins = Vec::new();
        for whom in users {
            match whom {
                TrackBy::Id(id) => {
                    ids.insert(id);
                }
                TrackBy::Login(login) => logins.push(login),
            }
        }
        let mut outcome = BatchOutcome::default();
        let ids: Vec<GitHubUserId> = ids.into_iter().collect();
        let created = self.store.register_users(&ids, Utc::now()).await?.len();
        outcome.tracked += created;
        outcome.already_tracked += ids.len() - created;

        let resolved: Vec<_> = stream::iter(logins)
            .map(|login| async move { (self.resolve(&login).await, login) })
            .buffer_unordered(RESOLVE_CONCURRENCY)
            .collect()
            .await;
        let mut profiles = Vec::new();
        for (answer, login) in resolved {
            match answer {
                Ok(profile) if !ids.contains(&profile.github_id) => profiles.push(profile),
                Ok(_) => {} // named by id in this batch too: counted there
                Err(UserError::NoSuchGitHubUser | UserError::Unresolved { .. } | UserError::NotConfigured) => {
                    outcome.unresolved.push(login)
                }
                Err(e) => return Err(e),
            }
        }
        // One login named twice is one user.
        profiles.sort_by_key(|p| p.github_id);
        profiles.dedup_by_key(|p| p.github_id);
        let resolved = profiles.len();
        let created = self.track_resolved(profiles).await?;
        outcome.tracked += created;
        outcome.already_tracked += resolved - created;
        if outcome.tracked > 0 {
            self.refresh_wake.notify_one();
        }
        Ok(outcome)
    }
}
