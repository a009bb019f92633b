//! The request path for GitHub's webhooks: verify, check, store (through the
//! group-commit writer), answer. Nothing else happens here: GitHub gives up
//! after 10 s.

mod event;
mod ingest;
mod signature;
mod writer;

pub use event::{Event, EventError, InstallationAction, parse_event};
pub use ingest::{Ingest, MAX_BODY_BYTES, receive};
pub use signature::{SignatureError, verify};
pub use writer::Writer;
