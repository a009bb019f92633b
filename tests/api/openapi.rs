//! `GET /openapi.json`: served without a token, OpenAPI 3.1, and it lists
//! exactly the `/api` and `/admin` routes the app mounts (`http::ROUTES`), so
//! the document cannot drift from the routes. Every operation it says needs
//! the bearer token really answers 401 without one. (schemathesis, in
//! `.ci/run`, checks the answers themselves against the document.)

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// The bearer token alone, as opposed to login/logout's "no auth" (`[{}]`).
fn needs_bearer(operation: &Value) -> bool {
    operation["security"].as_array().is_some_and(|reqs| reqs.iter().all(|r| r.get("bearer").is_some()))
}

#[tokio::test]
async fn the_openapi_document_is_served_is_3_1_and_lists_every_api_and_admin_route() {
    // Arrange
    let app = spawn_app(Backend::Sqlite).await;

    // Act
    let response = reqwest::get(format!("{}/openapi.json", app.address)).await.unwrap();

    // Assert
    assert_eq!(response.status(), 200, "no token needed");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let mounted: BTreeSet<(String, String)> = ghsync::http::ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/api/") || r.path == "/admin" || r.path.starts_with("/admin/"))
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented(&doc), mounted, "the document and the mounted routes differ");
    for (method, path) in &mounted {
        let operation = &doc["paths"][path][method.to_lowercase()];
        assert!(operation["security"].is_array(), "{method} {path} states who may call it");
        if needs_bearer(operation) {
            for status in ["401", "403"] {
                assert!(operation["responses"][status].is_object(), "{method} {path} documents {status}");
            }
        }
    }
}

#[tokio::test]
async fn every_operation_the_document_guards_with_the_token_answers_401_without_it() {
    // Arrange
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value = reqwest::get(format!("{}/openapi.json", app.address)).await.unwrap().json().await.unwrap();
    let client = reqwest::Client::new();

    for (method, path) in documented(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        if !operation["security"].as_array().unwrap().iter().any(|r| r.get("bearer").is_some()) {
            continue;
        }
        // Act: any value for the path's parameters; auth is checked first.
        let concrete =
            path.replace("{id}", "1").replace("{guid}", "x").replace("{github_id}", "1").replace("{login_or_id}", "1");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = client.request(method.clone(), format!("{}{concrete}", app.address)).send().await.unwrap();

        // Assert
        assert_eq!(response.status(), 401, "{method} {path} without a token");
    }
}
