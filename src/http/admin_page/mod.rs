//! `GET /admin`: the operator's page, server-rendered HTML (maud escapes every
//! value it prints). Reached with the bearer token, or once through the login
//! form, which keeps the token in an `HttpOnly`, `SameSite=Strict` cookie
//! scoped to `/admin`. The page itself only reads; the cookie-driven POSTs
//! (login, logout, a parked delivery's retry button) check `Origin` as well.

mod chart;
mod render;
mod view;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::ApiError;
use super::AppState;
use super::admin_auth::{PAGE_COOKIE, page_allowed, token_matches};
use super::deliveries::retry_parked;

const HTML: &str = "text/html; charset=utf-8";

/// The operator's page (HTML); without the token or the cookie, the login form.
#[utoipa::path(get, path = "/admin", tag = "admin page",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "the page", content_type = "text/html"),
        (status = 401, description = "the login form", content_type = "text/html"),
        (status = 503, description = "the database does not answer", body = super::errors::ErrorBody),
    ))]
pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !page_allowed(&req, &state) {
        return Ok(login_form(None));
    }
    let view = view::gather(&state).await?;
    Ok(HttpResponse::Ok()
        .content_type(HTML)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(render::page(&view).into_string()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Login {
    token: String,
}

/// Takes the token once; right: the cookie and back to the page, wrong: the form again.
#[utoipa::path(post, path = "/admin/login", tag = "admin page", security(()),
    request_body(content = Login, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "signed in: the cookie, and back to `/admin`",
            headers(("Set-Cookie" = String), ("Location" = String))),
        (status = 400, description = "not the form above", body = super::errors::ErrorBody),
        (status = 401, description = "not the admin token: the form again", content_type = "text/html"),
        (status = 415, description = "not a form (`application/x-www-form-urlencoded`)", body = super::errors::ErrorBody),
        (status = 403, description = "posted from another site", content_type = "text/html"),
    ))]
pub async fn login(req: HttpRequest, state: web::Data<AppState>, form: web::Form<Login>) -> HttpResponse {
    if !same_origin(&req) {
        return HttpResponse::Forbidden().content_type(HTML).body(render::refused().into_string());
    }
    if !token_matches(&state, form.token.trim().as_bytes()) {
        return login_form(Some("That is not the admin token."));
    }
    let cookie = page_cookie(&req, hex::encode(form.token.trim()));
    HttpResponse::SeeOther().cookie(cookie).insert_header((header::LOCATION, "/admin")).finish()
}

/// Forgets the cookie.
#[utoipa::path(post, path = "/admin/logout", tag = "admin page", security(()),
    responses(
        (status = 303, description = "signed out, back to `/admin`", headers(("Set-Cookie" = String), ("Location" = String))),
        (status = 403, description = "posted from another site", content_type = "text/html"),
    ))]
pub async fn logout(req: HttpRequest) -> HttpResponse {
    if !same_origin(&req) {
        return HttpResponse::Forbidden().content_type(HTML).body(render::refused().into_string());
    }
    let mut cookie = page_cookie(&req, String::new());
    cookie.make_removal();
    HttpResponse::SeeOther().cookie(cookie).insert_header((header::LOCATION, "/admin")).finish()
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Retry {
    /// The parked delivery's GUID.
    #[schema(pattern = "^[!-~]{1,100}$")]
    guid: String,
}

/// The page's retry button: sends a parked delivery back to the inbox (the
/// rule is `retry_parked`'s, the JSON endpoint's), then back to the page.
#[utoipa::path(post, path = "/admin/retry", tag = "admin page",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = Retry, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "pending again: back to `/admin`", headers(("Location" = String))),
        (status = 400, description = "not a delivery GUID, or not the form above", content_type = "text/html"),
        (status = 401, description = "no admin token or cookie", content_type = "text/html"),
        (status = 403, description = "posted from another site", content_type = "text/html"),
        (status = 404, description = "no such delivery", content_type = "text/html"),
        (status = 409, description = "the delivery is not parked", content_type = "text/html"),
        (status = 503, description = "the database is unavailable", content_type = "text/html"),
    ))]
pub async fn retry(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Result<web::Form<Retry>, actix_web::Error>,
) -> HttpResponse {
    use actix_web::ResponseError as _;
    if !same_origin(&req) {
        return HttpResponse::Forbidden().content_type(HTML).body(render::refused().into_string());
    }
    if !page_allowed(&req, &state) {
        return login_form(None);
    }
    let outcome = match form {
        Ok(form) => retry_parked(&state, &form.guid).await.map(drop),
        Err(_) => Err(ApiError::BadRequest("the form names no delivery (guid)".into())),
    };
    match outcome {
        Ok(()) => HttpResponse::SeeOther().insert_header((header::LOCATION, "/admin")).finish(),
        Err(e) => {
            HttpResponse::build(e.status_code()).content_type(HTML).body(render::failed(&e.to_string()).into_string())
        }
    }
}

fn login_form(error: Option<&str>) -> HttpResponse {
    HttpResponse::Unauthorized()
        .content_type(HTML)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(render::login(error).into_string())
}

fn page_cookie(req: &HttpRequest, value: String) -> Cookie<'static> {
    Cookie::build(PAGE_COOKIE, value)
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.connection_info().scheme() == "https")
        .finish()
}

/// A browser names the page's origin on a form POST; a cross-site form does
/// not match. No `Origin` at all (curl, old browsers): `SameSite=Strict`
/// already kept the cookie off cross-site requests, and login needs the token.
fn same_origin(req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let info = req.connection_info();
    let host = info.host();
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).is_some_and(|o| o == host)
}
