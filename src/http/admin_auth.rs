//! `Admin`: an extractor that lets a handler run only for the admin bearer
//! token, compared in constant time. No token configured: every call is 403.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use secrecy::ExposeSecret;
use std::future::{Ready, ready};
use subtle::ConstantTimeEq;

use super::ApiError;
use super::AppState;

/// Proof that the request carried the admin token.
pub struct Admin;

fn check(req: &HttpRequest) -> Result<Admin, ApiError> {
    let state = req.app_data::<web::Data<AppState>>().expect("AppState is registered in App::build");
    let Some(expected) = state.settings.http.admin_token.as_ref() else {
        return Err(ApiError::Forbidden);
    };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or(ApiError::Unauthorized)?;
    if bool::from(given.trim().as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
        Ok(Admin)
    } else {
        Err(ApiError::Unauthorized)
    }
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
