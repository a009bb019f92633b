//! `spawn_app(backend)`: a new world per test — a fresh database, a fake
//! GitHub on port 0, and the real `App` on port 0.

pub mod binary;
mod browser;
mod cdp;
mod db;

pub use browser::{Chromium, target_dir};
pub use cdp::Browser;
pub use db::{Backend, TestDb};

use chrono::Utc;
use secrecy::SecretString;
use serde_json::Value;
use std::future::Future;
use std::sync::Once;
use std::time::Duration;

use fake_github::{DEMO_APP_KEY, DEMO_APP_PUBLIC_KEY, FakeConfig, FakeGitHub, FakeUser, payloads};
use ghsync::app::App;
use ghsync::cli::RawSettings;
use ghsync::config::{Needs, Settings};
use ghsync::domain::{GitHubUserId, UserRecord};
use ghsync::github::{GitHubSettings, GovernorSettings};
use ghsync::http::AppState;
use ghsync::inbox::RedeliverySweep;

pub const APP_ID: u64 = 4242;
pub const SECRET: &str = "test-webhook-secret";
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// A second key, not the App's: JWTs signed with it must be refused.
pub const WRONG_KEY: &str = include_str!("../../fixtures/wrong-app-key.pem");

/// Emits one `#[tokio::test]` per backend; the PostgreSQL one says why it
/// skipped when `TEST_DATABASE_URL` is not set.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($backend:ident: Backend) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($backend: $crate::helpers::Backend) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { body($crate::helpers::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::Backend::postgres_available() { body($crate::helpers::Backend::Postgres).await }
            }
        }
    )*};
}

static TRACING: Once = Once::new();

fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            ghsync::telemetry::init(&ghsync::config::LogSettings { filter: "info,ghsync=debug".into(), json: false });
        }
    });
}

pub struct TestApp {
    pub address: String,
    pub state: actix_web::web::Data<AppState>,
    pub github: FakeGitHub,
    /// The app's own redelivery sweep (its schedule is off in tests).
    pub redeliveries: RedeliverySweep,
    pub client: reqwest::Client,
    pub db: TestDb,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Knobs a test may turn before the app starts.
pub struct Options {
    pub key: &'static str,
    pub admin_token: Option<&'static str>,
    pub secrets: Vec<&'static str>,
    pub edit: Box<dyn FnOnce(&mut Settings) + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Self { key: DEMO_APP_KEY, admin_token: Some(ADMIN_TOKEN), secrets: vec![SECRET], edit: Box::new(|_| {}) }
    }
}

pub fn settings_for(db_url: &str, github: &FakeGitHub, options: &Options) -> Settings {
    let raw = RawSettings {
        database_url: Some(db_url.to_owned()),
        ghsync_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let mut settings = Settings::load(&raw, Needs::DatabaseOnly).expect("test settings are valid");
    settings.github = Some(GitHubSettings {
        app_id: APP_ID,
        private_key: octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(options.key.as_bytes()).unwrap(),
        api_url: github.url().parse().unwrap(),
        graphql_url: github.graphql_url().parse().unwrap(),
        limits: GovernorSettings::default(),
    });
    settings.webhook.secrets = options.secrets.iter().map(|s| SecretString::from(s.to_string())).collect();
    settings.http.admin_token = options.admin_token.map(|t| SecretString::from(t.to_owned()));
    settings.sync.schedule = false;
    settings.sync.retry_base = Duration::from_millis(10);
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: Options) -> TestApp {
    spawn_app_on(TestDb::create(backend).await, options).await
}

/// Like `spawn_app_with`, on a database the test prepared itself (e.g. with
/// rows written through `open_store` before the app starts).
pub async fn spawn_app_on(db: TestDb, options: Options) -> TestApp {
    init_tracing();
    let github =
        FakeGitHub::start(FakeConfig { app_id: APP_ID, app_public_key_pem: DEMO_APP_PUBLIC_KEY.into() }).await.unwrap();
    let mut settings = settings_for(&db.url, &github, &options);
    (options.edit)(&mut settings);
    let app = App::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let redeliveries = app.redeliveries().expect("tests configure GitHub");
    let handle = tokio::spawn(app.run_until_stopped());
    github.set_webhook_target(&format!("{address}/webhooks/github"), SECRET);
    TestApp { address, state, github, redeliveries, client: reqwest::Client::new(), db, handle: Some(handle) }
}

/// Opens (and migrates) the test database directly, without an app.
pub async fn open_store(db: &TestDb) -> std::sync::Arc<dyn ghsync::store::Store> {
    let settings = ghsync::config::DatabaseSettings { url: SecretString::from(db.url.clone()) };
    ghsync::store::open(&settings).await.expect("the test database opens")
}

/// Polls `check` until it yields a value or `timeout` passes (never a bare sleep).
/// How long a test waits for something that should happen before calling it a failure. Only a
/// failing test ever waits this long, so it is generous: two busy cores (CI, a parallel build) can
/// make a healthy run several times slower than on an idle machine.
pub const PATIENCE: Duration = Duration::from_secs(90);

pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl TestApp {
    pub fn store(&self) -> &std::sync::Arc<dyn ghsync::store::Store> {
        &self.state.store
    }

    pub fn passes(&self) -> &ghsync::sync::PassRunner {
        self.state.passes.as_ref().expect("tests configure GitHub")
    }

    /// Adds a user to the fake GitHub with an installation of their own (id = user id).
    pub fn github_user(&self, id: i64) -> FakeUser {
        let user = FakeUser::sample(id);
        self.github.add_user(user.clone());
        self.github.add_installation(id, id);
        user
    }

    /// The user installs the App: GitHub sends `installation.created`.
    pub async fn install(&self, id: i64) -> FakeUser {
        let user = self.github_user(id);
        self.send_installation("created", id).await;
        user
    }

    pub async fn send_installation(&self, action: &str, installation_id: i64) -> String {
        let user = self.github.user(installation_id).expect("installation ids are user ids in tests");
        let payload = payloads::installation_event(action, &self.github.installation_payload(installation_id), &user);
        self.deliver("installation", &payload).await
    }

    /// Delivers a signed webhook through the fake, as GitHub would; returns its GUID.
    pub async fn deliver(&self, event: &str, payload: &Value) -> String {
        let (status, guid) = self.github.deliver(event, payload).await.expect("the webhook reaches ghsync");
        assert_eq!(status, 202, "{event} delivery was not accepted");
        guid
    }

    /// Waits until no delivery is pending (the worker runs in the background).
    pub async fn drain_inbox(&self) {
        let store = self.store().clone();
        eventually("the inbox to drain", PATIENCE, || {
            let store = store.clone();
            async move { (store.inbox_stats().await.ok()?.pending == 0).then_some(()) }
        })
        .await;
    }

    pub async fn user(&self, id: i64) -> Option<UserRecord> {
        self.store().user_by_id(GitHubUserId::new(id).unwrap()).await.unwrap()
    }

    /// Waits until the stored user satisfies `check`.
    pub async fn user_where(&self, id: i64, what: &str, check: impl Fn(&UserRecord) -> bool) -> UserRecord {
        eventually(what, PATIENCE, || async { self.user(id).await.filter(|u| check(u)) }).await
    }

    /// Waits until the user's profile has been fetched at least once after `since`.
    pub async fn synced_after(&self, id: i64, since: chrono::DateTime<Utc>) -> UserRecord {
        self.user_where(id, "a profile fetch", |u| u.last_synced_at.is_some_and(|t| t >= since)).await
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.address)).bearer_auth(ADMIN_TOKEN)
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.admin(reqwest::Method::GET, path).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn run_pass(&self) -> ghsync::sync::PassReport {
        self.passes().run_pass("test", &tokio_util::sync::CancellationToken::new()).await.expect("the pass runs")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
        self.github.stop();
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}
