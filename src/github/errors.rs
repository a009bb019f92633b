//! `GitHubError`: every answer GitHub can give, classified once from status
//! and headers, so the governor and the reconciler branch on kinds, not codes.
//! Each answer's error names the call (`GET /user/42`) and what GitHub said,
//! so a message in a run, a user's `last_error` or a log line is enough to act on.

use chrono::{DateTime, Utc};
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum GitHubError {
    #[error("{call}: GitHub refused our credentials (401): {message}")]
    Unauthorized { call: String, message: String },
    #[error("{call}: GitHub refused the request (403): {message}")]
    Forbidden { call: String, message: String },
    #[error("{call}: not found on GitHub (404)")]
    NotFound { call: String },
    #[error("primary rate limit used up until {reset_at}")]
    RateLimited { reset_at: DateTime<Utc> },
    #[error("secondary rate limit hit; retry after {retry_after:?}")]
    SecondaryLimit { retry_after: Option<Duration> },
    #[error("{call}: GitHub answered {status}: {message}")]
    Server { call: String, status: u16, message: String },
    #[error("{call}: GitHub answered {status}: {message}")]
    Unexpected { call: String, status: u16, message: String },
    /// No answer: the text names the call when there was one.
    #[error("cannot reach GitHub: {0}")]
    Transport(String),
    /// An answer we cannot read: the text names the call.
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
