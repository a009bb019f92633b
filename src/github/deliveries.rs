//! The App's webhook deliveries as GitHub recorded them, and redelivery.
//! GitHub does not redeliver by itself; the sweep in `sync::redeliver` does.

use chrono::{DateTime, Utc};
use http::Method;
use serde::Deserialize;

use super::client::link_param;
use super::{GitHub, GitHubError};

/// One attempt (`hook-delivery-item`).
#[derive(Debug, Clone, Deserialize)]
pub struct HookDelivery {
    pub id: i64,
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    /// `OK` when we answered 2xx; anything else is a failed attempt.
    pub status: String,
    #[serde(default)]
    pub redelivery: bool,
    #[serde(default)]
    pub event: String,
}

/// The `cursor` of a `Link` header's `rel="next"` (cursor pagination).
fn next_cursor(headers: &http::HeaderMap) -> Option<String> {
    link_param(headers, "next", "cursor")
}

impl GitHub {
    /// One page of `GET /app/hook/deliveries`, newest first, and the next page's cursor.
    pub async fn hook_deliveries(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<HookDelivery>, Option<String>), GitHubError> {
        let mut path = "app/hook/deliveries?per_page=100".to_string();
        if let Some(cursor) = cursor {
            path.push_str("&cursor=");
            path.push_str(&url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>());
        }
        let answer = self.app_call(Method::GET, &path, None).await?;
        let next = next_cursor(&answer.headers);
        let items = answer.json()?;
        Ok((items, next))
    }

    /// `POST /app/hook/deliveries/{id}/attempts`: GitHub sends it again, same GUID.
    pub async fn redeliver(&self, delivery_id: i64) -> Result<(), GitHubError> {
        self.app_call(Method::POST, &format!("app/hook/deliveries/{delivery_id}/attempts"), None).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_cursor_is_read_from_the_link_header() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "link",
            "<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_12077215967>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_cursor(&headers).as_deref(), Some("v1_12077215967"));
        assert_eq!(next_cursor(&http::HeaderMap::new()), None);
    }
}
