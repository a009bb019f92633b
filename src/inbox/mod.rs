//! The durable inbox: deliveries go in through the `Writer` (group commit),
//! and the `Worker` claims, applies and completes them.

mod apply;
mod worker;
mod writer;

pub use apply::{ApplyOutcome, apply};
pub use worker::{MAX_ATTEMPTS, Worker, retry_delay};
pub use writer::Writer;
