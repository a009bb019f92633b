//! `GitHubError`: every answer GitHub can give, classified once from status
//! and headers, so the governor and the reconciler branch on kinds, not codes.

use chrono::{DateTime, Utc};
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub refused our credentials (401)")]
    Unauthorized,
    #[error("GitHub refused the request (403): {0}")]
    Forbidden(String),
    #[error("not found on GitHub (404)")]
    NotFound,
    #[error("primary rate limit used up until {reset_at}")]
    RateLimited { reset_at: DateTime<Utc> },
    #[error("secondary rate limit hit; retry after {retry_after:?}")]
    SecondaryLimit { retry_after: Option<Duration> },
    #[error("GitHub answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("GitHub answered {status}: {message}")]
    Unexpected { status: u16, message: String },
    #[error("cannot reach GitHub: {0}")]
    Transport(String),
    #[error("cannot read GitHub's answer: {0}")]
    Decode(String),
    #[error("GraphQL refused for this token: {0}")]
    GraphqlRefused(String),
    #[error("GraphQL error: {0}")]
    Graphql(String),
    /// Minting this installation's token failed (suspended, uninstalled, …):
    /// another installation's token may still serve.
    #[error("no token for installation {installation}: {reason}")]
    TokenUnavailable { installation: i64, reason: String },
    #[error("no token may be used before {until}: {reason}")]
    Blocked { until: DateTime<Utc>, reason: String },
}

impl GitHubError {
    /// Worth asking again soon, on the same or another token.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Server { .. } | Self::Transport(_))
    }

    /// A rate limit (ours or GitHub's) said "not now": the work waits, it did not fail.
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::SecondaryLimit { .. } | Self::Blocked { .. })
    }
}
