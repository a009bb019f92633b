//! One installation's state in the governor: a budget per resource
//! (`Bucket`), and the token's pause, concurrency and pacing (`Slot`).

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

use super::{Priority, Refusal};
use crate::domain::Resource;

/// GitHub: without `retry-after`, "wait for at least one minute" after a secondary limit.
pub(super) const SECONDARY_FLOOR: Duration = Duration::from_secs(60);
/// Repeated secondary limits back off exponentially up to this.
pub(super) const SECONDARY_CAP: Duration = Duration::from_secs(15 * 60);
/// What an installation gets before GitHub tells us otherwise (its documented minimum).
pub(super) const ASSUMED_LIMIT: i64 = 5_000;

#[derive(Debug, Clone)]
pub(super) struct Bucket {
    pub(super) limit: i64,
    pub(super) remaining: i64,
    pub(super) reset_at: DateTime<Utc>,
    pub(super) known: bool,
    pub(super) probing: bool,
    /// Points booked by requests whose answers have not come back yet.
    pub(super) in_flight: i64,
    /// Booked from the shared ledger and not spent yet (`shared.rs`).
    pub(super) booking: Booked,
}

/// This process's booking from the shared ledger for one budget.
#[derive(Debug, Clone)]
pub(super) struct Booked {
    pub(super) points: i64,
    /// The window the points belong to (they are void after it).
    pub(super) window: DateTime<Utc>,
    pub(super) at: Option<std::time::Instant>,
    /// Points the next booking asks for: doubles while bookings run out before
    /// they expire (a pass), halves when they expire unspent (a trickle).
    pub(super) chunk: i64,
    /// The ledger knew no budget for this request's window (its answer tells).
    pub(super) probe: bool,
    /// Answers carry no budget (GHES with rate limits off): nothing to book until then.
    pub(super) headerless_until: Option<std::time::Instant>,
}

/// How long a budget whose answers carry no `x-ratelimit-*` is left unbooked.
const HEADERLESS_FOR: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for Booked {
    fn default() -> Self {
        Self { points: 0, window: DateTime::<Utc>::MIN_UTC, at: None, chunk: 1, probe: false, headerless_until: None }
    }
}

impl Booked {
    /// The answer to a probe: one without a budget means there is none to share for a while.
    pub(super) fn end_probe(&mut self, answer: Option<&super::Observation>) {
        if std::mem::take(&mut self.probe)
            && answer.is_some_and(|o| o.limit.is_none() || o.remaining.is_none() || o.reset.is_none())
        {
            self.headerless_until = Some(std::time::Instant::now() + HEADERLESS_FOR);
        }
    }

    /// Whether answers lately carried no budget to share.
    pub(super) fn headerless(&self) -> bool {
        self.headerless_until.is_some_and(|t| t > std::time::Instant::now())
    }
}

impl Bucket {
    pub(super) fn unknown() -> Self {
        Self {
            limit: ASSUMED_LIMIT,
            remaining: ASSUMED_LIMIT,
            reset_at: DateTime::<Utc>::MIN_UTC,
            known: false,
            probing: false,
            in_flight: 0,
            booking: Booked::default(),
        }
    }

    /// The window is over: GitHub refills the budget, but when its next window
    /// ends we learn only from an answer. Until then the budget is probed (one
    /// request at a time), never assumed full: else every request sent before
    /// that first answer would count against a budget we believe untouched.
    pub(super) fn roll(&mut self, now: DateTime<Utc>) {
        if self.known && now >= self.reset_at {
            self.remaining = self.limit;
            self.known = false;
        }
    }

    /// A request of `cost` goes out: an unknown budget is being probed, a known one spent.
    pub(super) fn book(&mut self, cost: i64) {
        if self.known {
            self.remaining -= cost;
        } else {
            self.probing = true;
        }
        self.in_flight += cost;
    }

    pub(super) fn reserve(&self, priority: Priority, fraction: f64) -> i64 {
        match priority {
            Priority::Webhook => 0,
            Priority::Background => (self.limit as f64 * fraction).ceil() as i64,
        }
    }

    /// Usable points for this priority right now.
    pub(super) fn available(&self, priority: Priority, fraction: f64) -> i64 {
        self.remaining - self.reserve(priority, fraction)
    }
}

pub(super) struct Slot {
    pub(super) core: Bucket,
    pub(super) graphql: Bucket,
    pub(super) paused_until: Option<DateTime<Utc>>,
    pub(super) strikes: u32,
    pub(super) concurrency: Arc<Semaphore>,
    /// Requests allowed in flight now: halved on each secondary limit, grown
    /// back one at a time after a run of successes (AIMD).
    pub(super) allowed: usize,
    /// Permits still to take out of the semaphore once in-flight requests return them.
    pub(super) owed: usize,
    pub(super) successes: u32,
    pub(super) rest_pacer: Arc<DefaultDirectRateLimiter>,
    pub(super) graphql_pacer: Arc<DefaultDirectRateLimiter>,
    pub(super) dirty: bool,
    /// An answer told what other processes must know now (a pause, a new window, exhaustion).
    pub(super) urgent: bool,
    /// One booking from the shared ledger at a time per installation.
    pub(super) booking_turn: Arc<tokio::sync::Mutex<()>>,
    /// Last asked about or told about: idle slots are forgotten (`evict.rs`).
    pub(super) last_used: std::time::Instant,
}

/// Successes in a row before a narrowed token may have one more request in flight.
pub(super) const WIDEN_AFTER: u32 = 20;

impl Slot {
    /// A secondary limit: half as many requests in flight from now on.
    pub(super) fn narrow(&mut self) {
        let target = (self.allowed / 2).max(1);
        self.owed += self.allowed - target;
        self.allowed = target;
        self.successes = 0;
        self.settle_owed();
    }

    pub(super) fn widen(&mut self, max: usize) {
        self.successes += 1;
        if self.allowed < max && self.successes >= WIDEN_AFTER {
            self.successes = 0;
            self.allowed += 1;
            if self.owed > 0 {
                self.owed -= 1;
            } else {
                self.concurrency.add_permits(1);
            }
        }
    }

    /// Takes out permits owed as requests in flight return theirs.
    pub(super) fn settle_owed(&mut self) {
        if self.owed > 0 {
            self.owed -= self.concurrency.forget_permits(self.owed);
        }
    }

    /// Requests this token may have in flight now.
    #[cfg(test)]
    pub(super) fn allowed(&self) -> usize {
        self.allowed
    }

    /// Whether a request of `cost` may go now, and how many points this
    /// priority could spend. Books nothing.
    pub(super) fn check(
        &mut self,
        resource: Resource,
        cost: i64,
        priority: Priority,
        fraction: f64,
        now: DateTime<Utc>,
    ) -> Result<i64, Refusal> {
        if let Some(until) = self.paused_until.filter(|t| *t > now) {
            return Err(Refusal::Paused(until));
        }
        let bucket = self.bucket(resource);
        bucket.roll(now);
        if !bucket.known {
            // Until an answer tells us the budget, one request at a time finds it out.
            return if bucket.probing || bucket.in_flight > 0 { Err(Refusal::Probing) } else { Ok(bucket.limit) };
        }
        let available = bucket.available(priority, fraction);
        if available < cost { Err(Refusal::Exhausted(bucket.reset_at)) } else { Ok(available) }
    }

    pub(super) fn bucket(&mut self, resource: Resource) -> &mut Bucket {
        match resource {
            Resource::Core => &mut self.core,
            Resource::Graphql => &mut self.graphql,
        }
    }
}

pub(super) fn pacer(per_minute: u32) -> Arc<DefaultDirectRateLimiter> {
    Arc::new(RateLimiter::direct(pace(per_minute)))
}

/// At most `per_minute` requests in any 60 s, GitHub's secondary limit being
/// "points per minute". A limiter admits its burst at once and then its rate,
/// so over a minute it admits burst + rate: the burst (a tenth, so the budget
/// is spread, not spent in the first second) comes out of the rate.
pub(super) fn pace(per_minute: u32) -> Quota {
    let per_minute = per_minute.max(2);
    let burst = (per_minute / 10).max(1);
    let rate = NonZeroU32::new(per_minute - burst).expect("per_minute > burst");
    Quota::per_minute(rate).allow_burst(NonZeroU32::new(burst).expect("max(1) is non-zero"))
}

/// `retry-after` when GitHub gives it, else at least a minute; doubled for
/// each strike in a row, capped, with up to 20 % jitter so tokens don't return together.
pub(super) fn secondary_pause(retry_after: Option<Duration>, strikes: u32) -> Duration {
    let base = retry_after.unwrap_or(SECONDARY_FLOOR);
    let factor = 2u32.saturating_pow(strikes.saturating_sub(1).min(10));
    let pause = base.saturating_mul(factor).min(SECONDARY_CAP.max(base));
    let jitter = pause.mul_f64(rand::random::<f64>() * 0.2);
    pause + jitter
}
