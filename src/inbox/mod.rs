//! The durable inbox: deliveries go in through the `Writer` (group commit),
//! and the `Worker` claims, applies and completes them.

mod apply;
mod worker;
mod writer;

pub use apply::{ApplyOutcome, apply};
pub use worker::{Worker, retry_delay, MAX_ATTEMPTS};
pub use writer::Writer;
