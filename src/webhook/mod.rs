//! The request path for GitHub's webhooks: verify, check, store (through the
//! group-commit writer), answer. Nothing else happens here: GitHub gives up
//! after 10 s.

/// Where GitHub posts; the App's manifest names it too.
pub const PATH: &str = "/webhooks/github";

mod body;
mod event;
mod ingest;
mod refusals;
mod signature;
mod writer;

pub use body::{BodyGate, return_body_buffers_to_the_os};
pub use event::{Event, EventError, InstallationAction, parse_event};
pub use ingest::{Ingest, IngestError, MAX_BODY_BYTES, check, receive};
pub use refusals::{RefusalLog, SUMMARY_PERIOD as REFUSAL_SUMMARY_PERIOD};
pub use signature::{SignatureError, verify};
pub use writer::Writer;
