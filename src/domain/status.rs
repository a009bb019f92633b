//! User and installation statuses, and the transitions between them. The
//! rules live here, as pure functions, so that the inbox, the reconciler and
//! the API all agree on them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a tracked user stands. Only `Active` users with sync enabled are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Suspended,
    Uninstalled,
    Revoked,
    Gone,
    OptedOut,
}

impl UserStatus {
    pub const ALL: [UserStatus; 6] =
        [Self::Active, Self::Suspended, Self::Uninstalled, Self::Revoked, Self::Gone, Self::OptedOut];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Uninstalled => "uninstalled",
            Self::Revoked => "revoked",
            Self::Gone => "gone",
            Self::OptedOut => "opted_out",
        }
    }

    /// The user's own choice to opt out outranks anything GitHub tells us:
    /// only opting back in clears it.
    fn unless_opted_out(self, next: UserStatus) -> UserStatus {
        if self == Self::OptedOut { self } else { next }
    }

    /// `installation` created or unsuspend: active again, whatever it was.
    pub fn on_installed(self) -> UserStatus {
        self.unless_opted_out(Self::Active)
    }
    /// `installation` deleted.
    pub fn on_uninstalled(self) -> UserStatus {
        self.unless_opted_out(Self::Uninstalled)
    }
    /// `installation` suspend.
    pub fn on_suspended(self) -> UserStatus {
        self.unless_opted_out(Self::Suspended)
    }
    /// `github_app_authorization` revoked.
    pub fn on_revoked(self) -> UserStatus {
        self.unless_opted_out(Self::Revoked)
    }
    /// Opting back in: the status the user's installation implies.
    pub fn on_opted_in(installation: Option<InstallationState>) -> UserStatus {
        match installation {
            None | Some(InstallationState::Active) => Self::Active,
            Some(InstallationState::Suspended) => Self::Suspended,
            Some(InstallationState::Uninstalled) => Self::Uninstalled,
        }
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UserStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| format!("unknown user status {s:?}"))
    }
}

/// Where an installation of our App stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallationState {
    Active,
    Suspended,
    Uninstalled,
}

impl InstallationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Uninstalled => "uninstalled",
        }
    }
}

impl FromStr for InstallationState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Active, Self::Suspended, Self::Uninstalled]
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown installation state {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::UserStatus::*;
    use super::*;

    #[test]
    fn an_installation_reactivates_every_status_but_an_opt_out() {
        for status in [Active, Suspended, Uninstalled, Revoked, Gone] {
            assert_eq!(status.on_installed(), Active, "{status}");
        }
        assert_eq!(OptedOut.on_installed(), OptedOut);
    }

    #[test]
    fn an_opt_out_survives_every_event() {
        assert_eq!(OptedOut.on_uninstalled(), OptedOut);
        assert_eq!(OptedOut.on_suspended(), OptedOut);
        assert_eq!(OptedOut.on_revoked(), OptedOut);
        assert_eq!(Active.on_revoked(), Revoked);
        assert_eq!(Active.on_suspended(), Suspended);
        assert_eq!(Suspended.on_uninstalled(), Uninstalled);
    }

    #[test]
    fn opting_in_follows_the_installation() {
        assert_eq!(UserStatus::on_opted_in(None), Active);
        assert_eq!(UserStatus::on_opted_in(Some(InstallationState::Suspended)), Suspended);
        assert_eq!(UserStatus::on_opted_in(Some(InstallationState::Uninstalled)), Uninstalled);
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for status in UserStatus::ALL {
            assert_eq!(status.as_str().parse::<UserStatus>().unwrap(), status);
        }
        assert!("asleep".parse::<UserStatus>().is_err());
    }
}
