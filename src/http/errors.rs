//! `ApiError`: every API failure as `{"error": "…"}` with its status. A 500's
//! body says nothing inside; its cause chain goes to the log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::RunId;
use crate::github::GitHubError;
use crate::store::StoreError;
use crate::sync::UserError;

/// Every error's body: `{"error": "…"}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// A 409's body: the error, and the running pass's id when a pass is what is in the way.
#[derive(Serialize, ToSchema)]
pub struct ConflictBody {
    pub error: String,
    pub run_id: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("the admin API is disabled: set GHSYNC_ADMIN_TOKEN to enable it")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { message: String, run_id: Option<RunId> },
    #[error("{0}")]
    Unavailable(String),
    /// Not now: 503 with `Retry-After` (seconds).
    #[error("{message}")]
    TryLater { message: String, retry_after: std::time::Duration },
    #[error("GitHub: {0}")]
    BadGateway(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::Unavailable(m) => ApiError::Unavailable(format!("database unavailable: {m}")),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<GitHubError> for ApiError {
    fn from(e: GitHubError) -> Self {
        match e {
            GitHubError::Blocked { .. } | GitHubError::RateLimited { .. } | GitHubError::SecondaryLimit { .. } => {
                ApiError::Unavailable(e.to_string())
            }
            other => ApiError::BadGateway(other.to_string()),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::NotConfigured => ApiError::Unavailable(e.to_string()),
            UserError::NotTracked(_) | UserError::NoSuchGitHubUser => ApiError::NotFound(e.to_string()),
            UserError::NotSynced { .. } => ApiError::Conflict { message: e.to_string(), run_id: None },
            UserError::Unresolved { retry_after, .. } => ApiError::TryLater { message: e.to_string(), retry_after },
            UserError::FetchFailed(error) => ApiError::BadGateway(error),
            UserError::GitHub(e) => e.into(),
            UserError::Store(e) => e.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unavailable(_) | Self::TryLater { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(e) = self {
            tracing::error!(error.cause_chain = ?e, error.message = %e, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Self::TryLater { retry_after, .. } = self {
            // Whole seconds, rounded up: never "0", which would invite a retry storm.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.insert_header(("Retry-After", secs.max(1).to_string()));
        }
        match self {
            Self::Conflict { message, run_id } => {
                response.json(ConflictBody { error: message.clone(), run_id: run_id.map(RunId::get) })
            }
            other => response.json(ErrorBody { error: other.to_string() }),
        }
    }
}
