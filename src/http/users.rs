//! The users API: look up, track, refresh, opt out or in, disconnect. Each
//! handler parses its input, calls one store or `UserService` function, and
//! answers.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::ApiError;
use super::AppState;
use super::admin_auth::Admin;
use crate::domain::{GitHubUserId, Login};
use crate::sync::{MAX_BATCH, TrackBy};

fn parse_id(raw: &str) -> Result<GitHubUserId, ApiError> {
    raw.parse::<i64>()
        .ok()
        .and_then(|n| GitHubUserId::new(n).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("{raw:?} is not a GitHub user id (a positive integer)")))
}

pub async fn by_login(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let login = Login::parse(&path).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let user = state
        .store
        .user_by_login(&login)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no tracked user with login {login}")))?;
    Ok(HttpResponse::Ok().json(user))
}

pub async fn by_id(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let user =
        state.store.user_by_id(id).await?.ok_or_else(|| ApiError::NotFound(format!("no tracked user with id {id}")))?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize)]
pub struct TrackRequest {
    login: Option<String>,
    github_id: Option<i64>,
}

impl TrackRequest {
    fn whom(self) -> Result<TrackBy, String> {
        match self {
            TrackRequest { login: Some(login), github_id: None } => {
                Ok(TrackBy::Login(Login::parse(&login).map_err(|e| e.to_string())?))
            }
            TrackRequest { login: None, github_id: Some(id) } => {
                Ok(TrackBy::Id(GitHubUserId::new(id).map_err(|e| e.to_string())?))
            }
            _ => Err("give exactly one of \"login\" or \"github_id\"".into()),
        }
    }
}

/// Tracks a user who linked GitHub without installing the App: 201 when new.
pub async fn track(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<TrackRequest>,
) -> Result<HttpResponse, ApiError> {
    let whom = body.into_inner().whom().map_err(ApiError::BadRequest)?;
    let (user, created) = state.users.track(whom).await?;
    Ok(if created { HttpResponse::Created().json(user) } else { HttpResponse::Ok().json(user) })
}

#[derive(Deserialize)]
pub struct BatchRequest {
    users: Vec<TrackRequest>,
}

/// Tracks up to `MAX_BATCH` users at once (backfilling a user base): 202 with counts.
pub async fn track_batch(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let users = body.into_inner().users;
    if users.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!("{} users: a batch holds at most {MAX_BATCH}", users.len())));
    }
    let whom = users
        .into_iter()
        .enumerate()
        .map(|(i, user)| user.whom().map_err(|e| ApiError::BadRequest(format!("users[{i}]: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Accepted().json(state.users.track_batch(whom).await?))
}

/// Refreshes one user now, over REST, and answers with what is stored after.
pub async fn sync_now(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    Ok(HttpResponse::Ok().json(state.users.sync_now(id).await?))
}

#[derive(Deserialize)]
pub struct SyncEnabled {
    enabled: bool,
}

pub async fn set_sync_enabled(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SyncEnabled>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    Ok(HttpResponse::Ok().json(state.users.set_sync_enabled(id, body.enabled).await?))
}

pub async fn disconnect(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    if state.store.erase_user(id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("no tracked user with id {id}")))
    }
}
