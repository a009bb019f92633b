//! The users API: look up, track, refresh, opt out or in, disconnect. Each
//! handler parses its input, calls one store or `UserService` function, and
//! answers.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::ApiError;
use super::AppState;
use super::admin_auth::Admin;
use super::errors::{ConflictBody, ErrorBody};
use super::user_view::{BatchView, UserView};
use crate::domain::{GitHubUserId, Login};
use crate::sync::{MAX_BATCH, TrackBy};

fn parse_id(raw: &str) -> Result<GitHubUserId, ApiError> {
    raw.parse::<i64>()
        .ok()
        .and_then(|n| GitHubUserId::new(n).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("{raw:?} is not a GitHub user id (a positive integer)")))
}

/// A tracked user by login (case-insensitive).
#[utoipa::path(get, path = "/api/users/{login_or_id}", tag = "users",
    params(("login_or_id" = String, Path, description = "the login", max_length = 39, pattern = r"^[A-Za-z0-9](-?[A-Za-z0-9])*$")),
    responses(
        (status = 200, body = UserView),
        (status = 400, description = "not a login", body = ErrorBody),
        (status = 404, description = "no tracked user with that login", body = ErrorBody),
        (status = 503, description = "the database is unavailable", body = ErrorBody),
    ))]
pub async fn by_login(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let login = Login::parse(&path).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let user = state
        .store
        .user_by_login(&login)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no tracked user with login {login}")))?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

/// A tracked user by GitHub's numeric id.
#[utoipa::path(get, path = "/api/users/by-id/{github_id}", tag = "users",
    params(("github_id" = String, Path, pattern = "^[1-9][0-9]{0,17}$", description = "GitHub's numeric user id")),
    responses(
        (status = 200, body = UserView),
        (status = 400, description = "not a user id", body = ErrorBody),
        (status = 404, description = "no tracked user with that id", body = ErrorBody),
        (status = 503, description = "the database is unavailable", body = ErrorBody),
    ))]
pub async fn by_id(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let user =
        state.store.user_by_id(id).await?.ok_or_else(|| ApiError::NotFound(format!("no tracked user with id {id}")))?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

/// Exactly one of `login` or `github_id` (the schema below says so: a `oneOf`).
#[derive(Deserialize)]
pub struct TrackRequest {
    login: Option<String>,
    #[serde(default, deserialize_with = "integral")]
    github_id: Option<i64>,
}

/// A JSON number without a fraction, written `1437` or `1437.0`: JSON Schema's
/// `integer` (what the document promises) allows both.
fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
            _ => Err(D::Error::custom(format!("github_id: {n} is not an integer"))),
        },
    }
}

/// What a person types as a login (`Login::parse`), for the document.
const LOGIN_PATTERN: &str = r"^[A-Za-z0-9](-?[A-Za-z0-9])*$";

impl utoipa::PartialSchema for TrackRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let by_login = ObjectBuilder::new()
            .property(
                "login",
                ObjectBuilder::new().schema_type(Type::String).max_length(Some(39)).pattern(Some(LOGIN_PATTERN)),
            )
            .required("login")
            .property("github_id", ObjectBuilder::new().schema_type(Type::Null));
        let by_id = ObjectBuilder::new()
            .property(
                "github_id",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
                    .minimum(Some(1)),
            )
            .required("github_id")
            .property("login", ObjectBuilder::new().schema_type(Type::Null));
        OneOfBuilder::new().item(by_login).item(by_id).into()
    }
}

impl ToSchema for TrackRequest {}

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
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = TrackRequest,
    responses(
        (status = 201, description = "tracked now; profile fields null until the first fetch", body = UserView),
        (status = 200, description = "already tracked", body = UserView),
        (status = 400, description = "not exactly one of a valid login or id", body = ErrorBody),
        (status = 404, description = "GitHub has no such login", body = ErrorBody),
        (status = 502, description = "GitHub failed", body = ErrorBody),
        (status = 503, description = "the login cannot be resolved now (`Retry-After`), GitHub is not configured, or the database is unavailable", body = ErrorBody,
            headers(("Retry-After" = Option<u64>, description = "seconds"))),
    ))]
pub async fn track(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<TrackRequest>,
) -> Result<HttpResponse, ApiError> {
    let whom = body.into_inner().whom().map_err(ApiError::BadRequest)?;
    let (user, created) = state.users.track(whom).await?;
    let user = UserView::from(user);
    Ok(if created { HttpResponse::Created().json(user) } else { HttpResponse::Ok().json(user) })
}

#[derive(Deserialize, ToSchema)]
pub struct BatchRequest {
    #[schema(max_items = 1000)]
    users: Vec<TrackRequest>,
}

/// Tracks up to `MAX_BATCH` users at once (backfilling a user base): 202 with counts.
#[utoipa::path(post, path = "/api/users/batch", tag = "users", request_body = BatchRequest,
    responses(
        (status = 202, body = BatchView),
        (status = 400, description = "over 1,000 users, or an entry that is not exactly one valid login or id", body = ErrorBody),
        (status = 503, description = "GitHub is not configured, or the database is unavailable", body = ErrorBody),
    ))]
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
    Ok(HttpResponse::Accepted().json(BatchView::from(state.users.track_batch(whom).await?)))
}

/// Refreshes one user now, over REST, and answers with what is stored after.
#[utoipa::path(post, path = "/api/users/{github_id}/sync", tag = "users",
    params(("github_id" = String, Path, pattern = "^[1-9][0-9]{0,17}$", description = "GitHub's numeric user id")),
    responses(
        (status = 200, body = UserView),
        (status = 400, description = "not a user id", body = ErrorBody),
        (status = 404, description = "not tracked, or gone from GitHub", body = ErrorBody),
        (status = 409, description = "the user is not synced (not active, or opted out)", body = ConflictBody),
        (status = 502, description = "GitHub failed", body = ErrorBody),
        (status = 503, description = "rate-limited, GitHub is not configured, or the database is unavailable", body = ErrorBody),
    ))]
pub async fn sync_now(_: Admin, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    Ok(HttpResponse::Ok().json(UserView::from(state.users.sync_now(id).await?)))
}

#[derive(Deserialize, ToSchema)]
pub struct SyncEnabled {
    enabled: bool,
}

/// `false` opts the user out of auto-sync (status `opted_out`); `true` back in.
#[utoipa::path(put, path = "/api/users/{github_id}/sync-enabled", tag = "users", request_body = SyncEnabled,
    params(("github_id" = String, Path, pattern = "^[1-9][0-9]{0,17}$", description = "GitHub's numeric user id")),
    responses(
        (status = 200, body = UserView),
        (status = 400, description = "not a user id, or not the JSON above", body = ErrorBody),
        (status = 404, description = "not tracked", body = ErrorBody),
        (status = 503, description = "the database is unavailable", body = ErrorBody),
    ))]
pub async fn set_sync_enabled(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SyncEnabled>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    Ok(HttpResponse::Ok().json(UserView::from(state.users.set_sync_enabled(id, body.enabled).await?)))
}

/// Disconnects: stops syncing and erases the stored profile.
#[utoipa::path(delete, path = "/api/users/{login_or_id}", tag = "users",
    params(("login_or_id" = String, Path, pattern = "^[1-9][0-9]{0,17}$", description = "GitHub's numeric user id")),
    responses(
        (status = 204, description = "erased"),
        (status = 400, description = "not a user id", body = ErrorBody),
        (status = 404, description = "not tracked", body = ErrorBody),
        (status = 503, description = "the database is unavailable", body = ErrorBody),
    ))]
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
