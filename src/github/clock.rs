//! Clock skew: GitHub's `Date` header against our clock. Installation tokens
//! carry GitHub's `expires_at`; read by a clock minutes off, a fresh token
//! looks expired (and would be minted again before every call) or an expired
//! one fresh. We translate `expires_at` into our clock, and report the skew
//! (log and `/admin/health`), naming both times.

use chrono::{DateTime, Utc};
use http::HeaderMap;
use std::sync::Mutex;

/// Further apart than this, the clocks disagree ("minutes off").
const TOLERANCE_SECONDS: i64 = 120;

/// What `/admin/health` shows as `clock_skew`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClockSkew {
    /// GitHub's time (its `Date` header), or a token's `expires_at` that was already past.
    pub github_date: DateTime<Utc>,
    pub our_time: DateTime<Utc>,
    /// Our clock minus GitHub's: positive when we are ahead.
    pub seconds: i64,
}

/// GitHub's `Date` header (RFC 7231, e.g. `Mon, 30 Nov 2026 10:00:00 GMT`).
pub fn date_of(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    let value = headers.get(http::header::DATE)?.to_str().ok()?;
    DateTime::parse_from_rfc2822(value).ok().map(|t| t.with_timezone(&Utc))
}

/// The latest skew seen, if the clocks disagree.
#[derive(Default)]
pub struct SkewWatch {
    last: Mutex<Option<ClockSkew>>,
}

impl SkewWatch {
    /// Compares an answer's `Date` with our clock; logs when a skew appears.
    pub fn observe(&self, headers: &HeaderMap, our_time: DateTime<Utc>) {
        let Some(github_date) = date_of(headers) else { return };
        let seconds = (our_time - github_date).num_seconds();
        let mut last = self.last.lock().expect("skew poisoned");
        if seconds.abs() < TOLERANCE_SECONDS {
            *last = None;
            return;
        }
        if last.is_none() {
            tracing::warn!(%github_date, %our_time, seconds, "clock skew: GitHub's Date and our clock disagree");
        }
        *last = Some(ClockSkew { github_date, our_time, seconds });
    }

    /// A token arrived already expired by our clock.
    pub fn expired_on_arrival(&self, expires_at: DateTime<Utc>, our_time: DateTime<Utc>) {
        let seconds = (our_time - expires_at).num_seconds();
        tracing::warn!(%expires_at, %our_time, seconds, "clock skew: a new installation token is already expired by our clock");
        let mut last = self.last.lock().expect("skew poisoned");
        if last.is_none() {
            *last = Some(ClockSkew { github_date: expires_at, our_time, seconds });
        }
    }

    pub fn current(&self) -> Option<ClockSkew> {
        self.last.lock().expect("skew poisoned").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dated(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::DATE, value.parse().unwrap());
        h
    }

    #[test]
    fn minutes_apart_is_skew_and_seconds_apart_is_not() {
        let watch = SkewWatch::default();
        let ours = DateTime::parse_from_rfc3339("2026-11-30T10:10:00Z").unwrap().with_timezone(&Utc);
        watch.observe(&dated("Mon, 30 Nov 2026 10:09:30 GMT"), ours);
        assert!(watch.current().is_none());
        watch.observe(&dated("Mon, 30 Nov 2026 10:00:00 GMT"), ours);
        let skew = watch.current().expect("ten minutes is skew");
        assert_eq!(skew.seconds, 600);
        assert_eq!(skew.github_date.to_rfc3339(), "2026-11-30T10:00:00+00:00");
    }
}
