//! One function per subcommand; `main` dispatches here.

#[cfg(feature = "demo")]
mod demo;
mod setup;

#[cfg(feature = "demo")]
pub use demo::demo;
pub use setup::{RunningSetup, SetupOptions, setup, start_setup};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::app::{App, build_core};
#[cfg(not(feature = "demo"))]
use crate::cli::DemoArgs;
use crate::config::Settings;
use crate::metrics::Metrics;

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listen = settings.http.listen;
    let app = App::build(settings).await?;
    crate::shutdown::watch(app.shutdown_token());
    tracing::info!(%listen, port = app.port(), "ghsync is serving");
    app.run_until_stopped().await
}

/// A build without the `demo` feature (the production image) has no fake
/// GitHub to run against; `demo` still parses, so the CLI stays the same, and
/// says so in one line.
#[cfg(not(feature = "demo"))]
pub async fn demo(_settings: Settings, _args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("this build has no demo: build with the default `demo` feature")
}

pub async fn migrate(settings: Settings) -> anyhow::Result<()> {
    crate::store::open(&settings.database).await?;
    println!("migrations applied to {}", settings.database.redacted());
    Ok(())
}

/// One pass now, or help drain the running one; a summary on stdout.
pub async fn reconcile(settings: Settings) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let core = build_core(&settings, &metrics).await?;
    let passes = core.pass_runner(&settings, &metrics).expect("reconcile loads GitHub settings");
    let shutdown = CancellationToken::new();
    crate::shutdown::watch(shutdown.clone());
    let started = Utc::now();
    let report = passes.run_pass("cli", &shutdown).await?;
    let run = core.store.run(report.run_id).await?;
    let c = &report.counts;
    println!(
        "pass {} {}: {} due, {} fetched, {} changed, {} unchanged, {} failed, {} gone; points spent: core {}, graphql {}; {:.1}s",
        report.run_id,
        match (report.joined, &report.failure) {
            (true, _) => "(joined)",
            (false, None) => "finished",
            (false, Some(_)) => "failed",
        },
        run.as_ref().map_or(c.users_due, |r| r.counts.users_due),
        c.fetched,
        c.changed,
        c.unchanged,
        c.failed,
        c.gone,
        c.points_core,
        c.points_graphql,
        (Utc::now() - started).num_milliseconds() as f64 / 1000.0
    );
    if let Some(run) = run {
        for error in run.errors.iter().take(10) {
            println!("  error: {error}");
        }
        for note in &run.notes {
            println!("  note: {note}");
        }
    }
    // Exit 1 with the reason on the last line: the pass could not run as it should.
    match report.failure {
        Some(reason) => anyhow::bail!("the pass failed: {reason}"),
        None => Ok(()),
    }
}
