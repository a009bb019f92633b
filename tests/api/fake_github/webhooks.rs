//! Tests for webhook signing, delivery headers, the deliveries API
//! (newest first, cursor paging) and redelivery with the same GUID.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use fake_github::{payloads, sign_webhook};

use super::{APP_ID, fake, good_jwt, header};

/// A one-shot HTTP target: answers 200 and hands back (headers, body).
async fn one_shot_target() -> (String, tokio::task::JoinHandle<(String, Vec<u8>)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len || n == 0 {
                let body = buf[end + 4..end + 4 + len].to_vec();
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                sock.write_all(reply).await.unwrap();
                return (head, body);
            }
        }
    });
    (url, task)
}

#[tokio::test]
async fn webhook_is_signed_and_recorded_and_redelivered() {
    assert_eq!(
        sign_webhook("It's a Secret to Everybody", b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    let gh = fake().await;
    let (url, task) = one_shot_target().await;
    gh.set_webhook_target(&url, "s3cret");
    let sender = gh.user(1).unwrap();
    let payload = payloads::installation_event("created", &gh.installation_payload(100), &sender);
    let (status, guid) = gh.deliver("installation", &payload).await.unwrap();
    assert_eq!(status, 200);
    let (head, body) = task.await.unwrap();
    let sig = sign_webhook("s3cret", &body);
    assert!(head.contains(&format!("x-hub-signature-256: {sig}")), "{head}");
    assert!(head.contains(&format!("x-github-delivery: {guid}")));
    assert!(head.contains("x-github-event: installation"));
    assert!(head.contains("x-github-hook-installation-target-type: integration"));
    assert!(head.contains(&format!("x-github-hook-installation-target-id: {APP_ID}")));
    assert!(head.contains("user-agent: github-hookshot/fake"));
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), payload);

    // The target is gone now: a redelivery is recorded as failed.
    let client = reqwest::Client::new();
    let list = || client.get(format!("{}/app/hook/deliveries", gh.url())).bearer_auth(good_jwt()).send();
    let items: Vec<Value> = list().await.unwrap().json().await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "OK");
    assert_eq!(items[0]["action"], "created");
    assert_eq!(items[0]["installation_id"], 100);
    let id = items[0]["id"].as_u64().unwrap();
    let attempts = format!("{}/app/hook/deliveries/{id}/attempts", gh.url());
    let resp = client.post(attempts).bearer_auth(good_jwt()).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let items: Vec<Value> = list().await.unwrap().json().await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["guid"], guid.as_str(), "newest first, same GUID");
    assert_eq!(items[0]["redelivery"], true);
    assert_eq!(items[0]["status_code"], 0);
    assert_eq!(gh.stats().webhooks_sent, 2);
}

#[tokio::test]
async fn deliveries_page_with_cursor_links() {
    let gh = fake().await;
    gh.set_webhook_target("http://127.0.0.1:9/unreachable", "x");
    for _ in 0..3 {
        assert!(gh.deliver("ping", &json!({ "zen": "Keep it simple." })).await.is_err());
    }
    let client = reqwest::Client::new();
    let first = client
        .get(format!("{}/app/hook/deliveries?per_page=2", gh.url()))
        .bearer_auth(good_jwt())
        .send()
        .await
        .unwrap();
    let link = header(&first, "link");
    let items: Vec<Value> = first.json().await.unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0]["id"].as_u64() > items[1]["id"].as_u64());
    let next = link.strip_prefix('<').unwrap().split_once(">; rel=\"next\"").unwrap().0;
    assert!(next.starts_with(&gh.url()) && next.contains("cursor="), "{link}");
    let rest: Vec<Value> = client.get(next).bearer_auth(good_jwt()).send().await.unwrap().json().await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["status_code"], 0);
}
