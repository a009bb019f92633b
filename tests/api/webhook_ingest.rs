//! The request path: the contract's checks, in order, and "a refused request
//! stores nothing".

use crate::both_backends;
use crate::helpers::{Options, SECRET, spawn_app, spawn_app_with};
use fake_github::sign_webhook;
use ghsync::domain::{DeliveryId, DeliveryState};

const BODY: &str = r#"{"action":"created","sender":{"login":"octocat","id":1,"type":"User"}}"#;

struct Case {
    name: &'static str,
    event: Option<&'static str>,
    delivery: bool,
    body: Vec<u8>,
    signature: Option<String>,
    expect: u16,
}

fn cases() -> Vec<Case> {
    let ok_sig = Some(sign_webhook(SECRET, BODY.as_bytes()));
    let big = vec![b' '; 25 * 1024 * 1024 + 1];
    vec![
        Case {
            name: "over 25 MB",
            event: Some("star"),
            delivery: true,
            signature: Some(sign_webhook(SECRET, &big)),
            body: big,
            expect: 413,
        },
        Case {
            name: "no signature",
            event: Some("star"),
            delivery: true,
            body: BODY.into(),
            signature: None,
            expect: 401,
        },
        Case {
            name: "sha1 only",
            event: Some("star"),
            delivery: true,
            body: BODY.into(),
            signature: Some("sha1=0123456789abcdef0123456789abcdef01234567".into()),
            expect: 401,
        },
        Case {
            name: "malformed signature",
            event: Some("star"),
            delivery: true,
            body: BODY.into(),
            signature: Some("sha256=nothex".into()),
            expect: 401,
        },
        Case {
            name: "wrong secret",
            event: Some("star"),
            delivery: true,
            body: BODY.into(),
            signature: Some(sign_webhook("other", BODY.as_bytes())),
            expect: 401,
        },
        Case {
            name: "no event header",
            event: None,
            delivery: true,
            body: BODY.into(),
            signature: ok_sig.clone(),
            expect: 400,
        },
        Case {
            name: "no delivery header",
            event: Some("star"),
            delivery: false,
            body: BODY.into(),
            signature: ok_sig.clone(),
            expect: 400,
        },
        Case {
            name: "body not JSON",
            event: Some("star"),
            delivery: true,
            body: b"not json".to_vec(),
            signature: Some(sign_webhook(SECRET, b"not json")),
            expect: 400,
        },
        Case {
            name: "JSON but not an object",
            event: Some("star"),
            delivery: true,
            body: b"[1,2]".to_vec(),
            signature: Some(sign_webhook(SECRET, b"[1,2]")),
            expect: 400,
        },
    ]
}

async fn post(
    app: &crate::helpers::TestApp,
    event: Option<&str>,
    guid: Option<&str>,
    body: Vec<u8>,
    signature: Option<String>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/webhooks/github", app.address))
        .header("content-type", "application/json")
        .body(body);
    if let Some(event) = event {
        request = request.header("X-GitHub-Event", event);
    }
    if let Some(guid) = guid {
        request = request.header("X-GitHub-Delivery", guid);
    }
    if let Some(signature) = signature {
        request = request.header("X-Hub-Signature-256", signature);
    }
    request.send().await.unwrap()
}

both_backends! {
    async fn each_refused_request_gets_its_status_and_stores_nothing(backend: Backend) {
        let app = spawn_app(backend).await;
        for case in cases() {
            let guid = uuid::Uuid::new_v4().to_string();
            let response = post(&app, case.event, case.delivery.then_some(guid.as_str()), case.body, case.signature).await;
            assert_eq!(response.status().as_u16(), case.expect, "{}", case.name);
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            assert!(body["error"].is_string(), "{}: errors are JSON, got {body}", case.name);
            let stored = app.store().delivery(&DeliveryId::parse(&guid).unwrap()).await.unwrap();
            assert!(stored.is_none(), "{}: nothing may be stored", case.name);
            // The GUID is still new: the same delivery, sent right, is accepted.
            let retry = post(&app, Some("star"), Some(&guid), BODY.into(), Some(sign_webhook(SECRET, BODY.as_bytes()))).await;
            assert_eq!(retry.status().as_u16(), 202, "{}: the GUID must still be new", case.name);
        }
        let stats = app.store().inbox_stats().await.unwrap();
        assert_eq!(stats.failed, 0);
    }

    async fn a_redelivered_guid_is_answered_200_and_stored_once(backend: Backend) {
        let app = spawn_app(backend).await;
        let guid = uuid::Uuid::new_v4().to_string();
        let signature = sign_webhook(SECRET, BODY.as_bytes());
        let first = post(&app, Some("star"), Some(&guid), BODY.into(), Some(signature.clone())).await;
        assert_eq!(first.status().as_u16(), 202);
        app.drain_inbox().await;
        let id = DeliveryId::parse(&guid).unwrap();
        let settled = app.store().delivery(&id).await.unwrap().unwrap();
        let again = post(&app, Some("star"), Some(&guid), BODY.into(), Some(signature)).await;
        assert_eq!(again.status().as_u16(), 200);
        app.drain_inbox().await;
        let stored = app.store().delivery(&id).await.unwrap().unwrap();
        assert_eq!(settled.state, DeliveryState::Ignored, "a stranger's star");
        assert_eq!((stored.state, stored.attempts), (settled.state, settled.attempts), "stored once, not again");
        assert_eq!(app.db.count("SELECT COUNT(*) FROM webhook_deliveries").await, 1);
    }

    async fn during_rotation_either_secret_is_accepted(backend: Backend) {
        let app = spawn_app_with(backend, Options { secrets: vec!["new-secret", SECRET], ..Options::default() }).await;
        for secret in ["new-secret", SECRET] {
            let guid = uuid::Uuid::new_v4().to_string();
            let response = post(&app, Some("star"), Some(&guid), BODY.into(), Some(sign_webhook(secret, BODY.as_bytes()))).await;
            assert_eq!(response.status().as_u16(), 202, "signed with {secret}");
        }
    }
}
