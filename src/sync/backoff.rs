//! When to try a user again: after activity (debounced) and after a failure
//! (exponential, reset on success). Pure functions of their inputs and `now`.

use chrono::{DateTime, Duration, Utc};

/// A burst of events for one user becomes one fetch: wait this long after the first.
const DEBOUNCE: Duration = Duration::seconds(2);
/// And never refresh one user more often than this, however busy they are.
const MIN_GAP: Duration = Duration::seconds(10);

/// When a user who just did something should be refreshed. The store keeps
/// the earlier of this and any time already set, so a busy user is never starved.
pub fn activity_due_at(last_synced_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    let soon = now + DEBOUNCE;
    match last_synced_at {
        Some(last) if last + MIN_GAP > soon => last + MIN_GAP,
        _ => soon,
    }
}

/// After `failures` failures in a row: `base` × 2^(failures−1), capped, with
/// up to 10 % jitter so a burst of failures does not come back as one burst.
pub fn failure_retry_at(
    failures: i32,
    base: std::time::Duration,
    cap: std::time::Duration,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let exp = failures.clamp(1, 30) - 1;
    let delay = base.saturating_mul(2u32.saturating_pow(exp as u32)).min(cap);
    let jitter = delay.mul_f64(rand::random::<f64>() * 0.1);
    now + Duration::from_std(delay + jitter).unwrap_or(Duration::days(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[test]
    fn a_burst_of_activity_is_debounced() {
        let now = Utc::now();
        assert_eq!(activity_due_at(None, now), now + DEBOUNCE);
        assert_eq!(activity_due_at(Some(now - Duration::hours(1)), now), now + DEBOUNCE);
        // Just synced: wait out the minimum gap instead of fetching again.
        assert_eq!(activity_due_at(Some(now), now), now + MIN_GAP);
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let now = Utc::now();
        let base = Std::from_secs(60);
        let cap = Std::from_secs(3600);
        let first = failure_retry_at(1, base, cap, now) - now;
        assert!(first >= Duration::seconds(60) && first <= Duration::seconds(66), "{first}");
        let third = failure_retry_at(3, base, cap, now) - now;
        assert!(third >= Duration::seconds(240) && third <= Duration::seconds(264), "{third}");
        let many = failure_retry_at(25, base, cap, now) - now;
        assert!(many <= Duration::seconds(3960), "{many}");
    }
}
