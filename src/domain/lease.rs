//! Claims on work (due users, inbox deliveries, a pass) as tokens. Each claim
//! writes a fresh random token on the rows it takes; every write that settles
//! a claimed row names it in its `WHERE`, so a process whose lease ran out and
//! was claimed by another changes nothing (a fenced write), and a renewal
//! extends exactly the rows its claim still holds.

use chrono::{DateTime, Utc};
use std::fmt;

/// One claim's token: random, so no two claims (or processes) share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseId(String);

impl LeaseId {
    /// A new, unique token.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for LeaseId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A claim to make: its token, and until when it holds unless renewed.
#[derive(Debug, Clone)]
pub struct Lease {
    pub id: LeaseId,
    pub until: DateTime<Utc>,
}

impl Lease {
    /// A new claim, held for `length` from `now`.
    pub fn new(now: DateTime<Utc>, length: chrono::Duration) -> Self {
        Self { id: LeaseId::new(), until: now + length }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claim_gets_a_token_of_its_own() {
        assert_ne!(LeaseId::new(), LeaseId::new());
    }
}
