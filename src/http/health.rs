//! Liveness, readiness, and the operator's one-look health page.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::ApiError;
use super::AppState;
use super::admin::RunView;
use super::admin_auth::Admin;
use super::errors::ErrorBody;
use crate::domain::RateLimitRecord;
use crate::sync::{Health, HealthReport};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(e) => HttpResponse::ServiceUnavailable().json(json!({ "error": e.to_string() })),
    }
}

/// `/admin/health`: everything, or, with the database down, only that.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum HealthAnswer {
    Up(Box<HealthView>),
    DatabaseDown(DatabaseDown),
}

/// The database does not answer: nothing else can be said.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseDown {
    #[schema(pattern = "^degraded$")]
    status: &'static str,
    /// The error.
    database: String,
}

#[derive(Serialize, ToSchema)]
pub struct HealthView {
    #[schema(pattern = "^(ok|degraded)$")]
    status: &'static str,
    #[schema(pattern = "^ok$")]
    database: &'static str,
    last_run: Option<RunView>,
    running_run_id: Option<i64>,
    last_finished_at: Option<DateTime<Utc>>,
    pass_paused_until: Option<DateTime<Utc>>,
    next_run_at: DateTime<Utc>,
    inbox: InboxView,
    /// The 50 budgets with the least left, lowest first.
    rate_limits: Vec<RateLimitView>,
    /// How many (installation, resource) budgets are known.
    rate_limits_tracked: i64,
    clock_skew: Option<ClockSkewView>,
    /// Users by status, every status listed.
    users: BTreeMap<String, i64>,
}

#[derive(Serialize, ToSchema)]
pub struct InboxView {
    pending: i64,
    /// Parked after their last retry.
    failed: i64,
    oldest_pending_seconds: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RateLimitView {
    installation_id: i64,
    #[schema(pattern = "^(core|graphql)$")]
    resource: &'static str,
    limit: i64,
    remaining: i64,
    reset_at: DateTime<Utc>,
    paused_until: Option<DateTime<Utc>>,
}

/// Our clock against GitHub's `Date`, when minutes apart.
#[derive(Serialize, ToSchema)]
pub struct ClockSkewView {
    github_date: DateTime<Utc>,
    our_time: DateTime<Utc>,
    /// Ours minus GitHub's: positive when we are ahead.
    seconds: i64,
}

impl From<&RateLimitRecord> for RateLimitView {
    fn from(r: &RateLimitRecord) -> Self {
        RateLimitView {
            installation_id: r.installation_id.get(),
            resource: r.resource.as_str(),
            limit: r.limit,
            remaining: r.remaining,
            reset_at: r.reset_at,
            paused_until: r.paused_until,
        }
    }
}

impl From<HealthReport> for HealthView {
    fn from(h: HealthReport) -> Self {
        HealthView {
            status: if h.degraded { "degraded" } else { "ok" },
            database: "ok",
            last_run: h.last_run.as_ref().map(RunView::from),
            running_run_id: h.running_run_id.map(|id| id.get()),
            last_finished_at: h.last_finished_at,
            pass_paused_until: h.pass_paused_until,
            next_run_at: h.next_run_at,
            inbox: InboxView {
                pending: h.inbox.pending,
                failed: h.inbox.failed,
                oldest_pending_seconds: h.oldest_pending_seconds,
            },
            rate_limits: h.rate_limits.iter().map(RateLimitView::from).collect(),
            rate_limits_tracked: h.rate_limits_tracked,
            clock_skew: h.clock_skew.map(|c| ClockSkewView {
                github_date: c.github_date,
                our_time: c.our_time,
                seconds: c.seconds,
            }),
            users: h.users,
        }
    }
}

/// The operator's one look: `status` is `degraded` when something needs a person.
#[utoipa::path(get, path = "/admin/health", tag = "admin", responses(
    (status = 200, body = HealthAnswer),
    (status = 503, description = "the database failed while the figures were read", body = ErrorBody),
))]
pub async fn admin_health(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let answer = match state.status.health().await? {
        Health::DatabaseDown(database) => HealthAnswer::DatabaseDown(DatabaseDown { status: "degraded", database }),
        Health::Up(h) => HealthAnswer::Up(Box::new(HealthView::from(*h))),
    };
    Ok(HttpResponse::Ok().json(answer))
}
