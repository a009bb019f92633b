//! The HTTP surface: every route in one function, handlers one file per concern.

mod admin;
mod admin_auth;
mod admin_page;
mod connections;
mod deliveries;
mod errors;
mod fallback;
mod health;
mod metrics;
mod request_id;
mod state;
mod users;

pub use connections::{
    DISCONNECT_TIMEOUT, KEEP_ALIVE, REQUEST_HEAD_TIMEOUT, WORKERS, max_connections_per_worker, raise_open_file_limit,
};
pub use errors::ApiError;
pub use fallback::{json_config, json_errors, path_config, query_config};
pub use request_id::request_id;
pub use state::AppState;

use actix_web::web;

use crate::webhook;

/// Body limit of `POST /api/users/batch`: 1,000 entries of the longest login fit.
const BATCH_JSON_LIMIT: usize = 256 * 1024;

/// All routes. The webhook route reads its body itself (25 MB cap, its own 413).
/// One resource per path, so a method the path does not take is a 405 with `Allow`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/webhooks/github").post(webhook::receive))
        .service(readable("/healthz", health::healthz))
        .service(readable("/readyz", health::readyz))
        .service(readable("/metrics", metrics::metrics))
        .service(readable("/admin", admin_page::page))
        .service(web::resource("/admin/login").post(admin_page::login))
        .service(web::resource("/admin/logout").post(admin_page::logout))
        .service(readable("/admin/health", health::admin_health))
        .service(web::resource("/admin/reconcile").post(admin::start_reconcile))
        .service(readable("/admin/runs", admin::runs))
        .service(readable("/admin/runs/{id}", admin::run))
        .service(web::resource("/admin/deliveries/{guid}/retry").post(deliveries::retry))
        .service(web::resource("/api/users").post(users::track))
        .service(
            // A thousand logins are more than the default 32 KiB of JSON.
            web::resource("/api/users/batch")
                .app_data(web::JsonConfig::default().limit(BATCH_JSON_LIMIT))
                .post(users::track_batch),
        )
        .service(readable("/api/users/by-id/{github_id}", users::by_id))
        .service(web::resource("/api/users/{github_id}/sync").post(users::sync_now))
        .service(web::resource("/api/users/{github_id}/sync-enabled").put(users::set_sync_enabled))
        // A login for GET, a numeric id for DELETE: one path shape, so one resource.
        .service(readable("/api/users/{login_or_id}", users::by_login).delete(users::disconnect));
}

/// A path whose GET handler also answers HEAD (actix sends no body for HEAD).
fn readable<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path).route(web::get().to(handler.clone())).route(web::head().to(handler))
}
