//! Numeric and opaque identifiers. GitHub's numeric user id is the key
//! everywhere: logins change, ids don't.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier taken from outside was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("{0} is missing or empty")]
    Empty(&'static str),
    #[error("{0} is longer than {1} characters")]
    TooLong(&'static str, usize),
    #[error("{0} holds characters other than printable ASCII")]
    NotAscii(&'static str),
    #[error("{0} must be a positive integer")]
    NotPositive(&'static str),
}

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// Accepts only positive ids: GitHub never hands out zero or negatives.
            pub fn new(value: i64) -> Result<Self, IdError> {
                if value > 0 { Ok(Self(value)) } else { Err(IdError::NotPositive($what)) }
            }
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

numeric_id!(
    /// GitHub's durable numeric account id (`id` in REST, `databaseId` in GraphQL).
    GitHubUserId, "github_id"
);
numeric_id!(
    /// A GitHub App installation's numeric id.
    InstallationId, "installation_id"
);
numeric_id!(
    /// A reconcile pass, as numbered by our own database.
    RunId, "run_id"
);

/// GraphQL global node id (`node_id` in REST). Opaque: the legacy and the new
/// formats differ, so it is never parsed, only carried.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        if value.is_empty() {
            return Err(IdError::Empty("node_id"));
        }
        Ok(Self(value))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn header_token(value: &str, what: &'static str, max: usize) -> Result<String, IdError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(IdError::Empty(what));
    }
    if value.len() > max {
        return Err(IdError::TooLong(what, max));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(IdError::NotAscii(what));
    }
    Ok(value.to_owned())
}

/// `X-GitHub-Delivery`: the GUID GitHub gives each event, reused on redelivery,
/// hence our deduplication key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(String);

impl DeliveryId {
    /// GUIDs are 36 characters; we allow some slack for other senders.
    const MAX_LEN: usize = 100;
    pub fn parse(value: &str) -> Result<Self, IdError> {
        header_token(value, "X-GitHub-Delivery", Self::MAX_LEN).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `X-GitHub-Event`: the event name (`installation`, `push`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventName(String);

impl EventName {
    const MAX_LEN: usize = 100;
    pub fn parse(value: &str) -> Result<Self, IdError> {
        header_token(value, "X-GitHub-Event", Self::MAX_LEN).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_must_be_positive() {
        assert!(GitHubUserId::new(0).is_err());
        assert!(InstallationId::new(-3).is_err());
        assert_eq!(GitHubUserId::new(583231).unwrap().get(), 583231);
    }

    #[test]
    fn delivery_ids_are_trimmed_bounded_ascii() {
        assert_eq!(
            DeliveryId::parse(" 72d3162e-cc78-11e3-81ab-4c9367dc0958 ").unwrap().as_str(),
            "72d3162e-cc78-11e3-81ab-4c9367dc0958"
        );
        assert_eq!(DeliveryId::parse(""), Err(IdError::Empty("X-GitHub-Delivery")));
        assert!(DeliveryId::parse(&"a".repeat(101)).is_err());
        assert!(DeliveryId::parse("a b").is_err());
        assert!(EventName::parse("pushé").is_err());
    }
}
