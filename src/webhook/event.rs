//! The few events ghsync acts on, read from the raw JSON we stored. octocrab's
//! webhook models fail the whole parse on an action they don't know, so we
//! read only the fields we need and call everything else "activity" or "ignored".
//!
//! Those fields are cut out of the body once, at ingest (`read_body`), and
//! stored beside it as its digest: the inbox worker parses the digest (~200
//! bytes) instead of reading the body back (~7 KB) and parsing it again.

use serde::{Deserialize, Serialize};

use crate::domain::{Account, EventName, Ignore, InstallationId, InstallationRecord, InstallationState, not_synced};
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

/// Every field `parse_event` reads, and no other: serialized, it is a body's
/// digest, which `parse_event` reads exactly as it reads the body (absent
/// fields stay absent).
#[derive(Deserialize, Serialize)]
struct Envelope {
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    installation: Option<InstallationWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender: Option<AccountWireRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<AccountWireRef>,
}

#[derive(Deserialize, Serialize)]
struct InstallationWire {
    id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<AccountWireRef>,
}

/// What ingest reads from a verified body.
pub struct BodyRead {
    /// `action`, when it is a string.
    pub action: Option<String>,
    /// The body cut down to what `parse_event` reads. `None` for a body that
    /// `parse_event` will refuse (a field of the wrong type), which the worker
    /// then reads whole, to park it with the error it gives, and for a digest
    /// over `MAX_DIGEST`.
    pub digest: Option<String>,
    /// The digest's fields, read once, for `ignore` (none without a digest).
    envelope: Option<Envelope>,
}

impl BodyRead {
    /// Whether the worker would only ignore this delivery, as it would read
    /// it from the digest: an event it does not act on, or activity (ignored
    /// unless the sender is a user we sync, which the insert asks). `None`
    /// for anything else, and for a body stored without a digest.
    pub fn ignore(&mut self, event: &EventName) -> Option<Ignore> {
        match interpret(event, self.envelope.take()?) {
            Ok(Event::Activity { sender }) => {
                Some(Ignore { note: not_synced(&sender), unless_synced: Some(sender.id) })
            }
            Ok(Event::Ignored(why)) => Some(Ignore { note: why, unless_synced: None }),
            _ => None,
        }
    }
}

/// The largest digest kept (the corpus's are all under 1 KB). The row that
/// holds it is rewritten by each claim and settlement; a larger one (a signed
/// body with a huge login, say) is left out, and the worker reads the body.
const MAX_DIGEST: usize = 4096;

/// Reads a webhook body at ingest, in one pass over it for a well-formed one.
/// Any JSON object is accepted (what it means is the worker's to find); an
/// error means it is not one. The caller checks it starts with `{`.
pub fn read_body(body: &[u8]) -> Result<BodyRead, serde_json::Error> {
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body) {
        let digest = serde_json::to_string(&envelope).ok().filter(|d| d.len() <= MAX_DIGEST);
        let action = envelope.action.clone();
        let envelope = digest.is_some().then_some(envelope);
        return Ok(BodyRead { action, digest, envelope });
    }
    // Not the shape `parse_event` wants (say, an action that is a number), yet maybe an object.
    #[derive(Deserialize)]
    struct Top {
        action: Option<serde_json::Value>,
    }
    let top: Top = serde_json::from_slice(body)?;
    Ok(BodyRead { action: top.action.and_then(|a| a.as_str().map(str::to_owned)), digest: None, envelope: None })
}

pub fn parse_event(event: &EventName, payload: &str) -> Result<Event, EventError> {
    let envelope: Envelope =
        serde_json::from_str(payload).map_err(|e| EventError { event: event.to_string(), problem: e.to_string() })?;
    interpret(event, envelope)
}

/// The event an envelope is, by the event's name.
fn interpret(event: &EventName, envelope: Envelope) -> Result<Event, EventError> {
    let fail = |problem: &str| EventError { event: event.to_string(), problem: problem.to_owned() };
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
    fn every_corpus_body_reads_the_same_from_its_digest() {
        let root = format!("{}/tests/fixtures/corpus/webhooks", env!("CARGO_MANIFEST_DIR"));
        let mut read = 0;
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap().path();
            let name = event(dir.file_name().unwrap().to_str().unwrap());
            for file in std::fs::read_dir(&dir).unwrap() {
                let body = std::fs::read_to_string(file.unwrap().path()).unwrap();
                let digest = read_body(body.as_bytes()).unwrap().digest.expect("GitHub's bodies have a digest");
                assert_eq!(
                    format!("{:?}", parse_event(&name, &digest)),
                    format!("{:?}", parse_event(&name, &body)),
                    "{name}: {digest}"
                );
                assert!(digest.len() < 1000, "{name}: the digest is {} bytes", digest.len());
                read += 1;
            }
        }
        assert!(read > 30, "read {read} bodies");
        let digest = read_body(corpus("star/created.json").as_bytes()).unwrap().digest.unwrap();
        assert!(digest.len() < 300, "a star's digest is {} bytes: {digest}", digest.len());
    }

    #[test]
    fn a_body_of_another_shape_or_a_huge_digest_is_stored_without_one() {
        let huge =
            format!(r#"{{"action":"created","sender":{{"id":1,"login":"{}","type":"User"}}}}"#, "a".repeat(5000));
        for body in [
            r#"{"action":5,"sender":{"id":1,"login":"a","type":"User"}}"#,
            r#"{"action":"created","sender":"a"}"#,
            r#"{"action":"created","sender":{"id":1},"sender":{"id":2}}"#,
            &huge,
        ] {
            let read = read_body(body.as_bytes()).unwrap();
            assert_eq!(read.digest, None, "{body}");
        }
        assert_eq!(read_body(huge.as_bytes()).unwrap().action.as_deref(), Some("created"));
        assert_eq!(read_body(br#"{"action":"created","x":[1,2]}"#).unwrap().action.as_deref(), Some("created"));
        assert_eq!(read_body(br#"{"action":{"odd":true}}"#).unwrap().action, None);
        assert!(read_body(br#"{"action":"created""#).is_err(), "not JSON");
        assert!(read_body(br#"{"action":"a","action":"b"}"#).is_err(), "a key twice, as before digests");
    }

    #[test]
    fn a_known_event_without_its_fields_is_an_error() {
        assert!(parse_event(&event("installation"), r#"{"action":"created"}"#).is_err());
    }
}
