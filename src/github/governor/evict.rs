//! Forgetting idle installations, so the governor's memory follows the
//! installations in use, not every installation a webhook ever touched.
//!
//! The rule: a slot is dropped once it has been idle for `IDLE_AFTER` (1 h)
//! with nothing pending — no pause still running, no window still running
//! (what it knows would matter: a budget half spent), and no request in
//! flight or waiting (nobody holds its semaphore or pacers). What it knew is
//! then stale anyway (GitHub's windows are an hour); the database keeps what
//! a pass saved, and the next answer tells the rest.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Governor;
use super::slot::Slot;
use crate::domain::InstallationId;

/// Idle this long with nothing pending, a slot is forgotten.
pub(super) const IDLE_AFTER: Duration = Duration::from_secs(3600);
/// New slots look for idle ones to drop at most this often.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(60);

fn evictable(slot: &Slot, idle: Duration, now: DateTime<Utc>) -> bool {
    slot.last_used.elapsed() >= idle
        && slot.paused_until.is_none_or(|t| t <= now)
        && [&slot.core, &slot.graphql].iter().all(|b| (!b.known || b.reset_at <= now) && b.in_flight == 0)
        && Arc::strong_count(&slot.concurrency) == 1
        && Arc::strong_count(&slot.rest_pacer) == 1
        && Arc::strong_count(&slot.graphql_pacer) == 1
        && Arc::strong_count(&slot.booking_turn) == 1
}

/// Drops the evictable slots; returns how many.
pub(super) fn sweep(slots: &mut HashMap<InstallationId, Slot>, idle: Duration, now: DateTime<Utc>) -> usize {
    let before = slots.len();
    slots.retain(|_, slot| !evictable(slot, idle, now));
    before - slots.len()
}

impl Governor {
    /// Forgets installations idle for `idle` with nothing pending (see the module's rule).
    pub fn evict_idle(&self, idle: Duration, now: DateTime<Utc>) -> usize {
        let mut slots = self.slots.lock().expect("governor poisoned");
        sweep(&mut slots, idle, now)
    }

    /// Installations the governor holds state for.
    pub fn tracked(&self) -> usize {
        self.slots.lock().expect("governor poisoned").len()
    }

    /// Called when a slot is added: sweeps now and then, never on every call.
    pub(super) fn sweep_now_and_then(&self, slots: &mut HashMap<InstallationId, Slot>) {
        let mut last = self.swept.lock().expect("governor poisoned");
        if last.elapsed() >= SWEEP_EVERY {
            *last = Instant::now();
            let dropped = sweep(slots, IDLE_AFTER, Utc::now());
            if dropped > 0 {
                tracing::debug!(dropped, left = slots.len(), "forgot idle installations' rate limits");
            }
        }
    }
}
