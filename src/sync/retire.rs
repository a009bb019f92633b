//! Retiring installations a complete listing did not show, but only once
//! GitHub confirms each is gone. `GET /app/installations` goes by page
//! number: an installation removed while a long listing runs shifts the
//! later pages, and one that still exists is skipped. So each one missing is
//! asked about by id (`GET /app/installations/{id}`): a 404 retires it (its
//! users become uninstalled); an answer brings it back in line (and counts as
//! seen); any other error leaves it as it is until the next pass.

use chrono::{DateTime, Utc};
use std::sync::Arc;

use crate::domain::{InstallationId, InstallationState};
use crate::github::{GitHub, GitHubError};
use crate::store::Store;

/// Installations asked about per store read (memory stays constant).
const PAGE: i64 = 100;

/// What checking the missing installations did.
#[derive(Debug, Default)]
pub struct Retired {
    /// Confirmed gone (404), now uninstalled.
    pub removed: u64,
    /// Missing from the listing yet still there: kept, and refreshed.
    pub kept: u64,
    /// Could not be asked about this time (kept as they were).
    pub errors: Vec<String>,
}

pub async fn retire_confirmed(
    store: &Arc<dyn Store>,
    github: &GitHub,
    seen_before: DateTime<Utc>,
) -> anyhow::Result<Retired> {
    let mut retired = Retired::default();
    let mut after: Option<InstallationId> = None;
    loop {
        let page = store.unseen_installations(seen_before, after, PAGE).await?;
        let Some(last) = page.last().copied() else { break };
        after = Some(last);
        for id in page {
            match github.installation(id).await {
                Ok(record) => {
                    tracing::info!(installation_id = %id, "missing from the listing but still installed; kept");
                    store.upsert_installation(&record, seen_before).await?;
                    retired.kept += 1;
                }
                Err(GitHubError::NotFound { .. }) => {
                    tracing::info!(installation_id = %id, "gone from GitHub; retired");
                    store.set_installation_state(id, InstallationState::Uninstalled, Utc::now()).await?;
                    retired.removed += 1;
                }
                Err(e) => retired.errors.push(format!("GET /app/installations/{id} failed, kept as it was: {e}")),
            }
        }
    }
    Ok(retired)
}
