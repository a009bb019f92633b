//! Keeping profiles true: the webhook-driven refresher, the reconcile pass,
//! and the schedule that starts passes. A trigger's reason never changes what
//! a fetch does: every path reads GitHub's current state and stores it.

mod backoff;
mod pass;
mod picker;
mod reconcile;
mod redeliver;
mod refresher;
mod schedule;

pub use backoff::{activity_due_at, failure_retry_at};
pub use pass::{PassReport, Syncer};
pub use picker::TokenPicker;
pub use redeliver::{MAX_REQUESTS as MAX_REDELIVERY_REQUESTS, SweepReport};
pub use schedule::{next_run_at, pass_due_at_start, run_scheduler};
