//! The HTTP surface: every route in one function, handlers one file per concern.

mod admin;
mod admin_auth;
mod admin_page;
mod connections;
mod deliveries;
mod error_heads;
mod errors;
mod fallback;
mod health;
mod metrics;
mod openapi;
mod request_id;
mod server;
mod state;
mod user_view;
mod users;

pub use connections::{WORKERS, max_connections_per_worker, raise_open_file_limit};
pub use errors::ApiError;
pub use fallback::{json_config, json_errors, path_config, query_config};
pub use openapi::ApiDoc;
pub use request_id::request_id;
pub use server::serve;
pub use state::AppState;

use actix_web::http::Method;
use actix_web::{Route, web};

use crate::webhook;

/// Body limit of `POST /api/users/batch`: 1,000 entries of the longest login fit.
const BATCH_JSON_LIMIT: usize = 256 * 1024;

/// One route: the path, its method, and how the handler is attached.
pub struct RouteDef {
    pub path: &'static str,
    pub method: Method,
    to: fn(Route) -> Route,
}

const fn route(path: &'static str, method: Method, to: fn(Route) -> Route) -> RouteDef {
    RouteDef { path, method, to }
}

/// Every route, in one table: `routes` mounts it, and the OpenAPI test checks
/// the document against it, so neither can drift from the other. A GET also
/// answers HEAD (actix sends no body for HEAD).
pub const ROUTES: &[RouteDef] = &[
    route(webhook::PATH, Method::POST, |r| r.to(webhook::receive)),
    route("/healthz", Method::GET, |r| r.to(health::healthz)),
    route("/readyz", Method::GET, |r| r.to(health::readyz)),
    route("/metrics", Method::GET, |r| r.to(metrics::metrics)),
    route("/openapi.json", Method::GET, |r| r.to(openapi::document)),
    route("/admin", Method::GET, |r| r.to(admin_page::page)),
    route("/admin/login", Method::POST, |r| r.to(admin_page::login)),
    route("/admin/logout", Method::POST, |r| r.to(admin_page::logout)),
    route("/admin/retry", Method::POST, |r| r.to(admin_page::retry)),
    route("/admin/health", Method::GET, |r| r.to(health::admin_health)),
    route("/admin/reconcile", Method::POST, |r| r.to(admin::start_reconcile)),
    route("/admin/runs", Method::GET, |r| r.to(admin::runs)),
    route("/admin/runs/{id}", Method::GET, |r| r.to(admin::run)),
    route("/admin/deliveries/{guid}/retry", Method::POST, |r| r.to(deliveries::retry)),
    route("/api/users", Method::POST, |r| r.to(users::track)),
    route("/api/users/batch", Method::POST, |r| r.to(users::track_batch)),
    route("/api/users/by-id/{github_id}", Method::GET, |r| r.to(users::by_id)),
    route("/api/users/{github_id}/sync", Method::POST, |r| r.to(users::sync_now)),
    route("/api/users/{github_id}/sync-enabled", Method::PUT, |r| r.to(users::set_sync_enabled)),
    // A login for GET, a numeric id for DELETE: one path shape, so one resource.
    route("/api/users/{login_or_id}", Method::GET, |r| r.to(users::by_login)),
    route("/api/users/{login_or_id}", Method::DELETE, |r| r.to(users::disconnect)),
];

/// All routes, one resource per path, so a method the path does not take is a
/// 405 with `Allow`. The webhook route reads its body itself (25 MB cap, its own 413).
pub fn routes(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
    paths.dedup();
    for path in paths {
        let mut resource = web::resource(path);
        if path == "/api/users/batch" {
            // A thousand logins are more than the default 32 KiB of JSON.
            resource = resource.app_data(json_config().limit(BATCH_JSON_LIMIT));
        }
        for def in ROUTES.iter().filter(|r| r.path == path) {
            resource = resource.route((def.to)(web::route().method(def.method.clone())));
            if def.method == Method::GET {
                resource = resource.route((def.to)(web::route().method(Method::HEAD)));
            }
        }
        cfg.service(resource);
    }
}
