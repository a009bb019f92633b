//! The user JSON of `/api/users/*` (the contract's field list), and the
//! batch endpoint's counts: the shapes the OpenAPI document shows, so the
//! document is what the handlers serialize.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::UserRecord;
use crate::sync::BatchOutcome;

/// A tracked user. Profile fields are null until the first fetch.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    github_id: i64,
    /// GraphQL's global id.
    node_id: Option<String>,
    /// Null for a user registered by id until the first fetch.
    login: Option<String>,
    name: Option<String>,
    avatar_url: Option<String>,
    bio: Option<String>,
    company: Option<String>,
    blog: Option<String>,
    location: Option<String>,
    email: Option<String>,
    twitter_username: Option<String>,
    public_repos: Option<i64>,
    public_gists: Option<i64>,
    followers: Option<i64>,
    following: Option<i64>,
    github_created_at: Option<DateTime<Utc>>,
    github_updated_at: Option<DateTime<Utc>>,
    #[schema(pattern = "^(active|suspended|uninstalled|revoked|gone|opted_out)$")]
    status: &'static str,
    sync_enabled: bool,
    installation_id: Option<i64>,
    last_synced_at: Option<DateTime<Utc>>,
    /// The full REST user object as GitHub last sent it.
    #[schema(value_type = Option<Object>)]
    github_profile: Option<serde_json::Value>,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        UserView {
            github_id: u.github_id.get(),
            node_id: u.node_id.map(|n| n.as_str().to_owned()),
            login: u.login.map(|l| l.as_str().to_owned()),
            name: u.name,
            avatar_url: u.avatar_url,
            bio: u.bio,
            company: u.company,
            blog: u.blog,
            location: u.location,
            email: u.email,
            twitter_username: u.twitter_username,
            public_repos: u.public_repos,
            public_gists: u.public_gists,
            followers: u.followers,
            following: u.following,
            github_created_at: u.github_created_at,
            github_updated_at: u.github_updated_at,
            status: u.status.as_str(),
            sync_enabled: u.sync_enabled,
            installation_id: u.installation_id.map(|i| i.get()),
            last_synced_at: u.last_synced_at,
            github_profile: u.github_profile,
        }
    }
}

/// What `POST /api/users/batch` did.
#[derive(Serialize, ToSchema)]
pub struct BatchView {
    tracked: usize,
    already_tracked: usize,
    /// Logins GitHub does not know, or could not resolve now: ask again for these.
    unresolved: Vec<String>,
}

impl From<BatchOutcome> for BatchView {
    fn from(b: BatchOutcome) -> Self {
        BatchView {
            tracked: b.tracked,
            already_tracked: b.already_tracked,
            unresolved: b.unresolved.iter().map(|l| l.as_str().to_owned()).collect(),
        }
    }
}
