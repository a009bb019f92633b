//! The transport: every request to GitHub goes through `send`, on octocrab's
//! HTTP client with no authentication of its own, no retries and no cache.
//! We drop to octocrab's raw `execute` because its typed calls hide headers
//! (we need every `x-ratelimit-*`), retry on their own (the governor alone
//! decides), and only authenticate requests to api.github.com (GitHub
//! Enterprise Server and our fake would go unauthenticated).

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use http::{HeaderMap, Method, Request};
use http_body_util::BodyExt;
use std::time::Duration;

use super::errors::GitHubError;
use super::governor::Observation;

/// GitHub gives up on itself after 10 s; we wait a little longer, then call it a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const API_VERSION: &str = "2022-11-28";
const USER_AGENT: &str = concat!("ghsync/", env!("CARGO_PKG_VERSION"));
/// Requests in flight at once from this process, every token and the App's
/// JWT together. GitHub allows 100 concurrent requests (REST and GraphQL
/// together) before its secondary limit; this stays well under it, and the
/// governor caps each token further (`GHSYNC_MAX_CONCURRENCY_PER_TOKEN`).
pub const MAX_IN_FLIGHT: usize = 64;

/// A raw answer: status, headers, body, and the call it answers.
#[derive(Debug)]
pub struct Answer {
    /// `METHOD /path?query`, for error messages (see [`call_label`]).
    pub call: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn header_i64(&self, name: &str) -> Option<i64> {
        self.header(name).and_then(|v| v.trim().parse().ok())
    }

    /// What GitHub said: its `{"message": …}`, or a problem+json body's
    /// `title` and `detail`, or the start of a non-JSON body (a proxy's page);
    /// never empty, so an error always gives a reason.
    pub fn message(&self) -> String {
        let json = serde_json::from_slice::<serde_json::Value>(&self.body).ok();
        let field = |name: &str| json.as_ref().and_then(|v| v.get(name)?.as_str().map(str::to_owned));
        if let Some(message) = field("message").filter(|m| !m.is_empty()) {
            return message;
        }
        let problem: Vec<String> = [field("title"), field("detail")].into_iter().flatten().collect();
        if !problem.is_empty() {
            return problem.join(": ");
        }
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if json.is_none() && !text.is_empty() {
            return text.chars().take(200).collect();
        }
        format!("HTTP {} with no message", self.status)
    }

    /// The body as JSON of type `T`; an error names the call.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, GitHubError> {
        serde_json::from_slice(&self.body).map_err(|e| GitHubError::Decode(format!("{}: {e}", self.call)))
    }

    /// What this answer tells the rate governor.
    pub fn observation(&self) -> Observation {
        let secondary =
            matches!(self.status, 403 | 429) && self.message().to_ascii_lowercase().contains("secondary rate limit");
        Observation {
            status: self.status,
            limit: self.header_i64("x-ratelimit-limit"),
            remaining: self.header_i64("x-ratelimit-remaining"),
            reset: self.header_i64("x-ratelimit-reset").and_then(|s| Utc.timestamp_opt(s, 0).single()),
            retry_after: self.header_i64("retry-after").map(|s| Duration::from_secs(s.max(0) as u64)),
            secondary,
            graphql_rate_limited: false,
        }
    }

    pub fn reset_at(&self) -> Option<DateTime<Utc>> {
        self.observation().reset
    }

    /// Turns a non-success answer into the error the callers branch on.
    pub fn classify(self) -> Result<Answer, GitHubError> {
        match self.status {
            200..=299 | 304 => Ok(self),
            401 => Err(GitHubError::Unauthorized { message: self.message(), call: self.call }),
            404 => Err(GitHubError::NotFound { call: self.call }),
            403 | 429 => {
                let obs = self.observation();
                if obs.remaining == Some(0) && !obs.secondary {
                    let reset_at = obs.reset.unwrap_or_else(|| Utc::now() + chrono::Duration::minutes(1));
                    Err(GitHubError::RateLimited { reset_at })
                } else if obs.secondary || obs.retry_after.is_some() {
                    Err(GitHubError::SecondaryLimit { retry_after: obs.retry_after })
                } else {
                    Err(GitHubError::Forbidden { message: self.message(), call: self.call })
                }
            }
            500..=599 => Err(GitHubError::Server { message: self.message(), status: self.status, call: self.call }),
            status => Err(GitHubError::Unexpected { message: self.message(), status, call: self.call }),
        }
    }
}

pub struct Transport {
    octocrab: octocrab::Octocrab,
    in_flight: tokio::sync::Semaphore,
}

impl Transport {
    pub fn new() -> Result<Self, GitHubError> {
        let octocrab = octocrab::OctocrabBuilder::new()
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .build()
            .map_err(|e| GitHubError::Transport(e.to_string()))?;
        Ok(Self { octocrab, in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT) })
    }

    /// Sends one request with the given bearer credential. Never retries.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        bearer: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, GitHubError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .header(http::header::USER_AGENT, USER_AGENT);
        // An empty credential sends none (the manifest conversion is unauthenticated).
        if !bearer.is_empty() {
            let mut auth = http::HeaderValue::from_str(&format!("Bearer {bearer}"))
                .map_err(|_| GitHubError::Transport("credential is not a valid header value".into()))?;
            auth.set_sensitive(true);
            builder = builder.header(http::header::AUTHORIZATION, auth);
        }
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let call = call_label(builder.method_ref(), url);
        let failed = |e: &dyn std::fmt::Display| GitHubError::Transport(format!("{call}: {e}"));
        let request =
            builder.body(String::from_utf8(body.unwrap_or_default()).unwrap_or_default()).map_err(|e| failed(&e))?;
        // Waiting for a place is not waiting for GitHub: the timeout starts once one is free.
        let _in_flight = self.in_flight.acquire().await.expect("never closed");
        let exchange = async {
            let response = self.octocrab.execute(request).await.map_err(|e| failed(&e))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| failed(&e))?.to_bytes();
            Ok(Answer { call: call.clone(), status: parts.status.as_u16(), headers: parts.headers, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(failed(&format!("no answer within {REQUEST_TIMEOUT:?}"))))
    }
}

/// `METHOD /path?query` of a request, for messages: no host (it is the
/// configured one), and the one-time code of a manifest conversion (a
/// credential) left out.
pub fn call_label(method: Option<&Method>, url: &str) -> String {
    let method = method.map_or("?", Method::as_str);
    let Ok(url) = url::Url::parse(url) else { return format!("{method} <unparsable url>") };
    let mut path = url.path().to_owned();
    if let Some(i) = path.find("/app-manifests/") {
        let rest = &path[i + "/app-manifests/".len()..];
        let tail = rest.find('/').map_or("", |j| &rest[j..]).to_owned();
        path = format!("{}/app-manifests/{{code}}{tail}", &path[..i]);
    }
    match url.query() {
        Some(q) => format!("{method} {path}?{q}"),
        None => format!("{method} {path}"),
    }
}

/// One query parameter of the URL a `Link` header gives for relation `rel`:
/// GitHub pages some lists by number (`page` of `rel="last"`) and others by
/// cursor (`cursor` of `rel="next"`); both are read here.
pub fn link_param(headers: &HeaderMap, rel: &str, param: &str) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    let rel = format!("rel=\"{rel}\"");
    let part = link.split(',').find(|part| part.contains(&rel))?;
    let url = part.trim().trim_start_matches('<').split('>').next()?;
    let url = url::Url::parse(url).ok()?;
    url.query_pairs().find(|(k, _)| k == param).map(|(_, v)| v.into_owned())
}

/// The page count from a `Link` header's `rel="last"` (GitHub's page-number pagination).
pub fn last_page(headers: &HeaderMap) -> Option<u32> {
    link_param(headers, "last", "page")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().unwrap());
        }
        Answer { call: "GET /user/42".into(), status, headers: map, body: Bytes::from(body.to_owned()) }
    }

    #[test]
    fn a_403_with_nothing_left_is_the_primary_limit() {
        let a = answer(
            403,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1900000000")],
            r#"{"message":"API rate limit exceeded for installation ID 1."}"#,
        );
        assert!(matches!(a.classify(), Err(GitHubError::RateLimited { .. })));
    }

    #[test]
    fn a_403_naming_the_secondary_limit_or_with_retry_after_is_secondary() {
        let a = answer(
            403,
            &[("x-ratelimit-remaining", "4000")],
            r#"{"message":"You have exceeded a secondary rate limit."}"#,
        );
        assert!(matches!(a.classify(), Err(GitHubError::SecondaryLimit { retry_after: None })));
        let b = answer(429, &[("retry-after", "7")], "{}");
        assert!(matches!(b.classify(), Err(GitHubError::SecondaryLimit { retry_after: Some(d) }) if d.as_secs() == 7));
        let c = answer(403, &[], r#"{"message":"Resource not accessible by integration"}"#);
        assert!(
            matches!(c.classify(), Err(GitHubError::Forbidden { message, .. }) if message.contains("not accessible"))
        );
    }

    #[test]
    fn errors_say_what_github_said_never_an_empty_reason() {
        let problem = answer(
            503,
            &[],
            r#"{"type":"about:blank","title":"Service Unavailable","detail":"maintenance until 10:00"}"#,
        );
        assert_eq!(problem.message(), "Service Unavailable: maintenance until 10:00");
        assert_eq!(answer(502, &[], "").message(), "HTTP 502 with no message");
        assert_eq!(answer(502, &[], "<html>Bad gateway</html>").message(), "<html>Bad gateway</html>");
        let e = answer(500, &[], r#"{"message":"Server Error"}"#).classify().unwrap_err();
        assert_eq!(e.to_string(), "GET /user/42: GitHub answered 500: Server Error");
        let e = answer(404, &[], r#"{"message":"Not Found"}"#).classify().unwrap_err();
        assert_eq!(e.to_string(), "GET /user/42: not found on GitHub (404)");
    }

    #[test]
    fn a_call_is_named_by_method_and_path_without_the_host_or_a_manifest_code() {
        let get = Some(&Method::GET);
        assert_eq!(call_label(get, "https://ghe.example/api/v3/user/42"), "GET /api/v3/user/42");
        assert_eq!(
            call_label(get, "http://127.0.0.1:1/app/installations?per_page=100&page=3"),
            "GET /app/installations?per_page=100&page=3"
        );
        let post = Some(&Method::POST);
        let conversion = call_label(post, "https://api.github.com/app-manifests/s3cr3tcode/conversions");
        assert_eq!(conversion, "POST /app-manifests/{code}/conversions");
    }

    #[test]
    fn the_last_page_is_read_from_githubs_absolute_links() {
        let a = answer(
            200,
            &[(
                "link",
                "<https://api.github.com/app/installations?per_page=100&page=2>; rel=\"next\", <https://api.github.com/app/installations?per_page=100&page=34>; rel=\"last\"",
            )],
            "[]",
        );
        assert_eq!(last_page(&a.headers), Some(34));
        assert_eq!(last_page(&HeaderMap::new()), None);
    }
}
