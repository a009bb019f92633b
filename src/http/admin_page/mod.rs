//! `GET /admin`: the operator's page, server-rendered HTML (maud escapes every
//! value it prints). Reached with the bearer token, or once through the login
//! form, which keeps the token in an `HttpOnly`, `SameSite=Strict` cookie
//! scoped to `/admin`. The page itself only reads; the only cookie-driven
//! POSTs (login, logout) check `Origin` as well.

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

const HTML: &str = "text/html; charset=utf-8";

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

#[derive(Deserialize)]
pub struct Login {
    token: String,
}

/// Takes the token once; right: the cookie and back to the page, wrong: the form again.
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

pub async fn logout(req: HttpRequest) -> HttpResponse {
    if !same_origin(&req) {
        return HttpResponse::Forbidden().content_type(HTML).body(render::refused().into_string());
    }
    let mut cookie = page_cookie(&req, String::new());
    cookie.make_removal();
    HttpResponse::SeeOther().cookie(cookie).insert_header((header::LOCATION, "/admin")).finish()
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
