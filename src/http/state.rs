//! `AppState`: what the handlers share, registered once by `App::build`. The
//! handlers reach the services through it and never orchestrate themselves.

use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::sync::{PassRunner, StatusService, UserService};

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
    pub users: UserService,
    /// `None` only when GitHub is not configured (never in `serve`).
    pub passes: Option<PassRunner>,
    pub status: StatusService,
    /// Cancelled at shutdown; passes started over HTTP stop with it.
    pub shutdown: CancellationToken,
}
