//! Outgoing webhooks: HMAC-SHA256 signing, the POST with GitHub's headers,
//! and recording each attempt for `GET /app/hook/deliveries`.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use bytes::Bytes;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::state::{DeliveryRecord, SharedRef};

/// GitHub's webhook response deadline; slower targets count as failed.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// `X-Hub-Signature-256` value: `sha256=` + lowercase hex HMAC-SHA256 of
/// the exact body bytes, keyed with the webhook secret.
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One attempt to make: what to send and how to record it.
pub struct Attempt {
    pub event: String,
    pub body: Bytes,
    pub guid: String,
    pub redelivery: bool,
}

/// Send one attempt and record it. Returns the target's HTTP status; a
/// transport failure is recorded (status_code 0) and returned as `Err`.
pub async fn send(shared: &SharedRef, attempt: Attempt) -> anyhow::Result<u16> {
    let target = shared
        .lock()
        .webhook
        .clone()
        .ok_or_else(|| anyhow!("fake GitHub: no webhook target set (call set_webhook_target)"))?;
    let signature = sign_webhook(&target.secret, &attempt.body);
    let started = Instant::now();
    let delivered_at = Utc::now();
    let result = shared
        .http
        .post(&target.url)
        .header("X-GitHub-Event", &attempt.event)
        .header("X-GitHub-Delivery", &attempt.guid)
        .header("X-GitHub-Hook-ID", shared.hook_id.to_string())
        .header("X-GitHub-Hook-Installation-Target-Type", "integration")
        .header("X-GitHub-Hook-Installation-Target-ID", shared.app_id.to_string())
        .header("X-Hub-Signature-256", signature)
        .header("User-Agent", "GitHub-Hookshot/fake")
        .header("Content-Type", "application/json")
        .body(attempt.body.clone())
        .send()
        .await;
    let duration = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    let (status, status_code, outcome) = match result {
        Ok(resp) => {
            let code = resp.status().as_u16();
            let text =
                if resp.status().is_success() { "OK".to_string() } else { format!("Invalid HTTP Response: {code}") };
            (text, code, Ok(code))
        }
        Err(e) => {
            let text = if e.is_timeout() { "timed out".to_string() } else { e.to_string() };
            let err = anyhow::Error::new(e).context(format!("delivery {}: {text}", attempt.guid));
            (text, 0, Err(err))
        }
    };
    record(shared, attempt, &target.url, delivered_at, duration, status, status_code);
    outcome
}

/// Append a delivery record, reading `action`, `installation.id` and
/// `repository.id` from the payload as GitHub does.
fn record(
    shared: &SharedRef,
    attempt: Attempt,
    url: &str,
    delivered_at: chrono::DateTime<Utc>,
    duration: f64,
    status: String,
    status_code: u16,
) {
    let parsed: Value = serde_json::from_slice(&attempt.body).unwrap_or(Value::Null);
    let mut st = shared.lock();
    st.stats.webhooks_sent += 1;
    st.next_delivery_id += 1;
    let rec = DeliveryRecord {
        // GitHub delivery ids are large integers; keep them in that range.
        id: 30_000_000_000 + st.next_delivery_id,
        guid: attempt.guid,
        delivered_at,
        redelivery: attempt.redelivery,
        duration,
        status,
        status_code,
        event: attempt.event,
        action: parsed["action"].as_str().map(str::to_string),
        installation_id: parsed["installation"]["id"].as_i64(),
        repository_id: parsed["repository"]["id"].as_i64(),
        body: attempt.body,
        url: url.to_string(),
    };
    st.deliveries.push(rec);
}
