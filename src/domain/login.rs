//! GitHub logins. Strict when a person types one, lenient for what GitHub
//! itself sends (App senders look like `name[bot]`). Compared case-insensitively.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a login typed into our API was refused; the message goes straight into a 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoginError {
    #[error("login is empty")]
    Empty,
    #[error("login is longer than 39 characters")]
    TooLong,
    #[error("login may only hold letters, digits and single hyphens, not at either end")]
    BadCharacters,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Login(String);

impl Login {
    /// GitHub's documented limit for user names.
    const MAX_LEN: usize = 39;

    /// For logins typed by a person (`POST /api/users`, `GET /api/users/{login}`).
    pub fn parse(value: &str) -> Result<Self, LoginError> {
        if value.is_empty() {
            return Err(LoginError::Empty);
        }
        if value.len() > Self::MAX_LEN {
            return Err(LoginError::TooLong);
        }
        let ok = value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !value.starts_with('-')
            && !value.ends_with('-')
            && !value.contains("--");
        if !ok {
            return Err(LoginError::BadCharacters);
        }
        Ok(Self(value.to_owned()))
    }

    /// For logins GitHub sent us: accepted as given, as long as there is one.
    pub fn from_github(value: &str) -> Result<Self, LoginError> {
        if value.trim().is_empty() {
            return Err(LoginError::Empty);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Login {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}
impl Eq for Login {}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_logins_follow_githubs_rules() {
        assert!(Login::parse("octocat").is_ok());
        assert!(Login::parse("mona-lisa-1").is_ok());
        assert_eq!(Login::parse(""), Err(LoginError::Empty));
        assert_eq!(Login::parse(&"a".repeat(40)), Err(LoginError::TooLong));
        for bad in ["-mona", "mona-", "mo--na", "mona lisa", "mona/../x", "dependabot[bot]"] {
            assert_eq!(Login::parse(bad), Err(LoginError::BadCharacters), "{bad}");
        }
    }

    #[test]
    fn logins_from_github_may_be_bots_and_compare_without_case() {
        assert!(Login::from_github("dependabot[bot]").is_ok());
        assert_eq!(Login::parse("OctoCat").unwrap(), Login::parse("octocat").unwrap());
    }
}
