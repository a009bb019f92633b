//! GitHub's rate-limit budgets: which one a request spends, and what the
//! governor knows of one installation's bucket (kept so that a restarted
//! process or another replica starts from it).

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;

use super::InstallationId;

/// The budget a request spends: REST (`core`) or GraphQL points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Core,
    Graphql,
}

impl Resource {
    /// GitHub's name for it (`x-ratelimit-resource`), as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Core => "core",
            Self::Graphql => "graphql",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "core" => Some(Self::Core),
            "graphql" => Some(Self::Graphql),
            _ => None,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the rate governor knows of one installation's bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitRecord {
    pub installation_id: InstallationId,
    pub resource: Resource,
    pub limit: i64,
    pub remaining: i64,
    pub reset_at: DateTime<Utc>,
    pub paused_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Per resource, every installation's budget at once (what `/metrics` shows).
#[derive(Debug, Clone, PartialEq)]
pub struct RateSummary {
    pub resource: Resource,
    /// Budgets known.
    pub tracked: i64,
    /// Of those, in a secondary-limit pause.
    pub paused: i64,
    /// `None` when no budget of this resource is known.
    pub least_remaining: Option<i64>,
}
