//! Floods: slow bodies are cut at the read deadline, a flood of bad
//! signatures writes a bounded number of log lines (and every one is counted
//! in `/metrics`), and thousands of idle connections do not keep `/healthz`
//! from answering.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::server::Attacked;
use crate::helpers::{PATIENCE, SECRET};
use fake_github::sign_webhook as sign;

const SLOW_SENDERS: usize = 20;
/// A slow sender's body: at one byte per 200 ms it would take 200 s, over `PATIENCE`.
const SLOW_BODY_BYTES: usize = 1000;
const BAD_SIGNATURES: usize = 2000;
const IDLE_CONNECTIONS: usize = 3000;

/// Sends a request head declaring `SLOW_BODY_BYTES`, then the body a byte at a
/// time; returns what the server answered before closing, or `None` if it never closed.
async fn slow_sender(addr: String) -> Option<String> {
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: star\r\nX-GitHub-Delivery: slow\r\nContent-Length: {SLOW_BODY_BYTES}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let dribble = tokio::spawn(async move {
        for _ in 0..SLOW_BODY_BYTES {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut answer)).await;
    dribble.abort();
    closed.ok().map(|_| String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_are_cut_at_the_read_deadline() {
    // Arrange: a one-second read deadline (plus 2 s per MiB received).
    let server = Attacked::start(&[("GHSYNC_WEBHOOK_READ_TIMEOUT", "1s")]).await;

    // Act
    let answers = futures_util::future::join_all((0..SLOW_SENDERS).map(|_| slow_sender(server.addr.clone()))).await;

    // Assert: each connection was answered 408 and closed long before its body could end.
    for answer in answers {
        let answer = answer.expect("the server closed a slow body's connection");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        assert!(answer.contains("\"error\""), "{answer:?}");
    }
    let client = reqwest::Client::new();
    assert_eq!(
        server
            .metric(&client, "ghsync_webhook_deliveries_total{event=\"unverified\",outcome=\"refused_too_slow\"}")
            .await,
        SLOW_SENDERS as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_signatures_writes_a_bounded_number_of_log_lines() {
    // Arrange
    let server = Attacked::start(&[]).await;
    let client = reqwest::Client::builder().timeout(PATIENCE).build().unwrap();
    let lines_before = server.log_text().lines().count();
    let body = bytes::Bytes::from_static(b"{\"action\":\"created\"}");

    // Act
    let started = std::time::Instant::now();
    let statuses: Vec<Option<u16>> = stream::iter(0..BAD_SIGNATURES)
        .map(|_| {
            let request = server.webhook(&client, body.clone(), Some("sha256=00"));
            async move { request.send().await.ok().map(|r| r.status().as_u16()) }
        })
        .buffer_unordered(32)
        .collect()
        .await;

    // Assert: all refused and counted, yet only a few lines written: the first
    // refusal, and at most a summary or two (one per 10 s).
    assert!(statuses.iter().all(|s| *s == Some(401)), "all 401");
    let counted = server
        .metric(&client, "ghsync_webhook_deliveries_total{event=\"unverified\",outcome=\"refused_signature\"}")
        .await;
    assert_eq!(counted, BAD_SIGNATURES as u64);
    let periods = started.elapsed().as_secs() / ghsync::webhook::REFUSAL_SUMMARY_PERIOD.as_secs();
    let log = server.log_text();
    let refusal_lines: Vec<&str> = log
        .lines()
        .skip(lines_before)
        .filter(|l| l.contains("refused a webhook") || l.contains("webhook deliveries refused"))
        .collect();
    assert!(!refusal_lines.is_empty(), "the first refusal is logged");
    assert!(
        refusal_lines.len() as u64 <= 2 + periods,
        "{} lines for {BAD_SIGNATURES} refusals in {periods} periods:\n{}",
        refusal_lines.len(),
        refusal_lines.join("\n")
    );
    assert!(!log.contains("\u{1b}["), "no colour codes in a log file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_do_not_stop_healthz() {
    // Arrange: this process needs the descriptors too.
    ghsync::http::raise_open_file_limit();
    let server = Attacked::start(&[]).await;
    let client = reqwest::Client::builder().timeout(PATIENCE).build().unwrap();

    // Act: open connections that send half a request head and then nothing.
    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    for _ in 0..IDLE_CONNECTIONS {
        match TcpStream::connect(&server.addr).await {
            Ok(mut stream) => {
                let _ = stream.write_all(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\n").await;
                idle.push(stream);
            }
            Err(e) => panic!("could not open connection {}: {e}", idle.len()),
        }
    }

    // Assert: /healthz and a signed delivery are answered while they are held,
    // and the server closes them itself.
    assert!(server.healthz(&client).await, "/healthz answers with {IDLE_CONNECTIONS} idle connections held");
    let body = bytes::Bytes::from_static(b"{\"action\":\"created\"}");
    let signed = server.webhook(&client, body.clone(), Some(&sign(SECRET, &body))).send().await.unwrap();
    assert_eq!(signed.status().as_u16(), 202, "a signed delivery is accepted");
    let mut buf = [0u8; 64];
    let first = idle.first_mut().unwrap();
    let closed = tokio::time::timeout(PATIENCE, first.read(&mut buf)).await;
    if closed.is_err() {
        // Seen once under load and not since: how many did the server close, and what did it log?
        let still_open = idle
            .iter()
            .filter(|s| s.try_read(&mut [0u8; 64]).is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock))
            .count();
        let log = server.log_text();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "the first idle connection was not closed in {PATIENCE:?} (request head timeout); \
             {still_open} of {IDLE_CONNECTIONS} still open; the log's end:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    assert!(server.healthz(&client).await);
}
