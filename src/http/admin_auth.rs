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
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    if bool::from(given.trim().as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
        Ok(Admin)
    } else {
        Err(ApiError::Unauthorized)
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req))
    }
}
