//! The settings the GitHub facade is built from: the App's credentials, the
//! API base URLs (github.com, GitHub Enterprise Server or the fake) and the
//! rate governor's knobs. `config.rs` fills them in; nothing here reads the
//! environment.

use octocrab::jsonwebtoken::EncodingKey;
use url::Url;

#[derive(Clone)]
pub struct GitHubSettings {
    pub app_id: u64,
    pub private_key: EncodingKey,
    pub api_url: Url,
    pub graphql_url: Url,
    pub limits: GovernorSettings,
}

impl std::fmt::Debug for GitHubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSettings")
            .field("app_id", &self.app_id)
            .field("private_key", &"<redacted>")
            .field("api_url", &self.api_url.as_str())
            .field("graphql_url", &self.graphql_url.as_str())
            .field("limits", &self.limits)
            .finish()
    }
}

/// The rate governor's knobs. GitHub does not say what its secondary limits
/// are counted per, so we count them per token and let operators tune them.
#[derive(Debug, Clone)]
pub struct GovernorSettings {
    /// Fraction of each budget kept for webhook-driven refreshes.
    pub reserve_fraction: f64,
    pub rest_points_per_minute: u32,
    pub graphql_points_per_minute: u32,
    pub max_concurrency_per_token: usize,
}

impl Default for GovernorSettings {
    fn default() -> Self {
        Self {
            reserve_fraction: 0.1,
            // Below GitHub's documented 900 and 2,000 per minute, with headroom.
            rest_points_per_minute: 800,
            graphql_points_per_minute: 1_800,
            max_concurrency_per_token: 8,
        }
    }
}
