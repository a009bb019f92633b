//! The rate limits as an operator sees them (`/admin/health`, `/metrics`):
//! what every replica saved, overlaid with what this process knows now.

use chrono::Utc;
use std::collections::BTreeMap;

use crate::github::GitHub;
use crate::store::{RateLimitRecord, Store, StoreResult};

/// Per installation and resource, the freshest figures we have.
pub async fn rate_limits(store: &dyn Store, github: Option<&GitHub>) -> StoreResult<Vec<RateLimitRecord>> {
    let mut merged: BTreeMap<(i64, String), RateLimitRecord> = BTreeMap::new();
    for r in store.rate_limits().await? {
        merged.insert((r.installation_id.get(), r.resource.clone()), r);
    }
    if let Some(github) = github {
        for r in github.governor().snapshot(Utc::now()) {
            merged.insert((r.installation_id.get(), r.resource.clone()), r);
        }
    }
    Ok(merged.into_values().collect())
}
