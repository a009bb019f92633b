//! `App::build(settings)` wires everything once: the store (opened and
//! migrated), the GitHub facade, the services and background tasks built over
//! them, the webhook's writer and the HTTP server bound to its listener.
//! `run_until_stopped` runs it all. Each task gets only what it needs.

use actix_web::web;
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::github::GitHub;
use crate::http::{self, AppState};
use crate::inbox::{RedeliverySweep, Worker};
use crate::metrics::Metrics;
use crate::store::{self, Store};
use crate::sync::{PassRunner, Reconciler, Refresher, Scheduler, StatusService, UserService};
use crate::webhook::{BodyGate, Ingest, RefusalLog, Writer};

/// The store and, when configured, the GitHub facade with what the last
/// process learnt of the rate limits: the part `reconcile` needs too.
pub struct Core {
    pub store: Arc<dyn Store>,
    pub github: Option<GitHub>,
}

pub async fn build_core(settings: &Settings, metrics: &Metrics) -> anyhow::Result<Core> {
    tracing::info!(database = %settings.database.redacted(), "opening the database");
    let store = store::open(&settings.database).await?;
    let github = match &settings.github {
        Some(github) => {
            let github = GitHub::new(github, metrics.clone())?;
            github.governor().load(&store.rate_limits().await?);
            github.governor().share(Arc::new(StoreLedger(store.clone())));
            Some(github)
        }
        None => None,
    };
    Ok(Core { store, github })
}

/// Every process on the database books its rate budgets here (`github/governor/shared.rs`).
struct StoreLedger(Arc<dyn Store>);

#[async_trait::async_trait]
impl crate::github::Ledger for StoreLedger {
    async fn book(&self, ask: &crate::domain::BudgetAsk) -> Result<crate::domain::Booking, String> {
        self.0.book_budget(ask).await.map_err(|e| e.to_string())
    }
}

impl Core {
    /// The pass runner over this core (`None` without GitHub).
    pub fn pass_runner(&self, settings: &Settings, metrics: &Metrics) -> Option<PassRunner> {
        let github = self.github.clone()?;
        let reconciler = Reconciler::new(self.store.clone(), github.clone(), &settings.sync);
        Some(PassRunner::new(self.store.clone(), github, reconciler, &settings.sync, metrics.clone()))
    }
}

/// The background tasks besides the server; the GitHub-bound ones only when configured.
#[derive(Clone)]
struct Tasks {
    worker: Worker,
    refresher: Option<Refresher>,
    redeliveries: Option<RedeliverySweep>,
    passes: Option<PassRunner>,
}

pub struct App {
    port: u16,
    server: actix_web::dev::Server,
    state: web::Data<AppState>,
    tasks: Tasks,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let metrics = Metrics::new();
        let Core { store, github } = build_core(&settings, &metrics).await?;
        let listener = TcpListener::bind(settings.http.listen)
            .map_err(|e| anyhow::anyhow!("GHSYNC_LISTEN: cannot listen on {}: {e}", settings.http.listen))?;
        let port = listener.local_addr()?.port();
        let (inbox_notify, refresh_notify) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let writer = Writer::spawn(store.clone())?;
        let reconciler = github.clone().map(|g| Reconciler::new(store.clone(), g, &settings.sync));
        let passes = github.clone().zip(reconciler.clone()).map(|(github, reconciler)| {
            PassRunner::new(store.clone(), github, reconciler, &settings.sync, metrics.clone())
        });
        let tasks = Tasks {
            worker: Worker {
                store: store.clone(),
                writer: Some(writer.clone()),
                notify: inbox_notify.clone(),
                refresh: refresh_notify.clone(),
                metrics: metrics.clone(),
                lease: settings.sync.lease,
            },
            refresher: reconciler
                .clone()
                .map(|r| Refresher::new(store.clone(), r, refresh_notify.clone(), settings.sync.lease)),
            redeliveries: github
                .clone()
                .map(|g| RedeliverySweep::new(store.clone(), g, settings.sync.redeliver_interval)),
            passes: passes.clone(),
        };
        let ingest = web::Data::new(Ingest {
            secrets: settings.webhook.secrets.clone(),
            writer,
            inbox_notify,
            metrics: metrics.clone(),
            gate: BodyGate::new(&settings.http.body),
            refusals: RefusalLog::default(),
        });
        let state = web::Data::new(AppState {
            users: UserService::new(store.clone(), reconciler, refresh_notify),
            status: StatusService::new(store.clone(), github, passes.clone(), settings.sync.interval),
            store,
            settings: Arc::new(settings),
            metrics,
            passes,
            shutdown: CancellationToken::new(),
        });
        let shared = state.clone();
        let open_files = http::raise_open_file_limit();
        crate::webhook::return_body_buffers_to_the_os();
        let max_connections = http::max_connections_per_worker(open_files);
        tracing::info!(open_files, max_connections_per_worker = max_connections, "connection limits");
        let server = http::serve(listener, max_connections, move || {
            actix_web::App::new()
                .wrap(http::json_errors())
                .app_data(shared.clone())
                .app_data(ingest.clone())
                .app_data(http::json_config())
                .app_data(http::path_config())
                .app_data(http::query_config())
                .wrap(actix_web::middleware::from_fn(http::request_id))
                .configure(http::routes)
        })?;
        Ok(App { port, server, state, tasks })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// The redelivery sweep this app runs on its schedule (tests call it directly).
    pub fn redeliveries(&self) -> Option<RedeliverySweep> {
        self.tasks.redeliveries.clone()
    }

    /// Cancelling this stops everything: nothing new is claimed, HTTP drains.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Runs the server, the inbox worker, the refresher, the redelivery sweep
    /// and the schedule until the shutdown token is cancelled or one of them fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let state = self.state;
        let shutdown = state.shutdown.clone();
        let mut tasks = tokio::task::JoinSet::new();
        let Tasks { worker, refresher, redeliveries, passes } = self.tasks;
        tasks.spawn(report("inbox worker", worker.run(shutdown.clone())));
        if let Some(refresher) = refresher {
            tasks.spawn(report("refresher", refresher.run(shutdown.clone())));
        }
        if state.settings.sync.schedule {
            if let Some(sweep) = redeliveries {
                tasks.spawn(report("redelivery sweep", sweep.run(shutdown.clone())));
            }
            if let Some(passes) = passes {
                let scheduler =
                    Scheduler::new(state.store.clone(), passes, state.settings.sync.interval, state.metrics.clone());
                tasks.spawn(report("scheduler", scheduler.run(shutdown.clone())));
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
