//! Registrations are never dropped: `POST /api/users` by id stores the user at
//! once whatever GitHub's limits say, and the user is fetched when the budget
//! allows; `POST /api/users/batch` backfills up to 1,000 at a time.

use reqwest::Method;
use serde_json::{Value, json};

use fake_github::{FakeUser, Faults};
use ghsync::domain::GitHubUserId;

use crate::both_backends;
use crate::helpers::{PATIENCE, TestApp, eventually, spawn_app};

/// Users the refresher leases at once: at most this many can still be in its hands when a pass ends.
const REFRESHER_CLAIM: usize = 16;

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value, Option<String>) {
    let response = app.admin(Method::POST, path).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap_or(Value::Null), retry_after)
}

async fn unsynced(app: &TestApp, ids: &[i64]) -> Vec<i64> {
    let mut left = Vec::new();
    for id in ids {
        let user = app.user(*id).await.unwrap_or_else(|| panic!("user {id} is stored"));
        if user.last_synced_at.is_none() {
            left.push(*id);
        }
    }
    left
}

both_backends! {
    async fn a_thousand_registrations_during_a_secondary_limit_pause_are_all_stored_and_fetched_within_two_passes(backend: Backend) {
        // Arrange: one installation, whose token GitHub pauses (403 + retry-after: 3) on every request.
        let app = spawn_app(backend).await;
        app.install(9000).await;
        app.user_where(9000, "the installer synced", |u| u.last_synced_at.is_some()).await;
        let ids: Vec<i64> = (30_001..=31_000).collect();
        for id in &ids {
            app.github.add_user(FakeUser::sample(*id));
        }
        app.github.set_faults(Faults { concurrency_cap: Some((0, 3)), ..Faults::default() });
        let (status, _, _) = post(&app, "/api/users/9000/sync", json!({})).await;
        assert_eq!(status, 503, "the token is paused");
        assert!(app.github.stats().statuses.get(&403).copied().unwrap_or(0) > 0, "GitHub answered 403 + retry-after");

        // Act: register them one after another while the pause lasts.
        for id in &ids {
            let (status, user, _) = post(&app, "/api/users", json!({ "github_id": id })).await;
            assert_eq!(status, 201, "registration of {id}: {user}");
            assert_eq!(user["github_id"], *id);
            assert!(user["last_synced_at"].is_null() && user["name"].is_null() && user["login"].is_null(), "{user}");
        }
        let (again, _, _) = post(&app, "/api/users", json!({ "github_id": 30_001 })).await;
        // A login cannot be resolved now: that, and only that, is a 503 with Retry-After.
        let (by_login, error, retry_after) = post(&app, "/api/users", json!({ "login": "user31001" })).await;

        // Assert: all stored, none lost to the pause.
        assert_eq!(again, 200, "already tracked");
        assert_eq!(by_login, 503, "{error}");
        assert!(error["error"].is_string(), "{error}");
        assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)), "503 carries Retry-After");
        assert!(app.user(31_001).await.is_none(), "an unresolved login stores nothing");
        assert_eq!(unsynced(&app, &ids).await.len(), ids.len(), "every registration is stored, none fetched yet");

        // And all are fetched within two passes once GitHub takes requests again.
        app.github.set_faults(Faults::default());
        app.run_pass().await;
        app.run_pass().await;
        let left = unsynced(&app, &ids).await;
        assert!(left.len() <= REFRESHER_CLAIM, "only users in the refresher's hands may be left: {} of them", left.len());
        eventually("the refresher's last users", PATIENCE, || async { unsynced(&app, &left).await.is_empty().then_some(()) }).await;
        let user = app.user(30_500).await.unwrap();
        assert_eq!(user.login.map(|l| l.as_str().to_owned()), Some("user30500".to_owned()));
        assert!(user.github_profile.is_some());
    }

    async fn the_batch_endpoint_tracks_ids_and_logins_and_hands_back_logins_it_cannot_resolve(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        app.install(9100).await;
        app.user_where(9100, "the installer synced", |u| u.last_synced_at.is_some()).await;
        for id in [32_001, 32_002, 32_010] {
            app.github.add_user(FakeUser::sample(id));
        }
        let batch = json!({ "users": [
            { "github_id": 32_001 }, { "github_id": 32_002 }, { "github_id": 32_001 },
            { "github_id": 9100 },
            { "login": "user32010" }, { "login": "nobody-at-all" },
        ]});

        // Act
        let (status, body, _) = post(&app, "/api/users/batch", batch).await;
        let too_many: Vec<Value> = (0..1001).map(|i| json!({ "github_id": 40_000 + i })).collect();
        let (over, over_body, _) = post(&app, "/api/users/batch", json!({ "users": too_many })).await;
        let (bad, bad_body, _) = post(&app, "/api/users/batch", json!({ "users": [{ "github_id": 40_001 }, { "login": "-bad-" }] })).await;

        // Assert
        assert_eq!(status, 202, "{body}");
        assert_eq!(body, json!({ "tracked": 3, "already_tracked": 1, "unresolved": ["nobody-at-all"] }));
        let by_login = app.user(32_010).await.expect("a resolved login is tracked");
        assert!(by_login.github_profile.is_some(), "its profile came with the lookup");
        for id in [32_001, 32_002] {
            app.user_where(id, "a registered user fetched", |u| u.github_profile.is_some()).await;
        }
        assert_eq!(over, 400, "{over_body}");
        assert!(over_body["error"].as_str().is_some_and(|e| e.contains("1000")), "{over_body}");
        assert_eq!(bad, 400, "{bad_body}");
        assert!(bad_body["error"].as_str().is_some_and(|e| e.contains("users[1]")), "{bad_body}");
        for id in [40_000, 40_001] {
            assert!(app.store().user_by_id(GitHubUserId::new(id).unwrap()).await.unwrap().is_none(), "a refused batch stores nothing");
        }
        // Sent again: everyone is known.
        let again = json!({ "users": [{ "github_id": 32_001 }, { "login": "user32010" }] });
        let (status, body, _) = post(&app, "/api/users/batch", again).await;
        assert_eq!((status, body), (202, json!({ "tracked": 0, "already_tracked": 2, "unresolved": [] })));
    }
}
