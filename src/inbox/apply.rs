//! Applies a round of stored deliveries, in the order they were claimed.
//! Idempotent: a redelivery, or a retry after a crash between apply and
//! complete, leaves the same state.
//!
//! Most deliveries are activity (a star, a push, a comment) by a sender who
//! may be a tracked user. A run of them is applied together: one read tells
//! which senders we sync, one statement marks those due. Applied one by one,
//! that was a read and a write per delivery, a round trip each, and the
//! worker fell behind the request path. Any other event (an installation, a
//! rename, a revocation) ends the run and is applied on its own, so a user
//! installed or revoked earlier in the round is seen as such by the activity
//! after it.

use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::Notify;

use crate::domain::{Account, ClaimedDelivery, GitHubUserId, InstallationState, not_synced};
use crate::store::{Store, StoreError};
use crate::sync::activity_due_at;
use crate::webhook::{Event, EventError, InstallationAction, parse_event};

/// What applying did, for the delivery's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied(String),
    Ignored(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The payload cannot be acted on; trying again will not change that.
    #[error(transparent)]
    Permanent(#[from] EventError),
    #[error(transparent)]
    Transient(#[from] StoreError),
}

type Applied = Result<ApplyOutcome, ApplyError>;

/// Applies `deliveries` in order, one outcome each; `refresh` is woken when a
/// user became due.
pub async fn apply(store: &Arc<dyn Store>, refresh: &Notify, deliveries: &[ClaimedDelivery]) -> Vec<Applied> {
    let now = Utc::now();
    fn is_activity(event: &Result<Event, EventError>) -> bool {
        matches!(event, Ok(Event::Activity { .. }))
    }
    let events: Vec<_> = deliveries.iter().map(|d| parse_event(&d.event, &d.payload)).collect();
    let mut events = events.into_iter().peekable();
    let mut outcomes = Vec::with_capacity(deliveries.len());
    while let Some(event) = events.next() {
        match event {
            Ok(Event::Activity { sender }) => {
                let mut senders = vec![sender];
                while let Some(Ok(Event::Activity { sender })) = events.next_if(is_activity) {
                    senders.push(sender);
                }
                match note_activity(store, refresh, &senders, now).await {
                    Ok(noted) => outcomes.extend(noted.into_iter().map(Ok)),
                    // One failure for the run: each of its deliveries is retried.
                    Err(e) => outcomes.extend(senders.iter().map(|_| Err(ApplyError::Transient(e.shared())))),
                }
            }
            Ok(event) => outcomes.push(apply_one(store, refresh, event, now).await),
            Err(e) => outcomes.push(Err(e.into())),
        }
    }
    outcomes
}

/// A run of activity: the senders we sync become due (debounced), the others are ignored.
async fn note_activity(
    store: &Arc<dyn Store>,
    refresh: &Notify,
    senders: &[Account],
    now: DateTime<Utc>,
) -> Result<Vec<ApplyOutcome>, StoreError> {
    let ids: Vec<_> = senders.iter().map(|s| s.id).collect();
    // Most senders are not users we sync: tell so from a read, without taking the write lock.
    let synced = store.synced_among(&ids).await?;
    let noted: Vec<(Account, DateTime<Utc>)> =
        senders.iter().filter_map(|s| synced.get(&s.id).map(|&last| (s.clone(), activity_due_at(last, now)))).collect();
    let marked: HashSet<GitHubUserId> =
        if noted.is_empty() { HashSet::new() } else { store.note_activity(&noted, now).await?.into_iter().collect() };
    if !marked.is_empty() {
        refresh.notify_one();
    }
    let due: HashMap<GitHubUserId, DateTime<Utc>> = noted.iter().map(|(a, due)| (a.id, *due)).collect();
    Ok(senders
        .iter()
        .map(|sender| match due.get(&sender.id) {
            Some(due) if marked.contains(&sender.id) => {
                ApplyOutcome::Applied(format!("user {} due at {due}", sender.id))
            }
            _ => ApplyOutcome::Ignored(not_synced(sender)),
        })
        .collect())
}

/// Anything but activity, on its own.
async fn apply_one(store: &Arc<dyn Store>, refresh: &Notify, event: Event, now: DateTime<Utc>) -> Applied {
    let outcome = match event {
        Event::Installation { action, installation } => {
            let id = installation.id;
            match action {
                InstallationAction::Created
                | InstallationAction::Unsuspend
                | InstallationAction::NewPermissionsAccepted => {
                    store.upsert_installation(&installation, now).await?;
                    refresh.notify_one();
                }
                InstallationAction::Deleted => {
                    store.set_installation_state(id, InstallationState::Uninstalled, now).await?
                }
                InstallationAction::Suspend => {
                    store.set_installation_state(id, InstallationState::Suspended, now).await?
                }
            }
            ApplyOutcome::Applied(format!("installation {id} {action:?}"))
        }
        Event::AccountRenamed { account } => {
            store.rename_user(account.id, &account.login, now).await?;
            ApplyOutcome::Applied(format!("user {} is now {}", account.id, account.login))
        }
        Event::AuthorizationRevoked { user } => {
            store.revoke_user(user.id, now).await?;
            ApplyOutcome::Applied(format!("user {} revoked the App", user.id))
        }
        Event::Activity { sender } => {
            // `apply` sends activity in runs; on its own, it is a run of one.
            let noted = note_activity(store, refresh, std::slice::from_ref(&sender), now).await?;
            noted.into_iter().next().ok_or(StoreError::NotFound)?
        }
        Event::Ignored(reason) => ApplyOutcome::Ignored(reason),
    };
    Ok(outcome)
}
