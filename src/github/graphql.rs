//! GraphQL `nodes(ids:)`: the key fields of up to 100 users in one request for
//! a few points, to tell which profiles changed without fetching them whole.

use backon::Retryable;
use http::Method;
use serde::Deserialize;

use super::{CallOptions, GitHub, GitHubError, Priority};
use crate::domain::{GitHubUserId, InstallationId, KeyFields, NodeId, Resource};

/// GitHub refuses more than 100 ids in one `nodes` call.
pub const MAX_NODES: usize = 100;
/// Connections selected per user (followers, following, repositories).
const CONNECTIONS_PER_USER: usize = 3;

/// `repositories(ownerAffiliations: OWNER, privacy: PUBLIC)` counts what REST
/// calls `public_repos`. `rateLimit` costs nothing and tells us the real cost.
const NODES_QUERY: &str = "query($ids: [ID!]!) {
  rateLimit { cost remaining resetAt limit }
  nodes(ids: $ids) {
    __typename
    ... on User {
      id databaseId login name avatarUrl bio company websiteUrl location email twitterUsername
      followers { totalCount }
      following { totalCount }
      repositories(ownerAffiliations: OWNER, privacy: PUBLIC) { totalCount }
    }
  }
}";

/// GitHub's cost rule: connections × first (100) ÷ 100, rounded, at least 1.
pub fn estimated_cost(ids: usize) -> i64 {
    (((ids * CONNECTIONS_PER_USER) as f64 / 100.0).round() as i64).max(1)
}

/// One user as GraphQL sees it.
#[derive(Debug, Clone)]
pub struct ObservedUser {
    pub github_id: Option<GitHubUserId>,
    pub key: KeyFields,
}

#[derive(Debug)]
pub struct NodesAnswer {
    /// One entry per id asked, in order; `None` where GitHub could not resolve it.
    pub users: Vec<Option<ObservedUser>>,
    pub cost: i64,
}

#[derive(Deserialize)]
struct Total {
    #[serde(rename = "totalCount")]
    total_count: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserNode {
    #[serde(rename = "__typename")]
    typename: Option<String>,
    database_id: Option<i64>,
    login: Option<String>,
    name: Option<String>,
    avatar_url: Option<String>,
    bio: Option<String>,
    company: Option<String>,
    website_url: Option<String>,
    location: Option<String>,
    email: Option<String>,
    twitter_username: Option<String>,
    followers: Option<Total>,
    following: Option<Total>,
    repositories: Option<Total>,
}

impl UserNode {
    fn into_observed(self) -> Option<ObservedUser> {
        if self.typename.as_deref().is_some_and(|t| t != "User") {
            return None;
        }
        Some(ObservedUser {
            github_id: self.database_id.and_then(|id| GitHubUserId::new(id).ok()),
            key: KeyFields {
                login: self.login?,
                name: self.name,
                avatar_url: self.avatar_url.unwrap_or_default(),
                bio: self.bio,
                company: self.company,
                blog: self.website_url,
                location: self.location,
                email: self.email,
                twitter_username: self.twitter_username,
                public_repos: self.repositories.map_or(0, |t| t.total_count),
                followers: self.followers.map_or(0, |t| t.total_count),
                following: self.following.map_or(0, |t| t.total_count),
            },
        })
    }
}

#[derive(Deserialize)]
struct Envelope {
    data: Option<Data>,
    #[serde(default)]
    errors: Vec<GraphqlErrorWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    rate_limit: Option<RateLimitWire>,
    #[serde(default)]
    nodes: Vec<Option<UserNode>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateLimitWire {
    cost: i64,
}

#[derive(Deserialize)]
struct GraphqlErrorWire {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

fn interpret(
    body: &[u8],
    asked: usize,
    reset_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<NodesAnswer, GitHubError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| GitHubError::Decode(e.to_string()))?;
    let first = |kind: &str| envelope.errors.iter().find(|e| e.kind.as_deref() == Some(kind));
    if first("RATE_LIMITED").is_some() {
        let reset_at = reset_at.unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::minutes(1));
        return Err(GitHubError::RateLimited { reset_at });
    }
    let refused = envelope.errors.iter().find(|e| {
        e.kind.as_deref() == Some("FORBIDDEN")
            || e.message.as_deref().is_some_and(|m| m.contains("Resource not accessible by integration"))
    });
    let data = envelope.data.filter(|d| d.nodes.iter().any(Option::is_some) || refused.is_none());
    let Some(data) = data else {
        // `FORBIDDEN`, or no `data` at all: GraphQL will not serve this token; REST may.
        let message = refused.or(envelope.errors.first()).and_then(|e| e.message.clone());
        return Err(GitHubError::GraphqlRefused(message.unwrap_or_else(|| "an answer without data".into())));
    };
    if data.nodes.len() != asked {
        return Err(GitHubError::Decode(format!("asked for {asked} nodes, got {}", data.nodes.len())));
    }
    Ok(NodesAnswer {
        cost: data.rate_limit.map_or(estimated_cost(asked), |r| r.cost),
        users: data.nodes.into_iter().map(|n| n.and_then(UserNode::into_observed)).collect(),
    })
}

/// HTTP refusals of the GraphQL endpoint (a GHES or proxy without it, a wrong
/// `GITHUB_GRAPHQL_URL`, a token it will not serve) say nothing about the users.
fn refusal(e: GitHubError) -> GitHubError {
    match e {
        GitHubError::Unauthorized { call, message } => {
            GitHubError::GraphqlRefused(format!("{call}: GraphQL answered 401: {message}"))
        }
        GitHubError::Forbidden { call, message } => {
            GitHubError::GraphqlRefused(format!("{call}: GraphQL answered 403: {message}"))
        }
        GitHubError::NotFound { call } => {
            GitHubError::GraphqlRefused(format!("{call}: GraphQL answered 404 (no GraphQL endpoint here)"))
        }
        GitHubError::Unexpected { call, status: status @ (410 | 501), message } => {
            GitHubError::GraphqlRefused(format!("{call}: GraphQL answered {status}: {message}"))
        }
        e => e,
    }
}

impl GitHub {
    /// Key fields for up to `MAX_NODES` users. An id GitHub cannot resolve is `None`.
    pub async fn users_by_node_ids(
        &self,
        installation: InstallationId,
        ids: &[NodeId],
        priority: Priority,
        opts: CallOptions<'_>,
    ) -> Result<NodesAnswer, GitHubError> {
        assert!(ids.len() <= MAX_NODES, "callers batch node ids by {MAX_NODES}");
        let body = serde_json::to_vec(&serde_json::json!({
            "query": NODES_QUERY,
            "variables": { "ids": ids.iter().map(NodeId::as_str).collect::<Vec<_>>() },
        }))
        .map_err(|e| GitHubError::Decode(e.to_string()))?;
        let url = self.inner.graphql.to_string();
        let cost = estimated_cost(ids.len());
        let call = || {
            let request = (Method::POST, url.clone(), Some(body.clone()));
            self.installation_call(installation, Resource::Graphql, cost, priority, request, opts)
        };
        // 5xx and timeouts are retried as REST's are; a refusal means "no GraphQL here".
        let answer = call.retry(super::rest::retry_policy()).when(GitHubError::is_transient).await.map_err(refusal)?;
        let result = interpret(&answer.body, ids.len(), answer.reset_at());
        if matches!(result, Err(GitHubError::RateLimited { .. })) {
            let mut obs = answer.observation();
            obs.graphql_rate_limited = true;
            // Booked and answered already; this only records that the budget is spent.
            self.inner.governor.observe(installation, Resource::Graphql, 0, Some(&obs), chrono::Utc::now());
            self.inner.governor.publish(installation, Resource::Graphql).await;
        }
        // What GitHub said inside a 200 names the call too.
        result.map_err(|e| match e {
            GitHubError::Decode(m) => GitHubError::Decode(format!("{}: {m}", answer.call)),
            GitHubError::GraphqlRefused(m) => GitHubError::GraphqlRefused(format!("{}: {m}", answer.call)),
            e => e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_follows_githubs_formula() {
        assert_eq!(estimated_cost(100), 3);
        assert_eq!(estimated_cost(10), 1);
        assert_eq!(estimated_cost(50), 2);
    }

    #[test]
    fn unresolved_nodes_are_none_and_the_rest_parse() {
        let body = br#"{"data":{"rateLimit":{"cost":1,"remaining":4999,"resetAt":"2030-01-01T00:00:00Z","limit":5000},
          "nodes":[{"__typename":"User","id":"U_1","databaseId":1,"login":"octocat","name":"Mona","avatarUrl":"a",
          "bio":"","company":null,"websiteUrl":null,"location":"","email":"","twitterUsername":null,
          "followers":{"totalCount":20},"following":{"totalCount":0},"repositories":{"totalCount":8}}, null]},
          "errors":[{"type":"NOT_FOUND","path":["nodes",1],"message":"Could not resolve to a node"}]}"#;
        let answer = interpret(body, 2, None).unwrap();
        assert_eq!(answer.cost, 1);
        let user = answer.users[0].as_ref().unwrap();
        assert_eq!(user.key.followers, 20);
        assert_eq!(user.key.public_repos, 8);
        assert!(answer.users[1].is_none());
    }

    #[test]
    fn rate_limited_and_refused_answers_are_told_apart() {
        let limited = br#"{"errors":[{"type":"RATE_LIMITED","message":"API rate limit exceeded"}]}"#;
        assert!(matches!(interpret(limited, 1, None), Err(GitHubError::RateLimited { .. })));
        let refused =
            br#"{"data":null,"errors":[{"type":"FORBIDDEN","message":"Resource not accessible by integration"}]}"#;
        assert!(matches!(interpret(refused, 1, None), Err(GitHubError::GraphqlRefused(_))));
    }
}
