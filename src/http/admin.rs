//! Passes on demand, and their records.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiError;
use super::AppState;
use super::admin_auth::Admin;
use super::errors::{ConflictBody, ErrorBody};
use crate::domain::{RunId, RunRecord, RunStart};
use crate::sync::PassScope;

/// A pass as `/admin/runs` shows it.
#[derive(Serialize, ToSchema)]
pub struct RunView {
    id: i64,
    /// What started it: `schedule`, `admin`, `cli`, `start`, …
    trigger: String,
    #[schema(examples("running", "finished", "failed", "abandoned"))]
    state: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    /// Users last synced at or before this were due (older runs: unknown).
    synced_before: Option<DateTime<Utc>>,
    /// Until now while it runs.
    duration_seconds: f64,
    users_due: i64,
    fetched: i64,
    changed: i64,
    unchanged: i64,
    failed: i64,
    gone: i64,
    installations_added: i64,
    installations_removed: i64,
    points: Points,
    errors: Vec<String>,
    notes: Vec<String>,
}

/// API points spent, per rate-limit resource.
#[derive(Serialize, ToSchema)]
pub struct Points {
    core: i64,
    graphql: i64,
}

impl From<&RunRecord> for RunView {
    fn from(run: &RunRecord) -> Self {
        let end = run.finished_at.unwrap_or_else(Utc::now);
        let c = &run.counts;
        RunView {
            id: run.id.get(),
            trigger: run.trigger.clone(),
            state: run.state.clone(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            synced_before: run.synced_before,
            duration_seconds: (end - run.started_at).num_milliseconds() as f64 / 1000.0,
            users_due: c.users_due,
            fetched: c.fetched,
            changed: c.changed,
            unchanged: c.unchanged,
            failed: c.failed,
            gone: c.gone,
            installations_added: c.installations_added,
            installations_removed: c.installations_removed,
            points: Points { core: c.points_core, graphql: c.points_graphql },
            errors: run.errors.clone(),
            notes: run.notes.clone(),
        }
    }
}

/// `POST /admin/reconcile`'s body, optional: `{"all": true}` checks every active user.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    #[serde(default)]
    all: bool,
}

/// The pass just started.
#[derive(Serialize, ToSchema)]
pub struct RunStarted {
    run_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RunList {
    /// Newest first, at most 50.
    runs: Vec<RunView>,
}

/// Starts a pass unless one is running.
#[utoipa::path(post, path = "/admin/reconcile", tag = "admin",
    request_body(content = Option<ReconcileRequest>, description = "optional; no body, or `null`, is `{}`"),
    responses(
        (status = 202, description = "started", body = RunStarted),
        (status = 400, description = "body is not the JSON above", body = ErrorBody),
        (status = 409, description = "a pass is running: its id", body = ConflictBody),
        (status = 503, description = "GitHub is not configured, or the database is unavailable", body = ErrorBody),
    ))]
pub async fn start_reconcile(_: Admin, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    // No body, or JSON `null`, is `{}`; anything else must be that object (serde would take `[]` too).
    let bad = |e: String| ApiError::BadRequest(format!("body: {e}"));
    let request: ReconcileRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReconcileRequest::default()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body).map_err(|e| bad(e.to_string()))? {
            serde_json::Value::Null => ReconcileRequest::default(),
            object @ serde_json::Value::Object(_) => serde_json::from_value(object).map_err(|e| bad(e.to_string()))?,
            _ => return Err(bad("must be a JSON object, e.g. {\"all\": true}".into())),
        }
    };
    let scope = if request.all { PassScope::Everyone } else { PassScope::Due };
    let passes = state.passes.as_ref().ok_or_else(|| ApiError::Unavailable("GitHub is not configured".into()))?;
    match passes.start("admin", scope, state.shutdown.clone()).await? {
        RunStart::Started(id) | RunStart::TakenOver(id) => {
            Ok(HttpResponse::Accepted().json(RunStarted { run_id: id.get() }))
        }
        RunStart::AlreadyRunning(id) => {
            Err(ApiError::Conflict { message: format!("pass {id} is running"), run_id: Some(id) })
        }
    }
}

/// Recent passes, newest first.
#[utoipa::path(get, path = "/admin/runs", tag = "admin", responses(
    (status = 200, body = RunList),
    (status = 503, description = "the database is unavailable", body = ErrorBody),
))]
pub async fn runs(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let runs = state.store.runs(50).await?;
    Ok(HttpResponse::Ok().json(RunList { runs: runs.iter().map(RunView::from).collect() }))
}

/// One pass.
#[utoipa::path(get, path = "/admin/runs/{id}", tag = "admin",
    params(("id" = String, Path, pattern = "^[1-9][0-9]{0,17}$", description = "the run id")),
    responses(
        (status = 200, body = RunView),
        (status = 400, description = "not a run id", body = ErrorBody),
        (status = 404, description = "no such run", body = ErrorBody),
        (status = 503, description = "the database is unavailable", body = ErrorBody),
    ))]
pub async fn run(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path
        .parse::<i64>()
        .ok()
        .and_then(|n| RunId::new(n).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("{:?} is not a run id", path.as_str())))?;
    let run = state.store.run(id).await?.ok_or_else(|| ApiError::NotFound(format!("no run {id}")))?;
    Ok(HttpResponse::Ok().json(RunView::from(&run)))
}
