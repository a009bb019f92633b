//! Two-step shutdown: the first SIGTERM or Ctrl-C cancels the token (nothing
//! new is claimed, work in flight finishes, HTTP drains); a second signal, or
//! `DEADLINE` later, ends the process. Leases cover anything cut short.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const DEADLINE: Duration = Duration::from_secs(25);

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("can install a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Spawns the watcher for `token`.
pub fn watch(token: CancellationToken) {
    tokio::spawn(async move {
        signal().await;
        tracing::info!("shutting down; a second signal stops at once");
        token.cancel();
        tokio::select! {
            _ = signal() => {}
            _ = tokio::time::sleep(DEADLINE) => tracing::warn!("work did not finish within {DEADLINE:?}"),
        }
        std::process::exit(130);
    });
}
