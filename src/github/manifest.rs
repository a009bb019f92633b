//! The last step of GitHub's App manifest flow: trade the one-time code
//! GitHub redirected back with for the new App's credentials.

use http::Method;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::GitHubError;
use super::client::Transport;

/// What `POST /app-manifests/{code}/conversions` answers (201), as far as we keep it.
#[derive(Deserialize)]
pub struct NewApp {
    pub id: u64,
    pub slug: String,
    pub html_url: String,
    pub pem: SecretString,
    pub webhook_secret: Option<SecretString>,
}

impl std::fmt::Debug for NewApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApp").field("id", &self.id).field("slug", &self.slug).finish_non_exhaustive()
    }
}

/// Unauthenticated: the code itself is the credential (valid one hour, once).
pub async fn convert_manifest(api: &Url, code: &str) -> Result<NewApp, GitHubError> {
    let code: String = url::form_urlencoded::byte_serialize(code.as_bytes()).collect();
    let url = format!("{}/app-manifests/{code}/conversions", api.as_str().trim_end_matches('/'));
    let answer = Transport::new()?.send(Method::POST, &url, "", None).await?.classify()?;
    answer.json()
}
