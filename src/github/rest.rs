//! REST calls: users by id or login, and the App's installations.

use backon::{ExponentialBuilder, Retryable};
use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt, stream};
use http::Method;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::client::last_page;
use super::{CallOptions, GitHub, GitHubError, Priority};
use crate::domain::{
    Account, AccountKind, GitHubUserId, InstallationId, InstallationRecord, InstallationState, Login, NodeId, Resource,
    RestProfile,
};

/// GitHub's maximum page size.
const PER_PAGE: u32 = 100;
/// Pages of the installation list fetched at once once we know how many there
/// are (`rel="last"`); the App-call cap (32) bounds them too. 200 pages at 50 ms
/// took 1.2 s 16 at a time, 0.8 s 32 at a time.
const PAGE_CONCURRENCY: usize = 32;

/// 5xx and timeouts: a few tries with growing, jittered waits; then the caller records a failure.
/// A 401 is tried once more too: the token was dropped and the retry mints a fresh one.
pub(super) fn retry_policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(3)
        .with_jitter()
}

fn worth_retrying(e: &GitHubError) -> bool {
    e.is_transient() || matches!(e, GitHubError::Unauthorized { .. })
}

#[derive(Deserialize)]
struct InstallationWire {
    id: i64,
    account: Option<AccountWire>,
    suspended_at: Option<serde_json::Value>,
}

/// A GitHub account as payloads and lists carry it (a simple-user, or an enterprise).
/// Serialized in a webhook's digest (`webhook::event`), absent fields stay absent.
#[derive(Deserialize, Serialize)]
pub struct AccountWire {
    pub id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// Enterprise accounts have a slug instead of a login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl AccountWire {
    pub fn into_account(self, installation: Option<InstallationId>) -> Option<Account> {
        let login = self.login.or(self.slug)?;
        Some(Account {
            id: GitHubUserId::new(self.id).ok()?,
            login: Login::from_github(&login).ok()?,
            node_id: self.node_id.and_then(|n| NodeId::parse(n).ok()),
            avatar_url: self.avatar_url,
            kind: AccountKind::from_github(self.kind.as_deref()),
            installation_id: installation,
        })
    }
}

fn installation_record(wire: InstallationWire) -> Option<InstallationRecord> {
    let id = InstallationId::new(wire.id).ok()?;
    let suspended = wire.suspended_at.is_some_and(|v| !v.is_null());
    Some(InstallationRecord {
        id,
        account: wire.account.and_then(|a| a.into_account(Some(id))),
        state: if suspended { InstallationState::Suspended } else { InstallationState::Active },
    })
}

impl GitHub {
    /// `GET /user/{id}`: by numeric id, so renames don't matter. 404 → `NotFound`.
    pub async fn user_by_id(
        &self,
        installation: InstallationId,
        id: GitHubUserId,
        priority: Priority,
        opts: CallOptions<'_>,
    ) -> Result<RestProfile, GitHubError> {
        self.rest_user(installation, format!("user/{id}"), priority, opts).await
    }

    /// `GET /users/{login}`: for users tracked by login before we know their id.
    pub async fn user_by_login(
        &self,
        installation: InstallationId,
        login: &Login,
        priority: Priority,
        opts: CallOptions<'_>,
    ) -> Result<RestProfile, GitHubError> {
        self.rest_user(installation, format!("users/{login}"), priority, opts).await
    }

    async fn rest_user(
        &self,
        installation: InstallationId,
        path: String,
        priority: Priority,
        opts: CallOptions<'_>,
    ) -> Result<RestProfile, GitHubError> {
        let url = self.api_url(&path);
        let call = || {
            self.installation_call(installation, Resource::Core, 1, priority, (Method::GET, url.clone(), None), opts)
        };
        let answer = call.retry(retry_policy()).when(worth_retrying).await?;
        let raw: serde_json::Value = answer.json()?;
        RestProfile::from_json(raw).map_err(|e| GitHubError::Decode(format!("{}: {e}", answer.call)))
    }

    async fn installations_page(&self, page: u32) -> Result<(Vec<InstallationRecord>, Option<u32>), GitHubError> {
        // Pages are followed by number on our own base URL, never through the absolute
        // `Link` URLs: those name api.github.com's host, not a GHES or test one.
        let path = format!("app/installations?per_page={PER_PAGE}&page={page}");
        let call = || self.app_call(Method::GET, &path, None);
        let answer = call.retry(retry_policy()).when(|e: &GitHubError| e.is_transient()).await?;
        let last = last_page(&answer.headers);
        let items: Vec<InstallationWire> = answer.json()?;
        Ok((items.into_iter().filter_map(installation_record).collect(), last))
    }

    /// `GET /app/installations/{id}` (App JWT): one installation as GitHub has it now.
    /// 404 → `NotFound`: it is gone (uninstalled). Used before retiring an
    /// installation a listing missed, since a listing by pages can skip one.
    pub async fn installation(&self, id: InstallationId) -> Result<InstallationRecord, GitHubError> {
        let path = format!("app/installations/{id}");
        let call = || self.app_call(Method::GET, &path, None);
        let answer = call.retry(retry_policy()).when(|e: &GitHubError| e.is_transient()).await?;
        let wire: InstallationWire = answer.json()?;
        installation_record(wire)
            .ok_or_else(|| GitHubError::Decode(format!("{}: no valid installation id", answer.call)))
    }

    /// Walks `GET /app/installations`, every page, handing each page to `on_page`
    /// in order, so memory holds a few pages whatever the number of installations.
    pub async fn for_each_installation_page<F, Fut>(&self, mut on_page: F) -> Result<u64, anyhow::Error>
    where
        F: FnMut(Vec<InstallationRecord>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let started = Utc::now();
        let (first, last) = self.installations_page(1).await?;
        let mut seen = first.len() as u64;
        on_page(first).await?;
        let mut pages =
            stream::iter(2..=last.unwrap_or(1)).map(|page| self.installations_page(page)).buffered(PAGE_CONCURRENCY);
        while let Some((items, _)) = pages.try_next().await? {
            seen += items.len() as u64;
            on_page(items).await?;
        }
        tracing::debug!(
            installations = seen,
            took_ms = (Utc::now() - started).num_milliseconds(),
            "listed installations"
        );
        Ok(seen)
    }
}
