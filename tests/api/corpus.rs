//! GitHub's own example payloads (octokit/webhooks), sent byte-for-byte and
//! signed like GitHub: every one is accepted, then applied or ignored — never
//! parked as failed.

use std::path::PathBuf;

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{TestApp, spawn_app};
use fake_github::FakeUser;
use ghsync::domain::{DeliveryId, DeliveryState};

const CODERTOCAT_ID: i64 = 21031067;
const CODERTOCAT_INSTALLATION: i64 = 957387;
const INSTALLATION_CREATED: &str = "webhooks/installation/created.json";
const AUTHORIZATION_REVOKED: &str = "webhooks/github_app_authorization/revoked.json";

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// (file, `X-GitHub-Event`) for every webhook example, in the manifest's order.
fn manifest() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(corpus_dir().join("manifest.json")).expect("the corpus manifest is readable");
    let manifest: Value = serde_json::from_str(&text).expect("the manifest is JSON");
    manifest["webhooks"]
        .as_array()
        .expect("the manifest lists webhooks")
        .iter()
        .map(|entry| {
            let file = entry["file"].as_str().expect("each entry names its file").to_owned();
            let event = entry["x_github_event"].as_str().expect("each entry names its event").to_owned();
            (file, event)
        })
        .collect()
}

/// Sends one corpus file exactly as stored; asserts the 202 and returns the GUID.
async fn send(app: &TestApp, file: &str, event: &str) -> String {
    let bytes = std::fs::read(corpus_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (status, guid) = app.github.deliver_raw(event, bytes.into()).await.expect("the delivery reaches ghsync");
    assert_eq!(status, 202, "{file} ({event}) was not accepted");
    guid
}

async fn state_of(app: &TestApp, guid: &str) -> (DeliveryState, Option<String>) {
    let stored =
        app.store().delivery(&DeliveryId::parse(guid).unwrap()).await.unwrap().expect("an accepted delivery is stored");
    (stored.state, stored.last_error)
}

both_backends! {
    async fn every_corpus_payload_is_accepted_and_applied_or_ignored_never_failed(backend: Backend) {
        // Arrange: GitHub knows Codertocat and the installation the corpus names.
        let app = spawn_app(backend).await;
        let mut codertocat = FakeUser::sample(CODERTOCAT_ID);
        codertocat.login = "Codertocat".into();
        app.github.add_user(codertocat);
        app.github.add_installation(CODERTOCAT_INSTALLATION, CODERTOCAT_ID);
        let corpus = manifest();
        assert_eq!(corpus.len(), 60, "the manifest lists the 60 corpus payloads");
        for (file, _) in &corpus {
            assert!(corpus_dir().join(file).is_file(), "{file} is in the corpus");
        }

        // Act 1: the installation example alone first, so its effect can be seen before later examples change it.
        let (_, event) = corpus.iter().find(|(file, _)| file == INSTALLATION_CREATED).expect("the corpus has installation/created");
        let created_guid = send(&app, INSTALLATION_CREATED, event).await;
        app.drain_inbox().await;

        // Assert 1: Codertocat is tracked, active, and fetched with that installation's token.
        assert_eq!(state_of(&app, &created_guid).await.0, DeliveryState::Done);
        let user = app.user_where(CODERTOCAT_ID, "Codertocat's profile fetched", |u| u.last_synced_at.is_some()).await;
        assert_eq!(user.login.as_ref().map(|l| l.as_str()), Some("Codertocat"));
        assert_eq!(user.status.as_str(), "active");
        assert_eq!(user.installation_id.map(|i| i.get()), Some(CODERTOCAT_INSTALLATION));
        assert!(user.sync_enabled);
        assert!(user.github_profile.is_some(), "the full REST object is stored");

        // Act 2: every other example, in the manifest's order.
        let mut sent = vec![(INSTALLATION_CREATED.to_owned(), created_guid)];
        for (file, event) in corpus.iter().filter(|(file, _)| file != INSTALLATION_CREATED) {
            sent.push((file.clone(), send(&app, file, event).await));
        }
        app.drain_inbox().await;

        // Assert 2: each one is done or ignored, none parked.
        for (file, guid) in &sent {
            let (state, note) = state_of(&app, guid).await;
            assert!(
                matches!(state, DeliveryState::Done | DeliveryState::Ignored),
                "{file}: stored as {state:?} ({note:?})"
            );
        }
        assert_eq!(sent.len(), 60);
        let stats = app.store().inbox_stats().await.unwrap();
        assert_eq!(stats.failed, 0, "no corpus payload is parked as failed");
        assert_eq!(stats.pending, 0);

        // Assert 3: the revocation (by octocat, whom we never tracked) was applied and broke nothing.
        let revoked_guid = &sent.iter().find(|(file, _)| file == AUTHORIZATION_REVOKED).expect("sent").1;
        assert_eq!(state_of(&app, revoked_guid).await.0, DeliveryState::Done);
        assert!(app.user(1).await.is_none(), "a revocation does not start tracking its sender");
        for path in ["/healthz", "/readyz"] {
            let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{path} after the corpus");
        }
        let (status, health) = app.get_json("/admin/health").await;
        assert_eq!(status, 200);
        assert_eq!(health["inbox"]["failed"], 0, "{health}");
    }
}
