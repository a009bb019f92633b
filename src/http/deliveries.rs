//! `POST /admin/deliveries/{guid}/retry`: an operator sends a parked
//! delivery back to the inbox (after fixing what made it fail), instead of
//! hand-written SQL. The worker picks it up within its poll interval. The
//! admin page's retry button goes through `retry_parked` too.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;
use super::AppState;
use super::admin_auth::Admin;
use super::errors::{ConflictBody, ErrorBody};
use crate::domain::{DeliveryId, DeliveryRecord};

/// A webhook delivery in the inbox.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// `X-GitHub-Delivery`.
    guid: String,
    event: String,
    action: Option<String>,
    #[schema(pattern = "^(pending|done|ignored|failed)$")]
    state: &'static str,
    attempts: i32,
    last_error: Option<String>,
}

impl From<DeliveryRecord> for DeliveryView {
    fn from(d: DeliveryRecord) -> Self {
        DeliveryView {
            guid: d.id.as_str().to_owned(),
            event: d.event,
            action: d.action,
            state: d.state.as_str(),
            attempts: d.attempts,
            last_error: d.last_error,
        }
    }
}

/// The rule, for the JSON endpoint and the page's button alike: only a
/// parked (failed) delivery goes back, pending again.
pub async fn retry_parked(state: &AppState, raw_guid: &str) -> Result<DeliveryRecord, ApiError> {
    let id = DeliveryId::parse(raw_guid)
        .map_err(|e| ApiError::BadRequest(format!("{raw_guid:?} is not a delivery GUID: {e}")))?;
    let Some(before) = state.store.delivery(&id).await? else {
        return Err(ApiError::NotFound(format!("no delivery {id}")));
    };
    if !state.store.retry_delivery(&id, chrono::Utc::now()).await? {
        return Err(ApiError::Conflict {
            message: format!("delivery {id} is {}, not parked (failed)", before.state.as_str()),
            run_id: None,
        });
    }
    Ok(state.store.delivery(&id).await?.unwrap_or(before))
}

/// Sends a parked delivery back to the inbox.
#[utoipa::path(post, path = "/admin/deliveries/{guid}/retry", tag = "admin",
    params(("guid" = String, Path, description = "the delivery's `X-GitHub-Delivery`", pattern = "^[!-~]{1,100}$")),
    responses(
        (status = 202, description = "pending again", body = DeliveryView),
        (status = 400, description = "not a delivery GUID", body = ErrorBody),
        (status = 404, description = "no such delivery", body = ErrorBody),
        (status = 409, description = "the delivery is not parked", body = ConflictBody),
        (status = 503, description = "the database is unavailable", body = ErrorBody),
    ))]
pub async fn retry(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let after = retry_parked(&state, &path).await?;
    Ok(HttpResponse::Accepted().json(DeliveryView::from(after)))
}
