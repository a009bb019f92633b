//! The rate budgets every process on one database spends together: what one
//! process asks of the shared ledger (`BudgetAsk`), the ledger's row for one
//! installation and resource (`BudgetRow`), and the one rule that answers
//! (`book`). The store runs `book` inside a transaction that holds the row,
//! so two processes never book the same points.
//!
//! The row's `remaining` is what GitHub's last answer said was left, less
//! every point booked since by any process: points a process booked and has
//! not spent yet are already out of it. An answer only ever lowers it within
//! a window (answers to concurrent requests arrive out of order; the lowest
//! is the truest) and replaces it when a later window begins.

use chrono::{DateTime, Duration, Utc};

use super::{InstallationId, Resource};

/// A process's booking lasts this long: after it, what is left goes back and
/// the next request books again, so a pause or an exhaustion another process
/// saw stops this one within this time.
pub const BOOKING_TTL: std::time::Duration = std::time::Duration::from_millis(500);

/// The per-minute secondary limit is counted in windows this long.
const MINUTE: Duration = Duration::seconds(60);

/// What an answer from GitHub said of a budget, less what this process holds
/// booked and has not spent (GitHub counts those points as still there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub limit: i64,
    pub remaining: i64,
    pub reset_at: DateTime<Utc>,
}

/// One process asks for points of one budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetAsk {
    pub installation_id: InstallationId,
    pub resource: Resource,
    /// Points wanted (a request's cost, or more to book ahead); 0 only tells.
    pub want: i64,
    /// At least this many, or none.
    pub need: i64,
    /// Share of the limit that must stay (kept for webhook-driven refreshes); 0 may spend it.
    pub reserve_fraction: f64,
    /// Points all processes together may book in one minute (GitHub's secondary limit).
    pub per_minute: i64,
    /// Unspent points of this process's last booking, handed back, and their window.
    pub give_back: Option<(i64, DateTime<Utc>)>,
    pub observed: Option<Observed>,
    /// A secondary-limit pause this process was told of.
    pub paused_until: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// The ledger's row for one installation and resource.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRow {
    pub limit: i64,
    pub remaining: i64,
    pub reset_at: DateTime<Utc>,
    pub paused_until: Option<DateTime<Utc>>,
    pub minute_start: DateTime<Utc>,
    pub minute_used: i64,
}

impl BudgetRow {
    /// A budget nobody has seen an answer for yet.
    pub fn unknown(limit: i64) -> Self {
        Self {
            limit,
            remaining: 0,
            reset_at: DateTime::<Utc>::UNIX_EPOCH,
            paused_until: None,
            minute_start: DateTime::<Utc>::UNIX_EPOCH,
            minute_used: 0,
        }
    }
}

/// The ledger's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Booking {
    /// These points are this process's to spend in the window ending at `reset_at`.
    Granted { points: i64, reset_at: DateTime<Utc> },
    /// Nobody knows the budget of this window: this process finds it out, one
    /// request at a time, as it would alone. Not one process for all: a fresh
    /// window is full, so a probe from each costs nothing, while a probe held by
    /// a process that froze would hold every other process up.
    Probe,
    /// Nothing left (less the reserve) until the window resets.
    Exhausted(DateTime<Utc>),
    /// A secondary-limit pause, until then.
    Paused(DateTime<Utc>),
    /// All processes together spent this minute's share of the secondary limit.
    Paced(DateTime<Utc>),
    /// Nothing was asked for (`want` 0): the row only learnt.
    Noted,
}

/// Answers `ask` against the row (`None`: no row yet) and returns the row to write back.
pub fn book(row: Option<BudgetRow>, ask: &BudgetAsk) -> (BudgetRow, Booking) {
    let now = ask.now;
    let mut row = row.unwrap_or_else(|| BudgetRow::unknown(ask.observed.map_or(5_000, |o| o.limit)));
    if let Some(seen) = ask.observed {
        if seen.reset_at > row.reset_at {
            // A later window: GitHub's figure replaces ours (bookings of the last window are void).
            row.remaining = seen.remaining;
            row.reset_at = seen.reset_at;
        } else if seen.reset_at == row.reset_at {
            row.remaining = row.remaining.min(seen.remaining);
        }
        row.limit = seen.limit;
    }
    if let Some((points, window)) = ask.give_back
        && window == row.reset_at
        && points > 0
    {
        row.remaining = (row.remaining + points).min(row.limit);
    }
    if ask.paused_until > row.paused_until {
        row.paused_until = ask.paused_until;
    }
    if ask.want <= 0 {
        return (row, Booking::Noted);
    }
    if let Some(until) = row.paused_until.filter(|t| *t > now) {
        return (row, Booking::Paused(until));
    }
    if now >= row.minute_start + MINUTE {
        row.minute_start = now;
        row.minute_used = 0;
    }
    let minute_left = ask.per_minute - row.minute_used;
    if minute_left < ask.need {
        return (row.clone(), Booking::Paced(row.minute_start + MINUTE));
    }
    if now >= row.reset_at {
        // The window is over (or never known): GitHub refilled it, but when the next one ends
        // only an answer tells, and the first to come back opens the window for everyone.
        row.minute_used += ask.need;
        return (row, Booking::Probe);
    }
    let reserve = (row.limit as f64 * ask.reserve_fraction).ceil() as i64;
    let available = row.remaining - reserve;
    if available < ask.need {
        return (row.clone(), Booking::Exhausted(row.reset_at));
    }
    let points = ask.want.max(ask.need).min(available).min(minute_left);
    row.remaining -= points;
    row.minute_used += points;
    (row.clone(), Booking::Granted { points, reset_at: row.reset_at })
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
