//! Passes on demand, and their records.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::AppState;
use super::admin_auth::Admin;
use crate::domain::{RunId, RunRecord, RunStart};
use crate::sync::PassScope;

/// A pass as `/admin/runs` shows it.
pub fn run_json(run: &RunRecord) -> Value {
    let end = run.finished_at.unwrap_or_else(chrono::Utc::now);
    let c = &run.counts;
    json!({
        "id": run.id,
        "trigger": run.trigger,
        "state": run.state,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "synced_before": run.synced_before,
        "duration_seconds": (end - run.started_at).num_milliseconds() as f64 / 1000.0,
        "users_due": c.users_due,
        "fetched": c.fetched,
        "changed": c.changed,
        "unchanged": c.unchanged,
        "failed": c.failed,
        "gone": c.gone,
        "installations_added": c.installations_added,
        "installations_removed": c.installations_removed,
        "points": { "core": c.points_core, "graphql": c.points_graphql },
        "errors": run.errors,
        "notes": run.notes,
    })
}

/// `POST /admin/reconcile`'s body, optional: `{"all": true}` checks every active user.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReconcileRequest {
    #[serde(default)]
    all: bool,
}

pub async fn start_reconcile(_: Admin, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let request: ReconcileRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReconcileRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))?
    };
    let scope = if request.all { PassScope::Everyone } else { PassScope::Due };
    let passes = state.passes.as_ref().ok_or_else(|| ApiError::Unavailable("GitHub is not configured".into()))?;
    match passes.start("admin", scope, state.shutdown.clone()).await? {
        RunStart::Started(id) | RunStart::TakenOver(id) => Ok(HttpResponse::Accepted().json(json!({ "run_id": id }))),
        RunStart::AlreadyRunning(id) => {
            Err(ApiError::Conflict { message: format!("pass {id} is running"), run_id: Some(id) })
        }
    }
}

pub async fn runs(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let runs = state.store.runs(50).await?;
    Ok(HttpResponse::Ok().json(json!({ "runs": runs.iter().map(run_json).collect::<Vec<_>>() })))
}

pub async fn run(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path
        .parse::<i64>()
        .ok()
        .and_then(|n| RunId::new(n).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("{:?} is not a run id", path.as_str())))?;
    let run = state.store.run(id).await?.ok_or_else(|| ApiError::NotFound(format!("no run {id}")))?;
    Ok(HttpResponse::Ok().json(run_json(&run)))
}
