//! Domain types: the vocabulary every other module speaks. Raw input is parsed
//! into these once, at the edge; after that no `&str` stands for an id. The
//! store, the GitHub client, the webhook and the inbox all take their types
//! from here, so none of them needs another's module for its words.

mod account;
mod budget;
mod delivery;
mod ids;
mod lease;
mod login;
mod profile;
mod rate_limit;
mod run;
mod status;
mod user;

pub use account::{Account, AccountKind, InstallationRecord};
pub use budget::{BOOKING_TTL, Booking, BudgetAsk, BudgetRow, Observed, book};
pub use delivery::{
    ClaimedDelivery, DeliveryRecord, DeliveryState, Ignore, InboxStats, InsertOutcome, NewDelivery, Settlement,
    not_synced,
};
pub use ids::{DeliveryId, EventName, GitHubUserId, IdError, InstallationId, NodeId, RunId};
pub use lease::{Lease, LeaseId};
pub use login::{Login, LoginError};
pub use profile::{KeyFields, ProfileHash, RestProfile};
pub use rate_limit::{RateLimitRecord, RateSummary, Resource};
pub use run::{RunCounts, RunRecord, RunStart};
pub use status::{InstallationState, Standing, Transition, UserEvent, UserStatus};
pub use user::{DueKind, DueUser, UserOutcome, UserRecord};
