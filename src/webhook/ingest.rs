//! `POST /webhooks/github`. In order: 413 over 25 MB, 401 for a bad or missing
//! signature, 400 for missing headers or a body that is not a JSON object; then
//! the delivery is committed to the inbox and answered 202 (200 if its GUID was
//! already there). A refused request stores nothing. Reading the body is
//! bounded in memory and time (`body.rs`): 503 with `Retry-After` when the
//! shared budget is full, 408 when the body comes too slowly.

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use chrono::Utc;
use secrecy::SecretString;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::Instrument;

use super::body::{BodyGate, Held};
use super::event::read_body;
use super::refusals::RefusalLog;
use super::signature::{SignatureError, verify};
use super::writer::Writer;
use crate::domain::{DeliveryId, EventName, InsertOutcome, NewDelivery};
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::telemetry::RequestLabel;

/// What the webhook route needs, registered as its own `web::Data` so the
/// request path depends on nothing else of the app.
pub struct Ingest {
    /// Newest first; several while rotating.
    pub secrets: Vec<SecretString>,
    pub writer: Writer,
    /// Wakes the inbox worker when a delivery is stored.
    pub inbox_notify: Arc<Notify>,
    pub metrics: Metrics,
    /// The budget of body bytes being read, all requests together.
    pub gate: BodyGate,
    /// Refusals, logged at a bounded rate.
    pub refusals: RefusalLog,
}

/// GitHub caps payloads at 25 MB and sends nothing larger.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;
/// A body budget frees up as the bodies in flight finish, within seconds.
const BUSY_RETRY_AFTER_SECONDS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("payload is larger than 25 MB")]
    TooLarge,
    #[error("cannot read the request body: {0}")]
    Body(String),
    #[error("too many webhook bodies are being read at once; retry shortly")]
    Busy,
    #[error("the request body came too slowly")]
    TooSlow,
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
            Self::TooSlow => StatusCode::REQUEST_TIMEOUT,
            Self::Busy | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Busy) {
            response.insert_header(("Retry-After", BUSY_RETRY_AFTER_SECONDS.to_string()));
        }
        response.json(serde_json::json!({ "error": self.to_string() }))
    }
}

impl IngestError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::TooLarge => "refused_too_large",
            Self::Signature(_) => "refused_signature",
            Self::Body(_) | Self::BadRequest(_) => "refused_bad_request",
            Self::Busy => "refused_busy",
            Self::TooSlow => "refused_too_slow",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Everything short of storing: the checks, in the contract's order. Public
/// (with only what it reads as arguments) so that fuzz/ can run the request
/// path up to the store.
pub async fn check(
    req: &HttpRequest,
    payload: web::Payload,
    gate: &BodyGate,
    secrets: &[SecretString],
) -> Result<(NewDelivery, Held), IngestError> {
    let declared = header(req, "content-length").and_then(|v| v.parse::<usize>().ok());
    let body = gate.read(declared, payload).await?;
    let (body, held) = (body.bytes, body.held);
    verify(header(req, "x-hub-signature-256"), &body, secrets)?;
    let event = EventName::parse(header(req, "x-github-event").unwrap_or(""))
        .map_err(|e| IngestError::BadRequest(e.to_string()))?;
    let id = DeliveryId::parse(header(req, "x-github-delivery").unwrap_or(""))
        .map_err(|e| IngestError::BadRequest(e.to_string()))?;
    // serde would read a struct from an array too (`["x"]`): only an object is an event.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(IngestError::BadRequest("body is not a JSON object".into()));
    }
    let mut read = read_body(&body).map_err(|e| IngestError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let payload = String::from_utf8(body).map_err(|_| IngestError::BadRequest("body is not UTF-8".into()))?;
    // What the worker would only ignore is settled as it goes in.
    let ignore = read.ignore(&event);
    let (action, digest, received_at) = (read.action, read.digest, Utc::now());
    let delivery = NewDelivery { id, event, action, payload, packed: None, digest, ignore, received_at };
    Ok((delivery, held))
}

pub async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<Ingest>,
) -> Result<HttpResponse, IngestError> {
    // `_held` keeps the body's bytes counted until the answer is written.
    let (delivery, _held) = match check(&req, payload, &state.gate, &state.secrets).await {
        Ok(checked) => checked,
        Err(e) => {
            // An unverified request's event header is not trusted, not even as a label.
            state.metrics.deliveries.with_label_values(&["unverified", e.outcome()]).inc();
            state.refusals.note(e.outcome(), &e);
            return Err(e);
        }
    };
    // Spans open only now, for a body that is read and signed (`RequestLabel`).
    let request = req.extensions().get::<RequestLabel>().map_or_else(tracing::Span::none, RequestLabel::span);
    let span = tracing::info_span!(parent: &request, "webhook.receive", delivery_id = delivery.id.as_str(), event = delivery.event.as_str());
    store(delivery, &state).instrument(span).await
}

async fn store(delivery: NewDelivery, state: &Ingest) -> Result<HttpResponse, IngestError> {
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
        InsertOutcome::Ignored => {
            // Settled at once: counted as the worker counts what it ignores, and not woken.
            state.metrics.deliveries.with_label_values(&[event.as_str(), "accepted"]).inc();
            state.metrics.deliveries.with_label_values(&[event.as_str(), "ignored"]).inc();
            HttpResponse::Accepted().json(body)
        }
        InsertOutcome::Duplicate => {
            state.metrics.deliveries.with_label_values(&[event.as_str(), "duplicate"]).inc();
            HttpResponse::Ok().json(body)
        }
    })
}
