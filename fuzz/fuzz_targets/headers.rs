//! The webhook request path up to the store (`ghsync::webhook::check`): any
//! headers (length, signature, event, delivery GUID, content type, others)
//! and any body, signed with the right secret or not. Never a panic; only a
//! signed JSON object with sane headers passes; every refusal is a 4xx/503
//! with a JSON `{"error": …}` body; the body budget is all given back.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::test::TestRequest;
use actix_web::{FromRequest, ResponseError, web};
use arbitrary::{Arbitrary, Result, Unstructured};
use ghsync::config::BodyLimits;
use ghsync::webhook::{BodyGate, IngestError, MAX_BODY_BYTES, check};
use ghsync_fuzz::{json, sign};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use serde::de::IgnoredAny;

const SECRET: &str = "It's a Secret to Everybody";
const MEMORY: usize = 64 << 20;

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap());
static GATE: LazyLock<BodyGate> =
    LazyLock::new(|| BodyGate::new(&BodyLimits { memory: MEMORY, read_timeout: Duration::from_secs(1) }));

/// The headers the request path reads, and any other.
#[derive(Arbitrary, Debug)]
enum Name {
    ContentLength,
    ContentType,
    Signature,
    Event,
    Delivery,
    Other(String),
}

impl Name {
    fn as_str(&self) -> &str {
        match self {
            Self::ContentLength => "content-length",
            Self::ContentType => "content-type",
            Self::Signature => "x-hub-signature-256",
            Self::Event => "x-github-event",
            Self::Delivery => "x-github-delivery",
            Self::Other(name) => name,
        }
    }
}

#[derive(Debug)]
struct Input {
    headers: Vec<(Name, Vec<u8>)>,
    /// Sign the body with the configured secret (the signature header is then ours).
    signed: bool,
    body: Vec<u8>,
}

fn input(mut u: Unstructured<'_>) -> Result<Input> {
    let headers = u.arbitrary()?;
    let signed = u.arbitrary()?;
    let body = if u.arbitrary()? { serde_json::to_vec(&json(&mut u)?).unwrap() } else { u.take_rest().to_vec() };
    Ok(Input { headers, signed, body })
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = input(Unstructured::new(data)) else { return };
    // `set_payload` sets Content-Length to the body's size; a fuzzed one replaces it.
    let mut request = TestRequest::post().uri("/webhooks/github").set_payload(input.body.clone());
    for (name, value) in &input.headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value))
        else {
            continue;
        };
        request = if name == "content-length" {
            request.insert_header((name, value))
        } else {
            request.append_header((name, value))
        };
    }
    if input.signed {
        request = request.insert_header(("x-hub-signature-256", sign(SECRET.as_bytes(), &input.body)));
    }
    let (req, mut payload) = request.to_http_parts();
    let secrets = [SecretString::from(SECRET)];
    RUNTIME.block_on(async {
        let payload = web::Payload::from_request(&req, &mut payload).await.unwrap();
        match check(&req, payload, &GATE, &secrets).await {
            Ok((delivery, _held)) => {
                assert!(input.signed, "accepted without our signature");
                assert_eq!(delivery.payload.as_bytes(), &input.body[..], "stored other bytes than were signed");
                // Values ignored, not read: JSON leaves number ranges to the reader (`1e400` is JSON).
                let object: BTreeMap<String, IgnoredAny> =
                    serde_json::from_str(&delivery.payload).expect("accepted a body that is not a JSON object");
                assert!(delivery.action.is_none() || object.contains_key("action"), "an action not in the body");
                assert_eq!(Some(delivery.event.as_str()), header(&req, "x-github-event").map(str::trim));
                assert_eq!(Some(delivery.id.as_str()), header(&req, "x-github-delivery").map(str::trim));
            }
            Err(refusal) => answers_json(&req, refusal).await,
        }
    });
    assert_eq!(GATE.available(), MEMORY, "body budget not given back");
});

fn header<'a>(req: &'a actix_web::HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A refusal is ours to explain, in JSON, with a status that says whose fault it is.
async fn answers_json(req: &actix_web::HttpRequest, refusal: IngestError) {
    let status = refusal.status_code();
    let declared = header(req, "content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert!(
        [400, 401, 408, 413, 503].contains(&status.as_u16()),
        "{status} for {refusal:?}: not a refusal we document"
    );
    let body = actix_web::body::to_bytes(refusal.error_response().into_body()).await.unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("a refusal without a JSON body");
    assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "no error text: {answer}");
}
