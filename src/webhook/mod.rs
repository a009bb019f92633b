//! The request path for GitHub's webhooks: verify, check, store, answer.
//! Nothing else happens here: GitHub gives up after 10 s.

mod event;
mod ingest;
mod signature;

pub use event::{Event, EventError, InstallationAction, parse_event};
pub use ingest::{MAX_BODY_BYTES, receive};
pub use signature::{SignatureError, verify};
