//! `App::build(settings)` wires everything once: the store (opened and
//! migrated), the GitHub facade, the sync machinery, the inbox writer and the
//! HTTP server bound to its listener. `run_until_stopped` runs it all.

use actix_web::{HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::github::GitHub;
use crate::http;
use crate::inbox::{Worker, Writer};
use crate::metrics::Metrics;
use crate::store::{self, Store};
use crate::sync::{Syncer, run_scheduler};
use crate::webhook::{BodyGate, RefusalLog};

/// What handlers share; registered once.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
    pub inbox_writer: Writer,
    /// Wakes the inbox worker when a delivery is stored.
    pub inbox_notify: Arc<Notify>,
    /// Wakes the refresher when a user is marked due.
    pub refresh_notify: Arc<Notify>,
    /// `None` only when GitHub is not configured (never in `serve`).
    pub syncer: Option<Syncer>,
    pub shutdown: CancellationToken,
}

pub struct App {
    port: u16,
    server: actix_web::dev::Server,
    state: web::Data<AppState>,
}

/// Builds the store, GitHub facade and syncer: the part `reconcile` needs too.
pub async fn build_core(settings: &Settings, metrics: &Metrics) -> anyhow::Result<(Arc<dyn Store>, Option<Syncer>)> {
    tracing::info!(database = %settings.database.redacted(), "opening the database");
    let store = store::open(&settings.database).await?;
    let syncer = match &settings.github {
        Some(github) => {
            let github = GitHub::new(github, metrics.clone())?;
            github.governor().load(&store.rate_limits().await?);
            Some(Syncer::new(store.clone(), github, settings.sync.clone(), metrics.clone()))
        }
        None => None,
    };
    Ok((store, syncer))
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let metrics = Metrics::new();
        let (store, syncer) = build_core(&settings, &metrics).await?;
        let listener = TcpListener::bind(settings.http.listen)
            .map_err(|e| anyhow::anyhow!("GHSYNC_LISTEN: cannot listen on {}: {e}", settings.http.listen))?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            inbox_writer: Writer::spawn(store.clone()),
            store,
            settings: Arc::new(settings),
            metrics,
            inbox_notify: Arc::new(Notify::new()),
            refresh_notify: Arc::new(Notify::new()),
            syncer,
            shutdown: CancellationToken::new(),
        });
        let shared = state.clone();
        let gate = web::Data::new(BodyGate::new(&state.settings.http.body));
        let refusals = web::Data::new(RefusalLog::default());
        let open_files = http::raise_open_file_limit();
        let max_connections = http::max_connections_per_worker(open_files);
        tracing::info!(open_files, max_connections_per_worker = max_connections, "connection limits");
        let server = HttpServer::new(move || {
            actix_web::App::new()
                .wrap(http::json_errors())
                .app_data(shared.clone())
                .app_data(gate.clone())
                .app_data(refusals.clone())
                .app_data(http::json_config())
                .app_data(http::path_config())
                .app_data(http::query_config())
                .configure(http::routes)
        })
        .listen(listener)?
        .workers(http::WORKERS)
        .max_connections(max_connections)
        .client_request_timeout(http::REQUEST_HEAD_TIMEOUT)
        .client_disconnect_timeout(http::DISCONNECT_TIMEOUT)
        .keep_alive(http::KEEP_ALIVE)
        .disable_signals()
        .shutdown_timeout(20)
        .run();
        Ok(App { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Cancelling this stops everything: nothing new is claimed, HTTP drains.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Runs the server, the inbox worker, the refresher and the schedule until
    /// the shutdown token is cancelled or one of them fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let state = self.state;
        let shutdown = state.shutdown.clone();
        let mut tasks = tokio::task::JoinSet::new();
        let worker = Worker {
            store: state.store.clone(),
            writer: Some(state.inbox_writer.clone()),
            notify: state.inbox_notify.clone(),
            refresh: state.refresh_notify.clone(),
            metrics: state.metrics.clone(),
        };
        tasks.spawn(report("inbox worker", worker.run(shutdown.clone())));
        if let Some(syncer) = state.syncer.clone() {
            tasks.spawn(report(
                "refresher",
                syncer.clone().run_refresher(state.refresh_notify.clone(), shutdown.clone()),
            ));
            if state.settings.sync.schedule {
                tasks.spawn(report("redelivery sweep", syncer.clone().run_redeliverer(shutdown.clone())));
                tasks.spawn(report("scheduler", run_scheduler(syncer, shutdown.clone())));
            }
        }
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        let failed = tokio::select! {
            _ = shutdown.cancelled() => false,
            Some(joined) = tasks.join_next() => !matches!(joined, Ok(Ok(()))),
            result = server => { tracing::error!(?result, "HTTP server stopped"); true }
        };
        shutdown.cancel();
        handle.stop(true).await;
        while tasks.join_next().await.is_some() {}
        if failed { anyhow::bail!("a background task failed; see the log") } else { Ok(()) }
    }
}

/// Logs how a task ended (Z2P's `report_exit`).
async fn report(name: &'static str, task: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let outcome = task.await;
    match &outcome {
        Ok(()) => tracing::info!(task = name, "stopped"),
        Err(e) => tracing::error!(task = name, error.cause_chain = ?e, "failed"),
    }
    outcome
}
