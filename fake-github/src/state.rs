//! The fake's shared state: the world (users, installations, tokens), limit
//! buckets, counters and recorded webhook deliveries, all behind one std
//! `Mutex` that is never held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use actix_web::dev::ServerHandle;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;

use crate::faults::{Bucket, FakeStats, Faults, Resource};
use crate::user::FakeUser;

/// An installation of the App on a user account.
#[derive(Clone, Debug)]
pub struct Installation {
    pub id: i64,
    pub account_user_id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub suspended_at: Option<DateTime<Utc>>,
}

/// A minted installation token. Kept after expiry so a late use can be told
/// apart from a made-up token (`on_expired` vs plain 401).
#[derive(Clone, Debug)]
pub struct TokenRec {
    pub installation_id: i64,
    pub expires_at: DateTime<Utc>,
    pub in_flight: usize,
    pub paused_from: Option<Instant>,
    pub paused_until: Option<Instant>,
}

/// One webhook delivery attempt, with what is needed to redeliver it.
#[derive(Clone, Debug)]
pub struct DeliveryRecord {
    pub id: u64,
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    pub redelivery: bool,
    pub duration: f64,
    pub status: String,
    pub status_code: u16,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository_id: Option<i64>,
    pub body: Bytes,
    pub url: String,
}

#[derive(Clone, Debug)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
}

/// Everything mutable. Methods on it live next to the feature they serve
/// (limits in `faults.rs`, world edits in `mod.rs`).
#[derive(Default)]
pub struct State {
    pub users: BTreeMap<i64, FakeUser>,
    /// node_id -> user id, so GraphQL `nodes` lookups stay O(1) with large
    /// benchmark worlds.
    pub node_index: HashMap<String, i64>,
    pub installations: BTreeMap<i64, Installation>,
    pub tokens: HashMap<String, TokenRec>,
    pub buckets: HashMap<(i64, Resource), Bucket>,
    /// When each token's requests of the last minute arrived, per resource.
    pub last_minute: HashMap<(String, Resource), std::collections::VecDeque<std::time::Instant>>,
    pub faults: Faults,
    pub stats: FakeStats,
    pub webhook: Option<WebhookTarget>,
    pub deliveries: Vec<DeliveryRecord>,
    pub next_delivery_id: u64,
}

impl State {
    pub fn count_request(&mut self, route: &str) {
        *self.stats.requests.entry(route.to_string()).or_default() += 1;
    }

    /// The account user of an installation; falls back to a sample user so
    /// payloads stay well-formed if a test removed the account user.
    pub fn account_of(&self, inst: &Installation) -> FakeUser {
        self.users.get(&inst.account_user_id).cloned().unwrap_or_else(|| FakeUser::sample(inst.account_user_id))
    }

    pub fn user_by_login(&self, login: &str) -> Option<&FakeUser> {
        self.users.values().find(|u| u.login.eq_ignore_ascii_case(login))
    }

    pub fn user_by_node_id(&self, node_id: &str) -> Option<&FakeUser> {
        self.node_index.get(node_id).and_then(|id| self.users.get(id))
    }

    /// Insert or replace a user, keeping the node index in step.
    pub fn put_user(&mut self, user: FakeUser) {
        if let Some(old) = self.users.get(&user.id) {
            self.node_index.remove(&old.node_id);
        }
        self.node_index.insert(user.node_id.clone(), user.id);
        self.users.insert(user.id, user);
    }

    pub fn drop_user(&mut self, id: i64) {
        if let Some(old) = self.users.remove(&id) {
            self.node_index.remove(&old.node_id);
        }
    }
}

/// What every handler and the `FakeGitHub` handle share.
pub struct Shared {
    pub app_id: u64,
    pub key: DecodingKey,
    pub base_url: String,
    pub hook_id: u64,
    pub http: reqwest::Client,
    pub state: Mutex<State>,
    pub handle: Mutex<Option<ServerHandle>>,
    /// `GET /app/installations` waits for a read of this; a test holding the
    /// write side stops every listing where it is (`FakeGitHub::hold_listings`).
    pub listing_gate: Arc<tokio::sync::RwLock<()>>,
}

impl Shared {
    /// Lock the state; a panic in another test thread must not poison the
    /// fake for everyone else, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub type SharedRef = Arc<Shared>;
