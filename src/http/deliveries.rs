//! `POST /admin/deliveries/{guid}/retry`: an operator sends a parked
//! delivery back to the inbox (after fixing what made it fail), instead of
//! hand-written SQL. The worker picks it up within its poll interval.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::ApiError;
use super::AppState;
use super::admin_auth::Admin;
use crate::domain::{DeliveryId, DeliveryRecord};

fn delivery_json(d: &DeliveryRecord) -> serde_json::Value {
    json!({
        "guid": d.id.as_str(),
        "event": d.event,
        "action": d.action,
        "state": d.state.as_str(),
        "attempts": d.attempts,
        "last_error": d.last_error,
    })
}

/// 202 with the delivery, pending again; 404 for an unknown GUID; 409 when it is not parked.
pub async fn retry(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = DeliveryId::parse(path.as_str())
        .map_err(|e| ApiError::BadRequest(format!("{:?} is not a delivery GUID: {e}", path.as_str())))?;
    let Some(before) = state.store.delivery(&id).await? else {
        return Err(ApiError::NotFound(format!("no delivery {id}")));
    };
    if !state.store.retry_delivery(&id, chrono::Utc::now()).await? {
        return Err(ApiError::Conflict {
            message: format!("delivery {id} is {}, not parked (failed)", before.state.as_str()),
            run_id: None,
        });
    }
    let after = state.store.delivery(&id).await?.unwrap_or(before);
    Ok(HttpResponse::Accepted().json(delivery_json(&after)))
}
