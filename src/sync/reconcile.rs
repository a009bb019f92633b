//! One batch of due users in, one outcome per user out. Known users are
//! checked with GraphQL `nodes` (a few points per hundred) and compared by
//! content hash; only new, changed or unresolvable users are fetched whole
//! over REST. The only side effects are the GitHub calls: the caller stores
//! the outcomes. The `Reconciler` also does the one-off reads the users API
//! needs (one user now, a user by login or id).

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};
use std::sync::Arc;
use std::time::Duration;

use super::backoff::failure_retry_at;
use super::picker::TokenPicker;
use crate::config::SyncSettings;
use crate::domain::{DueUser, GitHubUserId, Login, NodeId, ProfileHash, Resource, RestProfile, UserOutcome};
use crate::github::{GitHub, GitHubError, MAX_NODES, Meter, Priority};
use crate::store::Store;

/// REST fetches in flight at once per batch (the governor caps each token further).
const REST_CONCURRENCY: usize = 16;

/// What a batch found, plus what the run record should say about it.
#[derive(Default)]
pub struct BatchResult {
    pub outcomes: Vec<UserOutcome>,
    pub notes: Vec<String>,
    pub errors: Vec<String>,
    /// Set when rate limits held users back: when to try again.
    pub blocked_until: Option<DateTime<Utc>>,
}

impl BatchResult {
    fn block(&mut self, until: DateTime<Utc>) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |t| t.min(until)));
    }
}

/// Reads users from GitHub and decides what each one's outcome is. Shared
/// (cheaply cloned) by the pass, the refresher and the users service.
#[derive(Clone)]
pub struct Reconciler {
    github: GitHub,
    picker: Arc<TokenPicker>,
    stale_after: Duration,
    retry_base: Duration,
}

impl Reconciler {
    pub fn new(store: Arc<dyn Store>, github: GitHub, settings: &SyncSettings) -> Self {
        let picker = Arc::new(TokenPicker::new(store, github.clone()));
        Self { github, picker, stale_after: settings.stale_after, retry_base: settings.retry_base }
    }

    /// The installations changed: pick tokens from a fresh list next time.
    pub fn installations_changed(&self) {
        self.picker.invalidate();
    }

    fn failed(&self, user: &DueUser, error: &GitHubError, now: DateTime<Utc>) -> UserOutcome {
        let retry_at = failure_retry_at(user.failures + 1, self.retry_base, self.stale_after, now);
        UserOutcome::Failed { id: user.github_id, error: error.to_string(), retry_at }
    }

    /// GraphQL for users we know; sorts them into unchanged and to-fetch.
    async fn check_known(
        &self,
        users: Vec<DueUser>,
        meter: &Meter,
        result: &mut BatchResult,
    ) -> Vec<(DueUser, Option<ProfileHash>)> {
        let mut to_fetch = Vec::new();
        let now = Utc::now();
        let mut users = users.into_iter().peekable();
        while users.peek().is_some() {
            let chunk: Vec<DueUser> = users.by_ref().take(MAX_NODES).collect();
            let ids: Vec<NodeId> = chunk.iter().filter_map(|u| u.node_id.clone()).collect();
            let answer = self
                .picker
                .call(None, Resource::Graphql, Priority::Background, Some(meter), |installation, opts| {
                    self.github.users_by_node_ids(installation, &ids, Priority::Background, opts)
                })
                .await;
            match answer {
                Ok(answer) => {
                    for (user, seen) in chunk.into_iter().zip(answer.users) {
                        let Some(seen) = seen else {
                            // GraphQL could not resolve it: REST decides (404 → gone).
                            to_fetch.push((user, None));
                            continue;
                        };
                        let hash = seen.key.hash();
                        let same =
                            user.observed_hash.as_ref() == Some(&hash) || user.profile_hash.as_ref() == Some(&hash);
                        if same {
                            result.outcomes.push(UserOutcome::Unchanged { id: user.github_id, observed: hash });
                        } else {
                            to_fetch.push((user, Some(hash)));
                        }
                    }
                }
                // Refused, or still failing after retries: this batch goes over REST (the run notes it once).
                Err(GitHubError::GraphqlRefused(message)) => {
                    result.notes.push(format!(
                        "GraphQL refused: unavailable for this token ({message}); users checked over REST instead"
                    ));
                    to_fetch.extend(chunk.into_iter().map(|u| (u, None)));
                }
                Err(e) if e.is_transient() => {
                    result.notes.push(format!("GraphQL failing ({e}); users checked over REST instead"));
                    to_fetch.extend(chunk.into_iter().map(|u| (u, None)));
                }
                Err(e) if e.is_rate_limit() => {
                    if let GitHubError::Blocked { until, .. } | GitHubError::RateLimited { reset_at: until } = &e {
                        result.block(*until);
                    }
                    result.outcomes.extend(chunk.iter().map(|u| UserOutcome::Released { id: u.github_id }));
                }
                Err(e) => {
                    result.errors.push(format!("GraphQL check of {} users failed: {e}", chunk.len()));
                    result.outcomes.extend(chunk.iter().map(|u| self.failed(u, &e, now)));
                }
            }
        }
        to_fetch
    }

    /// Fetches one user whole over REST.
    async fn fetch(
        &self,
        user: DueUser,
        observed: Option<ProfileHash>,
        priority: Priority,
        meter: &Meter,
    ) -> Result<UserOutcome, GitHubError> {
        // A webhook refresh prefers the user's own installation; a pass goes where budget is.
        let preferred = if priority == Priority::Webhook { user.installation_id } else { None };
        let fetched = self
            .picker
            .call(preferred, Resource::Core, priority, Some(meter), |installation, opts| {
                self.github.user_by_id(installation, user.github_id, priority, opts)
            })
            .await;
        let now = Utc::now();
        match fetched {
            Ok(profile) => {
                let hash = profile.key.hash();
                Ok(UserOutcome::Fetched {
                    // Unchanged too can come this way: a GraphQL fallback, or a refresh a webhook asked for.
                    changed: user.profile_hash.as_ref() != Some(&hash),
                    hash,
                    observed,
                    profile: Box::new(profile),
                })
            }
            Err(GitHubError::NotFound { .. }) => Ok(UserOutcome::Gone { id: user.github_id }),
            Err(e) if e.is_rate_limit() => Err(e),
            Err(e) => Ok(self.failed(&user, &e, now)),
        }
    }

    /// Reconciles one batch. `rest_only` skips the GraphQL check (webhook refreshes).
    pub async fn reconcile_batch(
        &self,
        users: Vec<DueUser>,
        priority: Priority,
        rest_only: bool,
        meter: &Meter,
    ) -> BatchResult {
        let mut result = BatchResult::default();
        let (known, new): (Vec<DueUser>, Vec<DueUser>) =
            users.into_iter().partition(|u| !rest_only && !u.is_new() && u.node_id.is_some());
        let mut to_fetch: Vec<(DueUser, Option<ProfileHash>)> = new.into_iter().map(|u| (u, None)).collect();
        to_fetch.extend(self.check_known(known, meter, &mut result).await);
        let fetched: Vec<(GitHubUserId, Result<UserOutcome, GitHubError>)> = stream::iter(to_fetch)
            .map(|(user, observed)| async move { (user.github_id, self.fetch(user, observed, priority, meter).await) })
            .buffer_unordered(REST_CONCURRENCY)
            .collect()
            .await;
        for (id, outcome) in fetched {
            match outcome {
                Ok(UserOutcome::Failed { id, error, retry_at }) => {
                    result.errors.push(format!("user {id}: {error}"));
                    result.outcomes.push(UserOutcome::Failed { id, error, retry_at });
                }
                Ok(outcome) => result.outcomes.push(outcome),
                Err(e) => {
                    if let GitHubError::Blocked { until, .. } | GitHubError::RateLimited { reset_at: until } = &e {
                        result.block(*until);
                    }
                    result.outcomes.push(UserOutcome::Released { id });
                }
            }
        }
        result
    }

    /// Fetches one user now over REST (admin "sync"), spending the reserve if need be.
    pub async fn refresh_one(&self, user: DueUser) -> Result<UserOutcome, GitHubError> {
        let meter = Meter::default();
        let mut result = self.reconcile_batch(vec![user], Priority::Webhook, true, &meter).await;
        match (result.outcomes.pop(), result.blocked_until) {
            (Some(UserOutcome::Released { .. }), Some(until)) => {
                Err(GitHubError::Blocked { until, reason: "rate limits".into() })
            }
            (Some(outcome), _) => Ok(outcome),
            (None, _) => Err(GitHubError::Decode("no outcome for the user".into())),
        }
    }

    /// Reads a user by login with any active installation's token (`POST /api/users`).
    pub async fn fetch_by_login(&self, login: &Login) -> Result<RestProfile, GitHubError> {
        self.picker
            .call(None, Resource::Core, Priority::Webhook, None, |installation, opts| {
                self.github.user_by_login(installation, login, Priority::Webhook, opts)
            })
            .await
    }

    /// Reads a user by id with any active installation's token.
    pub async fn fetch_by_id(&self, id: GitHubUserId) -> Result<RestProfile, GitHubError> {
        self.picker
            .call(None, Resource::Core, Priority::Webhook, None, |installation, opts| {
                self.github.user_by_id(installation, id, Priority::Webhook, opts)
            })
            .await
    }
}
