//! `POST /webhooks/github`. In order: 413 over 25 MB, 401 for a bad or missing
//! signature, 400 for missing headers or a body that is not JSON; then the
//! delivery is committed to the inbox and answered 202 (200 if its GUID was
//! already there). A refused request stores nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::Utc;
use futures_util::StreamExt;
use secrecy::SecretString;
use std::sync::Arc;
use tokio::sync::Notify;

use super::signature::{SignatureError, verify};
use super::writer::Writer;
use crate::domain::{DeliveryId, EventName, InsertOutcome, NewDelivery};
use crate::metrics::Metrics;
use crate::store::StoreError;

/// What the webhook route needs, registered as its own `web::Data` so the
/// request path depends on nothing else of the app.
pub struct Ingest {
    /// Newest first; several while rotating.
    pub secrets: Vec<SecretString>,
    pub writer: Writer,
    /// Wakes the inbox worker when a delivery is stored.
    pub inbox_notify: Arc<Notify>,
    pub metrics: Metrics,
}

/// GitHub caps payloads at 25 MB and sends nothing larger.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("payload is larger than 25 MB")]
    TooLarge,
    #[error("cannot read the request body: {0}")]
    Body(String),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    BadRequest(String),
    #[error("the inbox is unavailable; GitHub may redeliver")]
    Unavailable(#[source] StoreError),
}

impl ResponseError for IngestError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::Body(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(serde_json::json!({ "error": self.to_string() }))
    }
}

impl IngestError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::TooLarge => "refused_too_large",
            Self::Signature(_) => "refused_signature",
            Self::Body(_) | Self::BadRequest(_) => "refused_bad_request",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// Reads the body up to the cap; refuses early when `Content-Length` says it is over.
async fn read_capped(req: &HttpRequest, mut payload: web::Payload) -> Result<web::Bytes, IngestError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(IngestError::TooLarge);
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(MAX_BODY_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| IngestError::Body(e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(IngestError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Everything short of storing: the checks, in the contract's order.
async fn check(req: &HttpRequest, payload: web::Payload, state: &Ingest) -> Result<NewDelivery, IngestError> {
    let body = read_capped(req, payload).await?;
    verify(header(req, "x-hub-signature-256"), &body, &state.secrets)?;
    let event = EventName::parse(header(req, "x-github-event").unwrap_or(""))
        .map_err(|e| IngestError::BadRequest(e.to_string()))?;
    let id = DeliveryId::parse(header(req, "x-github-delivery").unwrap_or(""))
        .map_err(|e| IngestError::BadRequest(e.to_string()))?;
    #[derive(serde::Deserialize)]
    struct Top {
        action: Option<serde_json::Value>,
    }
    let top: Top = serde_json::from_slice(&body)
        .map_err(|e| IngestError::BadRequest(format!("body is not a JSON object: {e}")))?;
    let payload = String::from_utf8(body.to_vec()).map_err(|_| IngestError::BadRequest("body is not UTF-8".into()))?;
    Ok(NewDelivery {
        id,
        event,
        action: top.action.and_then(|a| a.as_str().map(str::to_owned)),
        payload,
        received_at: Utc::now(),
    })
}

#[tracing::instrument(name = "webhook.receive", skip_all, fields(delivery_id, event))]
pub async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<Ingest>,
) -> Result<HttpResponse, IngestError> {
    let delivery = match check(&req, payload, &state).await {
        Ok(delivery) => delivery,
        Err(e) => {
            // An unverified request's event header is not trusted, not even as a label.
            state.metrics.deliveries.with_label_values(&["unverified", e.outcome()]).inc();
            tracing::warn!(error = %e, "refused a webhook delivery");
            return Err(e);
        }
    };
    let span = tracing::Span::current();
    span.record("delivery_id", delivery.id.as_str());
    span.record("event", delivery.event.as_str());
    let (id, event) = (delivery.id.clone(), delivery.event.clone());
    let outcome = state.writer.submit(delivery).await.map_err(|e| {
        state.metrics.deliveries.with_label_values(&[event.as_str(), "unavailable"]).inc();
        tracing::error!(error.message = %e, "cannot store a webhook delivery");
        IngestError::Unavailable(e)
    })?;
    let body = serde_json::json!({ "delivery_id": id.as_str() });
    Ok(match outcome {
        InsertOutcome::Inserted => {
            state.metrics.deliveries.with_label_values(&[event.as_str(), "accepted"]).inc();
            state.inbox_notify.notify_one();
            HttpResponse::Accepted().json(body)
        }
        InsertOutcome::Duplicate => {
            state.metrics.deliveries.with_label_values(&[event.as_str(), "duplicate"]).inc();
            HttpResponse::Ok().json(body)
        }
    })
}
