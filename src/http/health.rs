//! Liveness, readiness, and the operator's one-look health page.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde_json::json;
use std::collections::BTreeMap;

use super::ApiError;
use super::admin::run_json;
use super::admin_auth::Admin;
use crate::app::AppState;
use crate::domain::{RateLimitRecord, Resource, UserStatus};

/// Pending deliveries older than this make the service "degraded".
const STUCK_INBOX_SECONDS: i64 = 300;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(e) => HttpResponse::ServiceUnavailable().json(json!({ "error": e.to_string() })),
    }
}

/// What every replica knows (stored), overlaid with what this one knows now.
pub async fn rate_limits(state: &AppState) -> Result<Vec<RateLimitRecord>, ApiError> {
    let mut merged: BTreeMap<(i64, Resource), RateLimitRecord> = BTreeMap::new();
    for r in state.store.rate_limits().await? {
        merged.insert((r.installation_id.get(), r.resource), r);
    }
    if let Some(syncer) = &state.syncer {
        for r in syncer.github.governor().snapshot(Utc::now()) {
            merged.insert((r.installation_id.get(), r.resource), r);
        }
    }
    Ok(merged.into_values().collect())
}

pub async fn admin_health(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let database = match state.store.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    if database != "ok" {
        return Ok(HttpResponse::Ok().json(json!({ "status": "degraded", "database": database })));
    }
    let inbox = state.store.inbox_stats().await?;
    let oldest = inbox.oldest_pending_at.map(|t| (now - t).num_seconds().max(0));
    let mut users: BTreeMap<String, i64> = UserStatus::ALL.iter().map(|s| (s.as_str().to_string(), 0)).collect();
    users.extend(state.store.user_counts().await?);
    let last_run = state.store.runs(1).await?.into_iter().next();
    let running = state.store.running_run().await?;
    let limits: Vec<_> = rate_limits(&state)
        .await?
        .into_iter()
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
    // Passes stopped finishing: two intervals without one means something is stuck.
    let last_finished = state.store.last_finished_run().await?.and_then(|r| r.finished_at);
    let interval = chrono::Duration::from_std(state.settings.sync.interval).unwrap_or(chrono::Duration::MAX);
    let overdue = last_finished.is_some_and(|t| now - t > interval * 2);
    let degraded = inbox.failed > 0 || oldest.is_some_and(|s| s > STUCK_INBOX_SECONDS) || overdue;
    Ok(HttpResponse::Ok().json(json!({
        "status": if degraded { "degraded" } else { "ok" },
        "database": database,
        "last_run": last_run.as_ref().map(run_json),
        "running_run_id": running,
        "last_finished_at": last_finished,
        "pass_paused_until": state.syncer.as_ref().and_then(|s| s.pass_paused_until()),
        "next_run_at": crate::sync::next_run_at(state.settings.sync.interval, now),
        "inbox": { "pending": inbox.pending, "failed": inbox.failed, "oldest_pending_seconds": oldest },
        "rate_limits": limits,
        "users": users,
    })))
}
