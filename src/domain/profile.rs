//! A GitHub profile: the REST object we store whole, the key fields we map to
//! columns, and the content hash that decides "changed". GitHub's ETags are per
//! token and installation tokens rotate hourly, so content, not ETag, decides.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{GitHubUserId, Login, NodeId};

/// The fields whose change makes a profile "changed". Gists are left out on
/// purpose: GraphQL would charge an extra connection for them, so they are
/// refreshed whenever REST is called instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyFields {
    pub login: String,
    pub name: Option<String>,
    pub avatar_url: String,
    pub bio: Option<String>,
    pub company: Option<String>,
    pub blog: Option<String>,
    pub location: Option<String>,
    pub email: Option<String>,
    pub twitter_username: Option<String>,
    pub public_repos: i64,
    pub followers: i64,
    pub following: i64,
}

/// A SHA-256 over the key fields, hex-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileHash(String);

impl ProfileHash {
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// GraphQL says `""` where REST says `null`; both mean "not set".
fn norm(value: &Option<String>) -> &str {
    value.as_deref().map(str::trim).unwrap_or("")
}

impl KeyFields {
    pub fn hash(&self) -> ProfileHash {
        let mut hasher = Sha256::new();
        let login = self.login.to_ascii_lowercase();
        let text = [
            login.as_str(),
            norm(&self.name),
            self.avatar_url.trim(),
            norm(&self.bio),
            norm(&self.company),
            norm(&self.blog),
            norm(&self.location),
            norm(&self.email),
            norm(&self.twitter_username),
        ];
        for part in text {
            hasher.update(part.as_bytes());
            // A separator no field can hold, so ("ab","c") and ("a","bc") differ.
            hasher.update([0u8]);
        }
        for count in [self.public_repos, self.followers, self.following] {
            hasher.update(count.to_le_bytes());
        }
        ProfileHash(hex::encode(hasher.finalize()))
    }
}

/// The REST user object (`GET /user/{id}`), parsed for the columns we map.
/// The whole JSON is kept beside it as `github_profile`.
#[derive(Debug, Clone)]
pub struct RestProfile {
    pub github_id: GitHubUserId,
    pub node_id: Option<NodeId>,
    pub login: Login,
    pub key: KeyFields,
    pub public_gists: i64,
    pub github_created_at: Option<DateTime<Utc>>,
    pub github_updated_at: Option<DateTime<Utc>>,
    pub raw: serde_json::Value,
}

#[derive(Deserialize)]
struct RestUserWire {
    id: i64,
    node_id: Option<String>,
    login: String,
    name: Option<String>,
    avatar_url: Option<String>,
    bio: Option<String>,
    company: Option<String>,
    blog: Option<String>,
    location: Option<String>,
    email: Option<String>,
    twitter_username: Option<String>,
    #[serde(default)]
    public_repos: i64,
    #[serde(default)]
    public_gists: i64,
    #[serde(default)]
    followers: i64,
    #[serde(default)]
    following: i64,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

/// Why a body GitHub sent could not be read as a user.
#[derive(Debug, thiserror::Error)]
#[error("not a GitHub user object: {0}")]
pub struct ProfileParseError(String);

impl RestProfile {
    pub fn from_json(raw: serde_json::Value) -> Result<Self, ProfileParseError> {
        let wire: RestUserWire = serde_json::from_value(raw.clone()).map_err(|e| ProfileParseError(e.to_string()))?;
        let github_id = GitHubUserId::new(wire.id).map_err(|e| ProfileParseError(e.to_string()))?;
        let login = Login::from_github(&wire.login).map_err(|e| ProfileParseError(e.to_string()))?;
        Ok(Self {
            github_id,
            node_id: wire.node_id.and_then(|n| NodeId::parse(n).ok()),
            key: KeyFields {
                login: wire.login,
                name: wire.name,
                avatar_url: wire.avatar_url.unwrap_or_default(),
                bio: wire.bio,
                company: wire.company,
                blog: wire.blog,
                location: wire.location,
                email: wire.email,
                twitter_username: wire.twitter_username,
                public_repos: wire.public_repos,
                followers: wire.followers,
                following: wire.following,
            },
            login,
            public_gists: wire.public_gists,
            github_created_at: wire.created_at,
            github_updated_at: wire.updated_at,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KeyFields {
        KeyFields {
            login: "octocat".into(),
            name: Some("monalisa octocat".into()),
            avatar_url: "https://github.com/images/error/octocat_happy.gif".into(),
            bio: None,
            company: Some("GitHub".into()),
            blog: Some("https://github.com/blog".into()),
            location: None,
            email: None,
            twitter_username: None,
            public_repos: 2,
            followers: 20,
            following: 0,
        }
    }

    #[test]
    fn empty_strings_and_nulls_hash_alike() {
        let mut graphql = sample();
        graphql.bio = Some(String::new());
        graphql.location = Some("".into());
        assert_eq!(graphql.hash(), sample().hash());
    }

    #[test]
    fn any_key_field_change_changes_the_hash() {
        let base = sample().hash();
        let mut edited = sample();
        edited.bio = Some("hello".into());
        assert_ne!(edited.hash(), base);
        let mut followed = sample();
        followed.followers += 1;
        assert_ne!(followed.hash(), base);
        let mut shifted = sample();
        shifted.name = Some("monalisa".into());
        shifted.company = Some("octocatGitHub".into());
        assert_ne!(shifted.hash(), base);
    }

    #[test]
    fn githubs_own_example_user_parses() {
        let text = include_str!("../../tests/fixtures/rest-user.json");
        let profile = RestProfile::from_json(serde_json::from_str(text).unwrap()).unwrap();
        assert_eq!(profile.github_id.get(), 1);
        assert_eq!(profile.login.as_str(), "octocat");
        assert_eq!(profile.key.followers, 20);
        assert_eq!(profile.public_gists, 1);
        assert!(profile.github_created_at.is_some());
    }
}
