//! The few events ghsync acts on, read from the raw JSON we stored. octocrab's
//! webhook models fail the whole parse on an action they don't know, so we
//! read only the fields we need and call everything else "activity" or "ignored".

use serde::Deserialize;

use crate::domain::{Account, EventName, InstallationId, InstallationRecord, InstallationState};
use crate::github::AccountWireRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallationAction {
    Created,
    Deleted,
    Suspend,
    Unsuspend,
    NewPermissionsAccepted,
}

#[derive(Debug, Clone)]
pub enum Event {
    Installation {
        action: InstallationAction,
        installation: InstallationRecord,
    },
    /// `installation_target` renamed: the login changes, the id does not.
    AccountRenamed {
        account: Account,
    },
    /// `github_app_authorization` revoked.
    AuthorizationRevoked {
        user: Account,
    },
    /// Any other event, by a sender who may be a tracked user.
    Activity {
        sender: Account,
    },
    /// Stored, understood, and deliberately not acted on.
    Ignored(String),
}

/// A payload we cannot act on; retrying will not help.
#[derive(Debug, thiserror::Error)]
#[error("{event} payload is not what GitHub documents: {problem}")]
pub struct EventError {
    event: String,
    problem: String,
}

#[derive(Deserialize)]
struct Envelope {
    action: Option<String>,
    installation: Option<InstallationWire>,
    sender: Option<AccountWireRef>,
    account: Option<AccountWireRef>,
}

#[derive(Deserialize)]
struct InstallationWire {
    id: i64,
    account: Option<AccountWireRef>,
}

pub fn parse_event(event: &EventName, payload: &str) -> Result<Event, EventError> {
    let fail = |problem: &str| EventError { event: event.to_string(), problem: problem.to_owned() };
    let envelope: Envelope = serde_json::from_str(payload).map_err(|e| fail(&e.to_string()))?;
    let action = envelope.action.as_deref().unwrap_or("");
    match event.as_str() {
        "installation" => {
            let action = match action {
                "created" => InstallationAction::Created,
                "deleted" => InstallationAction::Deleted,
                "suspend" => InstallationAction::Suspend,
                "unsuspend" => InstallationAction::Unsuspend,
                "new_permissions_accepted" => InstallationAction::NewPermissionsAccepted,
                other => return Ok(Event::Ignored(format!("installation action {other:?}"))),
            };
            let wire = envelope.installation.ok_or_else(|| fail("no installation"))?;
            let id = InstallationId::new(wire.id).map_err(|e| fail(&e.to_string()))?;
            let state = match action {
                InstallationAction::Deleted => InstallationState::Uninstalled,
                InstallationAction::Suspend => InstallationState::Suspended,
                _ => InstallationState::Active,
            };
            let account = wire.account.and_then(|a| a.into_account(Some(id)));
            Ok(Event::Installation { action, installation: InstallationRecord { id, account, state } })
        }
        "installation_target" if action == "renamed" => {
            let installation = envelope.installation.and_then(|i| InstallationId::new(i.id).ok());
            let account =
                envelope.account.and_then(|a| a.into_account(installation)).ok_or_else(|| fail("no account"))?;
            Ok(Event::AccountRenamed { account })
        }
        "github_app_authorization" if action == "revoked" => {
            let user = envelope.sender.and_then(|s| s.into_account(None)).ok_or_else(|| fail("no sender"))?;
            Ok(Event::AuthorizationRevoked { user })
        }
        _ => match envelope.sender.and_then(|s| s.into_account(None)) {
            Some(sender) if sender.is_user() => Ok(Event::Activity { sender }),
            Some(sender) => Ok(Event::Ignored(format!("sender {} is a {}, not a user", sender.login, sender.kind))),
            None => Ok(Event::Ignored("no sender".into())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> EventName {
        EventName::parse(name).unwrap()
    }

    fn corpus(path: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/fixtures/corpus/webhooks/{path}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    }

    #[test]
    fn installation_created_names_the_installation_and_its_account() {
        let Event::Installation { action, installation } =
            parse_event(&event("installation"), &corpus("installation/created.json")).unwrap()
        else {
            panic!("not an installation event");
        };
        assert_eq!(action, InstallationAction::Created);
        assert_eq!(installation.id.get(), 957387);
        assert_eq!(installation.state, InstallationState::Active);
        let account = installation.account.unwrap();
        assert_eq!(account.login.as_str(), "Codertocat");
        assert_eq!(account.id.get(), 21031067);
        assert!(account.is_user());
    }

    #[test]
    fn an_unknown_installation_action_is_ignored_not_an_error() {
        let payload =
            r#"{"action":"brand_new_action","installation":{"id":1},"sender":{"id":1,"login":"a","type":"User"}}"#;
        assert!(matches!(parse_event(&event("installation"), payload), Ok(Event::Ignored(_))));
    }

    #[test]
    fn a_renamed_account_carries_its_new_login() {
        let payload = r#"{"action":"renamed","account":{"id":5,"login":"new-name","node_id":"U_5","type":"User"},
            "changes":{"login":{"from":"old-name"}},"target_type":"User","installation":{"id":9}}"#;
        let Event::AccountRenamed { account } = parse_event(&event("installation_target"), payload).unwrap() else {
            panic!()
        };
        assert_eq!(account.login.as_str(), "new-name");
        assert_eq!(account.id.get(), 5);
    }

    #[test]
    fn organizations_and_bots_are_not_users() {
        assert!(matches!(parse_event(&event("fork"), &corpus("fork/event.json")), Ok(Event::Ignored(_))));
        assert!(matches!(
            parse_event(&event("check_suite"), &corpus("check_suite/rerequested.json")),
            Ok(Event::Ignored(_))
        ));
        assert!(matches!(parse_event(&event("star"), &corpus("star/created.json")), Ok(Event::Activity { .. })));
    }

    #[test]
    fn a_known_event_without_its_fields_is_an_error() {
        assert!(parse_event(&event("installation"), r#"{"action":"created"}"#).is_err());
    }
}
