//! Liveness, readiness, and the operator's one-look health page.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::ApiError;
use super::AppState;
use super::admin::run_json;
use super::admin_auth::Admin;
use crate::sync::Health;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(e) => HttpResponse::ServiceUnavailable().json(json!({ "error": e.to_string() })),
    }
}

pub async fn admin_health(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let h = match state.status.health().await? {
        Health::DatabaseDown(database) => {
            return Ok(HttpResponse::Ok().json(json!({ "status": "degraded", "database": database })));
        }
        Health::Up(h) => h,
    };
    let limits: Vec<_> = h
        .rate_limits
        .iter()
        .map(|r| {
            json!({
                "installation_id": r.installation_id,
                "resource": r.resource,
                "limit": r.limit,
                "remaining": r.remaining,
                "reset_at": r.reset_at,
                "paused_until": r.paused_until,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "status": if h.degraded { "degraded" } else { "ok" },
        "database": "ok",
        "last_run": h.last_run.as_ref().map(run_json),
        "running_run_id": h.running_run_id,
        "last_finished_at": h.last_finished_at,
        "pass_paused_until": h.pass_paused_until,
        "next_run_at": h.next_run_at,
        "inbox": { "pending": h.inbox.pending, "failed": h.inbox.failed, "oldest_pending_seconds": h.oldest_pending_seconds },
        "rate_limits": limits,
        "rate_limits_tracked": h.rate_limits_tracked,
        "clock_skew": h.clock_skew,
        "users": h.users,
    })))
}
