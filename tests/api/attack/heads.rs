//! Requests actix-http answers before any code of ours runs, sent over raw
//! TCP: a request line that is not HTTP (400), a header over the 128 KiB head
//! buffer and more than 96 headers (431), a head that never ends (408). Each
//! answer is JSON `{"error": …}` with its status, and `/healthz` still answers.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::server::Attacked;
use crate::helpers::PATIENCE;

/// actix-http's buffer for a request head (`MAX_BUFFER_SIZE`).
const HEAD_BUFFER: usize = 128 * 1024;

/// One answer as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Asserts the answer is `status` with a JSON `{"error": "…"}` body.
    fn assert_json_error(&self, status: u16) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        let length: usize = self.header("content-length").unwrap().parse().unwrap();
        assert_eq!(length, self.body.len(), "{self:?}");
        let json: Value = serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"));
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()), "{self:?}");
    }
}

/// Sends `request` on a new connection and reads every answer until the server closes it.
async fn send_raw(addr: &str, request: &[u8]) -> Vec<Answer> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut bytes))
        .await
        .expect("the server closes the connection")
        .unwrap();
    parse_answers(&bytes)
}

fn parse_answers(mut bytes: &[u8]) -> Vec<Answer> {
    let mut answers = Vec::new();
    while !bytes.is_empty() {
        let text = String::from_utf8_lossy(bytes);
        let end = text.find("\r\n\r\n").unwrap_or_else(|| panic!("a whole head in {text:?}"));
        let mut lines = text[..end].split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| l.split_once(':').unwrap())
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let body = String::from_utf8_lossy(&bytes[end + 4..end + 4 + length]).into_owned();
        answers.push(Answer { status, headers, body });
        bytes = &bytes[end + 4 + length..];
    }
    answers
}

async fn assert_healthz(server: &Attacked) {
    let client = reqwest::Client::new();
    assert!(server.healthz(&client).await, "/healthz answers after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_line_that_is_not_http_is_a_json_400() {
    let server = Attacked::start(&[]).await;

    let answers = send_raw(&server.addr, b"this is not http\r\n\r\n").await;

    assert_eq!(answers.len(), 1, "{answers:?}");
    answers[0].assert_json_error(400);
    assert_healthz(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_a_good_request_on_one_connection_is_a_json_400_after_its_answer() {
    let server = Attacked::start(&[]).await;

    let answers = send_raw(&server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01 garbage\r\n\r\n").await;

    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].status, 200, "{answers:?}");
    assert!(answers[0].header("x-request-id").is_some(), "{answers:?}");
    answers[1].assert_json_error(400);
    assert_healthz(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_over_the_head_buffer_is_a_json_431() {
    let server = Attacked::start(&[]).await;
    // Exactly the buffer, never ended: the server reads all of it, so its
    // close cannot reset the connection over unread bytes.
    let mut head = b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.resize(HEAD_BUFFER, b'a');

    let answers = send_raw(&server.addr, &head).await;

    assert_eq!(answers.len(), 1, "{answers:?}");
    answers[0].assert_json_error(431);
    assert_healthz(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_headers_than_the_parser_takes_is_a_json_431() {
    let server = Attacked::start(&[]).await;
    let mut head = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..100 {
        head.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    head.push_str("\r\n");

    let answers = send_raw(&server.addr, head.as_bytes()).await;

    assert_eq!(answers.len(), 1, "{answers:?}");
    answers[0].assert_json_error(431);
    assert_healthz(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_never_ends_is_a_json_408() {
    let server = Attacked::start(&[]).await;
    let started = std::time::Instant::now();

    let answers = send_raw(&server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;

    assert!(started.elapsed() >= Duration::from_secs(4), "cut at the head timeout (5 s)");
    assert_eq!(answers.len(), 1, "{answers:?}");
    answers[0].assert_json_error(408);
    assert_healthz(&server).await;
}
