//! Every answer of ours is JSON with the right status: unknown paths, wrong
//! methods (405 with `Allow`), `HEAD` where `GET` exists, bad bodies; a signed
//! body that is JSON but not an object is refused and stores nothing.

use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, SECRET, spawn_app};
use fake_github::sign_webhook as sign;
use ghsync::domain::DeliveryId;

/// (method, path, expected status, `Allow` it must list when 405).
const CASES: &[(&str, &str, u16, &str)] = &[
    ("GET", "/nope", 404, ""),
    ("POST", "/", 404, ""),
    ("GET", "/webhooks/github", 405, "POST"),
    ("PUT", "/webhooks/github", 405, "POST"),
    ("POST", "/healthz", 405, "GET, HEAD"),
    ("DELETE", "/readyz", 405, "GET, HEAD"),
    ("POST", "/metrics", 405, "GET, HEAD"),
    ("GET", "/admin/reconcile", 405, "POST"),
    ("PATCH", "/api/users/octocat", 405, "GET, HEAD, DELETE"),
    ("GET", "/api/users/1/sync", 405, "POST"),
    ("POST", "/api/users/1/sync-enabled", 405, "PUT"),
    ("GET", "/api/users/by-id/abc", 400, ""),
    ("GET", "/admin/runs/not-a-run", 400, ""),
];

both_backends! {
    async fn every_route_and_method_answers_json_with_the_right_status(backend: Backend) {
        let app = spawn_app(backend).await;
        for (method, path, status, allow) in CASES {
            // Act
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let response = app.admin(method.clone(), path).send().await.unwrap();

            // Assert
            assert_eq!(response.status().as_u16(), *status, "{method} {path}");
            let allowed = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
            let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            if !allow.is_empty() {
                let mut allowed: Vec<String> = allowed.unwrap_or_default().split(", ").map(str::to_owned).collect();
                let mut expected: Vec<&str> = allow.split(", ").collect();
                allowed.sort();
                expected.sort();
                assert_eq!(allowed, expected, "{method} {path}: Allow");
            }
            assert_eq!(content_type.as_deref(), Some("application/json"), "{method} {path}");
            let body: Value = response.json().await.unwrap();
            let error = body["error"].as_str().unwrap_or_else(|| panic!("{method} {path}: {body}"));
            assert!(!error.is_empty());
        }
    }

    async fn head_answers_where_get_does(backend: Backend) {
        let app = spawn_app(backend).await;
        for path in ["/healthz", "/readyz", "/metrics", "/admin/health", "/admin/runs"] {
            let response = app.admin(Method::HEAD, path).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "HEAD {path}");
            assert!(response.bytes().await.unwrap().is_empty(), "HEAD {path} has no body");
        }
    }

    async fn bad_json_bodies_are_explained_without_rust_type_names(backend: Backend) {
        let app = spawn_app(backend).await;
        for (body, content_type) in [("[1]", "application/json"), ("{\"login\": 5}", "application/json"), ("{}", "text/plain"), ("{", "application/json")] {
            let response = app.admin(Method::POST, "/api/users").header("content-type", content_type).body(body).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 400, "{body}");
            let answer: Value = response.json().await.unwrap();
            let error = answer["error"].as_str().unwrap();
            assert!(!error.contains("TrackRequest") && !error.contains("struct ") && !error.contains("Json "), "{body}: {error}");
        }
    }

    async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
        let app = spawn_app(backend).await;
        for scheme in ["bearer", "BEARER", "Bearer"] {
            let response = app.client.get(format!("{}/admin/runs", app.address))
                .header("authorization", format!("{scheme} {ADMIN_TOKEN}")).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{scheme}");
        }
    }

    async fn a_signed_body_that_is_not_a_json_object_is_400_and_stores_nothing(backend: Backend) {
        let app = spawn_app(backend).await;
        for body in [&b"[\"x\"]"[..], b"\"x\"", b"42", b"null"] {
            let guid = uuid::Uuid::new_v4().to_string();
            let response = app.client.post(format!("{}/webhooks/github", app.address))
                .header("X-GitHub-Event", "star")
                .header("X-GitHub-Delivery", &guid)
                .header("X-Hub-Signature-256", sign(SECRET, body))
                .body(body.to_vec()).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 400, "{}", String::from_utf8_lossy(body));
            let answer: Value = response.json().await.unwrap();
            assert!(answer["error"].is_string());
            assert!(app.store().delivery(&DeliveryId::parse(&guid).unwrap()).await.unwrap().is_none());
        }
        let stats = app.store().inbox_stats().await.unwrap();
        assert_eq!((stats.pending, stats.failed), (0, 0));
    }
}
