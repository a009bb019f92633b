//! An in-process fake of the GitHub API for ghsync's tests, `demo` command
//! and benchmarks: App-JWT and installation-token auth, `GET /user/{id}`,
//! `GET /users/{login}`, GraphQL `nodes`, primary and secondary rate limits,
//! injected faults, and signed webhook deliveries with a deliveries API.
//!
//! A crate of its own so that production builds leave it out: ghsync takes it
//! as a dev-dependency, and `ghsync demo` through the default `demo` feature.
//! Its tests live in ghsync's one test binary (`tests/api/fake_github/`).
//!
//! This file holds the public handle (`FakeGitHub`) and its world-editing
//! methods; each feature lives in its own submodule.

mod app_routes;
mod auth;
mod deliver;
mod faults;
mod graphql;
mod hooks;
mod limits;
mod manifest;
pub mod payloads;
mod respond;
mod rest;
mod server;
mod state;
mod user;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

pub use deliver::sign_webhook;
pub use faults::{FakeStats, Faults};
pub use manifest::{DEMO_APP_KEY, DEMO_APP_PUBLIC_KEY, MANIFEST_WEBHOOK_SECRET};
pub use user::FakeUser;

use state::{Installation, Shared, SharedRef, State, WebhookTarget};

/// What the fake needs to know about the App it impersonates GitHub for.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub app_id: u64,
    /// The App's RSA public key (SPKI or PKCS#1 PEM); App JWTs must verify
    /// against it.
    pub app_public_key_pem: String,
}

/// Held listings (see [`FakeGitHub::hold_listings`]); dropping it lets them answer.
pub struct ListingHold {
    _held: tokio::sync::OwnedRwLockWriteGuard<()>,
}

/// Handle to a running fake. Cheap to clone; all clones share one server.
#[derive(Clone)]
pub struct FakeGitHub {
    shared: SharedRef,
}

impl FakeGitHub {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime; returns at
    /// once. Fails if the public key PEM does not parse.
    pub async fn start(config: FakeConfig) -> std::io::Result<FakeGitHub> {
        let key = DecodingKey::from_rsa_pem(config.app_public_key_pem.as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let http =
            reqwest::Client::builder().timeout(deliver::WEBHOOK_TIMEOUT).build().map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            app_id: config.app_id,
            key,
            base_url: format!("http://127.0.0.1:{port}"),
            hook_id: 420_000_000 + config.app_id % 1_000_000,
            http,
            state: Mutex::new(State::default()),
            handle: Mutex::new(None),
            listing_gate: Arc::default(),
        });
        let server = server::build(shared.clone(), listener)?;
        *shared.handle.lock().unwrap_or_else(|e| e.into_inner()) = Some(server.handle());
        tokio::spawn(server);
        Ok(FakeGitHub { shared })
    }

    /// REST base, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.shared.base_url)
    }

    /// Ask the server to stop; does not wait for it.
    pub fn stop(&self) {
        let handle = self.shared.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            // The stop command is sent synchronously; the returned future
            // only waits for completion, so dropping it is fine.
            drop(handle.stop(false));
        }
    }

    /// Until the returned guard is dropped, every `GET /app/installations`
    /// waits before it answers: a test can keep a pass in its listing while
    /// something else happens, with no clock involved.
    pub async fn hold_listings(&self) -> ListingHold {
        ListingHold { _held: self.shared.listing_gate.clone().write_owned().await }
    }

    // --- world ---

    pub fn add_user(&self, user: FakeUser) {
        self.shared.lock().put_user(user);
    }

    pub fn user(&self, id: i64) -> Option<FakeUser> {
        self.shared.lock().users.get(&id).cloned()
    }

    /// Edit a user in place; `updated_at` is bumped to now afterwards (an
    /// edit that sets `updated_at` itself to a later time keeps it).
    pub fn edit_user(&self, id: i64, edit: impl FnOnce(&mut FakeUser)) {
        let mut st = self.shared.lock();
        let Some(mut user) = st.users.get(&id).cloned() else {
            return;
        };
        edit(&mut user);
        user.updated_at = user.updated_at.max(Utc::now());
        st.put_user(user);
    }

    /// After this, REST answers 404 and GraphQL null + NOT_FOUND.
    pub fn remove_user(&self, id: i64) {
        self.shared.lock().drop_user(id);
    }

    /// Install the App on user `account_user_id` (target_type "User").
    pub fn add_installation(&self, installation_id: i64, account_user_id: i64) {
        let now = Utc::now();
        let inst =
            Installation { id: installation_id, account_user_id, created_at: now, updated_at: now, suspended_at: None };
        self.shared.lock().installations.insert(installation_id, inst);
    }

    /// Uninstall: the installation and all its tokens disappear (GitHub
    /// revokes tokens on uninstall, so they become plain bad credentials).
    pub fn remove_installation(&self, installation_id: i64) {
        let mut st = self.shared.lock();
        st.installations.remove(&installation_id);
        st.tokens.retain(|_, t| t.installation_id != installation_id);
    }

    pub fn set_installation_suspended(&self, installation_id: i64, suspended: bool) {
        let mut st = self.shared.lock();
        if let Some(inst) = st.installations.get_mut(&installation_id) {
            let now = Utc::now();
            inst.suspended_at = suspended.then_some(inst.suspended_at.unwrap_or(now));
            inst.updated_at = now;
        }
    }

    /// The `installation` object as webhooks and `GET /app/installations`
    /// show it; `Value::Null` for an unknown installation.
    pub fn installation_payload(&self, installation_id: i64) -> Value {
        let st = self.shared.lock();
        match st.installations.get(&installation_id) {
            Some(inst) => app_routes::installation_value(&self.shared, &st, inst),
            None => Value::Null,
        }
    }

    // --- faults and limits ---

    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    // --- what it saw ---

    pub fn stats(&self) -> FakeStats {
        self.shared.lock().stats.clone()
    }

    pub fn reset_stats(&self) {
        self.shared.lock().stats = FakeStats::default();
    }

    // --- webhooks ---

    pub fn set_webhook_target(&self, url: &str, secret: &str) {
        self.shared.lock().webhook = Some(WebhookTarget { url: url.to_string(), secret: secret.to_string() });
    }

    /// POSTs `payload` (serialized once; those exact bytes are signed) with
    /// a new GUID; returns (HTTP status, GUID). Transport failures are
    /// recorded as failed deliveries and returned as `Err`.
    pub async fn deliver(&self, event: &str, payload: &Value) -> anyhow::Result<(u16, String)> {
        let body = bytes::Bytes::from(serde_json::to_vec(payload)?);
        self.deliver_raw(event, body).await
    }

    /// Same with raw bytes (corpus files sent byte-for-byte).
    pub async fn deliver_raw(&self, event: &str, body: bytes::Bytes) -> anyhow::Result<(u16, String)> {
        let guid = uuid::Uuid::new_v4().to_string();
        let attempt = deliver::Attempt { event: event.to_string(), body, guid: guid.clone(), redelivery: false };
        let status = deliver::send(&self.shared, attempt).await?;
        Ok((status, guid))
    }
}
