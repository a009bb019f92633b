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

#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<InstallationId, Slot>>,
}

impl TokenCache {
    pub fn slot(&self, id: InstallationId) -> Slot {
        self.slots.lock().expect("token cache poisoned").entry(id).or_default().clone()
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

    #[test]
    fn the_secret_never_reaches_debug_output() {
        assert!(!format!("{:?}", token(60, Utc::now())).contains("ghs_x"));
    }
}
