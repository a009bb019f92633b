//! The answers every route gives GitHub's shape: JSON with GitHub's media-type
//! headers, its error bodies, and the `x-ratelimit-*` headers. Apart from the
//! server's route table, so that the routes use these without importing the
//! server that imports them.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::faults::BucketView;

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
