//! GitHub accounts and our App's installations on them, as payloads and lists
//! show them: enough to track an account, not a full profile.

use std::fmt;

use super::{GitHubUserId, InstallationId, InstallationState, Login, NodeId};

/// What kind of account GitHub says it is (`type` in a simple-user). Only
/// `User` accounts are synced; the rest are remembered as GitHub named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountKind {
    User,
    Organization,
    Bot,
    /// Enterprise accounts carry a slug and no `type`.
    Enterprise,
    /// A kind GitHub may add later, kept as sent.
    Other(String),
}

impl AccountKind {
    /// Reads GitHub's `type`; an account without one is an enterprise.
    pub fn from_github(kind: Option<&str>) -> Self {
        match kind {
            None | Some("Enterprise") => Self::Enterprise,
            Some("User") => Self::User,
            Some("Organization") => Self::Organization,
            Some("Bot") => Self::Bot,
            Some(other) => Self::Other(other.to_owned()),
        }
    }

    /// GitHub's own spelling, as stored in `installations.account_type`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::User => "User",
            Self::Organization => "Organization",
            Self::Bot => "Bot",
            Self::Enterprise => "Enterprise",
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A GitHub account as a webhook payload or a list shows it (a simple-user):
/// enough to track it, not a full profile.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: GitHubUserId,
    pub login: Login,
    pub node_id: Option<NodeId>,
    pub avatar_url: Option<String>,
    pub kind: AccountKind,
    pub installation_id: Option<InstallationId>,
}

impl Account {
    pub fn is_user(&self) -> bool {
        self.kind == AccountKind::User
    }
}

/// One installation of our App, with the account it is on when GitHub said.
#[derive(Debug, Clone)]
pub struct InstallationRecord {
    pub id: InstallationId,
    pub account: Option<Account>,
    pub state: InstallationState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_kinds_keep_githubs_spelling() {
        for text in ["User", "Organization", "Bot", "Enterprise", "Mannequin"] {
            assert_eq!(AccountKind::from_github(Some(text)).as_str(), text);
        }
        assert_eq!(AccountKind::from_github(None), AccountKind::Enterprise);
        assert_eq!(AccountKind::from_github(Some("Mannequin")), AccountKind::Other("Mannequin".into()));
    }
}
