//! Keeping profiles true, one struct per job: the `Reconciler` (a batch of
//! users in, an outcome each out), the `PassRunner` (a whole reconcile pass),
//! the `Refresher` (webhook-driven refreshes), the `Scheduler` (when passes
//! start), the `UserService` (what the users API does) and the
//! `StatusService` (health and rate limits, read-only). A trigger's reason
//! never changes what a fetch does: every path reads GitHub's current state
//! and stores it.

mod backoff;
mod drain;
mod lease;
mod pass;
mod pass_report;
mod picker;
mod reconcile;
mod refresher;
mod register;
mod retire;
mod schedule;
mod status;
mod users;

pub use backoff::{activity_due_at, failure_retry_at};
pub use lease::{renew_every, renewing};
pub use pass::{PassReport, PassRunner, PassScope};
pub use picker::TokenPicker;
pub use reconcile::Reconciler;
pub use refresher::Refresher;
pub use register::{BatchOutcome, MAX_BATCH};
pub use schedule::{Scheduler, next_run_at, pass_due_at_start};
pub use status::{Health, HealthReport, StatusService};
pub use users::{TrackBy, UserError, UserService};
