//! The inbox worker, driven by real webhooks from the fake GitHub: what each
//! event does to a tracked user, debouncing, ignoring, parking, and dedup.

use chrono::Utc;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{PATIENCE, SECRET, TestApp, eventually, spawn_app};
use fake_github::sign_webhook;
use fake_github::{FakeUser, payloads};
use ghsync::domain::{DeliveryId, DeliveryState, UserStatus};

/// Installs the App for user `id` and waits for the first profile fetch.
async fn installed_and_synced(app: &TestApp, id: i64) -> FakeUser {
    let since = Utc::now();
    let user = app.install(id).await;
    app.synced_after(id, since).await;
    user
}

async fn delivery_state(app: &TestApp, guid: &str) -> (DeliveryState, i32) {
    let stored =
        app.store().delivery(&DeliveryId::parse(guid).unwrap()).await.unwrap().expect("the delivery is stored");
    (stored.state, stored.attempts)
}

/// POSTs a signed delivery with a GUID of our choosing, as GitHub's redelivery does.
async fn post_signed(app: &TestApp, event: &str, guid: &str, body: &[u8]) -> u16 {
    app.client
        .post(format!("{}/webhooks/github", app.address))
        .header("content-type", "application/json")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", guid)
        .header("X-Hub-Signature-256", sign_webhook(SECRET, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

both_backends! {
    async fn a_renamed_account_is_found_under_its_new_login_and_no_longer_under_the_old_one(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        installed_and_synced(&app, 6001).await;
        app.github.edit_user(6001, |u| u.login = "mona-renamed".into());
        let renamed = app.github.user(6001).unwrap();

        // Act
        app.deliver("installation_target", &payloads::installation_target_renamed(6001, &renamed, "user6001")).await;
        app.drain_inbox().await;

        // Assert
        let (status, user) = app.get_json("/api/users/mona-renamed").await;
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["github_id"], 6001);
        assert_eq!(user["login"], "mona-renamed");
        let (status, old) = app.get_json("/api/users/user6001").await;
        assert_eq!(status, 404, "the old login no longer names anyone: {old}");
        assert!(old["error"].is_string());
    }

    async fn suspend_unsuspend_and_uninstall_move_the_user_through_their_statuses(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        installed_and_synced(&app, 6002).await;

        // Act + Assert: suspend.
        app.github.set_installation_suspended(6002, true);
        app.send_installation("suspend", 6002).await;
        app.drain_inbox().await;
        assert_eq!(app.user(6002).await.unwrap().status, UserStatus::Suspended);

        // Act + Assert: unsuspend makes the user active and fetches what changed meanwhile.
        app.github.set_installation_suspended(6002, false);
        app.github.edit_user(6002, |u| u.bio = Some("back from suspension".into()));
        let since = Utc::now();
        app.send_installation("unsuspend", 6002).await;
        app.drain_inbox().await;
        let user = app.synced_after(6002, since).await;
        assert_eq!(user.status, UserStatus::Active);
        assert_eq!(user.bio.as_deref(), Some("back from suspension"), "refetched after unsuspend");

        // Act + Assert: uninstall.
        app.send_installation("deleted", 6002).await;
        app.drain_inbox().await;
        let user = app.user(6002).await.unwrap();
        assert_eq!(user.status, UserStatus::Uninstalled);
        let (status, body) = app.get_json("/api/users/by-id/6002").await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "uninstalled");
    }

    async fn a_revoked_authorization_marks_the_user_revoked_and_stops_syncing(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        let user = installed_and_synced(&app, 6003).await;

        // Act
        app.deliver("github_app_authorization", &payloads::github_app_authorization_revoked(&user)).await;
        app.drain_inbox().await;

        // Assert
        assert_eq!(app.user(6003).await.unwrap().status, UserStatus::Revoked);
        let fetches_before = app.github.stats().rest_user_fetches;
        let response = app.admin(Method::POST, "/api/users/6003/sync").send().await.unwrap();
        assert_eq!(response.status().as_u16(), 409);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
        assert_eq!(app.github.stats().rest_user_fetches, fetches_before, "a revoked user is not fetched");
        assert_eq!(app.user(6003).await.unwrap().status, UserStatus::Revoked);
    }

    async fn a_burst_of_activity_by_one_user_becomes_one_refresh(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        let user = installed_and_synced(&app, 6004).await;
        app.github.edit_user(6004, |u| u.name = Some("Busy Bee".into()));
        let fetches_before = app.github.stats().rest_user_fetches;
        let event = payloads::simple_event_with_sender(&user);

        // Act: 30 star events at once.
        let guids = join_all((0..30).map(|_| app.deliver("star", &event))).await;

        // Assert: the user is refreshed...
        app.drain_inbox().await;
        app.user_where(6004, "the refresh after the burst", |u| u.name.as_deref() == Some("Busy Bee")).await;
        // ...and nothing more is waiting to be fetched, so the count below is final.
        let store = app.store().clone();
        eventually("no user left marked due", PATIENCE, || {
            let store = store.clone();
            async move { store.next_marked_due().await.ok()?.is_none().then_some(()) }
        })
        .await;
        let fetches = app.github.stats().rest_user_fetches - fetches_before;
        // The 30 are applied long before the user's 10 s minimum gap is over, so the
        // debounce folds them all into one due time: one fetch.
        assert_eq!(fetches, 1, "30 events cost {fetches} REST fetches");
        for guid in &guids {
            assert_eq!(delivery_state(&app, guid).await.0, DeliveryState::Done);
        }
    }

    async fn an_event_from_an_untracked_sender_and_an_unknown_event_are_stored_and_ignored(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        let stranger = FakeUser::sample(6090);
        app.github.add_user(stranger.clone());

        // Act
        let from_stranger = app.deliver("star", &payloads::simple_event_with_sender(&stranger)).await;
        let unknown = app.deliver("brand_new_event", &json!({"action": "happened", "thing": {"id": 1}})).await;

        // Assert: both went in settled, with their answer: no worker claimed either (0 attempts).
        assert_eq!(delivery_state(&app, &from_stranger).await, (DeliveryState::Ignored, 0));
        assert_eq!(delivery_state(&app, &unknown).await, (DeliveryState::Ignored, 0));
        let note = |guid: &str| {
            let store = app.store().clone();
            let id = DeliveryId::parse(guid).unwrap();
            async move { store.delivery(&id).await.unwrap().unwrap().last_error.unwrap_or_default() }
        };
        assert_eq!(note(&from_stranger).await, format!("sender {} is not a user we sync", stranger.login));
        assert_eq!(note(&unknown).await, "no sender", "the worker's own words");
        assert!(app.user(6090).await.is_none(), "activity does not start tracking anyone");
        assert_eq!(app.github.stats().rest_user_fetches, 0);
        // Their bodies are kept; the digest, which only the worker reads, is not.
        assert_eq!(app.db.count("SELECT COUNT(*) FROM webhook_payloads").await, 2);
        assert_eq!(app.db.count("SELECT COUNT(*) FROM webhook_deliveries WHERE digest IS NOT NULL").await, 0);
        let stats = app.store().inbox_stats().await.unwrap();
        assert_eq!((stats.pending, stats.failed), (0, 0));
    }

    async fn activity_by_a_user_we_sync_waits_for_the_worker_with_its_digest(backend: Backend) {
        // Arrange: a synced user, and a stranger who shares nothing with them.
        let app = spawn_app(backend).await;
        let user = installed_and_synced(&app, 6092).await;
        let stranger = FakeUser::sample(6093);
        app.github.add_user(stranger.clone());
        app.github.edit_user(6092, |u| u.name = Some("Starred Something".into()));

        // Act
        let by_user = app.deliver("star", &payloads::simple_event_with_sender(&user)).await;
        let by_stranger = app.deliver("star", &payloads::simple_event_with_sender(&stranger)).await;
        app.drain_inbox().await;

        // Assert: the user's star went in pending, with its digest, and the worker applied it.
        assert_eq!(delivery_state(&app, &by_user).await, (DeliveryState::Done, 1));
        assert_eq!(delivery_state(&app, &by_stranger).await, (DeliveryState::Ignored, 0));
        app.user_where(6092, "the refresh after the star", |u| u.name.as_deref() == Some("Starred Something")).await;
        let digests = "SELECT COUNT(*) FROM webhook_deliveries WHERE digest IS NOT NULL AND length(digest) < 300";
        assert_eq!(app.db.count(digests).await, 1, "the user's star only");
    }

    async fn a_broken_installation_event_is_parked_as_failed_and_health_says_degraded(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        let sender = FakeUser::sample(6091);
        let broken = json!({"action": "created", "sender": payloads::simple_user(&sender)});

        // Act: correctly signed, but without the `installation` object GitHub documents.
        let guid = app.deliver("installation", &broken).await;
        app.drain_inbox().await;

        // Assert
        let stored = app.store().delivery(&DeliveryId::parse(&guid).unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.state, DeliveryState::Failed);
        assert!(stored.last_error.is_some_and(|e| e.contains("installation")), "the reason is kept");
        let (status, health) = app.get_json("/admin/health").await;
        assert_eq!(status, 200);
        assert_eq!(health["inbox"]["failed"], 1, "{health}");
        assert_eq!(health["status"], "degraded", "{health}");
        assert!(app.user(6091).await.is_none());
    }

    async fn a_redelivered_installation_event_is_answered_200_and_not_applied_again(backend: Backend) {
        // Arrange: an installed user, and a suspend delivery with a GUID of our own.
        let app = spawn_app(backend).await;
        let user = installed_and_synced(&app, 6005).await;
        let guid = uuid::Uuid::new_v4().to_string();
        let suspend = payloads::installation_event("suspend", &app.github.installation_payload(6005), &user);
        let body = serde_json::to_vec(&suspend).unwrap();
        assert_eq!(post_signed(&app, "installation", &guid, &body).await, 202);
        app.drain_inbox().await;
        assert_eq!(app.user(6005).await.unwrap().status, UserStatus::Suspended);
        // The user is unsuspended since: applying the old suspend again would be visible.
        let since = Utc::now();
        app.send_installation("unsuspend", 6005).await;
        app.drain_inbox().await;
        app.synced_after(6005, since).await;
        let before = app.user(6005).await.unwrap();
        let fetches_before = app.github.stats().rest_user_fetches;

        // Act: GitHub redelivers the same suspend (same GUID, same body).
        let status = post_signed(&app, "installation", &guid, &body).await;
        app.drain_inbox().await;

        // Assert
        assert_eq!(status, 200, "an already stored GUID is answered 200");
        let after = app.user(6005).await.unwrap();
        assert_eq!(after.status, UserStatus::Active, "the redelivered suspend changed nothing");
        assert_eq!(after.last_synced_at, before.last_synced_at);
        assert_eq!(delivery_state(&app, &guid).await, (DeliveryState::Done, 1), "applied once");
        assert_eq!(app.github.stats().rest_user_fetches, fetches_before);
    }
}
