//! `POST /app-manifests/{code}/conversions`: the last step of GitHub's App
//! manifest flow, unauthenticated. Any code but `expired` converts to the
//! fake App (its id, the demo key, a webhook secret), as GitHub's 201 does.
//! The demo App's keys live here, as the App the fake creates.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::respond::{json_resp, message};
use crate::state::SharedRef;

/// The demo App's private key (public, in this repository: never a real App's).
/// The manifest flow hands it out as the new App's `pem`; the demo, tests and
/// benchmarks sign App JWTs with it.
pub const DEMO_APP_KEY: &str = include_str!("../fixtures/demo-app-key.pem");
/// Its public half: what `FakeConfig::app_public_key_pem` usually is.
pub const DEMO_APP_PUBLIC_KEY: &str = include_str!("../fixtures/demo-app-key.pub.pem");
pub const MANIFEST_WEBHOOK_SECRET: &str = "fake-manifest-webhook-secret";

pub async fn convert(shared: web::Data<SharedRef>, code: web::Path<String>) -> HttpResponse {
    if code.as_str() == "expired" {
        return message(404, "Not Found", "https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest");
    }
    let app_id = shared.app_id;
    json_resp(
        201,
        &json!({
            "id": app_id,
            "slug": "ghsync-fake",
            "node_id": "MDxOkludGVncmF0aW9uMQ==",
            "name": "ghsync (fake)",
            "html_url": "https://github.com/apps/ghsync-fake",
            "client_id": "Iv1.fakeclientid",
            "client_secret": "fake-client-secret",
            "webhook_secret": MANIFEST_WEBHOOK_SECRET,
            "pem": DEMO_APP_KEY,
        }),
    )
}
