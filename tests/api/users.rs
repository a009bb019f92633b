//! From installation to profile, and the users API around it.

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

use crate::both_backends;
use crate::helpers::{Options, PATIENCE, TestApp, WRONG_KEY, eventually, spawn_app, spawn_app_with};
use fake_github::{FakeUser, Faults};
use ghsync::domain::UserStatus;

/// Installs the App for user `id` and waits for the first profile fetch.
async fn installed_and_synced(app: &TestApp, id: i64) {
    let since = Utc::now();
    app.install(id).await;
    app.synced_after(id, since).await;
}

async fn send_json(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.admin(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

both_backends! {
    async fn an_installation_makes_the_full_profile_visible_through_the_api(backend: Backend) {
        let app = spawn_app(backend).await;
        let since = Utc::now();
        app.github_user(5001);
        app.github.edit_user(5001, |u| {
            u.name = Some("Mona Lisa".into());
            u.bio = Some("paints".into());
            u.followers = 77;
        });
        app.send_installation("created", 5001).await;
        app.synced_after(5001, since).await;
        let (status, user) = app.get_json("/api/users/user5001").await;
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["github_id"], 5001);
        assert_eq!(user["name"], "Mona Lisa");
        assert_eq!(user["bio"], "paints");
        assert_eq!(user["followers"], 77);
        assert_eq!(user["status"], "active");
        assert_eq!(user["sync_enabled"], true);
        assert_eq!(user["installation_id"], 5001);
        assert_eq!(user["github_profile"]["login"], "user5001");
        assert_eq!(user["github_profile"]["followers"], 77);
        assert!(user["last_synced_at"].as_str().unwrap().ends_with('Z') || user["last_synced_at"].as_str().unwrap().contains("+00:00"));
        let (status, by_id) = app.get_json("/api/users/by-id/5001").await;
        assert_eq!(status, 200);
        assert_eq!(by_id["login"], "user5001");
    }

    async fn a_user_linked_without_installing_is_tracked_and_fetched_at_once(backend: Backend) {
        let app = spawn_app(backend).await;
        app.install(5002).await;
        app.user_where(5002, "the installer synced", |u| u.last_synced_at.is_some()).await;
        app.github.add_user(fake_github::FakeUser::sample(7000));
        let created = app.admin(Method::POST, "/api/users").json(&json!({"login": "user7000"})).send().await.unwrap();
        assert_eq!(created.status().as_u16(), 201);
        let body: serde_json::Value = created.json().await.unwrap();
        assert_eq!(body["github_id"], 7000);
        assert!(body["github_profile"].is_object(), "fetched right away: {body}");
        assert!(body["installation_id"].is_null());
        let again = app.admin(Method::POST, "/api/users").json(&json!({"github_id": 7000})).send().await.unwrap();
        assert_eq!(again.status().as_u16(), 200);
        let unknown = app.admin(Method::POST, "/api/users").json(&json!({"login": "nobody-here"})).send().await.unwrap();
        assert_eq!(unknown.status().as_u16(), 404);
        let bad = app.admin(Method::POST, "/api/users").json(&json!({"login": "-bad-"})).send().await.unwrap();
        assert_eq!(bad.status().as_u16(), 400);
    }

    async fn an_opted_out_user_stays_opted_out_through_a_new_installation_until_opting_back_in(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        installed_and_synced(&app, 6101).await;

        // Act: opt out.
        let (status, user) = send_json(&app, Method::PUT, "/api/users/6101/sync-enabled", Some(json!({"enabled": false}))).await;

        // Assert
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["status"], "opted_out");
        assert_eq!(user["sync_enabled"], false);

        // Act: the user installs the App again; GitHub changed their profile meanwhile.
        app.github.edit_user(6101, |u| u.bio = Some("should not be fetched".into()));
        let fetches_before = app.github.stats().rest_user_fetches;
        app.send_installation("created", 6101).await;
        app.drain_inbox().await;

        // Assert: the user's choice wins over the installation.
        let (_, user) = app.get_json("/api/users/by-id/6101").await;
        assert_eq!(user["status"], "opted_out", "{user}");
        assert_eq!(user["sync_enabled"], false);
        let (status, _) = send_json(&app, Method::POST, "/api/users/6101/sync", None).await;
        assert_eq!(status, 409, "an opted-out user is not synced");
        assert_eq!(app.github.stats().rest_user_fetches, fetches_before);
        assert_ne!(app.user(6101).await.unwrap().bio.as_deref(), Some("should not be fetched"));

        // Act: opt back in.
        let since = Utc::now();
        let (status, user) = send_json(&app, Method::PUT, "/api/users/6101/sync-enabled", Some(json!({"enabled": true}))).await;

        // Assert: active again, and caught up.
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["status"], "active");
        assert_eq!(user["sync_enabled"], true);
        let user = app.synced_after(6101, since).await;
        assert_eq!(user.bio.as_deref(), Some("should not be fetched"), "opting in fetches the profile again");
    }

    async fn a_disconnected_user_is_erased_and_a_second_disconnect_is_404(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        installed_and_synced(&app, 6102).await;
        let stored = "SELECT COUNT(*) FROM user_profiles WHERE github_id = 6102";
        assert_eq!(app.db.count(stored).await, 1, "the profile was stored");

        // Act
        let first = app.admin(Method::DELETE, "/api/users/6102").send().await.unwrap();
        let (by_id, _) = app.get_json("/api/users/by-id/6102").await;
        let (by_login, _) = app.get_json("/api/users/user6102").await;
        let (again, body) = send_json(&app, Method::DELETE, "/api/users/6102", None).await;

        // Assert
        assert_eq!(first.status().as_u16(), 204);
        assert_eq!(by_id, 404);
        assert_eq!(by_login, 404);
        assert_eq!(again, 404);
        assert!(body["error"].is_string(), "{body}");
        assert!(app.user(6102).await.is_none(), "the stored profile is gone");
        assert_eq!(app.db.count(stored).await, 0, "the REST object kept apart is gone too");
    }

    async fn sync_now_fetches_a_changed_profile_and_reports_a_removed_user_as_gone(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        installed_and_synced(&app, 6103).await;
        app.github.edit_user(6103, |u| {
            u.name = Some("Renamed Person".into());
            u.company = Some("@acme".into());
            u.followers = 4321;
        });

        // Act
        let (status, user) = send_json(&app, Method::POST, "/api/users/6103/sync", None).await;

        // Assert
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["name"], "Renamed Person");
        assert_eq!(user["company"], "@acme");
        assert_eq!(user["followers"], 4321);
        assert_eq!(user["github_profile"]["followers"], 4321);
        assert_eq!(user["status"], "active");

        // Act: the account is deleted on GitHub.
        app.github.remove_user(6103);
        let (status, user) = send_json(&app, Method::POST, "/api/users/6103/sync", None).await;

        // Assert
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["status"], "gone");
        assert_eq!(app.user(6103).await.unwrap().status, UserStatus::Gone);
    }

    async fn an_expiring_installation_token_is_refreshed_before_it_is_used_expired(backend: Backend) {
        // Arrange: tokens live 4 seconds.
        let app = spawn_app(backend).await;
        app.github.set_faults(Faults { token_lifetime: Duration::from_secs(4), ..Faults::default() });
        installed_and_synced(&app, 6104).await;

        // Act: keep syncing until a second token had to be minted.
        eventually("a second installation token", PATIENCE, || async {
            let (status, user) = send_json(&app, Method::POST, "/api/users/6104/sync", None).await;
            assert_eq!(status, 200, "{user}");
            (app.github.stats().tokens_minted >= 2).then_some(())
        })
        .await;

        // Assert
        let stats = app.github.stats();
        assert_eq!(stats.on_expired, 0, "no request was sent with an expired token");
        assert!(stats.rest_user_fetches >= 2);
    }

    async fn with_the_wrong_app_key_webhooks_are_accepted_but_nothing_is_fetched(backend: Backend) {
        // Arrange
        let app = spawn_app_with(backend, Options { key: WRONG_KEY, ..Options::default() }).await;

        // Act: the webhook is stored (202 is asserted by `install`), the fetch cannot authenticate.
        app.install(6105).await;
        app.drain_inbox().await;
        let github = app.github.clone();
        eventually("GitHub to reject the App JWT", PATIENCE, || {
            let github = github.clone();
            async move { (github.stats().jwt_rejected > 0).then_some(()) }
        })
        .await;
        let user = app.user_where(6105, "the failed fetch recorded", |u| u.last_error.is_some()).await;

        // Assert
        assert!(user.last_synced_at.is_none(), "the profile was never fetched");
        assert!(user.github_profile.is_none());
        assert_eq!(app.github.stats().rest_user_fetches, 0);
        app.github.add_user(FakeUser::sample(7105));
        let (status, body) = send_json(&app, Method::POST, "/api/users", Some(json!({"login": "user7105"}))).await;
        assert!((500..600).contains(&status), "tracking needs GitHub: {status} {body}");
        assert!(body["error"].is_string(), "{body}");
        assert!(app.user(7105).await.is_none(), "nothing tracked without a profile");
    }
}
