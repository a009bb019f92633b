//! `GET /metrics`: Prometheus text. Gauges that mirror the database are
//! refreshed here, at scrape time, rather than kept up to date on every write;
//! the expensive ones (users by status, budgets) come from a short cache. No
//! label takes an installation or user id.

use actix_web::{HttpResponse, web};

use super::ApiError;
use super::AppState;

pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let m = &state.metrics;
    let inbox = state.store.inbox_stats().await?;
    m.inbox.with_label_values(&["pending"]).set(inbox.pending);
    m.inbox.with_label_values(&["failed"]).set(inbox.failed);
    let figures = state.status.scrape_figures().await?;
    for (status, n) in figures.users {
        m.users.with_label_values(&[&status]).set(n);
    }
    for r in figures.rate {
        m.rate_tracked.with_label_values(&[r.resource.as_str()]).set(r.tracked);
        m.rate_paused.with_label_values(&[r.resource.as_str()]).set(r.paused);
        match r.least_remaining {
            Some(least) => m.rate_least_remaining.with_label_values(&[r.resource.as_str()]).set(least),
            // No budget known: no series, rather than a 0 that reads as "exhausted".
            None => {
                m.rate_least_remaining.remove_label_values(&[r.resource.as_str()]).ok();
            }
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(m.render()))
}
