//! The two limit mechanisms on the shared state: primary rate-limit buckets
//! (spend points per installation and resource) and the per-token
//! concurrency cap (secondary limit) with its pause window.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::faults::{Bucket, BucketView, Charge, Resource};
use crate::state::State;

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

    /// Secondary limits: admit a request on `token` or say why not. On `Go`
    /// the token's in-flight count has been incremented; call `release`.
    pub fn admit(&mut self, token: &str, resource: Resource, arrived: Instant) -> Admit {
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
        if let Some(retry_after) = self.over_the_minute(token, resource, arrived) {
            self.stats.over_per_minute += 1;
            return Admit::OverCap { retry_after };
        }
        if let Some(rec) = self.tokens.get_mut(token) {
            rec.in_flight += 1;
        }
        Admit::Go
    }

    /// Counts the request against its token's last minute; `Some(seconds)`
    /// until the oldest one leaves it, when the minute is full already.
    fn over_the_minute(&mut self, token: &str, resource: Resource, arrived: Instant) -> Option<u64> {
        const MINUTE: Duration = Duration::from_secs(60);
        let (rest, graphql) = self.faults.points_per_minute?;
        let limit = match resource {
            Resource::Core => rest,
            Resource::Graphql => graphql,
        } as usize;
        let recent = self.last_minute.entry((token.to_owned(), resource)).or_default();
        while recent.front().is_some_and(|t| arrived.saturating_duration_since(*t) >= MINUTE) {
            recent.pop_front();
        }
        if recent.len() >= limit {
            let left = MINUTE.saturating_sub(arrived.saturating_duration_since(*recent.front()?));
            return Some(left.as_secs().max(1));
        }
        recent.push_back(arrived);
        None
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
