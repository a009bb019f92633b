//! User and installation statuses, and the transitions between them. The
//! rules live here, as pure functions — one per event — so that the inbox, the
//! reconciler and the API all agree on them: the store reads what it holds,
//! asks `UserEvent::decide`, and writes what that says.

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

/// What the store holds for a user when an event arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No row, and no tombstone: we never tracked them (or they came back since).
    Untracked,
    /// No row, but a tombstone: the user disconnected (`DELETE /api/users/{id}`).
    Erased,
    Tracked(UserStatus),
}

/// Something that happened to a user, told by GitHub or by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserEvent {
    /// An installation on the user's account, as a webhook (`created`,
    /// `unsuspend`, `new_permissions_accepted`) or GitHub's list shows it.
    /// `was_active`: we already had it active, so this is a re-listing, not news.
    InstallationSeen {
        state: InstallationState,
        was_active: bool,
    },
    /// The user's installation changed state (`suspend`, `deleted`, or gone
    /// from GitHub's list).
    InstallationChanged(InstallationState),
    /// `github_app_authorization` revoked.
    Revoked,
    /// GitHub answered 404 for the user.
    NotFound,
    /// The user linked GitHub through our API without installing (`POST /api/users`).
    Linked,
    OptedOut,
    /// Opting back in, with the state of the user's installation if they have one.
    OptedIn(Option<InstallationState>),
}

/// What the store writes for one user after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing: the user is not ours to touch (untracked, erased, or already tracked).
    Ignore,
    /// The user's status becomes `status`. `due`: fetch the profile now.
    /// `forget_erasure`: the user came back, so their tombstone goes.
    To { status: UserStatus, due: bool, forget_erasure: bool },
}

impl Transition {
    fn to(status: UserStatus, due: bool) -> Self {
        Self::To { status, due, forget_erasure: false }
    }
    /// A user with no row comes (back) in: tracked from now, due at once.
    fn comes_back(status: UserStatus) -> Self {
        Self::To { status, due: true, forget_erasure: true }
    }
}

/// The user's own choice to opt out outranks anything GitHub tells us: only
/// opting back in clears it.
fn unless_opted_out(current: UserStatus, next: UserStatus) -> UserStatus {
    if current == UserStatus::OptedOut { current } else { next }
}

/// Where an installation in `state` puts a user who was `current`.
fn follow_installation(current: UserStatus, state: InstallationState) -> UserStatus {
    let next = match state {
        InstallationState::Active => UserStatus::Active,
        InstallationState::Suspended => UserStatus::Suspended,
        InstallationState::Uninstalled => UserStatus::Uninstalled,
    };
    unless_opted_out(current, next)
}

impl UserEvent {
    /// The one place that decides what an event does to a user.
    pub fn decide(self, standing: Standing) -> Transition {
        match self {
            Self::InstallationSeen { state, was_active } => installation_seen(standing, state, was_active),
            Self::InstallationChanged(state) => installation_changed(standing, state),
            Self::Revoked => {
                tracked_only(standing, |s| Transition::to(unless_opted_out(s, UserStatus::Revoked), false))
            }
            Self::NotFound => tracked_only(standing, |s| Transition::to(unless_opted_out(s, UserStatus::Gone), false)),
            Self::Linked => linked(standing),
            Self::OptedOut => tracked_only(standing, |_| Transition::to(UserStatus::OptedOut, false)),
            Self::OptedIn(installation) => tracked_only(standing, |_| opted_in(installation)),
        }
    }
}

/// Events about a user we hold a row for; the rest is none of ours.
fn tracked_only(standing: Standing, rule: impl FnOnce(UserStatus) -> Transition) -> Transition {
    match standing {
        Standing::Tracked(current) => rule(current),
        Standing::Untracked | Standing::Erased => Transition::Ignore,
    }
}

/// A (re)install is news: the user follows it and is due now. Re-listing an
/// installation we already had active is no news: a user GitHub answered 404
/// for (`gone`) or who revoked us stays so until a real (re)install, and a
/// disconnected user stays disconnected.
fn installation_seen(standing: Standing, state: InstallationState, was_active: bool) -> Transition {
    let relisted = was_active && state == InstallationState::Active;
    match standing {
        Standing::Tracked(current) if relisted => Transition::to(current, false),
        Standing::Tracked(current) => Transition::to(follow_installation(current, state), !was_active),
        Standing::Erased if was_active => Transition::Ignore,
        Standing::Untracked if was_active => Transition::to(follow_installation(UserStatus::Active, state), true),
        Standing::Untracked | Standing::Erased => {
            Transition::comes_back(follow_installation(UserStatus::Active, state))
        }
    }
}

/// Users of an installation follow it; only reactivation makes them due.
fn installation_changed(standing: Standing, state: InstallationState) -> Transition {
    tracked_only(standing, |current| {
        let next = follow_installation(current, state);
        Transition::to(next, next == UserStatus::Active && state == InstallationState::Active)
    })
}

/// Linking tracks a user we don't hold, erased or not; one we hold stays as is.
fn linked(standing: Standing) -> Transition {
    match standing {
        Standing::Tracked(_) => Transition::Ignore,
        Standing::Untracked | Standing::Erased => Transition::comes_back(UserStatus::Active),
    }
}

/// Opting back in: the status the user's installation implies, due now if that is active.
fn opted_in(installation: Option<InstallationState>) -> Transition {
    let status = follow_installation(UserStatus::Active, installation.unwrap_or(InstallationState::Active));
    Transition::to(status, status == UserStatus::Active)
}

#[cfg(test)]
mod tests {
    use super::InstallationState as Inst;
    use super::UserStatus::*;
    use super::*;

    /// Every standing, in the order of the table's columns.
    const STANDINGS: [Standing; 8] = [
        Standing::Untracked,
        Standing::Erased,
        Standing::Tracked(Active),
        Standing::Tracked(Suspended),
        Standing::Tracked(Uninstalled),
        Standing::Tracked(Revoked),
        Standing::Tracked(Gone),
        Standing::Tracked(OptedOut),
    ];

    const NO: Transition = Transition::Ignore;
    /// Becomes `s`, not due.
    fn to(s: UserStatus) -> Transition {
        Transition::To { status: s, due: false, forget_erasure: false }
    }
    /// Becomes `s`, due now.
    fn due(s: UserStatus) -> Transition {
        Transition::To { status: s, due: true, forget_erasure: false }
    }
    /// Comes (back) in as `s`, due now, tombstone gone.
    fn back(s: UserStatus) -> Transition {
        Transition::To { status: s, due: true, forget_erasure: true }
    }

    fn seen(state: Inst, was_active: bool) -> UserEvent {
        UserEvent::InstallationSeen { state, was_active }
    }

    #[test]
    fn every_event_from_every_standing() {
        use UserEvent as E;
        #[rustfmt::skip]
        let table: Vec<(UserEvent, [Transition; 8])> = vec![
            //                            untracked         erased            active          suspended       uninstalled        revoked         gone            opted out
            // Re-listing: no news. Gone and revoked stay so; an erased user stays away.
            (seen(Inst::Active, true),       [due(Active),      NO,               to(Active),     to(Suspended),  to(Uninstalled),   to(Revoked),    to(Gone),       to(OptedOut)]),
            (seen(Inst::Active, false),      [back(Active),     back(Active),     due(Active),    due(Active),    due(Active),       due(Active),    due(Active),    due(OptedOut)]),
            (seen(Inst::Suspended, true),    [due(Suspended),   NO,               to(Suspended),  to(Suspended),  to(Suspended),     to(Suspended),  to(Suspended),  to(OptedOut)]),
            (seen(Inst::Suspended, false),   [back(Suspended),  back(Suspended),  due(Suspended), due(Suspended), due(Suspended),    due(Suspended), due(Suspended), due(OptedOut)]),
            (seen(Inst::Uninstalled, true),  [due(Uninstalled), NO,               to(Uninstalled),to(Uninstalled),to(Uninstalled),   to(Uninstalled),to(Uninstalled),to(OptedOut)]),
            (seen(Inst::Uninstalled, false), [back(Uninstalled),back(Uninstalled),due(Uninstalled),due(Uninstalled),due(Uninstalled),due(Uninstalled),due(Uninstalled),due(OptedOut)]),
            (E::InstallationChanged(Inst::Active),      [NO, NO, due(Active),      due(Active),      due(Active),      due(Active),      due(Active),      to(OptedOut)]),
            (E::InstallationChanged(Inst::Suspended),   [NO, NO, to(Suspended),    to(Suspended),    to(Suspended),    to(Suspended),    to(Suspended),    to(OptedOut)]),
            (E::InstallationChanged(Inst::Uninstalled), [NO, NO, to(Uninstalled),  to(Uninstalled),  to(Uninstalled),  to(Uninstalled),  to(Uninstalled),  to(OptedOut)]),
            (E::Revoked,                                [NO, NO, to(Revoked),      to(Revoked),      to(Revoked),      to(Revoked),      to(Revoked),      to(OptedOut)]),
            (E::NotFound,                               [NO, NO, to(Gone),         to(Gone),         to(Gone),         to(Gone),         to(Gone),         to(OptedOut)]),
            (E::Linked,                 [back(Active), back(Active), NO,           NO,               NO,               NO,               NO,               NO]),
            (E::OptedOut,                               [NO, NO, to(OptedOut),     to(OptedOut),     to(OptedOut),     to(OptedOut),     to(OptedOut),     to(OptedOut)]),
            (E::OptedIn(None),                          [NO, NO, due(Active),      due(Active),      due(Active),      due(Active),      due(Active),      due(Active)]),
            (E::OptedIn(Some(Inst::Active)),            [NO, NO, due(Active),      due(Active),      due(Active),      due(Active),      due(Active),      due(Active)]),
            (E::OptedIn(Some(Inst::Suspended)),         [NO, NO, to(Suspended),    to(Suspended),    to(Suspended),    to(Suspended),    to(Suspended),    to(Suspended)]),
            (E::OptedIn(Some(Inst::Uninstalled)),       [NO, NO, to(Uninstalled),  to(Uninstalled),  to(Uninstalled),  to(Uninstalled),  to(Uninstalled),  to(Uninstalled)]),
        ];
        for (event, row) in &table {
            for (standing, expected) in STANDINGS.iter().zip(row) {
                assert_eq!(event.decide(*standing), *expected, "{event:?} on {standing:?}");
            }
        }
        // Every event value there is has a row.
        let mut events = vec![E::Revoked, E::NotFound, E::Linked, E::OptedOut, E::OptedIn(None)];
        for state in [Inst::Active, Inst::Suspended, Inst::Uninstalled] {
            events.extend([
                seen(state, true),
                seen(state, false),
                E::InstallationChanged(state),
                E::OptedIn(Some(state)),
            ]);
        }
        for event in events {
            assert!(table.iter().any(|(e, _)| *e == event), "{event:?} has no row");
        }
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for status in UserStatus::ALL {
            assert_eq!(status.as_str().parse::<UserStatus>().unwrap(), status);
        }
        assert!("asleep".parse::<UserStatus>().is_err());
    }
}
