//! Chooses the installation token for each request. Any active installation's
//! token can read public profiles, so requests go where budget is: first the
//! tokens already cached (minting is rate limited too), most budget first;
//! only when all of those are busy or spent is another installation's token
//! minted. A token that cannot be had (suspended, uninstalled) is skipped.

use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::{InstallationId, Resource};
use crate::github::{CallOptions, GitHub, GitHubError, Meter, Priority};
use crate::store::Store;

/// Installations considered at once (memory stays flat with a million of them).
const CANDIDATES: i64 = 256;
/// How often the candidate list is read again.
const REFRESH: Duration = Duration::from_secs(30);
/// With no active installation known, look again this much later.
const NONE_YET: chrono::Duration = chrono::Duration::seconds(5);
/// A refusal this short is waited out here rather than reported.
const SHORT_WAIT: chrono::Duration = chrono::Duration::seconds(2);

pub struct TokenPicker {
    store: Arc<dyn Store>,
    github: GitHub,
    state: Mutex<PickerState>,
}

#[derive(Default)]
struct PickerState {
    candidates: Vec<InstallationId>,
    loaded_at: Option<Instant>,
    unusable: HashSet<InstallationId>,
}

impl TokenPicker {
    pub fn new(store: Arc<dyn Store>, github: GitHub) -> Self {
        Self { store, github, state: Mutex::new(PickerState::default()) }
    }

    async fn candidates(&self) -> Result<Vec<InstallationId>, GitHubError> {
        let stale = self.state.lock().expect("picker poisoned").loaded_at.is_none_or(|t| t.elapsed() > REFRESH);
        if stale {
            let fresh = self
                .store
                .active_installations(CANDIDATES)
                .await
                .map_err(|e| GitHubError::Transport(format!("cannot list installations: {e}")))?;
            let mut state = self.state.lock().expect("picker poisoned");
            state.candidates = fresh;
            state.loaded_at = Some(Instant::now());
            state.unusable.clear();
        }
        let state = self.state.lock().expect("picker poisoned");
        Ok(state.candidates.iter().copied().filter(|id| !state.unusable.contains(id)).collect())
    }

    /// Forces a fresh candidate list on the next call (installations changed).
    pub fn invalidate(&self) {
        self.state.lock().expect("picker poisoned").loaded_at = None;
    }

    /// Candidates in the order to try them.
    fn order(
        &self,
        preferred: Option<InstallationId>,
        all: Vec<InstallationId>,
        resource: Resource,
        priority: Priority,
    ) -> Vec<InstallationId> {
        let now = Utc::now();
        let governor = self.github.governor();
        let budget = |id: &InstallationId| governor.peek(*id, resource, 1, priority, now).unwrap_or(i64::MIN);
        let (mut cached, mut other): (Vec<_>, Vec<_>) = all.into_iter().partition(|id| self.github.has_token(*id));
        // Each budget read once: other tasks spend while we sort, and a key that moves
        // mid-sort is not a total order (Rust's sort panics on that).
        cached.sort_by_cached_key(|id| std::cmp::Reverse(budget(id)));
        other.sort_by_cached_key(|id| std::cmp::Reverse(budget(id)));
        let mut order: Vec<InstallationId> = preferred.into_iter().collect();
        order.extend(cached.into_iter().chain(other).filter(|id| Some(*id) != preferred));
        order
    }

    /// Runs `call` on the best token that will take it now. When every token
    /// refuses, waits out a short refusal, or reports the earliest time one
    /// will take it (`Blocked`) so the caller can wait with a heartbeat.
    pub async fn call<'m, T, F, Fut>(
        &self,
        preferred: Option<InstallationId>,
        resource: Resource,
        priority: Priority,
        meter: Option<&'m Meter>,
        call: F,
    ) -> Result<T, GitHubError>
    where
        F: Fn(InstallationId, CallOptions<'m>) -> Fut,
        Fut: Future<Output = Result<T, GitHubError>>,
    {
        loop {
            let candidates = self.candidates().await?;
            if candidates.is_empty() && preferred.is_none() {
                // Read again next time: a pass's listing may be storing the installations right now.
                self.invalidate();
                return Err(GitHubError::Blocked {
                    until: Utc::now() + NONE_YET,
                    reason: "no active installation: no token to read profiles with".into(),
                });
            }
            let order = self.order(preferred, candidates, resource, priority);
            let mut earliest: Option<DateTime<Utc>> = None;
            let mut busy = false;
            let mut unavailable: Option<GitHubError> = None;
            for id in order {
                match call(id, CallOptions { wait: false, meter }).await {
                    Err(GitHubError::Blocked { until, .. }) => {
                        earliest = Some(earliest.map_or(until, |e| e.min(until)))
                    }
                    Err(GitHubError::RateLimited { reset_at }) => {
                        earliest = Some(earliest.map_or(reset_at, |e| e.min(reset_at)))
                    }
                    Err(GitHubError::SecondaryLimit { .. }) => busy = true,
                    Err(e @ GitHubError::TokenUnavailable { .. }) => {
                        tracing::warn!(installation_id = %id, error.message = %e, "skipping an installation whose token cannot be had");
                        self.state.lock().expect("picker poisoned").unusable.insert(id);
                        unavailable = Some(e);
                    }
                    other => return other,
                }
            }
            // Every token tried cannot be had and none is merely spent or busy: waiting
            // will not help (and the preferred installation, tried every round, would
            // otherwise be asked again forever).
            if let (None, false, Some(e)) = (earliest, busy, unavailable) {
                return Err(e);
            }
            let now = Utc::now();
            let until = earliest.unwrap_or(now + chrono::Duration::seconds(1));
            if until - now > SHORT_WAIT {
                return Err(GitHubError::Blocked {
                    until,
                    reason: "every installation token is spent, paused or busy".into(),
                });
            }
            tokio::time::sleep((until - now).to_std().unwrap_or_default().max(Duration::from_millis(20))).await;
        }
    }
}
