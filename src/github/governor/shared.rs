//! The governor shared by every process on one database, while they run.
//!
//! Why it is correct: GitHub's budget belongs to the installation, so every
//! process spends one budget. A process spends only points it has *booked*
//! from the budget's row in the database (`domain::book`, run by the store in
//! one transaction that holds the row): the row's `remaining` is GitHub's
//! last figure less every point any process booked since, so the points
//! booked in a window never add up to more than GitHub said was left, less
//! the reserve, whichever processes booked them. The same row counts the
//! points booked in the current minute across processes, so together they
//! stay inside the per-minute secondary limit, and it holds the pause any of
//! them was told of. A booking is good for `BOOKING_TTL` (half a second):
//! then what is left of it goes back and the process books again, so a pause
//! or an exhaustion one process saw stops the others within that time. When
//! the window is over nobody knows the next one until an answer tells: each
//! process then finds out as it would alone, one request at a time (a fresh
//! window is full, so nothing is overspent), and the first answer back is
//! published at once for all to book from. A process that dies holding points loses them
//! until the window resets: they are never spent twice, only not at all.
//!
//! Bookings are sized by demand (`Booked::chunk`): one point for a lone
//! webhook refresh, doubling to `MAX_CHUNK` during a pass, so a pass costs a
//! few bookings a second, not one per request. If the database cannot be
//! asked, the process falls back to what it alone knows (the single-process
//! governor) and says so in the log, at most once a minute.

use async_trait::async_trait;
use chrono::Utc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use super::{Governor, Priority, Refusal};
use crate::domain::{BOOKING_TTL, Booking, BudgetAsk, InstallationId, Observed, Resource};

/// The most points one booking takes: a few seconds of a pass's pace.
const MAX_CHUNK: i64 = 64;

/// Where bookings are made: the store, through the application's wiring.
#[async_trait]
pub trait Ledger: Send + Sync {
    async fn book(&self, ask: &BudgetAsk) -> Result<Booking, String>;
}

/// The ledger, once set (`Governor::share`), and when its failure was last logged.
#[derive(Default)]
pub(super) struct Shared {
    ledger: std::sync::OnceLock<Arc<dyn Ledger>>,
    complained_at: AtomicI64,
}

impl Shared {
    fn complain(&self, error: &str) {
        let now = Utc::now().timestamp();
        let last = self.complained_at.load(Ordering::Relaxed);
        if now - last >= 60
            && self.complained_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(%error, "cannot book rate budgets in the database; going by this process's own figures");
        }
    }
}

impl Governor {
    /// From now on, spend only what `ledger` books (every process on one database).
    pub fn share(&self, ledger: Arc<dyn Ledger>) {
        let _ = self.shared.ledger.set(ledger);
    }

    fn per_minute(&self, resource: Resource) -> i64 {
        i64::from(match resource {
            Resource::Core => self.settings.rest_points_per_minute,
            Resource::Graphql => self.settings.graphql_points_per_minute,
        })
    }

    /// What this process knows, as a question for the ledger; takes back the
    /// unspent rest of its booking to hand it back.
    fn ask(&self, id: InstallationId, resource: Resource, want: i64, need: i64, priority: Priority) -> BudgetAsk {
        let now = Utc::now();
        let reserve_fraction = if priority == Priority::Webhook { 0.0 } else { self.settings.reserve_fraction };
        let per_minute = self.per_minute(resource);
        self.with_slot(id, |slot| {
            let paused_until = slot.paused_until.filter(|t| *t > now);
            let bucket = slot.bucket(resource);
            let leftover = std::mem::take(&mut bucket.booking.points);
            let observed = bucket.known.then(|| Observed {
                limit: bucket.limit,
                // GitHub counts our unspent points as left; the ledger counts them as booked.
                remaining: bucket.remaining - leftover,
                reset_at: bucket.reset_at,
            });
            let give_back = (leftover > 0).then_some((leftover, bucket.booking.window));
            BudgetAsk {
                installation_id: id,
                resource,
                want,
                need,
                reserve_fraction,
                per_minute,
                give_back,
                observed,
                paused_until,
                now,
            }
        })
    }

    /// Takes `cost` from a booking still good, if there is one.
    fn take_booked(&self, id: InstallationId, resource: Resource, cost: i64) -> bool {
        let now = Utc::now();
        self.with_slot(id, |slot| {
            let booking = &mut slot.bucket(resource).booking;
            let fresh = booking.at.is_some_and(|at| at.elapsed() < BOOKING_TTL) && booking.window > now;
            if fresh && booking.points >= cost {
                booking.points -= cost;
                true
            } else {
                false
            }
        })
    }

    /// Books `cost` points with the ledger, if one is set (else there is nothing to share).
    pub(super) async fn book_shared(
        &self,
        id: InstallationId,
        resource: Resource,
        cost: i64,
        priority: Priority,
        wait: bool,
    ) -> Result<(), Refusal> {
        let Some(ledger) = self.shared.ledger.get() else { return Ok(()) };
        if self.with_slot(id, |slot| slot.bucket(resource).booking.headerless()) {
            // GitHub shows no budget here (GHES with rate limits off): there is nothing to share.
            return Ok(());
        }
        loop {
            if self.take_booked(id, resource, cost) {
                return Ok(());
            }
            let turn = self.with_slot(id, |slot| slot.booking_turn.clone());
            let _turn = turn.lock().await;
            // Whoever had the turn before us may have booked enough for us too.
            if self.take_booked(id, resource, cost) {
                return Ok(());
            }
            let want = self.with_slot(id, |slot| {
                let booking = &mut slot.bucket(resource).booking;
                let ran_out = booking.points < cost && booking.at.is_some_and(|at| at.elapsed() < BOOKING_TTL);
                booking.chunk = if ran_out { (booking.chunk * 2).min(MAX_CHUNK) } else { (booking.chunk / 2).max(1) };
                booking.chunk.max(cost)
            });
            let ask = self.ask(id, resource, want, cost, priority);
            let answer = match ledger.book(&ask).await {
                Ok(answer) => answer,
                Err(e) => {
                    self.shared.complain(&e);
                    return Ok(());
                }
            };
            match answer {
                Booking::Granted { points, reset_at } => {
                    self.with_slot(id, |slot| {
                        let booking = &mut slot.bucket(resource).booking;
                        booking.points = points - cost;
                        booking.window = reset_at;
                        booking.at = Some(Instant::now());
                    });
                    return Ok(());
                }
                Booking::Probe => {
                    self.with_slot(id, |slot| slot.bucket(resource).booking.probe = true);
                    return Ok(());
                }
                Booking::Noted => return Ok(()),
                Booking::Exhausted(until) => return Err(Refusal::Exhausted(until)),
                Booking::Paused(until) => {
                    self.with_slot(id, |slot| slot.paused_until = slot.paused_until.max(Some(until)));
                    return Err(Refusal::Paused(until));
                }
                Booking::Paced(until) if wait => {
                    drop(_turn);
                    let left = (until - Utc::now()).to_std().unwrap_or_default();
                    tokio::time::sleep(left).await;
                }
                Booking::Paced(_) => return Err(Refusal::Busy),
            }
        }
    }

    /// A request booked but not sent: its points go back to this process's booking.
    pub(super) fn unbook(&self, id: InstallationId, resource: Resource, cost: i64) {
        if self.shared.ledger.get().is_none() {
            return;
        }
        self.with_slot(id, |slot| slot.bucket(resource).booking.points += cost);
    }

    /// Tells the ledger at once what an answer said that other processes must
    /// know now (`Slot::urgent`: a pause, a new window, exhaustion).
    pub async fn publish(&self, id: InstallationId, resource: Resource) {
        let Some(ledger) = self.shared.ledger.get() else { return };
        if !self.with_slot(id, |slot| std::mem::take(&mut slot.urgent)) {
            return;
        }
        let mut ask = self.ask(id, resource, 0, 0, Priority::Background);
        // Told, not handed back: the booking stays this process's.
        if let Some((points, _)) = ask.give_back.take() {
            self.with_slot(id, |slot| slot.bucket(resource).booking.points = points);
        }
        if let Err(e) = ledger.book(&ask).await {
            self.shared.complain(&e);
        }
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
