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
/// Claims are renewed a few times per lease, so a short one costs only writes; under
/// two seconds a busy database could miss a renewal. Past an hour, a dead process's
/// work waits longer than a pass is meant to take.
pub const LEASE: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(3600));
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

/// What callers of the public webhook endpoint can make us hold, whoever they are.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// Webhook body bytes held at once, all requests together (`GHSYNC_WEBHOOK_MEMORY`).
    pub memory: usize,
    /// Time to read a body, plus `READ_TIME_PER_MIB` for each MiB received (`GHSYNC_WEBHOOK_READ_TIMEOUT`).
    pub read_timeout: Duration,
}

/// GitHub sends fast: a MiB that takes longer than this is someone holding the line.
pub const READ_TIME_PER_MIB: Duration = Duration::from_secs(2);
const MIB: usize = 1024 * 1024;
/// At least two 25 MB bodies at once (a buffer may grow to twice its contents);
/// at most 64 GiB, past which the setting is surely a typo.
const WEBHOOK_MEMORY: (usize, usize) = (64 * MIB, 64 * 1024 * MIB);
/// GitHub waits 10 s for an answer, so a body that takes longer is lost anyway.
const READ_TIMEOUT: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));

impl Default for BodyLimits {
    fn default() -> Self {
        Self { memory: 256 * MIB, read_timeout: Duration::from_secs(10) }
    }
}

/// `GHSYNC_WEBHOOK_MEMORY` and `GHSYNC_WEBHOOK_READ_TIMEOUT`, optional (defaults above).
pub fn body_limits(memory: Option<&str>, read_timeout: Option<&str>) -> Result<BodyLimits, ConfigError> {
    let mut limits = BodyLimits::default();
    if let Some(v) = memory.filter(|v| !v.trim().is_empty()) {
        let var = "GHSYNC_WEBHOOK_MEMORY";
        limits.memory =
            byte_size(v).ok_or_else(|| bad(var, format!("{v:?} is not a size (examples: 256MiB, 1GiB)")))?;
        if limits.memory < WEBHOOK_MEMORY.0 || limits.memory > WEBHOOK_MEMORY.1 {
            return Err(bad(var, format!("{v:?} must be between 64MiB and 64GiB")));
        }
    }
    if let Some(v) = read_timeout.filter(|v| !v.trim().is_empty()) {
        limits.read_timeout = duration_within("GHSYNC_WEBHOOK_READ_TIMEOUT", v, READ_TIMEOUT)?;
    }
    Ok(limits)
}

/// `256MiB`, `1GB`, `300000000`: a number and an optional unit (KB/MB/GB are
/// powers of 1000, KiB/MiB/GiB of 1024).
fn byte_size(value: &str) -> Option<usize> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    digits.parse::<usize>().ok()?.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(byte_size("256MiB"), Some(256 << 20));
        assert_eq!(byte_size("1 GB"), Some(1_000_000_000));
        assert_eq!(byte_size("4096"), Some(4096));
        assert_eq!(byte_size("12 parsecs"), None);
        assert_eq!(byte_size("MiB"), None);
    }

    #[test]
    fn webhook_limits_are_bounded_and_named() {
        let memory = body_limits(Some("1MiB"), None).unwrap_err().to_string();
        assert!(memory.starts_with("GHSYNC_WEBHOOK_MEMORY: \"1MiB\" must be between"), "{memory}");
        let timeout = body_limits(None, Some("1h")).unwrap_err().to_string();
        assert!(timeout.starts_with("GHSYNC_WEBHOOK_READ_TIMEOUT: \"1h\" must be between"), "{timeout}");
        assert_eq!(body_limits(None, None).unwrap().memory, 256 << 20);
    }
}
