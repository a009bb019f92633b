//! Fault/limit knobs (`Faults`), the counters (`FakeStats`), and the two
//! limit mechanisms: primary rate-limit buckets and the per-token
//! concurrency cap (secondary limit) with its pause window.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::state::State;

/// Knobs tests turn to make the fake misbehave. All can change at any time;
/// each request reads the current values.
#[derive(Clone, Debug)]
pub struct Faults {
    pub latency: Duration,
    pub server_error_rate: f64,
    pub rate_limit: u32,
    pub rate_window: Duration,
    pub concurrency_cap: Option<(usize, u64)>,
    pub token_lifetime: Duration,
    pub graphql_forbidden: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: Duration::ZERO,
            server_error_rate: 0.0,
            rate_limit: 5000,
            rate_window: Duration::from_secs(3600),
            concurrency_cap: None,
            token_lifetime: Duration::from_secs(3600),
            graphql_forbidden: false,
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
    pub graphql_nodes_requested: u64,
    pub on_exhausted: u64,
    pub on_expired: u64,
    pub on_paused: u64,
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
    start: DateTime<Utc>,
    used: u32,
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

/// Outcome of asking to start a request on a token (secondary limit).
pub enum Admit {
    Go,
    /// Token is inside a pause window; `retry_after` = seconds left.
    Paused {
        retry_after: u64,
    },
    /// This request would exceed the cap; the caller starts the pause when it
    /// sends the answer.
    OverCap {
        retry_after: u64,
    },
}

/// Requests arriving this soon after a pause started were probably already
/// on the wire, so they are not counted as violations.
const PAUSE_GRACE: Duration = Duration::from_millis(250);

impl State {
    fn bucket(&mut self, inst: i64, res: Resource, now: DateTime<Utc>) -> (&mut Bucket, i64) {
        let window = chrono::Duration::from_std(self.faults.rate_window).unwrap_or_else(|_| chrono::Duration::hours(1));
        let b = self.buckets.entry((inst, res)).or_insert(Bucket { start: now, used: 0 });
        if now >= b.start + window {
            *b = Bucket { start: now, used: 0 };
        }
        let end_ms = (b.start + window).timestamp_millis();
        (b, end_ms.div_euclid(1000) + i64::from(end_ms.rem_euclid(1000) != 0))
    }

    /// The bucket's current state without spending anything.
    pub fn peek(&mut self, inst: i64, res: Resource, now: DateTime<Utc>) -> BucketView {
        let limit = self.faults.rate_limit;
        let (b, reset) = self.bucket(inst, res, now);
        BucketView { resource: res, limit, used: b.used, remaining: limit.saturating_sub(b.used), reset }
    }

    /// Spend `cost` points. A request that does not fit drains the bucket,
    /// so the `remaining: 0` header it carries is the truth afterwards.
    pub fn charge(&mut self, inst: i64, res: Resource, cost: u32, now: DateTime<Utc>) -> Charge {
        let limit = self.faults.rate_limit;
        let (b, _) = self.bucket(inst, res, now);
        let remaining = limit.saturating_sub(b.used);
        if remaining < cost || remaining == 0 {
            b.used = b.used.max(limit);
            if remaining == 0 {
                self.stats.on_exhausted += 1;
            }
            let view = self.peek(inst, res, now);
            return Charge::Limited(view);
        }
        b.used += cost;
        match res {
            Resource::Core => self.stats.points_core += u64::from(cost),
            Resource::Graphql => self.stats.points_graphql += u64::from(cost),
        }
        Charge::Ok(self.peek(inst, res, now))
    }

    /// Secondary limit: admit a request on `token` or say why not. On `Go`
    /// the token's in-flight count has been incremented; call `release`.
    pub fn admit(&mut self, token: &str, arrived: Instant) -> Admit {
        let cap = self.faults.concurrency_cap;
        let Some(rec) = self.tokens.get_mut(token) else {
            return Admit::Go;
        };
        if let (Some(from), Some(until)) = (rec.paused_from, rec.paused_until)
            && arrived < until
        {
            if arrived.saturating_duration_since(from) > PAUSE_GRACE {
                self.stats.on_paused += 1;
            }
            let left = until.saturating_duration_since(arrived);
            let retry_after = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Admit::Paused { retry_after: retry_after.max(1) };
        }
        if let Some((max, retry_after)) = cap
            && rec.in_flight >= max
        {
            return Admit::OverCap { retry_after };
        }
        rec.in_flight += 1;
        Admit::Go
    }

    pub fn release(&mut self, token: &str) {
        if let Some(rec) = self.tokens.get_mut(token) {
            rec.in_flight = rec.in_flight.saturating_sub(1);
        }
    }

    /// Start (or restart) a token's pause at the moment its 403 is sent.
    pub fn start_pause(&mut self, token: &str, secs: u64) {
        if let Some(rec) = self.tokens.get_mut(token) {
            let now = Instant::now();
            rec.paused_from = Some(now);
            rec.paused_until = Some(now + Duration::from_secs(secs));
        }
    }
}
