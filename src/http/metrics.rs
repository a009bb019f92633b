//! `GET /metrics`: Prometheus text. Gauges that mirror the database are
//! refreshed here, at scrape time, rather than kept up to date on every write.

use actix_web::{HttpResponse, web};

use super::ApiError;
use super::AppState;

pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let m = &state.metrics;
    let inbox = state.store.inbox_stats().await?;
    m.inbox.with_label_values(&["pending"]).set(inbox.pending);
    m.inbox.with_label_values(&["failed"]).set(inbox.failed);
    for (status, n) in state.store.user_counts().await? {
        m.users.with_label_values(&[&status]).set(n);
    }
    for r in state.status.rate_limits().await? {
        let labels = [r.installation_id.to_string(), r.resource.as_str().to_owned()];
        let labels = [labels[0].as_str(), labels[1].as_str()];
        m.rate_remaining.with_label_values(&labels).set(r.remaining);
        m.rate_reset.with_label_values(&labels).set(r.reset_at.timestamp());
        m.rate_paused_until.with_label_values(&labels).set(r.paused_until.map_or(0, |t| t.timestamp()));
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(m.render()))
}
