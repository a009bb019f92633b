//! The HTTP surface: every route in one function, handlers one file per concern.

mod admin;
mod admin_auth;
mod admin_page;
mod errors;
mod health;
mod metrics;
mod request_id;
mod state;
mod users;

pub use errors::ApiError;
pub use request_id::request_id;
pub use state::AppState;

use actix_web::web;

use crate::webhook;

/// All routes. The webhook route reads its body itself (25 MB cap, its own 413).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/github", web::post().to(webhook::receive))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/admin", web::get().to(admin_page::page))
        .route("/admin/login", web::post().to(admin_page::login))
        .route("/admin/logout", web::post().to(admin_page::logout))
        .route("/admin/health", web::get().to(health::admin_health))
        .route("/admin/reconcile", web::post().to(admin::start_reconcile))
        .route("/admin/runs", web::get().to(admin::runs))
        .route("/admin/runs/{id}", web::get().to(admin::run))
        .route("/api/users", web::post().to(users::track))
        .route("/api/users/by-id/{github_id}", web::get().to(users::by_id))
        .route("/api/users/{github_id}/sync", web::post().to(users::sync_now))
        .route("/api/users/{github_id}/sync-enabled", web::put().to(users::set_sync_enabled))
        .route("/api/users/{login}", web::get().to(users::by_login))
        .route("/api/users/{github_id}", web::delete().to(users::disconnect));
}
