//! The users API: look up, track, refresh, opt out or in, disconnect.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;

use super::ApiError;
use super::admin_auth::Admin;
use crate::app::AppState;
use crate::domain::{
    Account, AccountKind, DueUser, GitHubUserId, Login, ProfileHash, UserOutcome, UserRecord, UserStatus,
};
use crate::sync::Syncer;

fn parse_id(raw: &str) -> Result<GitHubUserId, ApiError> {
    raw.parse::<i64>()
        .ok()
        .and_then(|n| GitHubUserId::new(n).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("{raw:?} is not a GitHub user id (a positive integer)")))
}

fn syncer(state: &AppState) -> Result<&Syncer, ApiError> {
    state.syncer.as_ref().ok_or_else(|| ApiError::Unavailable("GitHub is not configured".into()))
}

async fn existing(state: &AppState, id: GitHubUserId) -> Result<UserRecord, ApiError> {
    state.store.user_by_id(id).await?.ok_or_else(|| ApiError::NotFound(format!("no tracked user with id {id}")))
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
    let user = existing(&state, parse_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize)]
pub struct TrackRequest {
    login: Option<String>,
    github_id: Option<i64>,
}

/// Tracks a user who linked GitHub without installing the App: fetched right
/// away with any active installation's token, never anonymously.
pub async fn track(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<TrackRequest>,
) -> Result<HttpResponse, ApiError> {
    let syncer = syncer(&state)?;
    let body = body.into_inner();
    let profile = match (body.login, body.github_id) {
        (Some(login), None) => {
            let login = Login::parse(&login).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            syncer.fetch_by_login(&login).await
        }
        (None, Some(id)) => {
            let id = GitHubUserId::new(id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if let Some(user) = state.store.user_by_id(id).await? {
                return Ok(HttpResponse::Ok().json(user));
            }
            syncer.fetch_by_id(id).await
        }
        _ => return Err(ApiError::BadRequest("give exactly one of \"login\" or \"github_id\"".into())),
    };
    let profile = match profile {
        Err(crate::github::GitHubError::NotFound) => return Err(ApiError::NotFound("no such GitHub user".into())),
        other => other?,
    };
    if let Some(user) = state.store.user_by_id(profile.github_id).await? {
        return Ok(HttpResponse::Ok().json(user));
    }
    let now = Utc::now();
    let account = Account {
        id: profile.github_id,
        login: profile.login.clone(),
        node_id: profile.node_id.clone(),
        avatar_url: Some(profile.key.avatar_url.clone()),
        kind: AccountKind::User,
        installation_id: None,
    };
    let created = state.store.track_user(&account, now).await?;
    let next_sync_at = now + chrono::Duration::from_std(state.settings.sync.stale_after).unwrap_or_default();
    let outcome = UserOutcome::Fetched {
        hash: profile.key.hash(),
        observed: None,
        next_sync_at,
        changed: true,
        profile: Box::new(profile),
    };
    state.store.record_outcomes(&[outcome], now, Utc::now()).await?;
    let user = existing(&state, account.id).await?;
    Ok(if created { HttpResponse::Created().json(user) } else { HttpResponse::Ok().json(user) })
}

/// Refreshes one user now, over REST, and answers with what is stored after.
pub async fn sync_now(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let syncer = syncer(&state)?;
    let user = existing(&state, parse_id(&path)?).await?;
    if !user.sync_enabled || user.status != UserStatus::Active {
        return Err(ApiError::Conflict {
            message: format!("user {} is {}: not synced", user.github_id, user.status),
            run_id: None,
        });
    }
    let due = DueUser {
        github_id: user.github_id,
        node_id: None,
        login: user.login.clone(),
        installation_id: user.installation_id,
        profile_hash: None::<ProfileHash>,
        observed_hash: None,
        failures: user.failures,
    };
    let started = Utc::now();
    let outcome = syncer.refresh_one(due).await?;
    state.store.record_outcomes(std::slice::from_ref(&outcome), started, Utc::now()).await?;
    if let UserOutcome::Failed { error, .. } = outcome {
        return Err(ApiError::BadGateway(error));
    }
    Ok(HttpResponse::Ok().json(existing(&state, user.github_id).await?))
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
    if !state.store.set_sync_enabled(id, body.enabled, Utc::now()).await? {
        return Err(ApiError::NotFound(format!("no tracked user with id {id}")));
    }
    if body.enabled {
        state.refresh_notify.notify_one();
    }
    Ok(HttpResponse::Ok().json(existing(&state, id).await?))
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
