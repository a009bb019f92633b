//! Request admission: App-JWT verification for `/app/*` routes, and the
//! installation-token gate (credentials, secondary limit, latency, injected
//! 502s) that every token-authenticated route passes first.

use std::time::Instant;

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use chrono::Utc;
use jsonwebtoken::{Algorithm, Validation, decode};
use serde_json::Value;

use crate::faults::Resource;
use crate::limits::Admit;
use crate::respond::{bad_credentials, message, rate_headers, secondary_limited, server_error};
use crate::state::SharedRef;

const JWT_UNDECODABLE: &str = "A JSON web token could not be decoded";
const JWT_EXP_TOO_FAR: &str = "'Expiration time' claim ('exp') is too far in the future";
const JWT_EXPIRED: &str = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
const JWT_IAT_FUTURE: &str =
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";

/// The credential in `Authorization: Bearer X` or `Authorization: token X`.
pub fn credential(req: &HttpRequest) -> Option<String> {
    let raw = req.headers().get("authorization")?.to_str().ok()?.trim();
    let (scheme, rest) = raw.split_once(' ')?;
    let ok = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    ok.then(|| rest.trim().to_string())
}

/// Check an App JWT as GitHub does; `Err` carries GitHub's message.
fn check_jwt(shared: &SharedRef, jwt: &str) -> Result<(), &'static str> {
    let mut validation = Validation::new(Algorithm::RS256);
    // Claims are checked by hand below, to give GitHub's messages and bounds.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = decode::<Value>(jwt, &shared.key, &validation).map_err(|_| JWT_UNDECODABLE)?;
    let claims = data.claims;
    let iss = match &claims["iss"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    if iss != Some(shared.app_id) {
        return Err(JWT_UNDECODABLE);
    }
    let now = Utc::now().timestamp();
    let exp = claims["exp"].as_i64().ok_or(JWT_EXPIRED)?;
    let iat = claims["iat"].as_i64().ok_or(JWT_IAT_FUTURE)?;
    if exp <= now {
        return Err(JWT_EXPIRED);
    }
    if iat > now + 60 {
        return Err(JWT_IAT_FUTURE);
    }
    if exp > now + 600 + 30 {
        return Err(JWT_EXP_TOO_FAR);
    }
    Ok(())
}

/// Gate for App-JWT routes: count the route, verify the JWT, then apply
/// latency and injected 502s.
pub async fn app_gate(shared: &SharedRef, req: &HttpRequest, route: &str) -> Result<(), HttpResponse> {
    let verdict = match credential(req) {
        Some(jwt) => check_jwt(shared, &jwt),
        None => Err(JWT_UNDECODABLE),
    };
    let (latency, error_rate) = {
        let mut st = shared.lock();
        st.count_request(route);
        if verdict.is_err() {
            st.stats.jwt_rejected += 1;
        }
        (st.faults.latency, st.faults.server_error_rate)
    };
    sleep(latency).await;
    if let Err(msg) = verdict {
        return Err(message(401, msg, "https://docs.github.com/rest"));
    }
    if roll(error_rate) {
        return Err(server_error());
    }
    Ok(())
}

/// An admitted token request. Dropping it ends the request's "in flight"
/// time for the secondary limit.
pub struct TokenCtx {
    pub shared: SharedRef,
    pub token: String,
    pub installation_id: i64,
}

impl Drop for TokenCtx {
    fn drop(&mut self) {
        self.shared.lock().release(&self.token);
    }
}

/// Why a token request was turned away before its handler ran.
enum Refusal {
    BadCredentials,
    Suspended,
    Secondary { inst: i64, retry_after: u64, start_pause: bool },
}

/// Gate for installation-token routes: credentials, secondary limit,
/// latency (while counted in flight) and injected 502s, in that order.
pub async fn token_gate(
    shared: &SharedRef,
    req: &HttpRequest,
    route: &str,
    resource: Resource,
) -> Result<TokenCtx, HttpResponse> {
    let arrived = Instant::now();
    let token = credential(req).unwrap_or_default();
    let (decision, latency, error_rate) = {
        let mut st = shared.lock();
        st.count_request(route);
        let decision = admit_token(&mut st, &token, resource, arrived);
        (decision, st.faults.latency, st.faults.server_error_rate)
    };
    // Build the context first so an early return still releases the slot.
    let ctx = match decision {
        Ok(inst) => TokenCtx { shared: shared.clone(), token, installation_id: inst },
        Err(refusal) => {
            sleep(latency).await;
            return Err(refuse(shared, &token, refusal, resource));
        }
    };
    sleep(latency).await;
    if roll(error_rate) {
        return Err(server_error());
    }
    Ok(ctx)
}

/// The locked part of `token_gate`: who is this, and may it proceed?
fn admit_token(
    st: &mut crate::state::State,
    token: &str,
    resource: Resource,
    arrived: Instant,
) -> Result<i64, Refusal> {
    let rec = st.tokens.get(token).cloned().ok_or(Refusal::BadCredentials)?;
    if rec.expires_at <= Utc::now() {
        st.stats.on_expired += 1;
        return Err(Refusal::BadCredentials);
    }
    let inst = rec.installation_id;
    let installation = st.installations.get(&inst).ok_or(Refusal::BadCredentials)?;
    if installation.suspended_at.is_some() {
        return Err(Refusal::Suspended);
    }
    match st.admit(token, resource, arrived) {
        Admit::Go => Ok(inst),
        Admit::Paused { retry_after } => Err(Refusal::Secondary { inst, retry_after, start_pause: false }),
        Admit::OverCap { retry_after } => Err(Refusal::Secondary { inst, retry_after, start_pause: true }),
    }
}

/// Turn a refusal into GitHub's answer (after latency has been slept).
fn refuse(shared: &SharedRef, token: &str, refusal: Refusal, resource: Resource) -> HttpResponse {
    match refusal {
        Refusal::BadCredentials => bad_credentials(),
        Refusal::Suspended => message(403, "This installation has been suspended", "https://docs.github.com/rest"),
        Refusal::Secondary { inst, retry_after, start_pause } => {
            let mut st = shared.lock();
            if start_pause {
                // The pause starts now, when the client can first learn of it.
                st.start_pause(token, retry_after);
            }
            let view = st.peek(inst, resource, Utc::now());
            let mut resp = secondary_limited(retry_after);
            rate_headers(&mut resp, &view);
            resp
        }
    }
}

pub async fn sleep(d: std::time::Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// True with probability `p` (the injected-502 share).
pub fn roll(p: f64) -> bool {
    p > 0.0 && rand::random::<f64>() < p
}
