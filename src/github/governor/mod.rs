//! The rate governor: the only code that decides whether a request may go.
//! GitHub's budgets belong to the installation (a refreshed token inherits
//! its predecessor's), so state is kept per installation and resource. Before
//! a request it takes a concurrency slot and a pacing cell for the token, then
//! admits or refuses the request against what the last answers said; after
//! the answer it records the `x-ratelimit-*` headers and any pause.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod evict;
mod memory;
mod shared;
mod slot;
pub use shared::Ledger;
use slot::{Bucket, Slot, pacer, secondary_pause};
#[cfg(test)]
use slot::{SECONDARY_CAP, WIDEN_AFTER};

use super::GovernorSettings;
use crate::domain::{InstallationId, Resource};

/// Webhook-driven refreshes may spend the reserve; background passes may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Webhook,
    Background,
}

/// Why a request may not go now, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// In a secondary-limit pause (`retry-after`).
    Paused(DateTime<Utc>),
    /// The budget (less the reserve) is spent until the window resets.
    Exhausted(DateTime<Utc>),
    /// The budget is unknown and one request is already finding it out.
    Probing,
    /// The token is at its concurrency or pace limit right now (asked not to wait).
    Busy,
}

impl Refusal {
    pub fn until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Paused(t) | Self::Exhausted(t) => *t,
            Self::Probing | Self::Busy => now + ChronoDuration::milliseconds(100),
        }
    }
}

/// What one answer told us.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub status: u16,
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
    pub reset: Option<DateTime<Utc>>,
    pub retry_after: Option<Duration>,
    /// A 403/429 whose message names the secondary limit.
    pub secondary: bool,
    /// GraphQL's HTTP-200 `RATE_LIMITED` error.
    pub graphql_rate_limited: bool,
}

/// Holds a token's concurrency slot while a request is in flight.
pub struct Permit {
    _slot: OwnedSemaphorePermit,
}

pub struct Governor {
    settings: GovernorSettings,
    slots: Mutex<HashMap<InstallationId, Slot>>,
    /// When idle slots were last looked for (`evict.rs`).
    swept: Mutex<std::time::Instant>,
    /// The ledger every process on the database books from (`shared.rs`).
    shared: shared::Shared,
}

impl Governor {
    pub fn new(settings: GovernorSettings) -> Self {
        Self {
            settings,
            slots: Mutex::new(HashMap::new()),
            swept: Mutex::new(std::time::Instant::now()),
            shared: shared::Shared::default(),
        }
    }

    fn with_slot<T>(&self, id: InstallationId, f: impl FnOnce(&mut Slot) -> T) -> T {
        let mut slots = self.slots.lock().expect("governor poisoned");
        if !slots.contains_key(&id) {
            self.sweep_now_and_then(&mut slots);
        }
        let slot = slots.entry(id).or_insert_with(|| Slot {
            core: Bucket::unknown(),
            graphql: Bucket::unknown(),
            paused_until: None,
            strikes: 0,
            concurrency: Arc::new(Semaphore::new(self.settings.max_concurrency_per_token)),
            allowed: self.settings.max_concurrency_per_token,
            owed: 0,
            successes: 0,
            rest_pacer: pacer(self.settings.rest_points_per_minute),
            graphql_pacer: pacer(self.settings.graphql_points_per_minute),
            dirty: false,
            urgent: false,
            booking_turn: Arc::new(tokio::sync::Mutex::new(())),
            last_used: std::time::Instant::now(),
        });
        slot.last_used = std::time::Instant::now();
        f(slot)
    }

    /// Checks the budget and, if it allows, books `cost` points. Never waits.
    pub fn admit(
        &self,
        id: InstallationId,
        resource: Resource,
        cost: i64,
        priority: Priority,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let fraction = self.settings.reserve_fraction;
        self.with_slot(id, |slot| {
            slot.check(resource, cost, priority, fraction, now)?;
            slot.bucket(resource).book(cost);
            Ok(())
        })
    }

    /// Takes a concurrency slot and a pacing cell on this installation's token
    /// (waiting for them if `wait`, else refusing with `Busy` so the caller can
    /// use another token), then admits. The budget check comes last so that a
    /// pause that began while we waited is seen.
    pub async fn acquire(
        &self,
        id: InstallationId,
        resource: Resource,
        cost: i64,
        priority: Priority,
        wait: bool,
    ) -> Result<Permit, Refusal> {
        let now = Utc::now();
        // Fail fast without queueing when the answer is already "no".
        self.peek(id, resource, cost, priority, now)?;
        let (semaphore, pacer) = self.with_slot(id, |slot| {
            let pacer = match resource {
                Resource::Core => slot.rest_pacer.clone(),
                Resource::Graphql => slot.graphql_pacer.clone(),
            };
            (slot.concurrency.clone(), pacer)
        });
        let permit = if wait {
            let permit = semaphore.acquire_owned().await.expect("governor semaphores are never closed");
            pacer.until_ready().await;
            permit
        } else {
            let permit = semaphore.try_acquire_owned().map_err(|_| Refusal::Busy)?;
            pacer.check().map_err(|_| Refusal::Busy)?;
            permit
        };
        // What every process on the database spends together, then what this one knows.
        self.book_shared(id, resource, cost, priority, wait).await?;
        if let Err(refusal) = self.admit(id, resource, cost, priority, Utc::now()) {
            self.unbook(id, resource, cost);
            return Err(refusal);
        }
        Ok(Permit { _slot: permit })
    }

    /// `admit` without booking anything: the points this priority may spend now.
    pub fn peek(
        &self,
        id: InstallationId,
        resource: Resource,
        cost: i64,
        priority: Priority,
        now: DateTime<Utc>,
    ) -> Result<i64, Refusal> {
        let fraction = self.settings.reserve_fraction;
        self.with_slot(id, |slot| slot.check(resource, cost, priority, fraction, now))
    }

    /// Records what the answer to a request that booked `cost` said (or that
    /// none came: `obs` is `None`).
    pub fn observe(
        &self,
        id: InstallationId,
        resource: Resource,
        cost: i64,
        obs: Option<&Observation>,
        now: DateTime<Utc>,
    ) {
        let max_concurrency = self.settings.max_concurrency_per_token;
        self.with_slot(id, |slot| {
            slot.dirty = true;
            let bucket = slot.bucket(resource);
            bucket.probing = false;
            bucket.in_flight = (bucket.in_flight - cost).max(0);
            bucket.booking.end_probe(obs);
            let mut urgent = false;
            let Some(obs) = obs else { return };
            if let (Some(limit), Some(remaining), Some(reset)) = (obs.limit, obs.remaining, obs.reset) {
                // Within one window, answers to concurrent requests arrive out of order: trust the lowest.
                if !bucket.known || reset > bucket.reset_at {
                    // Other processes may be waiting for this window's figure.
                    urgent = true;
                    // A new window: requests still on the wire may not be counted in it yet.
                    bucket.remaining = remaining - bucket.in_flight;
                } else {
                    bucket.remaining = bucket.remaining.min(remaining);
                }
                bucket.limit = limit;
                bucket.reset_at = reset;
                bucket.known = true;
            }
            if obs.graphql_rate_limited || obs.remaining == Some(0) {
                bucket.remaining = 0;
                urgent = true;
            }
            let limited = matches!(obs.status, 403 | 429);
            if limited && obs.remaining == Some(0) && !obs.secondary {
                bucket.remaining = 0;
            } else if limited && (obs.secondary || obs.retry_after.is_some()) {
                // Refusals of requests that were already on the wire when the pause began are
                // the same strike, not new ones (a burst of them would otherwise mean a 15-minute pause).
                let paused = slot.paused_until.is_some_and(|t| t > now);
                if !paused {
                    slot.strikes += 1;
                    slot.narrow();
                }
                let pause = secondary_pause(obs.retry_after, slot.strikes.max(1));
                let until = now + ChronoDuration::from_std(pause).unwrap_or_default();
                slot.paused_until = Some(slot.paused_until.filter(|_| paused).map_or(until, |t| t.max(until)));
                if !paused {
                    tracing::info!(installation_id = %id, %until, strikes = slot.strikes, retry_after = ?obs.retry_after,
                        "secondary rate limit: this installation's token pauses");
                }
                urgent = true;
            } else if (200..300).contains(&obs.status) || obs.status == 304 || obs.status == 404 {
                slot.strikes = 0;
                slot.widen(max_concurrency);
            }
            slot.settle_owed();
            slot.urgent |= urgent;
        })
    }

    /// The request was not sent after all: give its points back.
    pub fn refund(&self, id: InstallationId, resource: Resource, cost: i64) {
        self.unbook(id, resource, cost);
        self.with_slot(id, |slot| {
            let bucket = slot.bucket(resource);
            bucket.booking.end_probe(None);
            if bucket.known {
                bucket.remaining = (bucket.remaining + cost).min(bucket.limit);
            }
            bucket.in_flight = (bucket.in_flight - cost).max(0);
            bucket.probing = false;
        })
    }
}

#[cfg(test)]
mod tests;
