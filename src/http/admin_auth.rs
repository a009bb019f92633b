//! `Admin`: an extractor that lets a handler run only for the admin bearer
//! token, compared in constant time. No token configured: every call is 403.
//! The `/admin` page also takes the token from its login cookie
//! (`page_allowed`); the JSON API stays bearer-only, so no cookie can drive it
//! from another site.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use secrecy::ExposeSecret;
use std::future::{Ready, ready};
use subtle::ConstantTimeEq;

use super::ApiError;
use super::AppState;

/// Proof that the request carried the admin token.
pub struct Admin;

/// The admin page's cookie: the token, hex-encoded so any token is a valid cookie value.
pub const PAGE_COOKIE: &str = "ghsync_admin";

fn check(req: &HttpRequest) -> Result<Admin, ApiError> {
    let state = req.app_data::<web::Data<AppState>>().expect("AppState is registered in App::build");
    if state.settings.http.admin_token.is_none() {
        return Err(ApiError::Forbidden);
    }
    let given = bearer(req).ok_or(ApiError::Unauthorized)?;
    if token_matches(state, given.as_bytes()) { Ok(Admin) } else { Err(ApiError::Unauthorized) }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(str::trim)
}

/// Constant-time comparison with the configured token; none configured: never.
pub fn token_matches(state: &AppState, given: &[u8]) -> bool {
    state.settings.http.admin_token.as_ref().is_some_and(|t| bool::from(given.ct_eq(t.expose_secret().as_bytes())))
}

/// For the `/admin` page only: the bearer token, or the login cookie.
pub fn page_allowed(req: &HttpRequest, state: &AppState) -> bool {
    if let Some(given) = bearer(req) {
        return token_matches(state, given.as_bytes());
    }
    cookie(req, PAGE_COOKIE).and_then(|v| hex::decode(v).ok()).is_some_and(|given| token_matches(state, &given))
}

/// One cookie's value from the `Cookie` header(s).
fn cookie<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The token of `Bearer <token>`; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }
}
