//! What a pass tells its caller, and what a batch adds to the pass's counts.

use crate::domain::{RunCounts, RunId, UserOutcome};

#[derive(Debug, Clone)]
pub struct PassReport {
    pub run_id: RunId,
    /// This process joined a pass another one started.
    pub joined: bool,
    pub counts: RunCounts,
    /// Why the pass this process started could not run as it should: it is
    /// recorded `failed` with this reason.
    pub failure: Option<String>,
}

pub(super) fn counts_of(outcomes: &[UserOutcome]) -> RunCounts {
    let mut c = RunCounts::default();
    for o in outcomes {
        match o {
            UserOutcome::Fetched { changed, .. } => {
                c.fetched += 1;
                if *changed {
                    c.changed += 1;
                } else {
                    c.unchanged += 1;
                }
            }
            UserOutcome::Unchanged { .. } => c.unchanged += 1,
            UserOutcome::Gone { .. } => c.gone += 1,
            UserOutcome::Failed { .. } => c.failed += 1,
            UserOutcome::Released { .. } => {}
        }
    }
    c
}
