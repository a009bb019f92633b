//! Fault/limit knobs (`Faults`), the counters (`FakeStats`), and the types
//! of the rate limits (resources, buckets and what a charge gives back);
//! `limits.rs` holds the mechanisms that use them.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Knobs tests turn to make the fake misbehave. All can change at any time;
/// each request reads the current values.
#[derive(Clone, Debug)]
pub struct Faults {
    pub latency: Duration,
    pub server_error_rate: f64,
    pub rate_limit: u32,
    pub rate_window: Duration,
    pub concurrency_cap: Option<(usize, u64)>,
    /// GitHub's per-minute secondary limits, per token: at most this many
    /// points (REST, GraphQL) in any 60 s, a GET or a GraphQL query being one
    /// point. GitHub documents 900 and 2,000 "per minute", not over what (an
    /// App, a token); per token is the reading under which one App may go past
    /// 2,000 GraphQL queries a minute at all. A request over it is answered
    /// 403 with `retry-after` and counted in `over_per_minute`.
    pub points_per_minute: Option<(u32, u32)>,
    pub token_lifetime: Duration,
    pub graphql_forbidden: bool,
    /// Installations `GET /app/installations` leaves out though they exist, as
    /// a page shift does when another is removed mid-listing; asked for by id
    /// (`GET /app/installations/{id}`) they are still there.
    pub listing_omits: Vec<i64>,
    /// `POST /graphql` answers this status (403, 404, 502, …) to everyone.
    pub graphql_status: Option<u16>,
    /// No GraphQL endpoint at all: `POST /graphql` is an unknown path (404).
    pub graphql_absent: bool,
    /// The fake's clock runs this many seconds off the real one: its `Date`
    /// header and the `expires_at` of the tokens it mints say so (tokens
    /// still really expire after `token_lifetime`).
    pub clock_skew_secs: i64,
    /// A slow GitHub: a REST user answer is composed when the request arrives
    /// and sent this much later, so it is as old as the request (a request
    /// sent later may be answered sooner, with newer data).
    pub user_answer_delay: Duration,
    /// Every REST answer for a user is a new version of the profile: its bio
    /// becomes `version N`, N counting that user's answers from 1, so a test
    /// can tell an earlier answer from a later one in what ghsync stored.
    pub profile_versions: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: Duration::ZERO,
            server_error_rate: 0.0,
            rate_limit: 5000,
            rate_window: Duration::from_secs(3600),
            concurrency_cap: None,
            points_per_minute: Some((900, 2_000)),
            token_lifetime: Duration::from_secs(3600),
            graphql_forbidden: false,
            listing_omits: Vec::new(),
            graphql_status: None,
            graphql_absent: false,
            clock_skew_secs: 0,
            user_answer_delay: Duration::ZERO,
            profile_versions: false,
        }
    }
}

/// What the fake saw. The `on_*` counters are protocol violations by the
/// client: they should stay 0 for a well-behaved ghsync.
#[derive(Clone, Debug, Default)]
pub struct FakeStats {
    pub requests: BTreeMap<String, u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub tokens_minted: u64,
    pub jwt_rejected: u64,
    pub points_core: u64,
    pub points_graphql: u64,
    pub rest_user_fetches: u64,
    /// REST profile answers per user id (`rest_user_fetches`, user by user).
    pub rest_fetches_by_user: BTreeMap<i64, u64>,
    /// REST user answers composed and not yet sent (`user_answer_delay`).
    pub user_answers_waiting: u64,
    pub graphql_nodes_requested: u64,
    pub on_exhausted: u64,
    pub on_expired: u64,
    pub on_paused: u64,
    /// Requests over a token's per-minute points (`Faults::points_per_minute`).
    pub over_per_minute: u64,
    pub webhooks_sent: u64,
}

/// GitHub's rate-limit resources that this fake models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    Core,
    Graphql,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Core => "core",
            Resource::Graphql => "graphql",
        }
    }
}

/// One installation's budget for one resource. The window starts at the first
/// request after the previous window ended, as GitHub's hourly windows do.
#[derive(Clone, Debug)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub used: u32,
}

/// A bucket as the x-ratelimit-* headers describe it.
#[derive(Clone, Copy, Debug)]
pub struct BucketView {
    pub resource: Resource,
    pub limit: u32,
    pub used: u32,
    pub remaining: u32,
    /// Epoch seconds of the window's end, rounded up so a client never sees
    /// a reset in the past while the window still runs.
    pub reset: i64,
}

/// Outcome of trying to spend points.
pub enum Charge {
    Ok(BucketView),
    /// Not enough budget. If the bucket was already at 0 (which a client
    /// reading headers would have known) `on_exhausted` has been counted.
    Limited(BucketView),
}
