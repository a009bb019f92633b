//! Refused webhook requests are logged at a bounded rate: anyone can send
//! them, as fast as they like, and one WARN line each would fill the disk
//! (62 MB in 3 s was measured). The first refusal in a quiet period is logged
//! with its reason; the rest are summed up by reason in one line per period.
//! Every refusal is counted in `/metrics` either way (by the caller).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often, at most, a summary line is written.
pub const SUMMARY_PERIOD: Duration = Duration::from_secs(10);

/// Registered once as app data; cheap to share.
#[derive(Clone)]
pub struct RefusalLog {
    window: Arc<Mutex<Window>>,
    period: Duration,
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self { window: Arc::default(), period: SUMMARY_PERIOD }
    }
}

#[derive(Default)]
struct Window {
    /// A summary is due at the end of the current period.
    open: bool,
    /// Refusals since the period began, by reason (a fixed, small set of names).
    counts: BTreeMap<&'static str, u64>,
}

impl RefusalLog {
    /// Notes one refusal: logged now if none was in this period, else counted
    /// for the period's summary line.
    pub fn note(&self, reason: &'static str, error: &dyn std::fmt::Display) {
        let first = {
            let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
            if window.open {
                *window.counts.entry(reason).or_default() += 1;
                false
            } else {
                window.open = true;
                true
            }
        };
        if first {
            tracing::warn!(reason, error = %error, "refused a webhook delivery (more in the next 10 s are summed up)");
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(this.period).await;
                this.summarize();
            });
        }
    }

    /// Writes the period's summary (when anything was refused) and starts afresh.
    fn summarize(&self) {
        let counts = {
            let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
            window.open = false;
            std::mem::take(&mut window.counts)
        };
        // The refused requests' buffers are freed by now: give their memory back.
        super::body::release_freed_memory();
        if counts.is_empty() {
            return;
        }
        let total: u64 = counts.values().sum();
        let by_reason = counts.iter().map(|(reason, n)| format!("{reason}={n}")).collect::<Vec<_>>().join(" ");
        tracing::warn!(refused = total, by_reason = %by_reason, "webhook deliveries refused in the last 10 s");
        // One more look a period later: the attack's last connections close after this line,
        // and their memory is given back then (that look writes a line only if more came).
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(this.period).await;
            this.summarize();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_one_line_and_one_summary() {
        let log = RefusalLog { period: Duration::from_millis(50), ..RefusalLog::default() };
        for _ in 0..1000 {
            log.note("refused_signature", &"bad signature");
        }
        log.note("refused_too_large", &"too large");
        {
            let window = log.window.lock().unwrap();
            assert!(window.open);
            assert_eq!(window.counts.get("refused_signature"), Some(&999));
            assert_eq!(window.counts.get("refused_too_large"), Some(&1));
        }
        // The summary is written once the period is over (polled, with a generous bound).
        for _ in 0..400 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let window = log.window.lock().unwrap();
            if !window.open {
                assert!(window.counts.is_empty(), "the summary took the counts");
                return;
            }
        }
        panic!("the period never closed");
    }
}
