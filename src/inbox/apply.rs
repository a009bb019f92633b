//! Applies one stored delivery. Idempotent: a redelivery, or a retry after a
//! crash between apply and complete, leaves the same state.

use chrono::Utc;
use std::sync::Arc;
use tokio::sync::Notify;

use crate::domain::{ClaimedDelivery, InstallationState, UserStatus};
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

/// Applies `delivery`; `refresh` is woken when a user became due.
pub async fn apply(
    store: &Arc<dyn Store>,
    refresh: &Notify,
    delivery: &ClaimedDelivery,
) -> Result<ApplyOutcome, ApplyError> {
    let now = Utc::now();
    let outcome = match parse_event(&delivery.event, &delivery.payload)? {
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
            // Most senders are not users we sync: tell so from a read, without taking the write lock.
            let Some(user) =
                store.user_by_id(sender.id).await?.filter(|u| u.status == UserStatus::Active && u.sync_enabled)
            else {
                return Ok(ApplyOutcome::Ignored(format!("sender {} is not a user we sync", sender.login)));
            };
            let due = activity_due_at(user.last_synced_at, now);
            if store.note_activity(&sender, due, now).await? {
                refresh.notify_one();
                ApplyOutcome::Applied(format!("user {} due at {due}", sender.id))
            } else {
                ApplyOutcome::Ignored(format!("sender {} is not a user we sync", sender.login))
            }
        }
        Event::Ignored(reason) => ApplyOutcome::Ignored(reason),
    };
    Ok(outcome)
}
