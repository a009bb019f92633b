//! Installation tokens: one cache slot per installation, each behind its own
//! async lock. Holding the slot's lock while minting makes concurrent callers
//! share one refresh, and one slow mint never blocks other installations.

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::InstallationId;

/// Refresh this long before expiry (crates.io's REFRESH_MARGIN)…
const REFRESH_MARGIN: Duration = Duration::minutes(5);

/// An installation access token; opaque and of any length (GitHub's new
/// stateless tokens are ~500 characters).
#[derive(Clone)]
pub struct InstallationToken {
    pub secret: SecretString,
    pub expires_at: DateTime<Utc>,
    pub minted_at: DateTime<Utc>,
}

impl std::fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InstallationToken {{ expires_at: {} }}", self.expires_at)
    }
}

impl InstallationToken {
    /// …or a quarter of the token's life, if that is shorter (short-lived tokens).
    pub fn refresh_margin(&self) -> Duration {
        let life = self.expires_at - self.minted_at;
        REFRESH_MARGIN.min(life / 4)
    }

    /// Usable now, with the margin to spare.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        now + self.refresh_margin() < self.expires_at
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<InstallationToken>>>;

/// New slots look for dead ones to drop at most this often.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<InstallationId, Slot>>,
    swept: Mutex<Option<std::time::Instant>>,
}

/// A slot is forgotten when nobody holds it (no caller minting or waiting)
/// and its token is gone or expired: tokens live an hour, so this is the
/// governor's rule (idle > 1 h) too, and memory follows the installations in use.
fn evictable(slot: &Slot, now: DateTime<Utc>) -> bool {
    Arc::strong_count(slot) == 1 && slot.try_lock().is_ok_and(|t| t.as_ref().is_none_or(|t| t.expires_at <= now))
}

/// Drops the evictable slots; returns how many.
fn sweep(slots: &mut HashMap<InstallationId, Slot>, now: DateTime<Utc>) -> usize {
    let before = slots.len();
    slots.retain(|_, slot| !evictable(slot, now));
    before - slots.len()
}

impl TokenCache {
    pub fn slot(&self, id: InstallationId) -> Slot {
        let mut slots = self.slots.lock().expect("token cache poisoned");
        if !slots.contains_key(&id) {
            let mut swept = self.swept.lock().expect("token cache poisoned");
            if swept.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
                *swept = Some(std::time::Instant::now());
                sweep(&mut slots, Utc::now());
            }
        }
        slots.entry(id).or_default().clone()
    }

    #[cfg(test)]
    fn evict_expired(&self, now: DateTime<Utc>) -> usize {
        sweep(&mut self.slots.lock().expect("token cache poisoned"), now)
    }

    /// A fresh token is cached for this installation (no mint needed to use it).
    pub fn has_fresh(&self, id: InstallationId, now: DateTime<Utc>) -> bool {
        let slot = self.slots.lock().expect("token cache poisoned").get(&id).cloned();
        slot.and_then(|s| s.try_lock().ok().map(|t| t.as_ref().is_some_and(|t| t.is_fresh(now)))).unwrap_or(false)
    }

    /// Forgets a token GitHub refused.
    pub async fn invalidate(&self, id: InstallationId) {
        *self.slot(id).lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> InstallationId {
        InstallationId::new(n).unwrap()
    }

    fn token(life_secs: i64, now: DateTime<Utc>) -> InstallationToken {
        InstallationToken {
            secret: SecretString::from("ghs_x".to_owned()),
            expires_at: now + Duration::seconds(life_secs),
            minted_at: now,
        }
    }

    #[test]
    fn an_hour_token_is_refreshed_five_minutes_early() {
        let now = Utc::now();
        let t = token(3600, now);
        assert_eq!(t.refresh_margin(), Duration::minutes(5));
        assert!(t.is_fresh(now + Duration::minutes(54)));
        assert!(!t.is_fresh(now + Duration::minutes(56)));
    }

    #[test]
    fn a_short_token_is_refreshed_at_three_quarters_of_its_life() {
        let now = Utc::now();
        let t = token(8, now);
        assert_eq!(t.refresh_margin(), Duration::seconds(2));
        assert!(t.is_fresh(now + Duration::seconds(5)));
        assert!(!t.is_fresh(now + Duration::seconds(6)));
    }

    #[tokio::test]
    async fn expired_and_empty_slots_nobody_holds_are_forgotten() {
        let cache = TokenCache::default();
        let now = Utc::now();
        let (live, dead, empty, held) = (id(1), id(2), id(3), id(4));
        *cache.slot(live).lock().await = Some(token(3600, now));
        *cache.slot(dead).lock().await = Some(token(-1, now));
        cache.slot(empty);
        let holding = cache.slot(held);
        assert_eq!(cache.evict_expired(now), 2, "the expired and the empty slot go");
        assert!(cache.has_fresh(live, now), "a live token stays");
        assert!(cache.slots.lock().unwrap().contains_key(&held), "a slot someone holds stays");
        drop(holding);
    }

    #[test]
    fn the_secret_never_reaches_debug_output() {
        assert!(!format!("{:?}", token(60, Utc::now())).contains("ghs_x"));
    }
}
