//! From installation to profile, and the users API around it.

use chrono::Utc;
use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

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
        app.github.add_user(ghsync::fake_github::FakeUser::sample(7000));
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
}
