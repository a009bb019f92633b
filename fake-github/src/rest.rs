//! Installation-token REST routes: `GET /user/{id}`, `GET /users/{login}`
//! (with ETag / `If-None-Match`) and the free `GET /rate_limit`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::auth::{TokenCtx, token_gate};
use crate::faults::{BucketView, Charge, Resource};
use crate::respond::{json_body, json_resp, rate_headers, rest_rate_limited, set_header};
use crate::state::{SharedRef, State};
use crate::user::{FakeUser, rest_user};

type Shared = web::Data<SharedRef>;

const DOC_BY_ID: &str = "https://docs.github.com/rest/users/users#get-a-user-using-their-id";
const DOC_BY_LOGIN: &str = "https://docs.github.com/rest/users/users#get-a-user";

/// `GET /user/{account_id}`: the durable-id lookup.
pub async fn get_user(shared: Shared, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let ctx = match token_gate(&shared, &req, "get_user", Resource::Core).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    let id: Option<i64> = path.parse().ok();
    let answer = serve_user(&ctx, &req, DOC_BY_ID, |st| id.and_then(|id| st.users.get(&id)).cloned());
    delayed(&ctx, answer).await
}

/// `GET /users/{username}`: login lookup, case-insensitive like GitHub.
pub async fn get_user_by_login(shared: Shared, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let ctx = match token_gate(&shared, &req, "get_user_by_login", Resource::Core).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    let answer = serve_user(&ctx, &req, DOC_BY_LOGIN, |st| st.user_by_login(&path).cloned());
    delayed(&ctx, answer).await
}

/// Sends an answer composed now `user_answer_delay` later (a slow GitHub whose
/// answers are as old as their requests).
async fn delayed(ctx: &TokenCtx, answer: HttpResponse) -> HttpResponse {
    let delay = ctx.shared.lock().faults.user_answer_delay;
    if delay.is_zero() {
        return answer;
    }
    ctx.shared.lock().stats.user_answers_waiting += 1;
    crate::auth::sleep(delay).await;
    ctx.shared.lock().stats.user_answers_waiting -= 1;
    answer
}

/// GitHub's ETags are token-specific (GitHub Support: "ETags are auth token
/// specific"), so the token is hashed in: a 304 only helps within one
/// token's lifetime, exactly as on github.com.
fn etag(token: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update([0u8]);
    h.update(body.as_bytes());
    format!("W/\"{}\"", hex::encode(h.finalize()))
}

/// Does `If-None-Match` (a list, possibly weak, possibly `*`) match `tag`?
fn matches_etag(req: &HttpRequest, tag: &str) -> bool {
    let Some(v) = req.headers().get("if-none-match").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let bare = |s: &str| s.trim().trim_start_matches("W/").to_string();
    v.split(',').any(|t| t.trim() == "*" || bare(t) == bare(tag))
}

/// Shared body of the two user routes: exhaustion check, conditional
/// request, charge, answer.
fn serve_user(
    ctx: &TokenCtx,
    req: &HttpRequest,
    doc: &str,
    lookup: impl FnOnce(&State) -> Option<FakeUser>,
) -> HttpResponse {
    let now = Utc::now();
    let inst = ctx.installation_id;
    let mut st = ctx.shared.lock();
    let user = lookup(&st).map(|user| next_version(&mut st, user));
    let body = user.as_ref().map(|u| rest_user(u).to_string());
    let tag = body.as_deref().map(|b| etag(&ctx.token, b));
    // A 304 is free, but only if there is budget left to answer at all.
    if st.peek(inst, Resource::Core, now).remaining > 0
        && let Some(tag) = tag.as_deref().filter(|t| matches_etag(req, t))
    {
        let view = st.peek(inst, Resource::Core, now);
        return not_modified(tag, &view);
    }
    let view = match st.charge(inst, Resource::Core, 1, now) {
        Charge::Ok(view) => view,
        Charge::Limited(view) => return rest_rate_limited(inst, &view),
    };
    let mut resp = match (body, tag) {
        (Some(body), Some(tag)) => {
            st.stats.rest_user_fetches += 1;
            if let Some(user) = &user {
                *st.stats.rest_fetches_by_user.entry(user.id).or_default() += 1;
            }
            let mut resp = json_body(200, body);
            set_header(&mut resp, "etag", &tag);
            resp
        }
        _ => json_resp(404, &json!({ "message": "Not Found", "documentation_url": doc, "status": "404" })),
    };
    set_header(&mut resp, "cache-control", "private, max-age=60, s-maxage=60");
    set_header(&mut resp, "vary", "Accept, Authorization, Cookie, X-GitHub-OTP");
    rate_headers(&mut resp, &view);
    resp
}

/// With `profile_versions`, every answer is the user's next version (kept, so
/// GraphQL sees it too).
fn next_version(st: &mut State, mut user: FakeUser) -> FakeUser {
    if !st.faults.profile_versions {
        return user;
    }
    let version = st.stats.rest_fetches_by_user.get(&user.id).copied().unwrap_or_default() + 1;
    user.bio = Some(format!("version {version}"));
    user.updated_at = user.updated_at.max(Utc::now());
    st.put_user(user.clone());
    user
}

fn not_modified(tag: &str, view: &BucketView) -> HttpResponse {
    let mut resp = HttpResponse::NotModified().finish();
    set_header(&mut resp, "etag", tag);
    set_header(&mut resp, "cache-control", "private, max-age=60, s-maxage=60");
    set_header(&mut resp, "vary", "Accept, Authorization, Cookie, X-GitHub-OTP");
    rate_headers(&mut resp, view);
    resp
}

/// `GET /rate_limit`: both buckets, never charged (GitHub: "does not count
/// against your primary rate limit").
pub async fn rate_limit(shared: Shared, req: HttpRequest) -> HttpResponse {
    let ctx = match token_gate(&shared, &req, "rate_limit", Resource::Core).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    let now = Utc::now();
    let (core, graphql) = {
        let mut st = ctx.shared.lock();
        (st.peek(ctx.installation_id, Resource::Core, now), st.peek(ctx.installation_id, Resource::Graphql, now))
    };
    let entry =
        |v: &BucketView| json!({ "limit": v.limit, "used": v.used, "remaining": v.remaining, "reset": v.reset });
    let body = json!({
        "resources": { "core": entry(&core), "graphql": entry(&graphql) },
        "rate": entry(&core),
    });
    let mut resp = json_resp(200, &body);
    rate_headers(&mut resp, &core);
    resp
}
