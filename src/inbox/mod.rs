//! The durable inbox: deliveries come in through the webhook's writer (group
//! commit); the `Worker` claims, applies and completes them, and the
//! `RedeliverySweep` asks GitHub again for any it never got.

mod apply;
mod redeliver;
mod worker;

pub use apply::{ApplyOutcome, apply};
pub use redeliver::{RedeliverySweep, SweepReport};
pub use worker::{MAX_ATTEMPTS, Worker, retry_delay};
