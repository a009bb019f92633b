//! Two governors (two processes) on one in-memory ledger, with a tiny GitHub
//! that counts what was really spent.

use super::*;
use crate::domain::{BudgetRow, book};
use crate::github::GovernorSettings;
use crate::github::governor::Observation;
use chrono::{DateTime, Duration as ChronoDuration};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct MemoryLedger(Mutex<HashMap<(InstallationId, Resource), BudgetRow>>);

#[async_trait]
impl Ledger for MemoryLedger {
    async fn book(&self, ask: &BudgetAsk) -> Result<Booking, String> {
        let mut rows = self.0.lock().unwrap();
        let key = (ask.installation_id, ask.resource);
        let (row, booking) = book(rows.remove(&key), ask);
        rows.insert(key, row);
        Ok(booking)
    }
}

fn id() -> InstallationId {
    InstallationId::new(1).unwrap()
}

fn processes(n: usize) -> Vec<Governor> {
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    (0..n)
        .map(|_| {
            let g = Governor::new(GovernorSettings { reserve_fraction: 0.1, ..GovernorSettings::default() });
            g.share(ledger.clone());
            g
        })
        .collect()
}

fn answer(status: u16, remaining: i64, reset: DateTime<Utc>) -> Observation {
    Observation { status, limit: Some(100), remaining: Some(remaining), reset: Some(reset), ..Default::default() }
}

#[tokio::test]
async fn processes_together_spend_the_budget_less_the_reserve_and_not_a_point_more() {
    let gs = processes(3);
    let reset = Utc::now() + ChronoDuration::hours(1);
    let mut spent = 0;
    // Rounds: each process sends up to four requests before any answer comes back (as
    // replicas' requests overlap on the wire); then the answers say what GitHub has left.
    loop {
        let mut sent = [0; 3];
        let mut permits = Vec::new();
        for (i, g) in gs.iter().enumerate() {
            for _ in 0..4 {
                match g.acquire(id(), Resource::Core, 1, Priority::Background, false).await {
                    Ok(permit) => {
                        permits.push(permit);
                        sent[i] += 1;
                        spent += 1;
                    }
                    Err(Refusal::Exhausted(_) | Refusal::Probing) => break,
                    Err(other) => panic!("process {i}: {other:?}"),
                }
            }
        }
        assert!(spent <= 90, "the processes spent into the reserve: {spent}");
        drop(permits);
        for (g, n) in gs.iter().zip(sent) {
            for _ in 0..n {
                g.observe(id(), Resource::Core, 1, Some(&answer(200, 100 - spent, reset)), Utc::now());
            }
            g.publish(id(), Resource::Core).await;
        }
        if sent == [0; 3] && spent > 0 {
            // Bookings the others still hold expire and come back, then nobody can send.
            tokio::time::sleep(BOOKING_TTL).await;
            let again = gs[0].acquire(id(), Resource::Core, 1, Priority::Background, false).await;
            if again.is_err() {
                break;
            }
            spent += 1;
            gs[0].observe(id(), Resource::Core, 1, Some(&answer(200, 100 - spent, reset)), Utc::now());
        }
    }
    assert_eq!(spent, 90, "exactly the budget less the reserve");
}

#[tokio::test]
async fn the_first_answer_in_a_window_lets_every_process_book_from_it() {
    let gs = processes(2);
    // Nobody knows the budget: each process finds out with one request of its own.
    let _first = gs[0].acquire(id(), Resource::Core, 1, Priority::Background, false).await.unwrap();
    let _second = gs[1].acquire(id(), Resource::Core, 1, Priority::Background, false).await.unwrap();
    assert_eq!(
        gs[1].acquire(id(), Resource::Core, 1, Priority::Background, false).await.err(),
        Some(Refusal::Probing),
        "one request at a time while the budget is unknown"
    );
    // The first answer is published: the other process books from it, unlimited by its own probe.
    gs[0].observe(id(), Resource::Core, 1, Some(&answer(200, 12, Utc::now() + ChronoDuration::hours(1))), Utc::now());
    gs[0].publish(id(), Resource::Core).await;
    let mut booked = 0;
    while let Ok(_permit) = gs[0].acquire(id(), Resource::Core, 1, Priority::Background, false).await {
        booked += 1;
    }
    // 12 left less the reserve of 10 (100 × 0.1).
    assert!(booked <= 2, "{booked}");
}

#[tokio::test]
async fn a_pause_one_process_was_told_of_stops_the_others() {
    let gs = processes(2);
    let reset = Utc::now() + ChronoDuration::hours(1);
    for g in &gs {
        // Both know the budget and hold no booking yet.
        g.observe(id(), Resource::Core, 0, Some(&answer(200, 99, reset)), Utc::now());
        g.publish(id(), Resource::Core).await;
    }
    let _sent = gs[0].acquire(id(), Resource::Core, 1, Priority::Background, false).await.unwrap();
    let limited = Observation { retry_after: Some(std::time::Duration::from_secs(60)), ..answer(403, 98, reset) };
    gs[0].observe(id(), Resource::Core, 1, Some(&limited), Utc::now());
    gs[0].publish(id(), Resource::Core).await;
    let refused = gs[1].acquire(id(), Resource::Core, 1, Priority::Background, false).await.err();
    assert!(matches!(refused, Some(Refusal::Paused(_))), "{refused:?}");
}
