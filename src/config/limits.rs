//! The bounds each setting must fall within, and the checks that enforce them
//! at start. A value outside them is refused with one line naming the variable,
//! instead of starting and failing later (a panicking task, a date overflow, a
//! sweep hammering GitHub every nanosecond).

use std::time::Duration;

use super::{ConfigError, bad};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Scheduled passes: more often than a minute is a busy loop, and past 30 days
/// GitHub's data would be too old to call "in step" (and far enough out, dates overflow).
pub const SYNC_INTERVAL: (Duration, Duration) = (MINUTE, Duration::from_secs(30 * 24 * 3600));
/// How old a profile may get before a pass fetches it again: same bounds as the interval.
pub const STALE_AFTER: (Duration, Duration) = SYNC_INTERVAL;
/// The redelivery sweep lists `/app/hook/deliveries`: at most once a minute, so
/// it never hammers GitHub; at least daily, since GitHub keeps deliveries 3 days.
pub const REDELIVER_INTERVAL: (Duration, Duration) = (MINUTE, DAY);
/// GraphQL `nodes(ids:)` takes at most 100 ids, and a batch is one such call.
pub const BATCH_SIZE: (usize, usize) = (1, 100);

/// `value` parsed as a humantime duration within `bounds` (inclusive).
pub fn duration_within(var: &'static str, value: &str, bounds: (Duration, Duration)) -> Result<Duration, ConfigError> {
    let d = super::duration(var, value)?;
    let (min, max) = bounds;
    if d < min || d > max {
        return Err(bad(
            var,
            format!(
                "{value:?} must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

/// `value` parsed as a whole number within `bounds` (inclusive).
pub fn count_within(var: &'static str, value: &str, bounds: (usize, usize)) -> Result<usize, ConfigError> {
    let n: usize = super::number(var, value)?;
    if n < bounds.0 || n > bounds.1 {
        return Err(bad(var, format!("{value:?} must be from {} to {}", bounds.0, bounds.1)));
    }
    Ok(n)
}

/// `GHSYNC_LOG` must be a filter `tracing` understands: a typo is refused, not
/// silently replaced by `info` (which would hide the debug output asked for).
pub fn log_filter(value: &str) -> Result<String, ConfigError> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map_err(|e| bad("GHSYNC_LOG", format!("{value:?} is not a log filter ({e})")))?;
    Ok(value.to_owned())
}
