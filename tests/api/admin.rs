//! The operator's surface: admin auth, liveness and readiness, metrics, the
//! health page's contract, and the runs API.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Options, TestApp, spawn_app, spawn_app_with};
use fake_github::{FakeUser, payloads};

/// Every `/admin` and `/api` endpoint, with a body where one is needed.
fn protected() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/admin/health", None),
        (Method::POST, "/admin/reconcile", None),
        (Method::GET, "/admin/runs", None),
        (Method::GET, "/admin/runs/1", None),
        (Method::GET, "/api/users/someone", None),
        (Method::GET, "/api/users/by-id/1", None),
        (Method::POST, "/api/users", Some(json!({"login": "someone"}))),
        (Method::POST, "/api/users/1/sync", None),
        (Method::PUT, "/api/users/1/sync-enabled", Some(json!({"enabled": false}))),
        (Method::DELETE, "/api/users/1", None),
    ]
}

fn request(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> reqwest::RequestBuilder {
    let request = app.client.request(method, format!("{}{path}", app.address));
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(format!("{}{path}", app.address)).send().await.unwrap()
}

both_backends! {
    async fn a_missing_or_wrong_bearer_token_is_401_with_a_bearer_challenge(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        app.github.add_user(FakeUser::sample(1));

        for (method, path, body) in protected() {
            for token in [None, Some("wrong-token"), Some("")] {
                // Act
                let mut call = request(&app, method.clone(), path, body.clone());
                if let Some(token) = token {
                    call = call.bearer_auth(token);
                }
                let response = call.send().await.unwrap();

                // Assert
                let what = format!("{method} {path} with token {token:?}");
                assert_eq!(response.status().as_u16(), 401, "{what}");
                let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
                assert_eq!(challenge.as_deref(), Some("Bearer"), "{what}");
                let body: Value = response.json().await.unwrap();
                assert!(body["error"].is_string(), "{what}: {body}");
            }
        }
        // Nothing was done on the caller's behalf.
        assert!(app.user(1).await.is_none());
        assert!(app.store().runs(10).await.unwrap().is_empty(), "no pass was started");
    }

    async fn without_an_admin_token_configured_every_admin_and_api_call_is_403(backend: Backend) {
        // Arrange
        let app = spawn_app_with(backend, Options { admin_token: None, ..Options::default() }).await;

        for (method, path, body) in protected() {
            for token in [None, Some(crate::helpers::ADMIN_TOKEN)] {
                // Act
                let mut call = request(&app, method.clone(), path, body.clone());
                if let Some(token) = token {
                    call = call.bearer_auth(token);
                }
                let response = call.send().await.unwrap();

                // Assert
                let what = format!("{method} {path} with token {token:?}");
                assert_eq!(response.status().as_u16(), 403, "{what}");
                let body: Value = response.json().await.unwrap();
                assert!(body["error"].is_string(), "{what}: {body}");
            }
        }
        // The unauthenticated endpoints still answer.
        assert_eq!(get(&app, "/healthz").await.status().as_u16(), 200);
        assert_eq!(get(&app, "/readyz").await.status().as_u16(), 200);
    }

    async fn liveness_readiness_and_metrics_answer_without_auth(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;
        let sender = FakeUser::sample(6201);
        app.deliver("star", &payloads::simple_event_with_sender(&sender)).await;
        app.drain_inbox().await;

        // Act
        let healthz = get(&app, "/healthz").await;
        let readyz = get(&app, "/readyz").await;
        let metrics = get(&app, "/metrics").await;

        // Assert
        assert_eq!(healthz.status().as_u16(), 200);
        assert_eq!(readyz.status().as_u16(), 200);
        assert_eq!(metrics.status().as_u16(), 200);
        let content_type = metrics.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = metrics.text().await.unwrap();
        assert!(text.contains("# TYPE ghsync_webhook_deliveries_total counter"), "{text}");
        let accepted = text
            .lines()
            .find(|l| l.starts_with("ghsync_webhook_deliveries_total{") && l.contains(r#"event="star""#) && l.contains(r#"outcome="accepted""#))
            .unwrap_or_else(|| panic!("no accepted star delivery counted:\n{text}"));
        assert!(accepted.ends_with(" 1"), "{accepted}");
        assert!(text.contains("ghsync_inbox_deliveries"), "{text}");
    }

    async fn the_health_page_has_every_field_of_the_contract(backend: Backend) {
        // Arrange: one installed, fetched user, and one finished pass.
        let app = spawn_app(backend).await;
        let since = Utc::now();
        app.install(6202).await;
        app.synced_after(6202, since).await;
        app.drain_inbox().await;
        let report = app.run_pass().await;

        // Act
        let (status, health) = app.get_json("/admin/health").await;

        // Assert
        assert_eq!(status, 200, "{health}");
        assert_eq!(health["status"], "ok", "{health}");
        assert_eq!(health["database"], "ok");
        assert_eq!(health["last_run"]["id"], report.run_id.get(), "{health}");
        assert_eq!(health["last_run"]["state"], "finished");
        let next_run_at: DateTime<Utc> = health["next_run_at"].as_str().expect("next_run_at is a time").parse().unwrap();
        assert!(next_run_at > Utc::now(), "{next_run_at}");
        assert_eq!(health["inbox"], json!({"pending": 0, "failed": 0, "oldest_pending_seconds": null}));
        let limits = health["rate_limits"].as_array().expect("rate_limits is a list");
        let core = limits
            .iter()
            .find(|l| l["installation_id"] == 6202 && l["resource"] == "core")
            .unwrap_or_else(|| panic!("no core limit for installation 6202: {health}"));
        for field in ["installation_id", "resource", "limit", "remaining", "reset_at", "paused_until"] {
            assert!(core.get(field).is_some(), "rate limit field {field} missing: {core}");
        }
        assert_eq!(core["limit"], 5000);
        assert!(core["remaining"].as_i64().unwrap() < 5000, "{core}");
        assert!(core["reset_at"].as_str().unwrap().parse::<DateTime<Utc>>().is_ok(), "{core}");
        assert!(core["paused_until"].is_null(), "{core}");
        let users = health["users"].as_object().expect("users is an object of counts");
        for status in ["active", "suspended", "uninstalled", "revoked", "gone", "opted_out"] {
            assert!(users.contains_key(status), "users.{status} missing: {health}");
        }
        assert_eq!(users["active"], 1);
        assert_eq!(users.values().map(|n| n.as_i64().unwrap()).sum::<i64>(), 1);
    }

    async fn a_run_id_that_is_not_a_number_is_400_and_an_unknown_one_is_404(backend: Backend) {
        // Arrange
        let app = spawn_app(backend).await;

        // Act
        let (bad, bad_body) = app.get_json("/admin/runs/abc").await;
        let (unknown, unknown_body) = app.get_json("/admin/runs/999").await;
        let (list, runs) = app.get_json("/admin/runs").await;

        // Assert
        assert_eq!(bad, 400, "{bad_body}");
        assert!(bad_body["error"].is_string());
        assert_eq!(unknown, 404, "{unknown_body}");
        assert!(unknown_body["error"].is_string());
        assert_eq!(list, 200);
        assert_eq!(runs["runs"], json!([]));
    }
}
