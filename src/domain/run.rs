//! Reconcile passes: starting one, the counts its batches add, and the
//! record the admin API shows.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::RunId;

/// Whether `start_run` began a pass, found one already running, or took
/// over one whose owner fell silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStart {
    Started(RunId),
    AlreadyRunning(RunId),
    /// Ours to carry out and finish now: its owner died.
    TakenOver(RunId),
}

/// Counts a batch adds to its pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub users_due: i64,
    pub fetched: i64,
    pub changed: i64,
    pub unchanged: i64,
    pub failed: i64,
    pub gone: i64,
    pub points_core: i64,
    pub points_graphql: i64,
    pub installations_added: i64,
    pub installations_removed: i64,
}

impl RunCounts {
    pub fn add(&mut self, other: &RunCounts) {
        self.users_due += other.users_due;
        self.fetched += other.fetched;
        self.changed += other.changed;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.gone += other.gone;
        self.points_core += other.points_core;
        self.points_graphql += other.points_graphql;
        self.installations_added += other.installations_added;
        self.installations_removed += other.installations_removed;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: RunId,
    pub trigger: String,
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Users last synced at or before this were due in the pass (older runs: unknown).
    pub synced_before: Option<DateTime<Utc>>,
    pub counts: RunCounts,
    pub errors: Vec<String>,
    pub notes: Vec<String>,
}
