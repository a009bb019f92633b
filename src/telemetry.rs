//! Logging: `GHSYNC_LOG` as the filter, text or JSON lines. Secrets never get
//! here: every type that holds one redacts its `Debug`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Installs the global subscriber; later calls (tests) are no-ops. The filter
/// was checked by `Settings::load`; text lines carry colour codes only when
/// stderr is a terminal, so a log file or a collector gets plain text.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if settings.json { builder.json().try_init() } else { builder.try_init() };
}

/// What a request's `request` span carries. The middleware opens the span
/// for most routes; the webhook opens it itself once the body is read, so that
/// thousands of half-sent bodies hold no span (each is a slot in the span
/// registry, kept for reuse after the attack: ~100 MB for 22,000 at once).
#[derive(Clone)]
pub struct RequestLabel {
    pub id: String,
    pub method: String,
    pub path: String,
}

impl RequestLabel {
    pub fn span(&self) -> tracing::Span {
        // The path, not the query string: queries may carry a one-time token.
        tracing::info_span!("request", request_id = %self.id, method = %self.method, path = %self.path)
    }
}
