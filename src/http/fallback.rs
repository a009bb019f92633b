//! Every answer is JSON, including the ones no handler of ours writes: an
//! unknown path (404), a method the path does not take (405, with `Allow`),
//! and extractor failures (a bad JSON body or path). Their text never names a
//! Rust type. (Answers actix-http writes before any of this runs, the 400 for
//! a malformed request and the 431 for a head too large, stay empty-bodied:
//! actix offers no hook for them.)

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::JsonPayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::web;

use super::ApiError;

/// Middleware giving an empty or non-JSON error answer a JSON body, keeping
/// its status and headers (`Allow` on a 405).
pub fn json_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(to_json)
}

fn to_json<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // Ours already: JSON, or the admin page's HTML (its login form is a 401).
    let is_ours = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if is_ours {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = match res.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()) {
        Some(allowed) => format!("method not allowed here; allowed: {allowed}"),
        None => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let body = serde_json::json!({ "error": message }).to_string();
    Ok(ErrorHandlerResponse::Response(res.map_body(|head, _| {
        head.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        head.headers_mut().remove(header::CONTENT_LENGTH);
        EitherBody::right(BoxBody::new(body))
    })))
}

/// `web::Json` failures as a 400 that says what was wrong in the caller's terms.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().error_handler(|e, _| ApiError::BadRequest(describe_json_error(&e)).into())
}

/// `web::Path` failures as a 400 (no Rust type in the text).
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|_, req| ApiError::BadRequest(format!("{:?} is not a valid path here", req.path())).into())
}

/// `web::Query` failures as a 400 (no Rust type in the text).
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e, _| ApiError::BadRequest(scrub_type_names(&e.to_string())).into())
}

fn describe_json_error(e: &JsonPayloadError) -> String {
    match e {
        JsonPayloadError::OverflowKnownLength { limit, .. } | JsonPayloadError::Overflow { limit } => {
            format!("body is larger than {limit} bytes")
        }
        JsonPayloadError::ContentType => "Content-Type must be application/json".into(),
        JsonPayloadError::Deserialize(e) => format!("invalid JSON body: {}", scrub_type_names(&e.to_string())),
        JsonPayloadError::Payload(e) => format!("cannot read the request body: {e}"),
        _ => "invalid JSON body".into(),
    }
}

/// serde names the Rust type it expected (`expected struct TrackRequest`); say
/// what shape was expected instead.
fn scrub_type_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["struct ", "enum "].iter().filter_map(|k| rest.find(k).map(|i| (i, *k))).min() {
        let (i, keyword) = at;
        out.push_str(&rest[..i]);
        out.push_str(if keyword == "struct " { "an object" } else { "one of the accepted values" });
        let after = &rest[i + keyword.len()..];
        let name_end = after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
        rest = &after[name_end..];
    }
    out.push_str(rest);
    out.replace("tuple an object", "an array").replace("unit an object", "null")
}

#[cfg(test)]
mod tests {
    use super::scrub_type_names;

    #[test]
    fn serde_messages_lose_their_rust_type_names() {
        assert_eq!(
            scrub_type_names("invalid type: sequence, expected struct TrackRequest at line 1 column 1"),
            "invalid type: sequence, expected an object at line 1 column 1"
        );
        assert_eq!(
            scrub_type_names("unknown variant `x`, expected enum Kind"),
            "unknown variant `x`, expected one of the accepted values"
        );
        assert_eq!(scrub_type_names("missing field `enabled`"), "missing field `enabled`");
    }
}
