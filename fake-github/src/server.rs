//! The actix-web server: route table, the status-counting middleware, and
//! the response helpers that give every answer GitHub's headers and bodies.

use std::net::TcpListener;

use actix_web::dev::{Server, Service};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::faults::BucketView;
use crate::state::SharedRef;
use crate::{app_routes, graphql, hooks, manifest, rest};

/// Build the server on an already-bound listener. The caller spawns the
/// returned future on its runtime; `disable_signals` because a test process
/// must not have its Ctrl-C handling taken over.
pub fn build(shared: SharedRef, listener: TcpListener) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        let counter = shared.clone();
        App::new()
            .app_data(web::Data::new(shared.clone()))
            // Bodies GitHub accepts are small, but be generous for GraphQL.
            .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
            .wrap_fn(move |req, srv| {
                let counter = counter.clone();
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    let code = res.status().as_u16();
                    *counter.lock().stats.statuses.entry(code).or_default() += 1;
                    let id = request_id();
                    if let Ok(v) = HeaderValue::from_str(&id) {
                        res.headers_mut().insert(HeaderName::from_static("x-github-request-id"), v);
                    }
                    Ok(res)
                }
            })
            .configure(routes)
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/app", web::get().to(app_routes::get_app))
        .route("/app/installations", web::get().to(app_routes::list_installations))
        .route("/app/installations/{id}/access_tokens", web::post().to(app_routes::mint_token))
        .route("/app/hook/deliveries", web::get().to(hooks::list))
        .route("/app/hook/deliveries/{id}", web::get().to(hooks::get_one))
        .route("/app/hook/deliveries/{id}/attempts", web::post().to(hooks::redeliver))
        .route("/user/{id}", web::get().to(rest::get_user))
        .route("/users/{login}", web::get().to(rest::get_user_by_login))
        .route("/rate_limit", web::get().to(rest::rate_limit))
        .route("/graphql", web::post().to(graphql::handle))
        .route("/app-manifests/{code}/conversions", web::post().to(manifest::convert))
        .default_service(web::to(|| async { message(404, "Not Found", "https://docs.github.com/rest") }));
}

/// GitHub-style request ids look like `C0DE:1F2E:3D4C5B:6A7988:65A1B2C3`.
fn request_id() -> String {
    let r: [u32; 5] = rand::random();
    format!(
        "{:04X}:{:04X}:{:06X}:{:06X}:{:08X}",
        r[0] & 0xFFFF,
        r[1] & 0xFFFF,
        r[2] & 0xFF_FFFF,
        r[3] & 0xFF_FFFF,
        r[4]
    )
}

/// A JSON answer with the content-type and media-type headers GitHub sends.
pub fn json_resp(status: u16, body: &Value) -> HttpResponse {
    json_body(status, body.to_string())
}

/// Like `json_resp` for an already-serialized body.
pub fn json_body(status: u16, body: String) -> HttpResponse {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(code)
        .insert_header(("content-type", "application/json; charset=utf-8"))
        .insert_header(("x-github-media-type", "github.v3; format=json"))
        .insert_header(("x-github-api-version-selected", "2022-11-28"))
        .body(body)
}

/// `{"message": ..., "documentation_url": ...}`, GitHub's error body.
pub fn message(status: u16, msg: &str, doc: &str) -> HttpResponse {
    json_resp(status, &json!({ "message": msg, "documentation_url": doc }))
}

pub fn bad_credentials() -> HttpResponse {
    json_resp(
        401,
        &json!({
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest",
            "status": "401",
        }),
    )
}

pub fn server_error() -> HttpResponse {
    json_resp(502, &json!({ "message": "Server Error" }))
}

/// Secondary-limit answer; the caller adds the bucket headers.
pub fn secondary_limited(retry_after: u64) -> HttpResponse {
    let mut resp = message(
        403,
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
        "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
    );
    set_header(&mut resp, "retry-after", &retry_after.to_string());
    resp
}

/// Primary-limit answer for REST (403, remaining 0).
pub fn rest_rate_limited(inst: i64, view: &BucketView) -> HttpResponse {
    let mut resp = message(
        403,
        &format!("API rate limit exceeded for installation ID {inst}."),
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
    );
    rate_headers(&mut resp, view);
    resp
}

/// The x-ratelimit-* headers for one bucket.
pub fn rate_headers(resp: &mut HttpResponse, view: &BucketView) {
    set_header(resp, "x-ratelimit-limit", &view.limit.to_string());
    set_header(resp, "x-ratelimit-remaining", &view.remaining.to_string());
    set_header(resp, "x-ratelimit-used", &view.used.to_string());
    set_header(resp, "x-ratelimit-reset", &view.reset.to_string());
    set_header(resp, "x-ratelimit-resource", view.resource.name());
}

pub fn set_header(resp: &mut HttpResponse, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}
