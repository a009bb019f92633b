//! Domain types: the vocabulary every other module speaks. Raw input is parsed
//! into these once, at the edge; after that no `&str` stands for an id.

mod ids;
mod login;
mod profile;
mod status;

pub use ids::{DeliveryId, EventName, GitHubUserId, IdError, InstallationId, NodeId, RunId};
pub use login::{Login, LoginError};
pub use profile::{KeyFields, ProfileHash, RestProfile};
pub use status::{InstallationState, UserStatus};
