//! How the request path's groups of new deliveries reach the database
//! (`webhook/writer.rs` gathers them; each backend says how to commit them).
//!
//! PostgreSQL takes several commits at once, each a round trip to the server:
//! the writer overlaps a few, through `insert_deliveries`. SQLite takes one
//! writer at a time, and there the cost was the hand-offs: each group went from
//! the writer's task to sqlx's SQLite thread and back, and every hand-off waited
//! for a core the request path was using. Under load a group of 16 took twice
//! what it took idle. So on SQLite one thread of its own takes the waiting
//! requests and commits group after group without handing anything off.

use crate::domain::{InsertOutcome, NewDelivery};

use super::StoreResult;

/// What a backend asks of the request path's writer.
pub enum GroupCommit {
    /// Commit each group through `InboxStore::insert_deliveries`, up to this
    /// many groups at once.
    Overlapping(usize),
    /// Commit on a thread of its own, with this committer's blocking calls.
    Dedicated(Box<dyn GroupCommitter>),
}

/// Commits groups with blocking calls, on the writer's own thread.
pub trait GroupCommitter: Send {
    /// Stores one group in one transaction, committed before this returns:
    /// one outcome per delivery, in order, as `insert_deliveries` gives them
    /// (the first copy of a GUID is the one stored, any other its duplicate).
    /// A delivery the database refuses fails alone; an outage fails them all.
    fn commit(&mut self, group: &[NewDelivery]) -> Vec<StoreResult<InsertOutcome>>;
    /// No request is waiting: let the process's other writers in.
    fn pause(&mut self);
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Overlapping(n) => write!(f, "Overlapping({n})"),
            Self::Dedicated(_) => f.write_str("Dedicated"),
        }
    }
}
