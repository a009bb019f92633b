//! Everything that talks to GitHub. Callers see one facade, `GitHub`: typed
//! calls that take an installation and a priority; the JWT, the token cache,
//! the rate governor and error classification all happen behind it.

mod app_jwt;
mod client;
mod clock;
mod deliveries;
mod errors;
mod governor;
mod graphql;
mod manifest;
mod rest;
mod settings;
mod tokens;

pub use app_jwt::sign_test_jwt;
pub use clock::ClockSkew;
pub use deliveries::HookDelivery;
pub use errors::GitHubError;
pub use governor::{Governor, Ledger, Priority, Refusal};
pub use graphql::{MAX_NODES, NodesAnswer, ObservedUser};
pub use manifest::{NewApp, convert_manifest};
pub use rest::AccountWire as AccountWireRef;
pub use settings::{GitHubSettings, GovernorSettings};

use chrono::Utc;
use http::Method;
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use url::Url;

use crate::domain::{InstallationId, Resource};
use crate::metrics::Metrics;
use client::{Answer, Transport};
use tokens::{InstallationToken, TokenCache};

/// App (JWT) calls in flight at once: the installations listing's pages and
/// token mints. A listing of 200 pages, 32 at a time, takes 7 round trips.
const APP_CALLS: usize = 32;
/// GitHub's installation tokens take a moment to replicate: a 401 this soon
/// after minting is retried (octokit waits up to 5 s too).
const REPLICATION_GRACE: chrono::Duration = chrono::Duration::seconds(5);

/// How long a request waits for another one to learn an unknown budget.
const PROBE_WAIT: Duration = Duration::from_secs(2);
/// The same for a caller with other tokens to try (the picker): a probe that
/// takes longer than this means a slow GitHub, where waiting on one token's
/// probe after another would leave a pass one request at a time.
const PROBE_WAIT_PICKING: Duration = Duration::from_millis(500);

/// Points a caller spent, by resource, for its run record.
#[derive(Debug, Default)]
pub struct Meter {
    pub core: AtomicI64,
    pub graphql: AtomicI64,
}

impl Meter {
    fn add(&self, resource: Resource, points: i64) {
        match resource {
            Resource::Core => self.core.fetch_add(points, Ordering::Relaxed),
            Resource::Graphql => self.graphql.fetch_add(points, Ordering::Relaxed),
        };
    }
    pub fn take(&self) -> (i64, i64) {
        (self.core.swap(0, Ordering::Relaxed), self.graphql.swap(0, Ordering::Relaxed))
    }
}

/// How a call may spend: whether to wait for a busy token, and where to count points.
#[derive(Clone, Copy, Default)]
pub struct CallOptions<'a> {
    pub wait: bool,
    pub meter: Option<&'a Meter>,
}

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct GitHub {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    api: Url,
    graphql: Url,
    jwt: app_jwt::AppJwt,
    tokens: TokenCache,
    governor: Governor,
    metrics: Metrics,
    /// App-level calls (JWT): `APP_CALLS` at a time.
    app_calls: tokio::sync::Semaphore,
    clock: clock::SkewWatch,
}

impl GitHub {
    pub fn new(settings: &GitHubSettings, metrics: Metrics) -> Result<Self, GitHubError> {
        Ok(Self {
            inner: Arc::new(Inner {
                transport: Transport::new()?,
                api: settings.api_url.clone(),
                graphql: settings.graphql_url.clone(),
                jwt: app_jwt::AppJwt::new(settings.app_id, settings.private_key.clone()),
                tokens: TokenCache::default(),
                governor: Governor::new(settings.limits.clone()),
                metrics,
                app_calls: tokio::sync::Semaphore::new(APP_CALLS),
                clock: clock::SkewWatch::default(),
            }),
        })
    }

    pub fn governor(&self) -> &Governor {
        &self.inner.governor
    }

    /// Our clock against GitHub's, when they disagree by minutes.
    pub fn clock_skew(&self) -> Option<ClockSkew> {
        self.inner.clock.current()
    }

    /// A fresh token is cached for this installation: using it costs no mint.
    pub fn has_token(&self, id: InstallationId) -> bool {
        self.inner.tokens.has_fresh(id, Utc::now())
    }

    /// `{api}/{path}` without losing a base path such as GHES's `/api/v3`.
    fn api_url(&self, path_and_query: &str) -> String {
        format!("{}/{}", self.inner.api.as_str().trim_end_matches('/'), path_and_query.trim_start_matches('/'))
    }

    fn count(&self, resource: &str, answer: &Result<Answer, GitHubError>) {
        let status = match answer {
            Ok(a) => a.status.to_string(),
            Err(_) => "error".to_string(),
        };
        self.inner.metrics.github_requests.with_label_values(&[resource, &status]).inc();
    }

    /// A call authenticated as the App (JWT): installations, token minting, deliveries.
    async fn app_call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Answer, GitHubError> {
        let _permit = self.inner.app_calls.acquire().await.expect("never closed");
        let jwt = self
            .inner
            .jwt
            .bearer(Utc::now())
            .map_err(|e| GitHubError::Transport(format!("cannot sign the App JWT: {e}")))?;
        let answer = self.inner.transport.send(method, &self.api_url(path), &jwt, body).await;
        self.count("app", &answer);
        let answer = answer?;
        self.inner.clock.observe(&answer.headers, Utc::now());
        answer.classify()
    }

    async fn mint(&self, id: InstallationId) -> Result<InstallationToken, GitHubError> {
        #[derive(serde::Deserialize)]
        struct Minted {
            token: String,
            expires_at: chrono::DateTime<Utc>,
        }
        let path = format!("app/installations/{id}/access_tokens");
        let answer = self.app_call(Method::POST, &path, None).await.map_err(|e| match e {
            e if e.is_transient() || e.is_rate_limit() => e,
            e => GitHubError::TokenUnavailable { installation: id.get(), reason: e.to_string() },
        })?;
        let minted: Minted = answer.json()?;
        let now = Utc::now();
        // `expires_at` is GitHub's time: moved into ours by the skew its `Date` shows.
        let mut expires_at = minted.expires_at + (now - clock::date_of(&answer.headers).unwrap_or(now));
        if expires_at <= now {
            // Still past: use it for the hour GitHub's tokens live rather than mint before every call;
            // a 401 drops it and mints another.
            self.inner.clock.expired_on_arrival(minted.expires_at, now);
            expires_at = now + chrono::Duration::hours(1);
        }
        tracing::debug!(installation_id = %id, %expires_at, "minted an installation token");
        Ok(InstallationToken { secret: minted.token.into(), expires_at, minted_at: now })
    }

    /// The cached token, or one minted now; concurrent callers share one mint.
    async fn token(&self, id: InstallationId) -> Result<InstallationToken, GitHubError> {
        let slot = self.inner.tokens.slot(id);
        let mut guard = slot.lock().await;
        if let Some(token) = guard.as_ref().filter(|t| t.is_fresh(Utc::now())) {
            return Ok(token.clone());
        }
        let token = self.mint(id).await?;
        *guard = Some(token.clone());
        Ok(token)
    }

    /// A call on an installation's token, admitted by the governor. Costs
    /// `cost` points of `resource`; a refusal comes back as `Blocked`.
    async fn installation_call(
        &self,
        id: InstallationId,
        resource: Resource,
        cost: i64,
        priority: Priority,
        request: (Method, String, Option<Vec<u8>>),
        opts: CallOptions<'_>,
    ) -> Result<Answer, GitHubError> {
        let governor = &self.inner.governor;
        let started = std::time::Instant::now();
        let probe_wait = if opts.wait { PROBE_WAIT } else { PROBE_WAIT_PICKING };
        let permit = loop {
            match governor.acquire(id, resource, cost, priority, opts.wait).await {
                Ok(permit) => break permit,
                // Another request is finding out this budget: its answer comes within a round
                // trip, so wait for it rather than mint another installation's token.
                Err(Refusal::Probing) if started.elapsed() < probe_wait => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(refusal) => {
                    return Err(GitHubError::Blocked {
                        until: refusal.until(Utc::now()),
                        reason: format!("installation {id} {}: {refusal:?}", resource.as_str()),
                    });
                }
            }
        };
        let token = match self.token(id).await {
            Ok(token) => token,
            Err(e) => {
                governor.refund(id, resource, cost);
                return Err(e);
            }
        };
        let (method, url, body) = request;
        let mut answer =
            self.inner.transport.send(method.clone(), &url, token.secret.expose_secret(), body.clone()).await;
        // Only while the token is young and still fresh: never resend on one about to expire.
        while matches!(&answer, Ok(a) if a.status == 401)
            && Utc::now() - token.minted_at < REPLICATION_GRACE
            && token.is_fresh(Utc::now())
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
            answer = self.inner.transport.send(method.clone(), &url, token.secret.expose_secret(), body.clone()).await;
        }
        drop(permit);
        self.count(resource.as_str(), &answer);
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                governor.observe(id, resource, cost, None, Utc::now());
                return Err(e);
            }
        };
        governor.observe(id, resource, cost, Some(&answer.observation()), Utc::now());
        governor.publish(id, resource).await;
        self.inner.clock.observe(&answer.headers, Utc::now());
        if answer.status == 401 {
            self.inner.tokens.invalidate(id).await;
        }
        // GitHub charges what it served (and a 404); refusals and 304s cost nothing.
        if (200..300).contains(&answer.status) || answer.status == 404 {
            let charged = if resource == Resource::Core { 1 } else { cost };
            self.inner.metrics.github_points.with_label_values(&[resource.as_str()]).inc_by(charged as u64);
            if let Some(meter) = opts.meter {
                meter.add(resource, charged);
            }
        }
        answer.classify()
    }
}
