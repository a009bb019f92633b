//! A request id on every log line of a request: a sane incoming
//! `X-Request-Id` (a proxy's) is kept, anything else is replaced by a new
//! UUID; the handler runs inside a `request` span carrying it, and the answer
//! echoes it so a caller can quote it. The webhook opens that span itself,
//! after its body is read (see `RequestLabel`).

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

use crate::telemetry::RequestLabel;
use crate::webhook;

const HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// Long enough for any tracer's id, short enough to log on every line.
const MAX_LEN: usize = 128;

/// Ids a log reader can trust: printable, no spaces or quotes to forge fields with.
fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'='))
}

pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let label = RequestLabel { id: id.clone(), method: req.method().to_string(), path: req.path().to_owned() };
    let span = if req.path() == webhook::PATH { tracing::Span::none() } else { label.span() };
    req.extensions_mut().insert(label);
    let mut response = next.call(req).instrument(span).await?;
    let value = HeaderValue::from_str(&id).expect("a sane id is a valid header value");
    response.headers_mut().insert(HEADER, value);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::sane;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(sane("7f1c2a0e-1b7e-4c55-9a3e-1f0c2d3e4f50"));
        assert!(sane("Root=1-67891233-abcdef012345678912345678"));
        assert!(!sane(""));
        assert!(!sane("a b"));
        assert!(!sane("x\" level=\"error"));
        assert!(!sane(&"a".repeat(129)));
    }
}
