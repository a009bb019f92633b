//! Keeping a claim while its work goes on. A batch may take longer than its
//! lease (slow GitHub: 30 s timeouts, retries, rate-limit waits): the claim is
//! renewed every third of the lease while the work runs, so only a process
//! that stopped (killed, frozen, cut off from the database) loses it. What a
//! lost lease's holder writes afterwards is refused by the store (fencing).

use std::future::Future;
use std::time::Duration;

use crate::store::StoreResult;

/// Renewals per lease: two can be missed (a slow database) before it runs out.
const RENEWALS_PER_LEASE: u32 = 3;

/// How often a claim of `lease` length is renewed.
pub fn renew_every(lease: Duration) -> Duration {
    lease / RENEWALS_PER_LEASE
}

/// Runs `work` to its end, calling `renew` every `renew_every(lease)` meanwhile.
/// `renew` says how many claimed rows it still held; `what` names them in the log.
pub async fn renewing<T, Fut, R, RFut>(what: &'static str, lease: Duration, work: Fut, mut renew: R) -> T
where
    Fut: Future<Output = T>,
    R: FnMut() -> RFut,
    RFut: Future<Output = StoreResult<u64>>,
{
    let every = renew_every(lease);
    // Both polled side by side: the work must go on while a renewal waits (for the one SQLite
    // writer, which the work itself may hold mid-transaction), or the two would wait on each other.
    let renewals = async {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match renew().await {
                Ok(held) => tracing::trace!(held, what, "lease renewed"),
                // The work goes on: if the lease is lost meanwhile, its writes are refused, not wrong.
                Err(e) => tracing::warn!(error.message = %e, what, "cannot renew a lease"),
            }
        }
    };
    tokio::select! {
        done = work => done,
        never = renewals => never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::sync::Notify;

    #[tokio::test]
    async fn work_is_renewed_while_it_goes_on() {
        // The work ends only once renewed three times: it can, so renewals run beside it.
        let (renewals, renewed) = (AtomicU32::new(0), Notify::new());
        let work = async {
            while renewals.load(Ordering::SeqCst) < 3 {
                let woken = renewed.notified();
                if renewals.load(Ordering::SeqCst) >= 3 {
                    break;
                }
                woken.await;
            }
            7
        };
        let renew = || async {
            renewals.fetch_add(1, Ordering::SeqCst);
            renewed.notify_one();
            Ok(1)
        };
        assert_eq!(renewing("test", Duration::from_millis(30), work, renew).await, 7);
    }

    #[tokio::test]
    async fn a_renewal_waiting_for_what_the_work_holds_does_not_stop_the_work() {
        // One writer, as on SQLite: the work holds it mid-transaction when a renewal asks for it.
        let (writer, asked) = (tokio::sync::Mutex::new(()), Notify::new());
        let work = async {
            let held = writer.lock().await;
            asked.notified().await;
            drop(held);
            7
        };
        let renew = || async {
            asked.notify_one();
            let _writer = writer.lock().await;
            Ok(1)
        };
        let done =
            tokio::time::timeout(Duration::from_secs(30), renewing("test", Duration::from_millis(30), work, renew));
        assert_eq!(done.await.expect("the work and its renewal waited on each other"), 7);
    }
}
